//! HTTP handlers: `/get-pool` (the seed's contract), `/pools`, `/ready`, and the OpenAPI document.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;

use pool_core::event::format_timestamp;
use pool_core::http::ApiError;
use pool_core::window::Window;

use crate::ranking::{RankedPool, Scoring, Strategy, compare, score};
use crate::scans::ScanGate;
use pool_history::{Query, ScanReport};

pub use pool_core::request::RankingParams;
use pool_core::request::RankingRequest;

/// Request-independent defaults, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub window: Window,
    pub strategy: Strategy,
    pub half_life: Option<Duration>,
    pub confidence: f64,
    /// How many pools `/pools` returns when the request sets no `limit`.
    pub pools_limit: usize,
}

/// Shared state of the handlers.
pub struct AppState {
    pub scans: ScanGate,
    pub defaults: Defaults,
    /// Events stamped further ahead of the server's clock than this are ignored (`MAX_CLOCK_SKEW`).
    pub max_clock_skew: Duration,
}

/// A parsed ranking request with the defaults applied.
#[derive(Debug, Clone)]
pub struct Ranking {
    pub query: Query,
    pub scoring: Scoring,
    pub min_jobs: u64,
    pub limit: usize,
}

impl Ranking {
    /// Apply the server's defaults to what the request left out.
    pub fn new(
        r: RankingRequest,
        d: &Defaults,
        now: DateTime<Utc>,
        max_clock_skew: Duration,
    ) -> Self {
        Ranking {
            query: Query {
                instance_types: r.instance_types,
                zones: r.zones,
                window: r.window.unwrap_or(d.window),
                half_life: r.half_life.unwrap_or(d.half_life),
                now,
                max_clock_skew,
            },
            scoring: Scoring {
                strategy: r.strategy.unwrap_or(d.strategy),
                confidence: r.confidence.unwrap_or(d.confidence),
            },
            min_jobs: r.min_jobs.unwrap_or(1),
            limit: r.limit.unwrap_or(d.pools_limit),
        }
    }

    fn parse(params: &RankingParams, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self::new(
            params.parse()?,
            &state.defaults,
            Utc::now(),
            state.max_clock_skew,
        ))
    }
}

/// Run the scan (shared with identical scans in flight, behind the concurrency bound) and rank the
/// pools.
pub async fn rank(
    state: &AppState,
    r: &Ranking,
) -> Result<(Vec<RankedPool>, ScanReport), ApiError> {
    let tallies = state.scans.tally(&r.query).await?;
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
    Ok((pools, tallies.report.clone()))
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
    /// Pools ranked in total (before `limit`, which defaults to POOLS_DEFAULT_LIMIT).
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
    let r = Ranking::parse(&params, &state)?;
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
    let r = Ranking::parse(&params, &state)?;
    let now = r.query.now;
    let (mut pools, scan) = rank(&state, &r).await?;
    if pools.is_empty() {
        return Err(no_data(&r));
    }
    let total_pools = pools.len();
    pools.truncate(r.limit);
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
    pub storage: &'static str,
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
    let storage = state.scans.source().storage();
    let failed = |why: String| {
        // Where the storage is and what it said stay in the log.
        tracing::warn!(storage = %storage.display, why, "readiness: event storage unreachable");
        ApiError::unavailable("storage_unavailable", "the event storage is unreachable")
    };
    match tokio::time::timeout(Duration::from_secs(5), storage.check_reachable()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Readiness {
            status: "ready",
            storage: "reachable",
        })),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(failed("no answer within 5 s".into())),
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "pool-selector", description = "Ranks EC2 spot pools by the risk of losing a Spark job to a spot termination."),
    paths(get_pool, pools, crate::intake::post_events, ready, pool_core::http::health),
    components(schemas(PoolChoice, PoolsResponse, RankedPool, ScanReport, Strategy, Readiness, pool_core::http::ErrorBody, pool_core::http::Health, crate::intake::Accepted, crate::intake::EventIn)),
    tags((name = "ranking"), (name = "ingestion"), (name = "operations")),
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
