//! The model fitted to the live view, once per view version and window.
//!
//! A ranking needs every pool's evidence (the shared priors learn from the neighbours) and the fit
//! (the hierarchy, the change posteriors over each pool's hourly series of up to 30 days): about a
//! millisecond for 432 pools (`regret-bench` reports it). Both depend only on the view's
//! version and the window (its start, the horizon's minute, the hourly series' start, the half-life), so
//! they are computed once and shared by every request until the view changes; a request then only
//! filters the candidates and ranks them. Identical fits asked for at once are computed once.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{IntCounter, Registry};

use pool_core::event::PoolId;
use pool_history::live::LiveView;
use pool_history::{Query, Tally};
use pool_http::ApiError;
use pool_http::metrics::counter;
use pool_ranking::{Evidence, Model, ModelConfig};

use crate::ranking;

/// Everything a ranking reads, for one view version and window.
#[derive(Debug)]
pub struct Fitted {
    pub version: u64,
    /// Every pool with a job in the window, in pool-id order; `evidence[i]` and `model.pools[i]` are
    /// `pools[i]`'s.
    pub pools: Vec<(PoolId, Tally)>,
    pub evidence: Vec<Evidence>,
    pub model: Model,
    /// Time to tally the view and fit the model, milliseconds.
    pub fit_ms: f64,
}

impl Fitted {
    /// Events counted in the window, every pool.
    pub fn rows(&self) -> u64 {
        self.pools.iter().map(|(_, t)| t.jobs).sum()
    }
}

/// What identifies a fit: the same cells summed the same way.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FitKey {
    version: u64,
    cutoff_micros: Option<i64>,
    horizon_minute: i64,
    series_from_micros: Option<i64>,
    half_life_micros: Option<u128>,
    /// Recency weights scale with `now` but every ratio the model reads does not: the weighted sums of
    /// one second are reused for the next (a fit is at most one view refresh old anyway).
    weighted_second: Option<i64>,
}

impl FitKey {
    fn of(version: u64, q: &Query) -> Self {
        Self {
            version,
            cutoff_micros: q.cutoff().map(|c| c.timestamp_micros()),
            horizon_minute: q.horizon_micros().div_euclid(60_000_000),
            series_from_micros: q.series_from_micros(),
            half_life_micros: q.half_life.map(|h| h.as_micros()),
            weighted_second: q.half_life.map(|_| q.now.timestamp()),
        }
    }
}

/// The fits of the last few (version, window) pairs.
pub struct Fits {
    cache: moka::sync::Cache<FitKey, Arc<Fitted>>,
    computed: IntCounter,
    reused: IntCounter,
}

impl Fits {
    /// Holds up to `capacity` fits (each a few hundred kB for hundreds of pools).
    pub fn new(capacity: u64, registry: &Registry) -> Self {
        Self {
            cache: moka::sync::Cache::new(capacity),
            computed: counter(
                registry,
                "model_fits_total",
                "Models fitted to the live view (once per view version and window).",
            ),
            reused: counter(
                registry,
                "model_fits_reused_total",
                "Ranking requests answered with a model already fitted to the same view version and window.",
            ),
        }
    }

    /// The fit for `q` (every pool, its window) on the view as it is now, and whether it was reused.
    pub fn get(
        &self,
        view: &LiveView,
        q: &Query,
        config: &ModelConfig,
    ) -> Result<(Arc<Fitted>, bool), ApiError> {
        let version = view.version().ok_or_else(not_loaded)?;
        let key = FitKey::of(version, q);
        let mut computed = false;
        let fitted = self.cache.try_get_with(key, || {
            computed = true;
            fit(view, q, config)
        });
        let fitted = fitted.map_err(|e: Arc<ApiError>| (*e).clone())?;
        if computed {
            self.computed.inc();
        } else {
            self.reused.inc();
        }
        Ok((fitted, !computed))
    }
}

/// Rankings before the view's first load: a 503 the client may retry.
pub fn not_loaded() -> ApiError {
    ApiError::unavailable(
        "loading",
        "the view of the event history is still loading (or the event storage cannot be reached yet); retry shortly",
    )
    .retry_after(2)
}

fn fit(view: &LiveView, q: &Query, config: &ModelConfig) -> Result<Arc<Fitted>, ApiError> {
    let started = Instant::now();
    let (version, pools) = view.tally(q).ok_or_else(not_loaded)?;
    let hours = q
        .series_from
        .map_or(1, |start| ranking::series_hours(start, q.now));
    let evidence: Vec<Evidence> = pools
        .iter()
        .map(|(pool, t)| ranking::evidence(pool, t, hours))
        .collect();
    let model = pool_ranking::fit(&evidence, config);
    Ok(Arc::new(Fitted {
        version,
        pools,
        evidence,
        model,
        fit_ms: started.elapsed().as_secs_f64() * 1e3,
    }))
}
