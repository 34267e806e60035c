//! HTTP handlers: the relayed routes, the ranking page, readiness, the request id, and the OpenAPI
//! document.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use pool_http::{ApiError, ErrorBody, Health};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::entry::CacheStatus;
use crate::key::{CacheKey, KeyError};
use crate::limit::Admission;
use crate::page;
use crate::relay::Relay;
use crate::upstream::REQUEST_ID;
use pool_core::clock::{Clock, SystemClock};

/// The `X-Cache` response header: `HIT`, `MISS`, `STALE` or `BYPASS` (see [`crate::entry::CacheStatus`]).
pub const X_CACHE: &str = "x-cache";

/// Longest request id accepted from a client; a longer or non-printable one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// The id of the request being served: the client's `X-Request-Id`, or a new one.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Middleware giving every request an id (the client's `X-Request-Id` when it sent a sane one), passed
/// to the upstream and returned in the response, so one id follows a request through both services.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN)
        .and_then(|v| v.to_str().ok())
        .filter(|s| s.bytes().all(|b| b.is_ascii_graphic()))
        .map(Arc::<str>::from);
    let id = given.unwrap_or_else(new_request_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut res = next.call(req).await?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), v);
    }
    Ok(res)
}

/// A UUIDv7 (time-ordered, so ids sort by arrival in logs, hence the system's clock rather than the
/// relay's cache clock). The random part comes from the thread's generator, seeded once, rather than a
/// `getrandom` call per request: this runs on every cache hit.
fn new_request_id() -> Arc<str> {
    let uuid = uuid::Builder::from_unix_timestamp_millis(SystemClock.now_ms(), &rand::random())
        .into_uuid();
    Arc::from(
        uuid.hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
    )
}

/// Serve one relayed route (registered once per entry of [`crate::key::RELAYED_ROUTES`]).
pub async fn relay(route: &'static str, req: HttpRequest, relay: web::Data<Relay>) -> HttpResponse {
    let key = match CacheKey::new(route, req.query_string()) {
        Ok(k) => k,
        Err(KeyError::Invalid(e)) => return e.error_response(),
        Err(e @ KeyError::QueryTooLong(_)) => {
            return ApiError::new(StatusCode::URI_TOO_LONG, "query_too_long", e.to_string())
                .error_response();
        }
    };
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(new_request_id);
    let admission = relay.admission(&req);
    let relay = relay.into_inner();
    match relay.serve(&key, &request_id, &admission).await {
        Ok(answer) => {
            let entry = &answer.entry;
            let status = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let mut res = HttpResponse::build(status);
            if let Ok(ct) = HeaderValue::from_str(&entry.content_type) {
                res.insert_header((header::CONTENT_TYPE, ct));
            }
            res.insert_header((X_CACHE, answer.status.as_str()))
                .insert_header((header::AGE, entry.age_secs(relay.now_ms())))
                .body(entry.body.clone())
        }
        Err(failure) => {
            let mut res = ApiError::from(&failure.error).error_response();
            if let Ok(v) = HeaderValue::from_str(failure.status.as_str()) {
                res.headers_mut()
                    .insert(HeaderName::from_static(X_CACHE), v);
            }
            res
        }
    }
}

/// What the ranking page may load: its own inline styles and data-URI images, nothing else (it has no
/// script), and its form may only submit to the relay itself.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                        form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The ranking page at `/`: the form's query is the ranking query of `/pools`, checked by the same
/// grammar (a refused one is the page with the error and a 400, never a 500), and the ranking and
/// the backtest chart are fetched through the cache exactly like API requests.
pub async fn ranking_page(req: HttpRequest, relay: web::Data<Relay>) -> HttpResponse {
    let query = req.query_string();
    let form = page::Form::from_query(query);
    let request_id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(new_request_id);
    // One view of the page is charged once to its client's limit, though it fetches the ranking and
    // the backtest chart.
    let admission = relay.admission(&req);
    let relay = relay.into_inner();
    let (status, body, cache) = page_body(&relay, query, &request_id, &admission).await;
    let mut res = HttpResponse::build(status);
    res.insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    if let Some(cache) = cache {
        res.insert_header((X_CACHE, cache.as_str()));
    }
    if let Some(wait) = admission.refused() {
        res.insert_header((
            header::RETRY_AFTER,
            wait.as_secs_f64().ceil().max(1.0) as u64,
        ));
    }
    res.body(page::render(&form, &body))
}

/// The error part of a page answered with `status`.
fn page_error(status: StatusCode, message: String, field: Option<String>) -> page::Body {
    page::Body::Error {
        status: status.as_u16(),
        message,
        field,
    }
}

/// The page's status, what it shows, and how its ranking was obtained (`X-Cache`).
async fn page_body(
    relay: &std::sync::Arc<Relay>,
    query: &str,
    request_id: &str,
    admission: &Admission,
) -> (StatusCode, page::Body, Option<CacheStatus>) {
    let (key, chart_key) = match page_keys(query) {
        Ok(keys) => keys,
        Err(e) => return (e.status, e.into_body(), None),
    };
    let chart = async {
        match &chart_key {
            Some(k) => Some(relay.serve(k, request_id, admission).await),
            None => None,
        }
    };
    let (pools, chart) = futures::join!(relay.serve(&key, request_id, admission), chart);
    let answer = match pools {
        Ok(answer) => answer,
        Err(failure) => {
            let e = ApiError::from(&failure.error);
            return (
                e.status,
                page_error(e.status, e.body.message, None),
                Some(failure.status),
            );
        }
    };
    let cache = Some(answer.status);
    match read_ranking(&answer.entry) {
        Ok(ranking) => (
            StatusCode::OK,
            page::Body::Ranking {
                ranking,
                query: key.query().to_owned(),
                chart_svg: chart.and_then(|c| chart_svg(c.ok()?)),
            },
            cache,
        ),
        Err(e) => (e.status, e.into_body(), cache),
    }
}

/// Why a page shows an error instead of a ranking: its status and the error's text.
struct PageError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>, field: Option<String>) -> Self {
        Self {
            status,
            message: message.into(),
            field,
        }
    }
    fn into_body(self) -> page::Body {
        page_error(self.status, self.message, self.field)
    }
}

/// The cache keys of the page's two fetches: the ranking (`/pools` with the form's query, checked by
/// the relay's grammar) and the chart, which replays the same candidates (the query's instance types and
/// zones). A refused query is the page's error.
fn page_keys(query: &str) -> Result<(CacheKey, Option<CacheKey>), PageError> {
    let key = match CacheKey::new("/pools", query) {
        Ok(k) => k,
        Err(KeyError::Invalid(e)) => {
            return Err(PageError::new(e.status, e.body.message, e.body.field));
        }
        Err(e @ KeyError::QueryTooLong(_)) => {
            return Err(PageError::new(
                StatusCode::URI_TOO_LONG,
                e.to_string(),
                None,
            ));
        }
    };
    let chart_key = pool_core::request::RankingRequest::from_query(query)
        .ok()
        .and_then(|r| {
            let chart = pool_core::request::BacktestRequest::candidates_of(&r);
            CacheKey::new("/backtest.svg", &chart.canonical()).ok()
        });
    Ok((key, chart_key))
}

/// The ranking in pool-selector's `/pools` answer, or the page's error: pool-selector's own (400, 404,
/// 503, 504 keep their status and message), an answer that cannot be read, or no pool at all. Any other
/// upstream failure is a 502 here, so the page never answers a 500.
fn read_ranking(entry: &crate::entry::Entry) -> Result<page::Ranking, PageError> {
    let unusable = |status: StatusCode| {
        PageError::new(
            status,
            "the ranking service's answer could not be used",
            None,
        )
    };
    if entry.status != 200 {
        let status = match entry.status {
            s @ (400 | 404 | 503 | 504) => {
                StatusCode::from_u16(s).unwrap_or(StatusCode::BAD_GATEWAY)
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        return Err(match pool_core::view::ErrorBody::parse(&entry.body) {
            Some(b) => PageError::new(status, b.text().to_owned(), b.field),
            None => unusable(status),
        });
    }
    let ranking: page::Ranking = serde_json::from_slice(&entry.body).map_err(|e| {
        tracing::warn!(error = %e, "the ranking page could not read pool-selector's /pools answer");
        unusable(StatusCode::BAD_GATEWAY)
    })?;
    if ranking.pools.is_empty() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "no pools match these filters",
            None,
        ));
    }
    Ok(ranking)
}

/// The backtest chart's SVG, when the upstream drew one.
fn chart_svg(answer: crate::relay::Answer) -> Option<String> {
    let entry = &answer.entry;
    (entry.status == 200 && entry.content_type.starts_with("image/svg+xml"))
        .then(|| String::from_utf8(entry.body.to_vec()).ok())
        .flatten()
}

/// JSON 405 for another method on a relayed route (the relay only relays reads).
pub async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} {} is not relayed; only GET is",
            req.method(),
            req.path()
        ),
    )
    .error_response();
    res.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET"));
    res
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` when Redis and the upstream answer, `degraded` otherwise. The relay still serves while
    /// degraded (cached entries, BYPASS), so readiness never fails on either.
    pub status: &'static str,
    /// `up` or `down` (requests bypass the cache while it is down).
    pub redis: &'static str,
    /// `up` or `down` (pool-selector's `/health`).
    pub upstream: &'static str,
}

/// Readiness: always 200 while the process serves, reporting what is degraded.
#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, body = Readiness)))]
pub async fn ready(relay: web::Data<Relay>) -> HttpResponse {
    let (redis, upstream) = futures::join!(relay.store().ping(), relay.upstream().healthy());
    let word = |up: bool| if up { "up" } else { "down" };
    HttpResponse::Ok().json(Readiness {
        status: if redis && upstream {
            "ready"
        } else {
            "degraded"
        },
        redis: word(redis),
        upstream: word(upstream),
    })
}

/// The best pool for a job, relayed from pool-selector through the cache.
#[utoipa::path(
    get,
    path = "/get-pool",
    tag = "relayed",
    params(pool_core::request::RankingParams),
    responses(
        (status = 200, description = "pool-selector's answer: `{\"pool_id\": …, …}`. An unseeded `strategy=thompson` request is one random draw per caller: never cached nor shared, always BYPASS.", content_type = "application/json",
            headers(("x-cache" = String, description = "HIT, MISS, STALE or BYPASS (Redis unavailable, or an unseeded thompson draw)"), ("age" = u64, description = "Seconds since pool-selector answered"), ("x-request-id" = String))),
        (status = 400, description = "A malformed, unknown or repeated parameter (refused by the relay with pool-selector's own rules)", body = ErrorBody),
        (status = 404, description = "No matching data (cached for NEGATIVE_TTL_SECONDS)", body = ErrorBody),
        (status = 414, description = "Query string longer than the relay accepts", body = ErrorBody),
        (status = 429, description = "This client's cache misses are over its limit (MISS_RATE_PER_CLIENT, MISS_BURST_PER_CLIENT); see Retry-After. Cached answers are never limited", body = ErrorBody),
        (status = 502, description = "pool-selector unreachable, or its answer unusable", body = ErrorBody),
        (status = 503, description = "pool-selector is busy (every scan slot taken) or its storage is unavailable; see Retry-After", body = ErrorBody),
        (status = 504, description = "pool-selector did not answer in time", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn get_pool_doc() {}

/// The whole ranking with per-pool statistics, relayed from pool-selector through the cache.
#[utoipa::path(
    get,
    path = "/pools",
    tag = "relayed",
    params(pool_core::request::RankingParams),
    responses(
        (status = 200, description = "pool-selector's ranking. An unseeded `strategy=thompson` request is one random draw per caller: never cached nor shared, always BYPASS.", content_type = "application/json",
            headers(("x-cache" = String, description = "HIT, MISS, STALE or BYPASS (Redis unavailable, or an unseeded thompson draw)"), ("age" = u64), ("x-request-id" = String))),
        (status = 400, description = "A malformed, unknown or repeated parameter", body = ErrorBody),
        (status = 404, description = "No matching data", body = ErrorBody),
        (status = 414, description = "Query string longer than the relay accepts", body = ErrorBody),
        (status = 429, description = "This client's cache misses are over its limit (MISS_RATE_PER_CLIENT, MISS_BURST_PER_CLIENT); see Retry-After. Cached answers are never limited", body = ErrorBody),
        (status = 502, description = "pool-selector unreachable, or its answer unusable", body = ErrorBody),
        (status = 503, description = "pool-selector is busy or its storage is unavailable; see Retry-After", body = ErrorBody),
        (status = 504, description = "pool-selector did not answer in time", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn pools_doc() {}

/// A replay of the ranking strategies over past hours (regret against the best pool in hindsight),
/// relayed from pool-selector through the cache. Keyed by the canonical form of its own parameters
/// (`window=14d` and `window=336h` are one entry; the order of `strategies` is kept).
#[utoipa::path(
    get,
    path = "/backtest",
    tag = "relayed",
    params(pool_core::request::BacktestParams),
    responses(
        (status = 200, description = "pool-selector's backtest", content_type = "application/json",
            headers(("x-cache" = String, description = "HIT, MISS, STALE or BYPASS"), ("age" = u64, description = "Seconds since pool-selector answered"), ("x-request-id" = String))),
        (status = 400, description = "A malformed, unknown or repeated parameter (refused by the relay with pool-selector's own rules)", body = ErrorBody),
        (status = 404, description = "No matching data (cached for NEGATIVE_TTL_SECONDS)", body = ErrorBody),
        (status = 414, description = "Query string longer than the relay accepts", body = ErrorBody),
        (status = 429, description = "This client's cache misses are over its limit (MISS_RATE_PER_CLIENT, MISS_BURST_PER_CLIENT); see Retry-After. Cached answers are never limited", body = ErrorBody),
        (status = 502, description = "pool-selector unreachable, or its answer unusable", body = ErrorBody),
        (status = 503, description = "pool-selector is busy or its storage is unavailable; see Retry-After", body = ErrorBody),
        (status = 504, description = "pool-selector did not answer in time", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn backtest_doc() {}

/// The same backtest drawn as an SVG chart, relayed from pool-selector through the cache with its
/// content type (`image/svg+xml`).
#[utoipa::path(
    get,
    path = "/backtest.svg",
    tag = "relayed",
    params(pool_core::request::BacktestParams),
    responses(
        (status = 200, description = "pool-selector's chart", content_type = "image/svg+xml", body = String,
            headers(("x-cache" = String, description = "HIT, MISS, STALE or BYPASS"), ("age" = u64, description = "Seconds since pool-selector answered"), ("x-request-id" = String))),
        (status = 400, description = "A malformed, unknown or repeated parameter (refused by the relay with pool-selector's own rules)", body = ErrorBody),
        (status = 404, description = "No matching data (cached for NEGATIVE_TTL_SECONDS)", body = ErrorBody),
        (status = 414, description = "Query string longer than the relay accepts", body = ErrorBody),
        (status = 429, description = "This client's cache misses are over its limit (MISS_RATE_PER_CLIENT, MISS_BURST_PER_CLIENT); see Retry-After. Cached answers are never limited", body = ErrorBody),
        (status = 502, description = "pool-selector unreachable, or its answer unusable", body = ErrorBody),
        (status = 503, description = "pool-selector is busy or its storage is unavailable; see Retry-After", body = ErrorBody),
        (status = 504, description = "pool-selector did not answer in time", body = ErrorBody),
    )
)]
#[allow(dead_code)]
fn backtest_svg_doc() {}

/// The ranking page: an HTML form (instance types, zones, window, strategy) and the pools it
/// selects, best first, each with its termination rate and interval drawn as a bar, the pick
/// highlighted, and the backtest chart when pool-selector has one. Takes the parameters of `/pools`;
/// fetched through the same cache. No script and no external asset.
#[utoipa::path(
    get,
    path = "/",
    tag = "page",
    params(pool_core::request::RankingParams),
    responses(
        (status = 200, description = "The page", content_type = "text/html", body = String,
            headers(("x-cache" = String, description = "How the ranking was obtained: HIT, MISS, STALE or BYPASS"), ("x-request-id" = String))),
        (status = 400, description = "A malformed, unknown or repeated parameter: the page, showing the error", content_type = "text/html", body = String),
        (status = 404, description = "No matching data: the page, saying so", content_type = "text/html", body = String),
        (status = 414, description = "Query string longer than the relay accepts: the page, saying so", content_type = "text/html", body = String),
        (status = 429, description = "This client's cache misses are over its limit (one view counts once): the page, saying so, with Retry-After", content_type = "text/html", body = String),
        (status = 502, description = "pool-selector unreachable, or its answer unusable: the page, saying so", content_type = "text/html", body = String),
        (status = 503, description = "pool-selector is busy or its storage is unavailable: the page, saying so", content_type = "text/html", body = String),
        (status = 504, description = "pool-selector did not answer in time: the page, saying so", content_type = "text/html", body = String),
    )
)]
#[allow(dead_code)]
fn ranking_page_doc() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "relay",
        description = "The front door to pool-selector: relays an allowlist of its read routes through a \
                       Redis cache (X-Cache: HIT, MISS, STALE, BYPASS). Any other path is a 404 from the relay. \
                       `/metrics`, `/docs` and this document are served on the operations port (ADMIN_PORT) only."
    ),
    paths(
        ranking_page_doc,
        get_pool_doc,
        pools_doc,
        backtest_doc,
        backtest_svg_doc,
        pool_http::health,
        ready
    ),
    components(schemas(ErrorBody, Health, Readiness)),
    tags((name = "relayed", description = "Read routes of pool-selector, cached"),
         (name = "page", description = "The ranking page for people, over the same cache"),
         (name = "operations"))
)]
pub struct ApiDoc;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::RELAYED_ROUTES;

    #[test]
    fn every_relayed_route_is_documented() {
        let doc = ApiDoc::openapi();
        for route in RELAYED_ROUTES {
            assert!(
                doc.paths.paths.contains_key(*route),
                "{route} missing from the OpenAPI document"
            );
        }
        assert!(doc.paths.paths.contains_key("/ready"));
        let page = &serde_json::to_value(&doc).unwrap()["paths"]["/"]["get"]["responses"];
        for status in ["200", "400", "404"] {
            assert!(
                page[status]["content"].get("text/html").is_some(),
                "{status}: {page}"
            );
        }
        let json = serde_json::to_value(&doc).expect("the document serialises");
        let chart = &json["paths"]["/backtest.svg"]["get"]["responses"]["200"]["content"];
        assert!(chart.get("image/svg+xml").is_some(), "{chart}");
    }
}
