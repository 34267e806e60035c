//! The live view: every pool's history as per-minute, per-hour and per-day tallies in memory, kept
//! current by reading each new object once, so an answer costs the same whatever storage holds and
//! does not need storage to be up.
//!
//! * `cells`: the tallies and how a window is summed from whole cells (pure).
//! * `state`: the view's contents and what a read adds (`ViewState`, `Delta`).
//! * `loader`: listing, reading (DataFusion over the raw NDJSON and the Parquet rollups), replacing
//!   hours that changed.
//!
//! **Grain.** A window is exact to its [`pool_core::window::Grain`]: windows of up to an hour to the
//! minute, up to 62 days to the hour, longer ones to the day ([`pool_core::window::Window::start`]).
//! Minutes are kept for the previous and the current hour (read raw), hours for
//! `HOUR_CELL_DAYS` (64) days, days for the whole history.
//!
//! **Memory.** A cell is 96 bytes with its index; a pool with jobs in every hour holds about
//! 1,540 hour cells, one day cell per day and at most 180 minute cells: ~184 kB for a year, 80 MB for
//! 432 such pools. Dedup state (8 bytes per event) is kept for the live hours only.

mod cells;
mod loader;
mod state;

use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;

use pool_core::event::PoolId;
use pool_storage::Storage;

use crate::query::Query;
use crate::scan::QueryError;
use crate::tally::Tally;

pub use loader::{ReadTotals, RefreshReport};

use loader::{Loader, Shared};

/// How the view reads and refreshes the history.
#[derive(Debug, Clone, Copy)]
pub struct ViewOptions {
    /// Count each event once (the pipeline delivers at least once).
    pub dedup: bool,
    /// Load closed hours from the compactor's rollups when their manifest matches the objects.
    pub use_rollups: bool,
    /// The live hours reach as far ahead as events may be stamped.
    pub max_clock_skew: Duration,
    /// How often the rollups are listed (a rewritten one replaces the hours it changed).
    pub rollup_recheck: Duration,
    /// How often the whole root is listed (a late object in an old hour counts within this).
    pub relist_interval: Duration,
    /// Hours read at once when loading.
    pub read_concurrency: usize,
    /// Partitions (cores) one read uses.
    pub read_partitions: usize,
    /// `ROLLUP_HMAC_KEY`: a rollup is used only when signed with it (an unsigned or forged one is
    /// refused and its hours are read raw). `None`: rollups are taken as they are.
    pub rollup_key: Option<crate::rollup::SigningKey>,
}

impl Default for ViewOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Self {
            dedup: true,
            use_rollups: true,
            max_clock_skew: pool_core::event::DEFAULT_MAX_CLOCK_SKEW,
            rollup_recheck: Duration::from_secs(10),
            relist_interval: Duration::from_secs(60),
            read_concurrency: 8,
            read_partitions: cores,
            rollup_key: None,
        }
    }
}

/// Told what the view does, so a service can count it (pool-selector's Prometheus metrics).
pub trait ViewObserver: Send + Sync {
    /// Raw objects read, and their bytes.
    fn read(&self, objects: u64, bytes: u64);
    /// An object held `bad_lines` malformed lines (skipped; the rest counted).
    fn quarantined(&self, bad_lines: u64);
    /// A refresh finished.
    fn refreshed(&self, report: &RefreshReport, took: Duration);
    /// A refresh failed (the view keeps answering from what it holds).
    fn failed(&self, error: &QueryError);
    /// The view's state, after every refresh attempt.
    fn status(&self, status: &ViewStatus, now: DateTime<Utc>);
}

/// Ignores everything (tests, tools).
pub struct NoViewObserver;

impl ViewObserver for NoViewObserver {
    fn read(&self, _: u64, _: u64) {}
    fn quarantined(&self, _: u64) {}
    fn refreshed(&self, _: &RefreshReport, _: Duration) {}
    fn failed(&self, _: &QueryError) {}
    fn status(&self, _: &ViewStatus, _: DateTime<Utc>) {}
}

/// What the view holds and how current it is.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ViewStatus {
    /// The first load finished: the view answers.
    pub loaded: bool,
    /// Changes to the cells so far.
    pub version: u64,
    /// When the last refresh succeeded (UTC).
    #[schema(value_type = Option<String>)]
    pub refreshed_at: Option<DateTime<Utc>>,
    /// The last refresh failed (storage unreachable, …): the view answers from what it holds.
    pub failing: bool,
    pub totals: ReadTotals,
    pub pools: usize,
    /// Cells held: minutes, hours, days.
    pub cells: [usize; 3],
    /// Bytes held by the cells and the dedup state.
    pub memory_bytes: usize,
    /// Event hashes held to count redelivered copies once (live hours only).
    pub dedup_hashes: usize,
}

impl ViewStatus {
    /// Seconds since the last successful refresh (`None` before the first).
    pub fn age_seconds(&self, now: DateTime<Utc>) -> Option<f64> {
        self.refreshed_at
            .map(|t| ((now - t).num_milliseconds().max(0)) as f64 / 1e3)
    }
}

/// The live view of one history. See the module docs.
pub struct LiveView {
    storage: Storage,
    options: ViewOptions,
    observer: Arc<dyn ViewObserver>,
    shared: Shared,
    loader: tokio::sync::Mutex<Option<Loader>>,
    status: RwLock<ViewStatus>,
}

impl LiveView {
    pub fn new(storage: Storage, options: ViewOptions, observer: Arc<dyn ViewObserver>) -> Self {
        Self {
            storage,
            options,
            observer,
            shared: RwLock::new(None),
            loader: tokio::sync::Mutex::new(None),
            status: RwLock::new(ViewStatus::default()),
        }
    }

    /// Bring the view up to date as of `now`: the first call (or one after a change that needs it)
    /// loads the whole history; later ones read what is new. On failure the view keeps what it held.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Result<RefreshReport, QueryError> {
        let started = Instant::now();
        let mut guard = self.loader.lock().await;
        let result = match guard.as_mut() {
            Some(loader) if !loader.rebuild => loader.refresh(&self.shared, now).await,
            _ => {
                let rebuilds = guard.as_ref().map_or(0, |l| l.totals.rebuilds + 1);
                match Loader::load(
                    self.storage.clone(),
                    self.options,
                    Arc::clone(&self.observer),
                    now,
                )
                .await
                {
                    Ok((mut loader, mut state)) => {
                        loader.totals.rebuilds = rebuilds;
                        let mut shared = self.shared.write().expect("poisoned");
                        let previous = shared.as_ref().map_or(0, |s| s.version());
                        state.set_version(previous + 1);
                        *shared = Some(state);
                        drop(shared);
                        let totals = loader.totals;
                        *guard = Some(loader);
                        Ok(RefreshReport {
                            changed: true,
                            objects: totals.objects,
                            bytes: totals.bytes,
                            events: totals.events,
                            future_events: totals.future_events,
                            rebuilt: rebuilds > 0,
                            ..RefreshReport::default()
                        })
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let took = started.elapsed();
        {
            let mut status = self.status.write().expect("poisoned");
            match &result {
                Ok(report) => {
                    status.refreshed_at = Some(now);
                    status.failing = false;
                    self.observer.refreshed(report, took);
                }
                Err(e) => {
                    status.failing = true;
                    self.observer.failed(e);
                }
            }
            if let Some(loader) = guard.as_ref() {
                status.totals = loader.totals;
                status.dedup_hashes = loader.dedup_hashes();
            }
            if let Some(state) = self.shared.read().expect("poisoned").as_ref() {
                let holding = state.holding();
                status.loaded = true;
                status.version = state.version();
                status.pools = holding.pools;
                status.cells = holding.cells;
                status.memory_bytes = holding.bytes + status.dedup_hashes * 16;
            }
            self.observer.status(&status, now);
        }
        result
    }

    /// Every pool `q` wants with a job in its window (see `ViewState::tally`), and the
    /// version of the view it was computed from; `None` until the first load finished.
    pub fn tally(&self, q: &Query) -> Option<(u64, Vec<(PoolId, Tally)>)> {
        let shared = self.shared.read().expect("poisoned");
        let state = shared.as_ref()?;
        Some((state.version(), state.tally(q)))
    }

    /// The current version, without computing anything (`None` until loaded).
    pub fn version(&self) -> Option<u64> {
        self.shared
            .read()
            .expect("poisoned")
            .as_ref()
            .map(|s| s.version())
    }

    pub fn status(&self) -> ViewStatus {
        self.status.read().expect("poisoned").clone()
    }

    /// Refresh every `every` (from `clock`) until `stop` resolves. Failures are logged and counted;
    /// the next tick tries again.
    pub async fn run(
        self: Arc<Self>,
        every: Duration,
        clock: impl Fn() -> DateTime<Utc> + Send,
        stop: impl Future<Output = ()> + Send,
    ) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = ticks.tick() => {}
            }
            match self.refresh(clock()).await {
                Ok(_) if failing => {
                    failing = false;
                    tracing::info!("the live view is refreshing again");
                }
                Ok(_) => {}
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "refreshing the live view failed; it answers from what it holds");
                    } else {
                        tracing::debug!(error = %e, "refreshing the live view failed again");
                    }
                    failing = true;
                }
            }
        }
    }
}
