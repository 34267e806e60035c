//! HTTP handlers: `/get-pool` (the seed's contract), `/pools`, `/ready`, and the OpenAPI document
//! (which also lists `/backtest`, whose handlers live in [`crate::backtest`]).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use pool_core::event::format_timestamp;
use pool_core::request::only_with;
use pool_history::{Query, ScanReport, Tallies};
use pool_http::ApiError;
use pool_ranking::{Evidence, Model, Params, Scored};

use crate::ranking::{self, RankedPool, Strategy, series_start};
use crate::state::{AppState, Defaults};

pub use pool_core::request::RankingParams;
use pool_core::request::RankingRequest;

/// A parsed ranking request with the defaults applied.
#[derive(Debug, Clone)]
pub struct Ranking {
    /// What is scanned: every pool (the shared priors learn from the pools around the candidates), with
    /// the hourly series the change tests read.
    pub query: Query,
    /// Which pools may be picked.
    pub candidates: Query,
    pub params: Params,
    pub seed: Option<u64>,
    pub min_jobs: u64,
    pub limit: usize,
    pub k: usize,
    pub exclude: Vec<pool_core::event::PoolId>,
}

impl Ranking {
    /// Apply the server's defaults to what the request left out.
    pub fn new(
        r: RankingRequest,
        d: &Defaults,
        now: DateTime<Utc>,
        max_clock_skew: Duration,
    ) -> Result<Self, ApiError> {
        let strategy = r.strategy.unwrap_or(d.strategy);
        // The relay cannot know this server's default strategy, so it is checked here again.
        only_with(Some(strategy), r.risk.is_some(), "risk", Strategy::Pooled)?;
        only_with(Some(strategy), r.seed.is_some(), "seed", Strategy::Thompson)?;
        let query = Query {
            instance_types: vec![],
            zones: vec![],
            window: r.window.unwrap_or(d.window),
            half_life: r.half_life.unwrap_or(d.half_life),
            now,
            max_clock_skew,
            series_from: Some(series_start(now)),
        };
        Ok(Ranking {
            candidates: Query {
                instance_types: r.instance_types,
                zones: r.zones,
                ..query.clone()
            },
            query,
            params: Params {
                strategy,
                confidence: r.confidence.unwrap_or(d.confidence),
                risk: r.risk,
            },
            seed: r.seed,
            min_jobs: r.min_jobs.unwrap_or(1),
            limit: r.limit.unwrap_or(d.pools_limit),
            k: r.k.unwrap_or(1),
            exclude: r.exclude_pools,
        })
    }

    fn parse(params: &RankingParams, state: &AppState) -> Result<Self, ApiError> {
        Self::new(
            params.parse()?,
            &state.defaults,
            Utc::now(),
            state.max_clock_skew,
        )
    }
}

/// A ranking and everything behind it.
pub struct Ranked {
    pub tallies: Arc<Tallies>,
    /// Every pool with a job in the window; `slots[i]` is its place in `tallies.pools`.
    pub evidence: Vec<Evidence>,
    slots: Vec<usize>,
    pub model: Model,
    /// The candidates, best first.
    pub order: Vec<Scored>,
}

impl Ranked {
    /// The API's view of the `i`-th pool of `order`.
    pub fn pool(&self, i: usize) -> RankedPool {
        let s = &self.order[i];
        RankedPool::new(
            &self.evidence[s.index],
            &self.tallies.pools[self.slots[s.index]].1,
            &self.model.pools[s.index],
            s,
        )
    }

    /// Seconds since the newest event among the candidates.
    pub fn data_age_seconds(&self, now: DateTime<Utc>) -> Option<u64> {
        let newest = self
            .order
            .iter()
            .map(|s| self.tallies.pools[self.slots[s.index]].1.last_event_micros)
            .max()?;
        Some(((now.timestamp_micros() - newest).max(0) / 1_000_000) as u64)
    }
}

/// Run the scan (shared with identical scans in flight, behind the concurrency bound), fit the model
/// to every pool, and rank the candidates.
pub async fn rank(state: &AppState, r: &Ranking) -> Result<Ranked, ApiError> {
    let tallies = state.scans.tally(&r.query).await?;
    let mut evidence = Vec::with_capacity(tallies.pools.len());
    let mut slots = Vec::with_capacity(tallies.pools.len());
    let mut candidates = vec![];
    // The scan's pools come in pool-id order, so a seeded draw is the same whatever the scan did.
    for (slot, (pool, t)) in tallies.pools.iter().enumerate() {
        if t.jobs == 0 {
            continue;
        }
        if t.jobs >= r.min_jobs.max(1) && r.candidates.wants(pool) && !r.exclude.contains(pool) {
            candidates.push(evidence.len());
        }
        evidence.push(ranking::evidence(pool, t));
        slots.push(slot);
    }
    let model = pool_ranking::fit(&evidence, &state.model);
    let mut rng = match r.seed {
        Some(seed) => ChaCha8Rng::seed_from_u64(seed),
        None => ChaCha8Rng::from_rng(&mut rand::rng()),
    };
    let order = pool_ranking::rank(&evidence, &model, &candidates, &r.params, &mut rng);
    Ok(Ranked {
        tallies,
        evidence,
        slots,
        model,
        order,
    })
}

fn no_data(r: &Ranking) -> ApiError {
    let mut what = vec![];
    let c = &r.candidates;
    if !c.instance_types.is_empty() {
        let v: Vec<_> = c.instance_types.iter().map(|t| t.as_str()).collect();
        what.push(format!("instance_types={}", v.join(",")));
    }
    if !c.zones.is_empty() {
        let v: Vec<_> = c.zones.iter().map(|z| z.as_str()).collect();
        what.push(format!("availability_zones={}", v.join(",")));
    }
    if r.min_jobs > 1 {
        what.push(format!("min_jobs={}", r.min_jobs));
    }
    if !r.exclude.is_empty() {
        what.push(format!("outside the {} excluded pools", r.exclude.len()));
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
    /// Posterior probability that this pool has the lowest true termination rate of the candidates
    /// (under the `pooled` model, whatever the strategy).
    pub probability_best: f64,
    /// The runner-up's score minus this pool's (`null` with a single candidate).
    pub margin: Option<f64>,
    /// Seconds since the newest event among the candidates.
    pub data_age_seconds: Option<u64>,
    /// The newest event is older than STALE_AFTER: the answer rests on old data.
    pub stale: bool,
    /// With `k` > 1: up to k − 1 more pools, chosen for diversity (other zones first, then other
    /// instance types, among pools scoring within DIVERSITY_TOLERANCE of the next best).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<RankedPool>,
    /// The seed of the `thompson` draws, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
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
    /// Seconds since the newest event among the ranked pools.
    pub data_age_seconds: Option<u64>,
    /// The newest event is older than STALE_AFTER.
    pub stale: bool,
    pub pools: Vec<RankedPool>,
    pub scan: ScanReport,
}

/// The pool least likely to lose a job to a spot termination.
#[utoipa::path(
    get, path = "/get-pool", tag = "ranking", params(RankingParams),
    responses(
        (status = 200, description = "The best pool", body = PoolChoice),
        (status = 400, description = "A malformed parameter", body = pool_http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_http::ErrorBody),
        (status = 503, description = "Event storage unreachable", body = pool_http::ErrorBody),
    )
)]
pub async fn get_pool(
    state: web::Data<AppState>,
    params: web::Query<RankingParams>,
) -> Result<HttpResponse, ApiError> {
    let r = Ranking::parse(&params, &state)?;
    let ranked = rank(&state, &r).await?;
    if ranked.order.is_empty() {
        return Err(no_data(&r));
    }
    let data_age_seconds = ranked.data_age_seconds(r.query.now);
    let alternatives = pool_ranking::alternatives(
        &ranked.evidence,
        &ranked.order,
        r.k,
        state.defaults.diversity_tolerance,
    )
    .into_iter()
    .map(|i| ranked.pool(i))
    .collect();
    Ok(answer(&r).json(PoolChoice {
        pool: ranked.pool(0),
        strategy: r.params.strategy,
        window_seconds: r.query.window.as_secs(),
        confidence: r.params.confidence,
        candidates: ranked.order.len(),
        probability_best: pool_ranking::probability_best(&ranked.model, &ranked.order),
        margin: ranked
            .order
            .get(1)
            .map(|second| second.score - ranked.order[0].score),
        data_age_seconds,
        stale: is_stale(data_age_seconds, state.defaults.stale_after),
        alternatives,
        seed: r.seed,
    }))
}

/// A 200 for `r`. An unseeded `thompson` answer is one random draw for one caller: `no-store` tells
/// caches (the relay among them) never to hand it to another.
fn answer(r: &Ranking) -> actix_web::HttpResponseBuilder {
    let mut res = HttpResponse::Ok();
    if r.params.strategy == Strategy::Thompson && r.seed.is_none() {
        res.insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"));
    }
    res
}

fn is_stale(age: Option<u64>, stale_after: Duration) -> bool {
    age.is_some_and(|a| a > stale_after.as_secs())
}

/// Every matching pool, best first, with its statistics.
#[utoipa::path(
    get, path = "/pools", tag = "ranking", params(RankingParams),
    responses(
        (status = 200, description = "The ranking", body = PoolsResponse),
        (status = 400, description = "A malformed parameter", body = pool_http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_http::ErrorBody),
        (status = 503, description = "Event storage unreachable", body = pool_http::ErrorBody),
    )
)]
pub async fn pools(
    state: web::Data<AppState>,
    params: web::Query<RankingParams>,
) -> Result<HttpResponse, ApiError> {
    let r = Ranking::parse(&params, &state)?;
    let now = r.query.now;
    let ranked = rank(&state, &r).await?;
    if ranked.order.is_empty() {
        return Err(no_data(&r));
    }
    let total_pools = ranked.order.len();
    let data_age_seconds = ranked.data_age_seconds(now);
    let pools = (0..total_pools.min(r.limit))
        .map(|i| ranked.pool(i))
        .collect();
    Ok(answer(&r).json(PoolsResponse {
        strategy: r.params.strategy,
        window_seconds: r.query.window.as_secs(),
        half_life_seconds: r.query.half_life.map(|d| d.as_secs()),
        confidence: r.params.confidence,
        generated_at: format_timestamp(&now),
        total_pools,
        data_age_seconds,
        stale: is_stale(data_age_seconds, state.defaults.stale_after),
        pools,
        scan: ranked.tallies.report.clone(),
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
        (status = 503, description = "Event storage unreachable", body = pool_http::ErrorBody),
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
    paths(get_pool, pools, crate::backtest::backtest, crate::backtest::backtest_svg, ready, pool_http::health),
    components(schemas(PoolChoice, PoolsResponse, RankedPool, ScanReport, Strategy, Readiness, pool_ranking::Change, pool_ranking::ChangeScope, crate::backtest::BacktestResponse, pool_ranking::backtest::Hindsight, pool_ranking::backtest::StrategyOutcome, pool_http::ErrorBody, pool_http::Health)),
    tags((name = "ranking"), (name = "operations"))
)]
pub struct ApiDoc;
