//! `pool-http`: HTTP plumbing shared by the actix-web services: the JSON error body, request metrics middleware,
//! `/health`, `/metrics`, and extractor configs that answer bad input with a 4xx JSON instead of text.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError, web};
use prometheus::Registry;

use pool_core::event::EventError;
use pool_core::request::QueryError;

pub mod metrics;
pub mod serve;

use crate::metrics::HttpMetrics;

pub use pool_core::view::ErrorBody;

/// An error that renders as [`ErrorBody`] with a status code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{status}: {}", body.message)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds for a `Retry-After` header (busy, rate-limited).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                field: None,
                details: None,
            },
            retry_after: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn bad_parameter(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "bad_parameter", message);
        e.body.field = Some(field.to_owned());
        e
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    /// `503 {"error":"busy"}`: the service is at its bound; try again after `retry_after` seconds.
    pub fn busy(message: impl Into<String>, retry_after: u32) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message).retry_after(retry_after)
    }
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }
}

impl From<EventError> for ApiError {
    fn from(e: EventError) -> Self {
        ApiError::bad_parameter(e.field, e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Parameter(e) => e.into(),
            QueryError::Malformed(message) => ApiError::bad_request(message),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        if let Some(secs) = self.retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, secs));
        }
        res.json(&self.body)
    }
}

/// Query-string extractor config: a malformed query string is a 400 JSON naming the problem.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err, _req| {
        ApiError::bad_request(format!("malformed query string: {err}")).into()
    })
}

/// JSON body extractor config with a size limit: too large is a 413 JSON, malformed a 400 JSON.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| {
            use actix_web::error::JsonPayloadError;
            match err {
                JsonPayloadError::OverflowKnownLength { .. }
                | JsonPayloadError::Overflow { .. } => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body is larger than the {limit} byte limit"),
                )
                .into(),
                other => ApiError::bad_request(format!("malformed JSON body: {other}")).into(),
            }
        })
}

/// Route label of a request no route matched (the default service: a 404).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Middleware recording every request in [`HttpMetrics`] (found in the app data). Every label value
/// comes from a closed set, whatever clients send: the route is the matched *pattern* (never the path;
/// [`UNMATCHED_ROUTE`] when none matched), the method one of the standard ones or `other`
/// ([`metrics::method_label`]), the status one the service itself answered.
pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let method = metrics::method_label(req.method());
    let started = Instant::now();
    let res = next.call(req).await;
    if let Some(m) = metrics {
        let status = match &res {
            Ok(r) => r.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        m.requests
            .with_label_values(&[route.as_str(), method, status.as_str()])
            .inc();
        m.latency
            .with_label_values(&[route.as_str(), method])
            .observe(started.elapsed().as_secs_f64());
    }
    res
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` while the process serves requests.
    pub status: &'static str,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, body = Health)))]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Prometheus text exposition of the service's registry (found in the app data).
pub async fn metrics(registry: web::Data<Registry>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::encode(&registry))
}

/// JSON 404 for paths the service does not have.
pub async fn not_found(req: actix_web::HttpRequest) -> HttpResponse {
    ApiError::not_found(format!("no route {} {}", req.method(), req.path())).error_response()
}

/// The operations routes every HTTP service answers alike: `/health`, `/metrics`, with an API document
/// `/docs` (Swagger UI, `/docs` redirecting to `/docs/`) and `/openapi.json`, and a 404 JSON for
/// anything else. Register it last (`App::configure`): routes registered before it take precedence.
/// Needs the service's `Registry` and `HttpMetrics` in the app data.
pub fn operations(
    openapi: Option<utoipa::openapi::OpenApi>,
) -> impl Fn(&mut web::ServiceConfig) + Clone {
    move |cfg| {
        cfg.route("/health", web::get().to(health))
            .route("/metrics", web::get().to(metrics));
        if let Some(doc) = &openapi {
            cfg.service(web::redirect("/docs", "/docs/").permanent())
                .service(
                    utoipa_swagger_ui::SwaggerUi::new("/docs/{_:.*}")
                        .url("/openapi.json", doc.clone()),
                );
        }
        cfg.default_service(web::to(not_found));
    }
}
