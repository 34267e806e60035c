//! What the HTTP handlers share: the live view and the fits on it, the request-independent defaults
//! and the bounds. Its own module so that every handler module ([`crate::routes`], [`crate::backtest`])
//! depends on it and none on another.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use pool_core::window::Window;
use pool_history::live::LiveView;
use pool_ranking::ModelConfig;
use prometheus::Registry;

use crate::fits::Fits;
use crate::ranking::Strategy;
use crate::settings::Settings;

/// Fits kept (view version × window): a few hundred kB each.
const FITS_KEPT: u64 = 64;

/// Request-independent defaults, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub window: Window,
    pub strategy: Strategy,
    pub half_life: Option<Duration>,
    pub confidence: f64,
    /// How many pools `/pools` returns when the request sets no `limit`.
    pub pools_limit: usize,
    /// Newest event (or the view's last refresh) older than this: the answer says `stale`
    /// (`STALE_AFTER`).
    pub stale_after: Duration,
    /// Alternatives within this much of the next best score may be preferred for diversity.
    pub diversity_tolerance: f64,
}

/// Shared state of the handlers.
pub struct AppState {
    /// The history in memory, kept current by the refresh loop; requests never wait on storage.
    pub view: Arc<LiveView>,
    pub fits: Fits,
    pub defaults: Defaults,
    /// Events stamped further ahead of the server's clock than this are ignored (`MAX_CLOCK_SKEW`).
    pub max_clock_skew: Duration,
    /// The model's settings (`CHANGE_ALPHA`, the AZ-ID map, the outside signals).
    pub model: ModelConfig,
    /// Backtests replaying at once (each one is CPU work per request): past it, 503 busy.
    pub backtests: Arc<Semaphore>,
}

impl AppState {
    /// The handlers' state for `settings` over `view`, its metrics in `registry`.
    pub fn new(settings: &Settings, view: Arc<LiveView>, registry: &Registry) -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let limits = &settings.limits;
        Self {
            view,
            fits: Fits::new(FITS_KEPT, registry),
            defaults: Defaults {
                window: settings.event_filter_window,
                strategy: settings.strategy,
                half_life: settings.half_life,
                confidence: settings.confidence,
                pools_limit: limits.pools_default_limit as usize,
                stale_after: settings.stale_after,
                diversity_tolerance: settings.diversity_tolerance,
            },
            max_clock_skew: limits.max_clock_skew,
            model: ModelConfig {
                change_alpha: settings.change_alpha,
                zone_ids: settings.model_inputs.zone_ids.clone(),
                signals: settings.model_inputs.signals.clone(),
                ..ModelConfig::default()
            },
            backtests: Arc::new(Semaphore::new(
                limits.max_concurrent_backtests.unwrap_or(cores).max(1),
            )),
        }
    }
}
