//! What the HTTP handlers share: the scan gate, the request-independent defaults and the bounds.
//! Its own module so that every handler module ([`crate::routes`], [`crate::backtest`]) depends on it
//! and none on another.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use pool_core::window::Window;
use pool_ranking::ModelConfig;

use crate::ranking::Strategy;
use crate::scans::ScanGate;

/// Request-independent defaults, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Defaults {
    pub window: Window,
    pub strategy: Strategy,
    pub half_life: Option<Duration>,
    pub confidence: f64,
    /// How many pools `/pools` returns when the request sets no `limit`.
    pub pools_limit: usize,
    /// Newest event older than this: the answer says `stale` (`STALE_AFTER`).
    pub stale_after: Duration,
    /// Alternatives within this much of the next best score may be preferred for diversity.
    pub diversity_tolerance: f64,
}

/// Shared state of the handlers.
pub struct AppState {
    pub scans: ScanGate,
    pub defaults: Defaults,
    /// Events stamped further ahead of the server's clock than this are ignored (`MAX_CLOCK_SKEW`).
    pub max_clock_skew: Duration,
    /// Change tests and priors (`CHANGE_ALPHA`).
    pub model: ModelConfig,
    /// Backtests replaying at once (each one is CPU work after its scan).
    pub backtests: Arc<Semaphore>,
}
