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
use pool_history::Query;
use pool_history::live::{ReadTotals, ViewStatus};
use pool_http::ApiError;
use pool_ranking::{Params, Scored};

use crate::fits::{Fitted, not_loaded};
use crate::ranking::{RankedPool, Strategy, series_start};
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
        let mut query = Query {
            instance_types: vec![],
            zones: vec![],
            window: r.window.unwrap_or(d.window),
            half_life: r.half_life.unwrap_or(d.half_life),
            now,
            max_clock_skew,
            series_from: None,
        };
        query.series_from = Some(series_start(now, query.cutoff()));
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

    /// Parse a request's parameters with the server's defaults, as of now.
    pub fn parse(params: &RankingParams, state: &AppState) -> Result<Self, ApiError> {
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
    /// The model fitted to the view for this window (shared with other requests).
    pub fitted: Arc<Fitted>,
    /// Whether this request found the fit already made.
    pub reused: bool,
    /// The candidates, best first (`index` into the fit's pools).
    pub order: Vec<Scored>,
}

impl Ranked {
    /// The API's view of the `i`-th pool of `order`.
    pub fn pool(&self, i: usize) -> RankedPool {
        let s = &self.order[i];
        let f = &self.fitted;
        RankedPool::new(
            &f.evidence[s.index],
            &f.pools[s.index].1,
            &f.model.pools[s.index],
            s,
        )
    }

    /// Seconds since the newest event of the `i`-th pool of `order` (the pick's: `i = 0`).
    pub fn data_age_seconds(&self, i: usize, now: DateTime<Utc>) -> Option<u64> {
        let newest = self.fitted.pools[self.order.get(i)?.index]
            .1
            .last_event_micros;
        Some(((now.timestamp_micros() - newest).max(0) / 1_000_000) as u64)
    }

    /// How sure the pick is under the posterior of the model that ranked (`pooled-v1`'s own, the
    /// default model's for every other strategy): probability of being best and expected regret.
    pub fn confidence(&self, strategy: Strategy) -> pool_ranking::Confidence {
        let f = &self.fitted;
        pool_ranking::confidence(
            &self.order,
            pool_ranking::posteriors(&f.evidence, &f.model, strategy),
        )
    }
}

/// The model fitted to the live view for the request's window (computed once per view version and
/// window, see [`crate::fits`]), and the candidates ranked on it. Never waits on storage.
pub fn rank(state: &AppState, r: &Ranking) -> Result<Ranked, ApiError> {
    let (fitted, reused) = state.fits.get(&state.view, &r.query, &state.model)?;
    // The fit's pools come in pool-id order, so a seeded draw is the same whatever the view did.
    let candidates: Vec<usize> = fitted
        .pools
        .iter()
        .enumerate()
        .filter(|(_, (pool, t))| {
            t.jobs >= r.min_jobs.max(1) && r.candidates.wants(pool) && !r.exclude.contains(pool)
        })
        .map(|(i, _)| i)
        .collect();
    let mut rng = match r.seed {
        Some(seed) => ChaCha8Rng::seed_from_u64(seed),
        None => ChaCha8Rng::from_rng(&mut rand::rng()),
    };
    let order = pool_ranking::rank(
        &fitted.evidence,
        &fitted.model,
        &candidates,
        &r.params,
        &mut rng,
    );
    Ok(Ranked {
        fitted,
        reused,
        order,
    })
}

/// How the live view answered: how current it is, what it holds, and the fit behind the answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewReport {
    /// Changes to the view so far; answers from one version are the same until the next.
    pub version: u64,
    /// When the view last refreshed successfully (UTC).
    pub refreshed_at: Option<String>,
    /// Seconds since then.
    pub age_seconds: Option<f64>,
    /// The last refresh failed (storage unreachable): answers come from what the view holds.
    pub failing: bool,
    /// Events counted in the window, every pool.
    pub rows: u64,
    /// Pools held by the view.
    pub pools: usize,
    /// Bytes held by the view (cells and dedup state).
    pub memory_bytes: usize,
    /// Time to sum the view and fit the model for this window, milliseconds (0 when reused).
    pub fit_ms: f64,
    /// What the view has read since it started.
    #[serde(flatten)]
    pub totals: ReadTotals,
}

impl ViewReport {
    fn new(status: &ViewStatus, ranked: &Ranked, now: DateTime<Utc>) -> Self {
        Self {
            version: ranked.fitted.version,
            refreshed_at: status.refreshed_at.map(|t| format_timestamp(&t)),
            age_seconds: status.age_seconds(now),
            failing: status.failing,
            rows: ranked.fitted.rows(),
            pools: status.pools,
            memory_bytes: status.memory_bytes,
            fit_ms: if ranked.reused {
                0.0
            } else {
                ranked.fitted.fit_ms
            },
            totals: status.totals,
        }
    }
}

/// Seconds since the view's last successful refresh.
fn view_age_seconds(state: &AppState, now: DateTime<Utc>) -> Option<u64> {
    state
        .view
        .status()
        .age_seconds(now)
        .map(|a| a.max(0.0) as u64)
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
    let window = match r.query.cutoff() {
        Some(start) => format!("since {}", format_timestamp(&start)),
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
    /// Look-back window used, seconds (0 = all history), rounded up to its grain (a minute up to an
    /// hour, an hour up to 62 days, a day beyond).
    pub window_seconds: u64,
    /// Where the window starts (UTC): `window_seconds` before the start of the current grain.
    pub window_start: Option<String>,
    pub confidence: f64,
    /// Pools that were considered.
    pub candidates: usize,
    /// Posterior probability that this pool has the lowest true termination rate of the candidates
    /// (under the `pooled` model whatever the strategy, `pooled-v1`'s own for `pooled-v1`), by exact
    /// numeric integration.
    pub probability_best: f64,
    /// The pick's expected loss against the best candidate, `E[p_pick − min_j p_j]` under the same
    /// posterior: termination-probability units for every strategy (0.002 = 0.2 points).
    pub expected_regret: f64,
    /// The runner-up's score minus this pool's, in the strategy's own score units (a rate for
    /// `naive` and `pooled`, an upper bound for `wilson` and `bayes`, a random draw for `thompson`;
    /// `null` with a single candidate). `expected_regret` compares strategies.
    pub margin: Option<f64>,
    /// Seconds since this pool's (the pick's) newest event.
    pub data_age_seconds: Option<u64>,
    /// Seconds since the view of the history last refreshed (it keeps answering while storage is
    /// down; this grows).
    pub view_age_seconds: Option<u64>,
    /// The pick's own newest event, or the view's last refresh, is older than STALE_AFTER: the answer
    /// rests on old data.
    pub stale: bool,
    /// With `k` > 1: up to k − 1 more pools, chosen for diversity (a new zone and a new instance
    /// family first, then a new zone, then a new family, among pools scoring within
    /// DIVERSITY_TOLERANCE of the next best; another size of a family already named is not diverse).
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
    /// Where the window starts (UTC).
    pub window_start: Option<String>,
    pub half_life_seconds: Option<u64>,
    pub confidence: f64,
    pub generated_at: String,
    /// Pools ranked in total (before `limit`, which defaults to POOLS_DEFAULT_LIMIT).
    pub total_pools: usize,
    /// Seconds since the first-ranked pool's newest event.
    pub data_age_seconds: Option<u64>,
    /// Seconds since the view of the history last refreshed.
    pub view_age_seconds: Option<u64>,
    /// The first-ranked pool's newest event, or the view's last refresh, is older than STALE_AFTER.
    pub stale: bool,
    pub pools: Vec<RankedPool>,
    /// How the live view answered.
    pub view: ViewReport,
}

/// The pool least likely to lose a job to a spot termination.
#[utoipa::path(
    get, path = "/get-pool", tag = "ranking", params(RankingParams),
    responses(
        (status = 200, description = "The best pool", body = PoolChoice),
        (status = 400, description = "A malformed parameter", body = pool_http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_http::ErrorBody),
        (status = 503, description = "The view of the history is still loading", body = pool_http::ErrorBody),
    )
)]
pub async fn get_pool(
    state: web::Data<AppState>,
    params: web::Query<RankingParams>,
) -> Result<HttpResponse, ApiError> {
    let r = Ranking::parse(&params, &state)?;
    let choice = choose(&state, &r)?;
    Ok(answer(&r).json(choice))
}

/// `/get-pool`'s answer to `r`, from the live view (what the handler serialises; benchmarks call it
/// in process).
pub fn choose(state: &AppState, r: &Ranking) -> Result<PoolChoice, ApiError> {
    let ranked = rank(state, r)?;
    if ranked.order.is_empty() {
        return Err(no_data(r));
    }
    let data_age_seconds = ranked.data_age_seconds(0, r.query.now);
    let view_age_seconds = view_age_seconds(state, r.query.now);
    let confidence = ranked.confidence(r.params.strategy);
    let alternatives = pool_ranking::alternatives(
        &ranked.fitted.evidence,
        &ranked.order,
        r.k,
        state.defaults.diversity_tolerance,
    )
    .into_iter()
    .map(|i| ranked.pool(i))
    .collect();
    Ok(PoolChoice {
        pool: ranked.pool(0),
        strategy: r.params.strategy,
        window_seconds: r.query.window.as_secs(),
        window_start: r.query.cutoff().map(|c| format_timestamp(&c)),
        confidence: r.params.confidence,
        candidates: ranked.order.len(),
        probability_best: confidence.probability_best,
        expected_regret: confidence.expected_regret,
        margin: ranked
            .order
            .get(1)
            .map(|second| second.score - ranked.order[0].score),
        data_age_seconds,
        view_age_seconds,
        stale: is_stale(
            data_age_seconds,
            view_age_seconds,
            state.defaults.stale_after,
        ),
        alternatives,
        seed: r.seed,
    })
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

fn is_stale(data_age: Option<u64>, view_age: Option<u64>, stale_after: Duration) -> bool {
    let limit = stale_after.as_secs();
    data_age.is_some_and(|a| a > limit) || view_age.is_some_and(|a| a > limit)
}

/// Every matching pool, best first, with its statistics.
#[utoipa::path(
    get, path = "/pools", tag = "ranking", params(RankingParams),
    responses(
        (status = 200, description = "The ranking", body = PoolsResponse),
        (status = 400, description = "A malformed parameter", body = pool_http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_http::ErrorBody),
        (status = 503, description = "The view of the history is still loading", body = pool_http::ErrorBody),
    )
)]
pub async fn pools(
    state: web::Data<AppState>,
    params: web::Query<RankingParams>,
) -> Result<HttpResponse, ApiError> {
    let r = Ranking::parse(&params, &state)?;
    let now = r.query.now;
    let ranked = rank(&state, &r)?;
    if ranked.order.is_empty() {
        return Err(no_data(&r));
    }
    let total_pools = ranked.order.len();
    let data_age_seconds = ranked.data_age_seconds(0, now);
    let view_age_seconds = view_age_seconds(&state, now);
    let pools = (0..total_pools.min(r.limit))
        .map(|i| ranked.pool(i))
        .collect();
    Ok(answer(&r).json(PoolsResponse {
        strategy: r.params.strategy,
        window_seconds: r.query.window.as_secs(),
        window_start: r.query.cutoff().map(|c| format_timestamp(&c)),
        half_life_seconds: r.query.half_life.map(|d| d.as_secs()),
        confidence: r.params.confidence,
        generated_at: format_timestamp(&now),
        total_pools,
        data_age_seconds,
        view_age_seconds,
        stale: is_stale(
            data_age_seconds,
            view_age_seconds,
            state.defaults.stale_after,
        ),
        pools,
        view: ViewReport::new(&state.view.status(), &ranked, now),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    /// `loaded`: the view of the history answers rankings.
    pub view: &'static str,
    /// `reachable` when the view's last refresh succeeded, else `unreachable` (rankings keep coming
    /// from the view, flagged `stale` once older than STALE_AFTER).
    pub storage: &'static str,
    /// Seconds since the view's last successful refresh.
    pub view_age_seconds: Option<f64>,
}

/// Readiness: the view of the history is loaded, so rankings are answered. Storage being down later
/// does not make a loaded replica unready: it keeps answering from memory (see `storage`).
#[utoipa::path(
    get, path = "/ready", tag = "operations",
    responses(
        (status = 200, body = Readiness),
        (status = 503, description = "The view of the history is still loading", body = pool_http::ErrorBody),
    )
)]
pub async fn ready(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let status = state.view.status();
    if !status.loaded {
        return Err(not_loaded());
    }
    Ok(HttpResponse::Ok().json(Readiness {
        status: "ready",
        view: "loaded",
        storage: if status.failing {
            "unreachable"
        } else {
            "reachable"
        },
        view_age_seconds: status.age_seconds(Utc::now()),
    }))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "pool-selector", description = "Ranks EC2 spot pools by the risk of losing a Spark job to a spot termination."),
    paths(get_pool, pools, crate::backtest::backtest, crate::backtest::backtest_svg, ready, pool_http::health),
    components(schemas(PoolChoice, PoolsResponse, RankedPool, ViewReport, ReadTotals, Strategy, Readiness, pool_ranking::Change, pool_ranking::ChangeScope, crate::backtest::BacktestResponse, pool_ranking::backtest::Hindsight, pool_ranking::backtest::StrategyOutcome, pool_http::ErrorBody, pool_http::Health)),
    tags((name = "ranking"), (name = "operations"))
)]
pub struct ApiDoc;
