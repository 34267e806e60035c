//! `GET /backtest` and `/backtest.svg`: replay the stored history and show how each strategy's picks
//! fared against what actually happened.
//!
//! The live view yields every pool's hourly counts over the span and the window before it (from its
//! hour cells, kept for 64 days); the replay then runs on those counts off the HTTP worker, bounded by
//! `MAX_CONCURRENT_BACKTESTS`, so 14 days at hourly steps costs pools × hours, not events.

use std::time::{Duration, Instant};

use actix_web::{HttpResponse, web};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use pool_core::event::{Partition, PoolId, format_timestamp};
use pool_core::request::{BacktestParams, BacktestRequest};
use pool_core::window::Window;
use pool_history::{Query, Tally};
use pool_http::ApiError;
use pool_ranking::backtest::{self, Hindsight, Series, Spec, StrategyOutcome};
use pool_ranking::{Hour, Strategy};

use crate::chart::{Line, percent_lines};
use crate::state::AppState;

/// Span replayed when the request does not say.
pub const DEFAULT_SPAN: Duration = Duration::from_secs(14 * 24 * 3600);
/// Window of each decision when neither the request nor a bounded EVENT_FILTER_WINDOW says.
pub const DEFAULT_TRAIN_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// Jobs the best pool in hindsight must have run in the span, by default.
pub const DEFAULT_HINDSIGHT_MIN_JOBS: u64 = 30;

/// A backtest's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacktestResponse {
    pub generated_at: String,
    /// The replayed span: decisions from `from` up to `to` (the last full hour).
    pub from: String,
    pub to: String,
    pub step_seconds: u64,
    /// History each decision used, seconds.
    pub train_window_seconds: u64,
    pub half_life_seconds: Option<u64>,
    pub steps: usize,
    /// Pools the picks chose among (those matching the filters).
    pub candidates: usize,
    /// Pools whose history informed the shared priors.
    pub pools_seen: usize,
    /// The single candidate with the lowest termination rate over the span, among those with at least
    /// `min_jobs` jobs in it (`null` when none has): for reference; each strategy's `regret` is scored
    /// against the best candidate at each step (see the README's "Backtest").
    pub hindsight: Option<Hindsight>,
    pub strategies: Vec<StrategyOutcome>,
    /// Version of the live view the replay read.
    pub view_version: u64,
    /// Events counted over the span and the window before it.
    pub rows: u64,
    /// Time spent replaying (after reading the view), milliseconds.
    pub replay_ms: f64,
}

struct Plan {
    request: BacktestRequest,
    end_hour: DateTime<Utc>,
    span_hours: usize,
    step_hours: usize,
    train_hours: usize,
}

impl Plan {
    fn new(
        request: BacktestRequest,
        state: &AppState,
        now: DateTime<Utc>,
    ) -> Result<Self, ApiError> {
        let hours = |d: Duration| (d.as_secs() / 3600) as usize;
        let span_hours = hours(request.window.unwrap_or(DEFAULT_SPAN));
        let step_hours = hours(request.step.unwrap_or(Duration::from_secs(3600)));
        if step_hours > span_hours {
            return Err(ApiError::bad_parameter(
                "step",
                format!("step: {step_hours}h is longer than the replayed window ({span_hours}h)"),
            ));
        }
        let train = request.train_window.unwrap_or_else(|| {
            state
                .defaults
                .window
                .duration()
                .filter(|d| {
                    *d >= Duration::from_secs(3600) && *d <= pool_core::request::MAX_BACKTEST_SPAN
                })
                .map(|d| Duration::from_secs(d.as_secs().div_ceil(3600) * 3600))
                .unwrap_or(DEFAULT_TRAIN_WINDOW)
        });
        Ok(Self {
            end_hour: Partition::of(&now).start(),
            span_hours,
            step_hours,
            train_hours: hours(train),
            request,
        })
    }

    fn series_from(&self) -> DateTime<Utc> {
        self.end_hour - TimeDelta::hours((self.span_hours + self.train_hours) as i64)
    }

    fn steps(&self) -> usize {
        self.span_hours / self.step_hours
    }
}

/// Read the view, then replay on a blocking thread, bounded by the backtest slots.
async fn run(
    state: &AppState,
    params: &BacktestParams,
) -> Result<(Plan, BacktestResponse), ApiError> {
    let now = Utc::now();
    let plan = Plan::new(params.parse()?, state, now)?;
    let query = series_query(&plan, state, now);
    let permit = state
        .backtests
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::busy("every backtest slot is taken; retry shortly", 2))?;
    let (view_version, tallies) = state
        .view
        .tally(&query)
        .ok_or_else(crate::fits::not_loaded)?;
    let rows = tallies.iter().map(|(_, t)| t.jobs).sum();
    let wanted = Query {
        instance_types: plan.request.instance_types.clone(),
        zones: plan.request.zones.clone(),
        ..query.clone()
    };
    let (series, candidates) = hourly_series(&tallies, &wanted, plan.span_hours + plan.train_hours);
    if candidates.is_empty() {
        return Err(ApiError::not_found(
            "no job events match the filters in the replayed span and the window before it",
        ));
    }
    let spec = replay_spec(&plan, state, candidates);
    let pools_seen = series.len();
    let candidate_count = spec.candidates.len();
    let started = Instant::now();
    let outcome = web::block(move || {
        let _permit = permit;
        backtest::run(&series, &spec)
    })
    .await
    .map_err(|e| ApiError::internal(format!("the backtest did not finish: {e}")))?;
    let r = &plan.request;
    let from = plan.end_hour - TimeDelta::hours(plan.span_hours as i64);
    let response = BacktestResponse {
        generated_at: format_timestamp(&now),
        from: format_timestamp(&from),
        to: format_timestamp(&plan.end_hour),
        step_seconds: plan.step_hours as u64 * 3600,
        train_window_seconds: plan.train_hours as u64 * 3600,
        half_life_seconds: r
            .half_life
            .unwrap_or(state.defaults.half_life)
            .map(|d| d.as_secs()),
        steps: plan.steps(),
        candidates: candidate_count,
        pools_seen,
        hindsight: outcome.hindsight,
        strategies: outcome.strategies,
        view_version,
        rows,
        replay_ms: started.elapsed().as_secs_f64() * 1e3,
    };
    Ok((plan, response))
}

/// The view query for every pool's hourly counts from the series' first hour on (a second earlier,
/// so the cutoff never falls inside it), unfiltered: the training window needs every pool.
fn series_query(plan: &Plan, state: &AppState, now: DateTime<Utc>) -> Query {
    let series_from = plan.series_from();
    Query {
        instance_types: vec![],
        zones: vec![],
        window: Window::from_secs((now - series_from).num_seconds().max(0) as u64 + 1),
        half_life: None,
        now,
        max_clock_skew: state.max_clock_skew,
        series_from: Some(series_from),
    }
}

/// Every pool with jobs as an hourly series of `total_hours`, and the indices of those `wanted`
/// (the request's filters): the candidates. The scan's pools come in pool-id order, so a seeded
/// replay is reproducible.
fn hourly_series(
    tallies: &[(PoolId, Tally)],
    wanted: &Query,
    total_hours: usize,
) -> (Vec<Series>, Vec<usize>) {
    let mut series = Vec::with_capacity(tallies.len());
    let mut candidates = vec![];
    for (pool, t) in tallies {
        if t.jobs == 0 {
            continue;
        }
        let mut hours = vec![Hour::default(); total_hours];
        for (cell, h) in hours.iter_mut().zip(&t.hourly) {
            *cell = Hour {
                jobs: h.jobs,
                spot: h.spot,
            };
        }
        if wanted.wants(pool) {
            candidates.push(series.len());
        }
        series.push(Series {
            pool: pool.clone(),
            hours,
        });
    }
    (series, candidates)
}

/// The replay of `plan` over `candidates`: the strategies asked for (all six by default), the
/// request's parameters, else the service's defaults.
fn replay_spec(plan: &Plan, state: &AppState, candidates: Vec<usize>) -> Spec {
    let r = &plan.request;
    let strategies = if r.strategies.is_empty() {
        vec![
            Strategy::Pooled,
            Strategy::Thompson,
            Strategy::Wilson,
            Strategy::Bayes,
            Strategy::Naive,
            Strategy::PooledV1,
        ]
    } else {
        r.strategies.clone()
    };
    Spec {
        strategies,
        confidence: r.confidence.unwrap_or(state.defaults.confidence),
        risk: r.risk,
        model: state.model.clone(),
        first_step: plan.train_hours,
        steps: plan.steps(),
        step_hours: plan.step_hours,
        train_hours: plan.train_hours,
        half_life_hours: r
            .half_life
            .unwrap_or(state.defaults.half_life)
            .map(|d| d.as_secs_f64() / 3600.0),
        candidates,
        hindsight_min_jobs: r.min_jobs.unwrap_or(DEFAULT_HINDSIGHT_MIN_JOBS),
        seed: r.seed.unwrap_or(0),
    }
}

/// Replay the stored history: each strategy's realized termination rate and regret.
#[utoipa::path(
    get, path = "/backtest", tag = "ranking", params(BacktestParams),
    responses(
        (status = 200, description = "How each strategy's picks fared", body = BacktestResponse),
        (status = 400, description = "A malformed parameter", body = pool_http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_http::ErrorBody),
        (status = 503, description = "Busy, or the view of the history still loading", body = pool_http::ErrorBody),
    )
)]
pub async fn backtest(
    state: web::Data<AppState>,
    params: web::Query<BacktestParams>,
) -> Result<HttpResponse, ApiError> {
    let (_, response) = run(&state, &params).await?;
    Ok(HttpResponse::Ok().json(response))
}

/// The backtest as an SVG chart: each strategy's realized termination rate so far, step by step, and
/// the best pool in hindsight.
#[utoipa::path(
    get, path = "/backtest.svg", tag = "ranking", params(BacktestParams),
    responses(
        (status = 200, description = "The chart", content_type = "image/svg+xml", body = String),
        (status = 400, description = "A malformed parameter", body = pool_http::ErrorBody),
        (status = 404, description = "No events match the filters", body = pool_http::ErrorBody),
        (status = 503, description = "Busy, or the view of the history still loading", body = pool_http::ErrorBody),
    )
)]
pub async fn backtest_svg(
    state: web::Data<AppState>,
    params: web::Query<BacktestParams>,
) -> Result<HttpResponse, ApiError> {
    let (plan, response) = run(&state, &params).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .body(svg(&plan, &response)))
}

fn svg(plan: &Plan, r: &BacktestResponse) -> String {
    let mut lines: Vec<Line> = r
        .strategies
        .iter()
        .map(|s| Line {
            label: s.strategy.as_str().to_owned(),
            values: s.cumulative_rate.clone(),
            dashed: false,
        })
        .collect();
    if let Some(h) = &r.hindsight {
        lines.push(Line {
            label: "best in hindsight".into(),
            values: vec![Some(h.termination_rate); r.steps],
            dashed: true,
        });
    }
    let day = |t: &str| t.get(..16).unwrap_or(t).replace('T', " ");
    percent_lines(
        &format!(
            "Realized termination rate of each strategy's picks ({}h steps)",
            plan.step_hours
        ),
        &day(&r.from),
        &day(&r.to),
        &lines,
    )
}
