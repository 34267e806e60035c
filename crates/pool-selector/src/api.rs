//! HTTP handlers: `/get-pool` (the seed's contract), `/pools`, `/ready`, and the OpenAPI document.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use pool_core::event::{AvailabilityZone, InstanceType, format_timestamp};
use pool_core::http::ApiError;
use pool_core::window::{Window, parse_duration};

use crate::ranking::{RankedPool, Scoring, Strategy, compare, score};
use crate::runtime::QueryRuntime;
use pool_history::{EventSource, Query, QueryError, ScanReport};

/// Most values accepted in one list parameter: more is a mistake, and keeps filters small.
pub const MAX_LIST_VALUES: usize = 200;

/// Request-independent defaults, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub window: Window,
    pub strategy: Strategy,
    pub half_life: Option<Duration>,
    pub confidence: f64,
}

/// Shared state of the handlers.
pub struct AppState {
    pub source: Arc<EventSource>,
    pub runtime: QueryRuntime,
    pub defaults: Defaults,
}

/// Query parameters of `/get-pool` and `/pools`. All optional; unknown names are refused so a typo
/// (`instance_type=`) does not silently rank every pool.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RankingParams {
    /// Comma-separated instance types, `family.size` (e.g. `c6a.xlarge,m6a.xlarge`). Default: all.
    pub instance_types: Option<String>,
    /// Comma-separated availability zones (e.g. `us-east-1a,us-east-1b`). Default: all.
    pub availability_zones: Option<String>,
    /// Look-back window: seconds, or `30m`, `24h`, `7d`; `0` = all history. Default: EVENT_FILTER_WINDOW.
    pub window: Option<String>,
    /// `wilson` (default), `bayes`, or `naive` (the seed's raw rate).
    pub strategy: Option<String>,
    /// Recency weighting: a job this old (e.g. `12h`) counts half. Default: none.
    pub half_life: Option<String>,
    /// Confidence level of the interval, 0.5–0.9999. Default 0.95.
    pub confidence: Option<String>,
    /// Ignore pools with fewer jobs than this in the window. Default 1.
    pub min_jobs: Option<String>,
    /// `/pools` only: return at most this many pools (1–10000). Default: all.
    pub limit: Option<String>,
}

/// A parsed ranking request.
#[derive(Debug, Clone)]
pub struct Ranking {
    pub query: Query,
    pub scoring: Scoring,
    pub min_jobs: u64,
    pub limit: Option<usize>,
}

fn list<T: std::str::FromStr<Err = pool_core::event::EventError>>(
    field: &'static str,
    raw: &Option<String>,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else { return Ok(vec![]) };
    let mut values: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    values.sort();
    values.dedup();
    if values.len() > MAX_LIST_VALUES {
        return Err(ApiError::bad_parameter(
            field,
            format!(
                "{field}: at most {MAX_LIST_VALUES} values, got {}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ApiError::bad_parameter(field, format!("{field}: {}", e.message)))
        })
        .collect()
}

fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display>(
    field: &'static str,
    raw: &Option<String>,
    min: T,
    max: T,
) -> Result<Option<T>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(Some(v)),
        _ => Err(ApiError::bad_parameter(
            field,
            format!("{field}: {raw:?} is not a number between {min} and {max}"),
        )),
    }
}

impl RankingParams {
    pub fn parse(&self, d: &Defaults, now: DateTime<Utc>) -> Result<Ranking, ApiError> {
        let window = match &self.window {
            Some(w) => Window::parse("window", w)?,
            None => d.window,
        };
        let strategy = match &self.strategy {
            Some(s) => s.parse::<Strategy>()?,
            None => d.strategy,
        };
        let half_life = match &self.half_life {
            Some(h) => match parse_duration(h) {
                Ok(d) if d.is_zero() => None,
                Ok(d) if d <= pool_core::window::MAX_WINDOW => Some(d),
                _ => {
                    return Err(ApiError::bad_parameter(
                        "half_life",
                        format!("half_life: {h:?} is not a duration such as 12h or 3600 (0 = off)"),
                    ));
                }
            },
            None => d.half_life,
        };
        let confidence =
            number("confidence", &self.confidence, 0.5, 0.9999)?.unwrap_or(d.confidence);
        let min_jobs = number("min_jobs", &self.min_jobs, 0u64, 1_000_000_000)?.unwrap_or(1);
        let limit = number("limit", &self.limit, 1usize, 10_000)?;
        Ok(Ranking {
            query: Query {
                instance_types: list::<InstanceType>("instance_types", &self.instance_types)?,
                zones: list::<AvailabilityZone>("availability_zones", &self.availability_zones)?,
                window,
                half_life,
                now,
            },
            scoring: Scoring {
                strategy,
                confidence,
            },
            min_jobs,
            limit,
        })
    }
}

/// A failed read of the history, as the HTTP error a client sees.
fn api_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Storage { .. } => ApiError::unavailable("storage_unavailable", e.to_string()),
        QueryError::Engine(_) => ApiError::internal(e.to_string()),
    }
}

/// Run the scan on the query runtime and rank the pools.
pub async fn rank(
    state: &AppState,
    r: &Ranking,
) -> Result<(Vec<RankedPool>, ScanReport), ApiError> {
    let source = Arc::clone(&state.source);
    let query = r.query.clone();
    let tallies = state
        .runtime
        .spawn(async move { source.tally(&query).await })
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
        .map_err(api_error)?;
    let mut pools: Vec<RankedPool> = tallies
        .pools
        .iter()
        .filter(|(_, t)| t.jobs >= r.min_jobs.max(1))
        .map(|(pool, t)| {
            let (ci_low, ci_high, score) = score(t, &r.scoring);
            RankedPool {
                pool_id: pool.as_str().to_owned(),
                instance_type: pool.instance_type().to_string(),
                availability_zone: pool.availability_zone().to_string(),
                jobs: t.jobs,
                spot_terminations: t.spot_terminations,
                other_failures: t.other_failures,
                termination_rate: t.rate(),
                ci_low,
                ci_high,
                effective_jobs: t.effective_jobs(),
                score,
                last_event_at: DateTime::from_timestamp_micros(t.last_event_micros)
                    .map(|t| format_timestamp(&t))
                    .unwrap_or_default(),
            }
        })
        .collect();
    pools.sort_by(compare);
    Ok((pools, tallies.report))
}

fn no_data(r: &Ranking) -> ApiError {
    let mut what = vec![];
    if !r.query.instance_types.is_empty() {
        let v: Vec<_> = r.query.instance_types.iter().map(|t| t.as_str()).collect();
        what.push(format!("instance_types={}", v.join(",")));
    }
    if !r.query.zones.is_empty() {
        let v: Vec<_> = r.query.zones.iter().map(|z| z.as_str()).collect();
        what.push(format!("availability_zones={}", v.join(",")));
    }
    if r.min_jobs > 1 {
        what.push(format!("min_jobs={}", r.min_jobs));
    }
    let window = match r.query.window.duration() {
        Some(d) => format!("in the last {} seconds", d.as_secs()),
        None => "in the whole history".to_owned(),
    };
    let filters = if what.is_empty() {
        String::new()
    } else {
        format!(" matching {}", what.join(" "))
    };
    ApiError::not_found(format!("no job events{filters} {window}"))
}

/// The best pool (seed-compatible `pool_id`, plus the evidence behind it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolChoice {
    #[serde(flatten)]
    pub pool: RankedPool,
    pub strategy: Strategy,
    /// Look-back window used, seconds (0 = all history).
    pub window_seconds: u64,
    pub confidence: f64,
    /// Pools that were considered.
    pub candidates: usize,
}

/// The whole ranking.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolsResponse {
    pub strategy: Strategy,
    pub window_seconds: u64,
    pub half_life_seconds: Option<u64>,
    pub confidence: f64,
    pub generated_at: String,
    /// Pools ranked in total (before `limit`).
    pub total_pools: usize,
    pub pools: Vec<RankedPool>,
    pub scan: ScanReport,
}

/// The pool least likely to lose a job to a spot termination.
#[utoipa::path(
    get, path = "/get-pool", tag = "ranking", params(RankingParams),
    responses(
        (status = 200, description = "The best pool", body = PoolChoice),
        (status = 400, description = "A malformed parameter", body = pool_core::http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_core::http::ErrorBody),
        (status = 503, description = "Event storage unreachable", body = pool_core::http::ErrorBody),
    )
)]
pub async fn get_pool(
    state: web::Data<AppState>,
    params: web::Query<RankingParams>,
) -> Result<HttpResponse, ApiError> {
    let r = params.parse(&state.defaults, Utc::now())?;
    let (pools, _) = rank(&state, &r).await?;
    let candidates = pools.len();
    let best = pools.into_iter().next().ok_or_else(|| no_data(&r))?;
    Ok(HttpResponse::Ok().json(PoolChoice {
        pool: best,
        strategy: r.scoring.strategy,
        window_seconds: r.query.window.as_secs(),
        confidence: r.scoring.confidence,
        candidates,
    }))
}

/// Every matching pool, best first, with its statistics.
#[utoipa::path(
    get, path = "/pools", tag = "ranking", params(RankingParams),
    responses(
        (status = 200, description = "The ranking", body = PoolsResponse),
        (status = 400, description = "A malformed parameter", body = pool_core::http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_core::http::ErrorBody),
        (status = 503, description = "Event storage unreachable", body = pool_core::http::ErrorBody),
    )
)]
pub async fn pools(
    state: web::Data<AppState>,
    params: web::Query<RankingParams>,
) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let r = params.parse(&state.defaults, now)?;
    let (mut pools, scan) = rank(&state, &r).await?;
    if pools.is_empty() {
        return Err(no_data(&r));
    }
    let total_pools = pools.len();
    if let Some(limit) = r.limit {
        pools.truncate(limit);
    }
    Ok(HttpResponse::Ok().json(PoolsResponse {
        strategy: r.scoring.strategy,
        window_seconds: r.query.window.as_secs(),
        half_life_seconds: r.query.half_life.map(|d| d.as_secs()),
        confidence: r.scoring.confidence,
        generated_at: format_timestamp(&now),
        total_pools,
        pools,
        scan,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub storage: String,
}

/// Readiness: the event storage can be reached.
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "Event storage unreachable", body = pool_core::http::ErrorBody),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let storage = state.source.storage();
    match tokio::time::timeout(Duration::from_secs(5), storage.check_reachable()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Readiness {
            status: "ready",
            storage: storage.display.clone(),
        })),
        Ok(Err(e)) => Err(ApiError::unavailable(
            "storage_unavailable",
            format!("event storage {} is unreachable: {e}", storage.display),
        )),
        Err(_) => Err(ApiError::unavailable(
            "storage_unavailable",
            format!(
                "event storage {} did not answer within 5 s",
                storage.display
            ),
        )),
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "pool-selector", description = "Ranks EC2 spot pools by the risk of losing a Spark job to a spot termination."),
    paths(get_pool, pools, crate::intake::post_events, ready, pool_core::http::health),
    components(schemas(PoolChoice, PoolsResponse, RankedPool, ScanReport, Strategy, Readiness, pool_core::http::ErrorBody, pool_core::http::Health, crate::intake::Accepted, crate::intake::EventIn)),
    tags((name = "ranking"), (name = "ingestion"), (name = "operations"))
)]
pub struct ApiDoc;
