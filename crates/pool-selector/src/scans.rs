//! The bound on scans: what stops cheap requests from causing unbounded expensive work.
//!
//! * **Shared.** Identical scans in flight (same pools, window, half-life and hourly series start) run
//!   once; later requests wait on the first one's result (`scans_shared_total`).
//! * **Bounded.** At most `MAX_CONCURRENT_SCANS` scans run at once (each one already uses every core),
//!   at most `MAX_QUEUED_SCANS` wait behind them, and past that a request is answered
//!   `503 {"error":"busy"}` with `Retry-After` at once, before any work is done.
//! * **Cancelled.** A scan whose every waiter has gone (the client, or the relay at its timeout, hung
//!   up) is dropped, which aborts its task on the query runtime and frees its slot
//!   (`scans_cancelled_total`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, WeakShared};
use prometheus::{IntCounter, IntGauge, Registry};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use pool_history::{EventSource, Query, QueryError, Tallies};
use pool_http::ApiError;
use pool_http::metrics::register;

use crate::runtime::QueryRuntime;

/// What a client is told to wait before retrying a busy answer, seconds.
const BUSY_RETRY_AFTER_SECS: u32 = 2;

/// How many scans run and wait at most.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimits {
    pub max_running: usize,
    pub max_queued: usize,
}

/// Identical scans share one key: the query without its `now` (a scan started a moment earlier
/// answers the same question).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ScanKey {
    instance_types: Vec<String>,
    zones: Vec<String>,
    window_secs: u64,
    half_life_secs: Option<u64>,
    /// Start of the hourly series (seconds since the epoch): a scan with a series is never shared
    /// with one without, or with another start.
    series_from_secs: Option<i64>,
}

impl ScanKey {
    fn of(q: &Query) -> Self {
        Self {
            instance_types: q.instance_types.iter().map(|t| t.as_str().into()).collect(),
            zones: q.zones.iter().map(|z| z.as_str().into()).collect(),
            window_secs: q.window.as_secs(),
            half_life_secs: q.half_life.map(|h| h.as_secs()),
            series_from_secs: q.series_from.map(|s| s.timestamp()),
        }
    }
}

type ScanResult = Result<Arc<Tallies>, ApiError>;
type Flight = Shared<BoxFuture<'static, ScanResult>>;
type WeakFlight = WeakShared<BoxFuture<'static, ScanResult>>;

#[derive(Clone)]
struct GateMetrics {
    running: IntGauge,
    queued: IntGauge,
    shared: IntCounter,
    rejected: IntCounter,
    cancelled: IntCounter,
}

impl GateMetrics {
    fn register(registry: &Registry) -> Self {
        let gauge = |name: &str, help: &str| {
            register(registry, IntGauge::new(name, help).expect("valid metric"))
        };
        let counter = |name: &str, help: &str| {
            register(registry, IntCounter::new(name, help).expect("valid metric"))
        };
        Self {
            running: gauge(
                "scans_running",
                "Scans running now (at most MAX_CONCURRENT_SCANS).",
            ),
            queued: gauge(
                "scans_queued",
                "Scans waiting for a slot (at most MAX_QUEUED_SCANS).",
            ),
            shared: counter(
                "scans_shared_total",
                "Requests answered by joining an identical scan already in flight.",
            ),
            rejected: counter(
                "scans_rejected_total",
                "Requests answered 503 busy because every scan slot and queue place was taken.",
            ),
            cancelled: counter(
                "scans_cancelled_total",
                "Scans dropped before finishing because every request waiting on them had gone.",
            ),
        }
    }
}

struct Inner {
    source: Arc<EventSource>,
    runtime: QueryRuntime,
    slots: Arc<Semaphore>,
    max_queued: usize,
    queued: AtomicUsize,
    /// Weak, so a scan lives only as long as some request awaits it.
    inflight: Mutex<HashMap<ScanKey, (u64, WeakFlight)>>,
    next_id: AtomicU64,
    metrics: GateMetrics,
}

/// Runs scans of the history, shared, bounded and cancellable (see the module docs).
pub struct ScanGate(Arc<Inner>);

impl ScanGate {
    pub fn new(
        source: Arc<EventSource>,
        runtime: QueryRuntime,
        limits: ScanLimits,
        registry: &Registry,
    ) -> Self {
        Self(Arc::new(Inner {
            source,
            runtime,
            slots: Arc::new(Semaphore::new(limits.max_running.max(1))),
            max_queued: limits.max_queued,
            queued: AtomicUsize::new(0),
            inflight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            metrics: GateMetrics::register(registry),
        }))
    }

    pub fn source(&self) -> &Arc<EventSource> {
        &self.0.source
    }

    /// Tally `q`: join an identical scan in flight, or start one when a slot or a queue place is free.
    pub async fn tally(&self, q: &Query) -> Result<Arc<Tallies>, ApiError> {
        let key = ScanKey::of(q);
        let flight = {
            let mut inflight = self.0.inflight.lock().expect("never poisoned");
            match inflight.get(&key).and_then(|(_, weak)| weak.upgrade()) {
                Some(flight) => {
                    self.0.metrics.shared.inc();
                    flight
                }
                None => {
                    let id = self.0.next_id.fetch_add(1, Ordering::Relaxed);
                    let flight = Inner::start(&self.0, key.clone(), id, q.clone())?;
                    let weak = flight.downgrade().expect("a new future has not completed");
                    inflight.insert(key, (id, weak));
                    flight
                }
            }
        };
        flight.await
    }
}

impl Inner {
    /// Admit a new scan (a free slot, or a place in the queue) and describe it as a shared future. The
    /// admission is decided here, synchronously, so a busy answer costs nothing.
    fn start(this: &Arc<Self>, key: ScanKey, id: u64, q: Query) -> Result<Flight, ApiError> {
        let permit = match Arc::clone(&this.slots).try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                if this.queued.fetch_add(1, Ordering::AcqRel) >= this.max_queued {
                    this.queued.fetch_sub(1, Ordering::AcqRel);
                    this.metrics.rejected.inc();
                    return Err(ApiError::busy(
                        "every scan slot is taken and the queue behind them is full \
                         (MAX_CONCURRENT_SCANS, MAX_QUEUED_SCANS); retry shortly",
                        BUSY_RETRY_AFTER_SECS,
                    ));
                }
                this.metrics.queued.inc();
                None
            }
        };
        let inner = Arc::clone(this);
        // Dropped with the future, polled or not: leaves the map (if still ours), leaves the queue,
        // and counts a cancellation when the scan did not finish.
        let mut guard = FlightGuard {
            inner: Arc::clone(this),
            key,
            id,
            queued: permit.is_none(),
            finished: false,
        };
        let fut = async move {
            let _permit = match permit {
                Some(p) => p,
                None => {
                    let p = Arc::clone(&inner.slots)
                        .acquire_owned()
                        .await
                        .expect("the semaphore is never closed");
                    guard.leave_queue();
                    p
                }
            };
            inner.metrics.running.inc();
            let _running = RunningGuard(&inner.metrics.running);
            let source = Arc::clone(&inner.source);
            let mut task = AbortOnDrop(inner.runtime.spawn(async move { source.tally(&q).await }));
            let result = match (&mut task.0).await {
                Ok(Ok(t)) => Ok(Arc::new(t)),
                Ok(Err(e)) => Err(api_error(e)),
                Err(e) => Err(ApiError::internal(format!("the scan task failed: {e}"))),
            };
            guard.finish();
            result
        };
        Ok(fut.boxed().shared())
    }
}

struct FlightGuard {
    inner: Arc<Inner>,
    key: ScanKey,
    id: u64,
    queued: bool,
    finished: bool,
}

impl FlightGuard {
    fn finish(&mut self) {
        self.finished = true;
    }

    fn leave_queue(&mut self) {
        if std::mem::take(&mut self.queued) {
            self.inner.queued.fetch_sub(1, Ordering::AcqRel);
            self.inner.metrics.queued.dec();
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.leave_queue();
        if !self.finished {
            self.inner.metrics.cancelled.inc();
        }
        if let Ok(mut inflight) = self.inner.inflight.lock()
            && inflight
                .get(&self.key)
                .is_some_and(|(id, _)| *id == self.id)
        {
            inflight.remove(&self.key);
        }
    }
}

struct RunningGuard<'a>(&'a IntGauge);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Aborts the scan task on the query runtime when its waiter is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A failed read of the history, as the HTTP error a client sees. Clients are told what failed, not
/// where or how: the storage location and the backend's error text go to the log only.
fn api_error(e: QueryError) -> ApiError {
    tracing::warn!(error = %e, "scan failed");
    match e {
        QueryError::Storage { .. } => ApiError::unavailable(
            "storage_unavailable",
            "the event storage is unavailable; retry later",
        ),
        QueryError::Engine(_) => ApiError::internal("reading the event history failed"),
    }
}
