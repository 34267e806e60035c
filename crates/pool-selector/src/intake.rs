//! `POST /events`: accept job events over HTTP and publish them to RabbitMQ, from where the
//! ingest-worker stores them.
//!
//! The body is one event object, a JSON array of them, or NDJSON (`application/x-ndjson`, one per
//! line). Every event is validated before anything is published: one invalid event rejects the whole
//! request with a 400 naming each bad line (NDJSON) or index (array) and why. `202 {"accepted": N}` is
//! sent only after the broker confirmed every message; when it did not (broker down, connection lost,
//! nack, confirm timeout) the answer is 503 and no event is reported as accepted. Some may have reached
//! the queue anyway, so a client simply retries: a `job_id` stored twice is counted once.
//!
//! The publisher connects lazily, so pool-selector starts and serves rankings while RabbitMQ is down.

use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use prometheus::{IntCounter, IntCounterVec, Registry};
use serde::Serialize;

use pool_core::amqp::{AmqpArgs, Publisher};
use pool_core::http::ApiError;
use pool_core::metrics::{counter_vec, register};

/// Default largest accepted body: 16 MiB, about 100,000 events.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Content types accepted (parameters such as `charset` are ignored). A missing one is accepted too.
const ACCEPTED_TYPES: &[&str] = &[
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "text/plain",
];

/// The intake's state: the shared publisher, the body limit and a few counters.
pub struct Intake {
    publisher: Publisher,
    max_body_bytes: usize,
    accepted: IntCounter,
    refused: IntCounterVec,
}

impl Intake {
    /// Register the intake's metrics in `registry`. Does not connect: the first request does.
    pub fn new(amqp: &AmqpArgs, max_body_bytes: usize, registry: &Registry) -> Self {
        Self {
            publisher: Publisher::new(amqp, "pool-selector"),
            max_body_bytes,
            accepted: register(
                registry,
                IntCounter::new(
                    "events_accepted_total",
                    "Events accepted by POST /events (confirmed by RabbitMQ).",
                )
                .expect("valid metric"),
            ),
            refused: counter_vec(
                registry,
                "events_refused_total",
                "Events refused by POST /events, by reason (invalid, too_large, broker_*).",
                &["reason"],
            ),
        }
    }
}

/// Register `POST /events`. Needs `web::Data<Intake>` in the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::post().to(post_events));
}

/// The answer to an accepted request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Events confirmed by the broker (all of the request's).
    pub accepted: usize,
}

/// One job event, as sent (the seed's format).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventIn {
    /// When the job finished: ISO 8601, UTC when no zone is given.
    #[schema(example = "2026-11-22T10:00:00.123")]
    finished_at: String,
    #[schema(example = "5f0c1d9e-8a1b-4f7e-9c1a-2b3c4d5e6f70")]
    job_id: String,
    /// `pool-<family.size>-<availability zone>`.
    #[schema(example = "pool-c6a.xlarge-us-east-1a")]
    pool_id: String,
    /// `SUCCEEDED` or `FAILED`.
    #[schema(example = "FAILED")]
    status: String,
    /// Empty for a succeeded job; `SPOT_INSTANCE_TERMINATION` is the only spot loss.
    #[schema(example = "SPOT_INSTANCE_TERMINATION")]
    reason: Option<String>,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body is larger than the {limit} byte limit (MAX_BODY_BYTES); split it"),
    )
}

/// Publish job events to the ingestion queue.
#[utoipa::path(
    post, path = "/events", tag = "ingestion",
    request_body(
        description = "One event object, a JSON array of events, or NDJSON (one event per line).",
        content(
            (Vec<EventIn> = "application/json"),
            (String = "application/x-ndjson"),
        )
    ),
    responses(
        (status = 202, description = "Every event was confirmed by the broker", body = Accepted),
        (status = 400, description = "At least one invalid event (details list each); nothing was published", body = pool_core::http::ErrorBody),
        (status = 413, description = "Body larger than MAX_BODY_BYTES", body = pool_core::http::ErrorBody),
        (status = 415, description = "Not a JSON or NDJSON body", body = pool_core::http::ErrorBody),
        (status = 503, description = "RabbitMQ unavailable or did not confirm; nothing is reported as accepted, retry", body = pool_core::http::ErrorBody),
    )
)]
pub async fn post_events(
    intake: web::Data<Intake>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let result = receive(&intake, &req, &mut payload).await;
    match &result {
        Ok(_) => {}
        Err(e) if e.status == StatusCode::PAYLOAD_TOO_LARGE => {
            intake.refused.with_label_values(&["too_large"]).inc()
        }
        Err(e) => intake
            .refused
            .with_label_values(&[e.body.error.as_str()])
            .inc(),
    }
    result
}

async fn receive(
    intake: &Intake,
    req: &HttpRequest,
    payload: &mut web::Payload,
) -> Result<HttpResponse, ApiError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let essence = ct
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !ACCEPTED_TYPES.contains(&essence.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content type {essence:?} is not accepted; send application/json (an object or an \
                     array) or application/x-ndjson"
                ),
            ));
        }
    }
    let limit = intake.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }

    let events = pool_core::amqp::parse_events(&body).map_err(|invalid| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_events",
            format!("{invalid}; nothing was published"),
        )
        .with_details(serde_json::json!({
            "invalid_count": invalid.total,
            "invalid": invalid.listed,
        }))
    })?;

    match intake.publisher.publish_confirmed(&events).await {
        Ok(n) => {
            intake.accepted.inc_by(n as u64);
            Ok(HttpResponse::Accepted().json(Accepted { accepted: n }))
        }
        Err(e) => {
            tracing::warn!(error = %e, events = events.len(), "POST /events not confirmed");
            Err(ApiError::unavailable(
                e.code(),
                format!(
                    "{e}. None of the {} events is reported as accepted; retry later (resending is \
                     safe: each job_id is counted once).",
                    events.len()
                ),
            ))
        }
    }
}
