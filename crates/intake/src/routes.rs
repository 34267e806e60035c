//! `POST /events`: accept job events over HTTP and publish them to RabbitMQ, from where the
//! ingest-worker stores them; `GET /ready`; and the OpenAPI document.
//!
//! The body is one event object, a JSON array of them, or NDJSON (`application/x-ndjson`, one per
//! line). Every event is validated before anything is published: one invalid event rejects the whole
//! request with a 400 naming each bad line (NDJSON) or index (array) and why. `202 {"accepted": N}` is
//! sent only after the broker confirmed every message; when it did not (broker down, connection lost,
//! nack, confirm timeout) the answer is 503 and no event is reported as accepted. Some may have reached
//! the queue anyway, so a client simply retries: an event stored twice is counted once.
//!
//! The publisher connects lazily, so the intake starts and answers `/health` while RabbitMQ is down;
//! `/ready` is 200 only while the broker can be reached.
//!
//! Bounds, so that no cheap request causes expensive work: a bearer token from `INTAKE_TOKENS` is
//! required (401 otherwise; no tokens configured means no intake, 404; compared as SHA-256 digests in
//! constant time), a client address past `INTAKE_AUTH_FAILURES` failed attempts within
//! `INTAKE_AUTH_FAILURE_WINDOW` gets 429 whatever it sends until the window ends, each token has its own rate
//! (429 with `Retry-After` past it), at most `INTAKE_MAX_CONCURRENT` bodies are read at once (503 busy
//! past it), a body must arrive within `INTAKE_BODY_TIMEOUT` (408), and a JSON array is decoded one
//! element at a time. An event stamped more than `MAX_CLOCK_SKEW` ahead of this server's clock is
//! refused (400 naming `finished_at`).

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use futures::StreamExt;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Serialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use pool_amqp::Publisher;
use pool_core::event::Event;
use pool_http::{ApiError, ErrorBody};

use crate::metrics::IntakeMetrics;
use crate::settings::Settings;

/// Content types accepted (parameters such as `charset` are ignored). A missing one is accepted too.
const ACCEPTED_TYPES: &[&str] = &[
    "application/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "text/plain",
];

/// The accepted bearer tokens, kept only as SHA-256 digests: a presented token is hashed and compared
/// with every digest in constant time (fixed-length digests, no early exit), so neither the timing of
/// an answer nor its length reveals how much of a token was right.
pub struct Tokens(Vec<[u8; 32]>);

impl Tokens {
    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self(
            tokens
                .into_iter()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(digest)
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The position of `given` among the tokens, every one compared whatever matched before.
    pub fn position(&self, given: &str) -> Option<usize> {
        let given = digest(given);
        let mut found = None;
        for (i, t) in self.0.iter().enumerate() {
            if bool::from(t[..].ct_eq(&given[..])) {
                found = Some(i);
            }
        }
        found
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} digests)", self.0.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// Failed authentications per client address, in fixed windows: past `max` failures within `window`
/// of the first, every `POST /events` from that address is a 429 (with `Retry-After`) until the window
/// ends, a correct token included, so tokens cannot be guessed at the request rate. IPv6 clients are
/// counted per /64 (one host usually holds a whole /64). Bounded in memory: the least recently failed
/// addresses are forgotten first.
pub struct AuthFailures {
    max: u32,
    window: Duration,
    by_client: moka::sync::Cache<IpAddr, Arc<FailureWindow>>,
}

struct FailureWindow {
    started: Instant,
    count: std::sync::atomic::AtomicU32,
}

/// Addresses whose failures are remembered at once.
const AUTH_FAILURE_CLIENTS: u64 = 100_000;

impl AuthFailures {
    pub fn new(max: u32, window: Duration) -> Self {
        Self {
            max: max.max(1),
            window,
            by_client: moka::sync::Cache::builder()
                .max_capacity(AUTH_FAILURE_CLIENTS)
                .time_to_live(window)
                .build(),
        }
    }

    /// The client's key: its address, or its /64 for IPv6.
    pub fn client(addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(_) => addr,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
        }
    }

    /// How long `client` must wait when it is locked out, `None` when it may try.
    pub fn locked(&self, client: IpAddr) -> Option<Duration> {
        let w = self.by_client.get(&client)?;
        let elapsed = w.started.elapsed();
        (elapsed < self.window && w.count.load(Ordering::Relaxed) >= self.max)
            .then(|| self.window - elapsed)
    }

    /// Count one failed authentication of `client`.
    pub fn failed(&self, client: IpAddr) {
        let now = Instant::now();
        let w = self.by_client.get_with(client, || {
            Arc::new(FailureWindow {
                started: now,
                count: 0.into(),
            })
        });
        w.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The intake's state: the shared publisher, the bounds and the counters.
pub struct Intake {
    publisher: Publisher,
    max_body_bytes: usize,
    /// Accepted bearer tokens (digests); the rate limiter is keyed by position, so tokens never sit in
    /// its map.
    tokens: Tokens,
    auth_failures: AuthFailures,
    rate: DefaultKeyedRateLimiter<usize>,
    bodies: Arc<Semaphore>,
    body_timeout: Duration,
    max_clock_skew: Duration,
    metrics: IntakeMetrics,
}

impl Intake {
    /// The state `settings` describe, counting in `metrics`. Does not connect: the first request (or
    /// readiness probe) does.
    pub fn new(settings: &Settings, metrics: IntakeMetrics) -> Self {
        let args = &settings.intake;
        let period = Duration::from_secs_f64(1.0 / args.intake_rate_per_second.max(1e-6));
        let burst = NonZeroU32::new(args.intake_burst.max(1)).expect("positive");
        let quota = Quota::with_period(period)
            .expect("a positive period")
            .allow_burst(burst);
        Self {
            publisher: Publisher::new(&settings.amqp, "intake"),
            max_body_bytes: settings.max_body_bytes,
            tokens: Tokens::new(args.intake_tokens.iter().map(String::as_str)),
            auth_failures: AuthFailures::new(
                args.intake_auth_failures,
                args.intake_auth_failure_window,
            ),
            rate: RateLimiter::keyed(quota),
            bodies: Arc::new(Semaphore::new(args.intake_max_concurrent.max(1))),
            body_timeout: args.intake_body_timeout,
            max_clock_skew: settings.max_clock_skew,
            metrics,
        }
    }

    /// Whether the intake is on (some token is configured).
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The position of the request's bearer token among the accepted ones (compared in constant time),
    /// after the client's failed attempts are checked: a client past `INTAKE_AUTH_FAILURES` within
    /// `INTAKE_AUTH_FAILURE_WINDOW` gets a 429 whatever it sends, and each failure is counted.
    fn authenticate(&self, req: &HttpRequest) -> Result<usize, ApiError> {
        let client = req.peer_addr().map(|a| AuthFailures::client(a.ip()));
        if let Some(wait) = client.and_then(|c| self.auth_failures.locked(c)) {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_failed_attempts",
                "too many requests with a missing or wrong token from this address \
                 (INTAKE_AUTH_FAILURES within INTAKE_AUTH_FAILURE_WINDOW); retry later",
            )
            .retry_after(u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(1)));
        }
        let result = self.authorize(req);
        if result.is_err()
            && let Some(c) = client
        {
            self.auth_failures.failed(c);
        }
        result
    }

    /// The position of the request's bearer token among the accepted ones, compared in constant time.
    fn authorize(&self, req: &HttpRequest) -> Result<usize, ApiError> {
        let unauthorized = |message: &str| {
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message.to_owned())
        };
        let header = req.headers().get(AUTHORIZATION).ok_or_else(|| {
            unauthorized("POST /events needs an `Authorization: Bearer <token>` header")
        })?;
        let given = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| unauthorized("the Authorization header is not `Bearer <token>`"))?;
        self.tokens
            .position(given)
            .ok_or_else(|| unauthorized("the bearer token is not one of INTAKE_TOKENS"))
    }

    fn check_rate(&self, token: usize) -> Result<(), ApiError> {
        self.rate.check_key(&token).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "this token is over its request rate (INTAKE_RATE_PER_SECOND, INTAKE_BURST); retry later",
            )
            .retry_after(u32::try_from(wait.as_secs()).unwrap_or(u32::MAX).max(1))
        })
    }
}

/// The answer to an accepted request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Events confirmed by the broker (all of the request's).
    pub accepted: usize,
}

/// One job event, as sent (the seed's format). Only documents the body: decoding is
/// `pool_core::event::ndjson`'s.
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
        (status = 400, description = "At least one invalid event (details list each), e.g. stamped in the future; nothing was published", body = ErrorBody),
        (status = 401, description = "No bearer token, or not one of INTAKE_TOKENS", body = ErrorBody),
        (status = 404, description = "The intake is off (no INTAKE_TOKENS configured)", body = ErrorBody),
        (status = 408, description = "The body did not arrive within INTAKE_BODY_TIMEOUT", body = ErrorBody),
        (status = 413, description = "Body larger than MAX_BODY_BYTES", body = ErrorBody),
        (status = 415, description = "Not a JSON or NDJSON body", body = ErrorBody),
        (status = 429, description = "The token is over its rate, or this address sent too many requests with a missing or wrong token; see Retry-After", body = ErrorBody),
        (status = 503, description = "RabbitMQ unavailable or did not confirm, or too many bodies at once (busy, see Retry-After); nothing is reported as accepted, retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn post_events(
    intake: web::Data<Intake>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let result = receive(&intake, &req, &mut payload).await;
    if let Err(e) = &result {
        intake
            .metrics
            .refused
            .with_label_values(&[e.body.error.as_str()])
            .inc();
    }
    result
}

async fn receive(
    intake: &Intake,
    req: &HttpRequest,
    payload: &mut web::Payload,
) -> Result<HttpResponse, ApiError> {
    if !intake.enabled() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "intake_disabled",
            "POST /events is off on this server (no INTAKE_TOKENS configured)",
        ));
    }
    let token = intake.authenticate(req)?;
    intake.check_rate(token)?;
    let _body_slot = Arc::clone(&intake.bodies).try_acquire_owned().map_err(|_| {
        ApiError::busy(
            "too many request bodies are being received at once (INTAKE_MAX_CONCURRENT); retry shortly",
            1,
        )
    })?;
    check_content_type(req)?;
    let body = read_body(intake, req, payload).await?;
    let events = decode_events(intake, body).await?;
    publish(intake, &events).await
}

/// A body that declares a content type must declare JSON or NDJSON (415 otherwise); one that
/// declares none is decoded as either.
fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
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
    Ok(())
}

/// The whole body, bounded: refused (413) as soon as it is declared or read past `MAX_BODY_BYTES`,
/// and (408) when it does not arrive within `INTAKE_BODY_TIMEOUT`, so a slow or huge body cannot
/// hold a body slot or memory.
async fn read_body(
    intake: &Intake,
    req: &HttpRequest,
    payload: &mut web::Payload,
) -> Result<web::BytesMut, ApiError> {
    let limit = intake.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let read = async {
        let mut body = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(too_large(limit));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(intake.body_timeout, read)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {:?} (INTAKE_BODY_TIMEOUT)",
                    intake.body_timeout
                ),
            )
        })?
}

/// The body's events, every one valid and none stamped past now plus `max_clock_skew`; else 400
/// listing the invalid ones (nothing is published). Decoding a large body is CPU work: off the HTTP
/// worker, so other requests on it are not stalled.
async fn decode_events(intake: &Intake, body: web::BytesMut) -> Result<Vec<Event>, ApiError> {
    let horizon = Utc::now()
        + chrono::Duration::from_std(intake.max_clock_skew).unwrap_or(chrono::Duration::MAX);
    let body = body.freeze();
    let parsed = web::block(move || pool_core::event::ndjson::parse_events_before(&body, horizon))
        .await
        .map_err(|e| ApiError::internal(format!("the body decoder failed: {e}")))?;
    parsed.map_err(|invalid| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_events",
            format!("{invalid}; nothing was published"),
        )
        .with_details(serde_json::json!({
            "invalid_count": invalid.total,
            "invalid": invalid.listed,
        }))
    })
}

/// Publish the events and wait for the broker's confirms: 202 with their count, or 503 (nothing is
/// reported as accepted; resending is safe).
async fn publish(intake: &Intake, events: &[Event]) -> Result<HttpResponse, ApiError> {
    match intake.publisher.publish_confirmed(events).await {
        Ok(n) => {
            intake.metrics.accepted.inc_by(n as u64);
            Ok(HttpResponse::Accepted().json(Accepted { accepted: n }))
        }
        Err(e) => {
            // The broker's own error text stays in the log: clients learn what to do, not its internals.
            tracing::warn!(error = %e, events = events.len(), "POST /events not confirmed");
            Err(ApiError::unavailable(
                e.code(),
                format!(
                    "the event queue did not confirm the events ({}). None of the {} events is reported \
                     as accepted; retry later (resending is safe: a redelivered event is counted once).",
                    e.code(),
                    events.len()
                ),
            )
            .retry_after(1))
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
}

/// Readiness: RabbitMQ can be reached (a connection is up, or one could be opened within
/// AMQP_CONNECT_TIMEOUT), so `POST /events` can publish.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "RabbitMQ is reachable", body = Readiness),
        (status = 503, description = "RabbitMQ is unreachable", body = ErrorBody),
    )
)]
pub async fn ready(intake: web::Data<Intake>) -> Result<HttpResponse, ApiError> {
    match intake.publisher.ensure_connected().await {
        Ok(()) => Ok(HttpResponse::Ok().json(Readiness { status: "ready" })),
        Err(e) => {
            // Where the broker is and what it said stay in the log.
            tracing::warn!(error = %e, "readiness: RabbitMQ unreachable");
            Err(ApiError::unavailable(
                "broker_unavailable",
                "the event queue (RabbitMQ) is unreachable",
            ))
        }
    }
}

/// Prometheus text exposition (the `intake_*` metrics, see `metrics`).
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics_doc() {}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "intake", description = "Accepts job events over HTTP and publishes them to RabbitMQ with publisher confirms."),
    paths(post_events, ready, metrics_doc, pool_http::health),
    components(schemas(Accepted, EventIn, Readiness, ErrorBody, pool_http::Health)),
    tags((name = "ingestion"), (name = "operations")),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme `POST /events` requires (tokens from `INTAKE_TOKENS`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_kept_as_digests_and_found_whatever_their_length() {
        let tokens = Tokens::new(["short", " a-much-longer-token ", ""]);
        assert_eq!(format!("{tokens:?}"), "Tokens(2 digests)");
        assert_eq!(tokens.position("short"), Some(0));
        assert_eq!(tokens.position("a-much-longer-token"), Some(1));
        for wrong in ["", "shor", "shortx", "a-much-longer-toke", "SHORT"] {
            assert_eq!(tokens.position(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn failures_lock_a_client_out_for_the_rest_of_its_window() {
        let f = AuthFailures::new(3, Duration::from_secs(3600));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(f.locked(a), None);
            f.failed(a);
        }
        let wait = f.locked(a).expect("locked after 3 failures");
        assert!(wait > Duration::from_secs(3000) && wait <= Duration::from_secs(3600));
        assert_eq!(f.locked(b), None, "another client is not affected");
        // IPv6: one /64 is one client; a v4-mapped address is its v4 address.
        let v6 = |s: &str| AuthFailures::client(s.parse().unwrap());
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:192.0.2.1"), a);
    }
}
