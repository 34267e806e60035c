//! Reading the raw event history with DataFusion and tallying it per pool.
//!
//! DataFusion does the heavy lifting: a listing table over NDJSON with an explicit schema, explicit
//! partition roots (so a 24-hour window never opens last month's objects), projection of the five
//! columns, and filters built as DataFusion expressions from parsed values: user input never becomes SQL
//! text. The tally itself is a single pass over the Arrow batches in Rust (the `tally` module), because it
//! needs what SQL makes awkward and memory-hungry: counting each event once (the ingestion pipeline is
//! at-least-once), recency weights, and pool ids parsed into their parts.
//!
//! This is the reference reader: the compactor's, and the one the live view ([`crate::live`]) is
//! tested against. The view uses the same reader (`ndjson`) for the objects it loads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use object_store::path::Path;

use pool_core::event::PoolId;
use pool_storage::Storage;

use crate::catalog::Catalog;
use crate::ndjson::{ReadStats, TolerantNdjson};
use crate::query::{Query, ScanReport};
use crate::rollup::SigningKey;
use crate::table::{self, Choice, Layout};
use crate::tally::{Accumulator, PoolCount, SeenEvents, Tally};

/// Per-pool tallies of one scan, plus the scan's report.
#[derive(Debug)]
pub struct Tallies {
    /// In pool-id order.
    pub pools: Vec<(PoolId, Tally)>,
    pub report: ScanReport,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("event storage {location} is unavailable: {message}")]
    Storage { location: String, message: String },
    #[error("reading the event history failed: {0}")]
    Engine(String),
}

/// Told about what scans find, so a service can count it (pool-selector's Prometheus metrics).
pub trait ScanObserver: Send + Sync {
    /// A scan finished.
    fn scanned(&self, report: &ScanReport);
    /// An object was found to hold `bad_lines` malformed lines (told once per object).
    fn quarantined(&self, bad_lines: u64);
}

/// Ignores everything (tools, the compactor's own scans).
pub struct NoObserver;

impl ScanObserver for NoObserver {
    fn scanned(&self, _: &ScanReport) {}
    fn quarantined(&self, _: u64) {}
}

/// How the history is read.
#[derive(Debug, Clone, Copy)]
pub struct SourceOptions {
    /// Count each event once (the ingestion pipeline delivers at least once).
    pub dedup: bool,
    /// Rollups decoded in memory (the compactor's day merges) are kept up to this many bytes.
    pub rollup_cache_bytes: u64,
    /// `ROLLUP_HMAC_KEY`: rollups are signed with it when written and refused unless signed with it when
    /// read ([`crate::rollup::SigningKey`]). `None`: neither.
    pub rollup_key: Option<SigningKey>,
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            dedup: true,
            rollup_cache_bytes: 64 << 20,
            rollup_key: None,
        }
    }
}

/// The event history and everything needed to scan it.
pub struct EventSource {
    storage: Storage,
    /// Object ranges whose bad lines were already logged and counted (bounded: forgetting one only
    /// logs it again).
    reported: moka::sync::Cache<(Path, u64, u64), ()>,
    observer: Arc<dyn ScanObserver>,
    target_partitions: usize,
    options: SourceOptions,
    /// Seeded at random per process: the dedup key cannot be aimed at.
    hasher: ahash::RandomState,
    /// Once hive partitions are seen they stay (writers only add objects).
    partitioned: AtomicBool,
    catalog: Catalog,
}

fn is_storage_error(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => true,
        DataFusionError::Context(_, inner) => is_storage_error(inner),
        DataFusionError::Shared(inner) => is_storage_error(inner),
        DataFusionError::External(inner) => {
            inner.downcast_ref::<object_store::Error>().is_some()
                || inner.downcast_ref::<std::io::Error>().is_some()
        }
        _ => false,
    }
}

fn is_not_found(e: &DataFusionError) -> bool {
    match e {
        DataFusionError::ObjectStore(inner) => {
            matches!(**inner, object_store::Error::NotFound { .. })
        }
        DataFusionError::Context(_, inner) => is_not_found(inner),
        _ => false,
    }
}

/// A DataFusion session over `storage`'s store, `partitions` wide.
pub(crate) fn session(
    storage: &Storage,
    partitions: usize,
) -> Result<SessionContext, DataFusionError> {
    // No listing cache: new objects land every few seconds and must be visible on the next request.
    let runtime = RuntimeEnvBuilder::new()
        .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
        .build_arc()?;
    runtime.register_object_store(&storage.store_url, Arc::clone(&storage.store));
    let config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_collect_statistics(false)
        .with_repartition_file_scans(true);
    Ok(SessionContext::new_with_config_rt(config, runtime))
}

pub(crate) fn is_storage_failure(e: &DataFusionError) -> bool {
    is_storage_error(e)
}

/// The outcome of one raw scan: per-pool counts (with moments when collected) and the report.
pub(crate) struct RawScan {
    pub pools: Vec<(PoolId, PoolCount)>,
    pub report: ScanReport,
}

impl EventSource {
    pub fn new(storage: Storage, options: SourceOptions, observer: Arc<dyn ScanObserver>) -> Self {
        let catalog = Catalog::with_key(
            storage.clone(),
            options.rollup_cache_bytes,
            options.rollup_key,
        );
        Self {
            storage,
            reported: moka::sync::Cache::builder()
                .max_capacity(16 << 20)
                .weigher(|k: &(Path, u64, u64), _: &()| (k.0.as_ref().len() + 64) as u32)
                .build(),
            observer,
            target_partitions: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            options,
            hasher: ahash::RandomState::new(),
            partitioned: AtomicBool::new(false),
            catalog,
        }
    }

    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(crate) fn options(&self) -> &SourceOptions {
        &self.options
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn storage_error(&self, message: impl ToString) -> QueryError {
        QueryError::Storage {
            location: self.storage.display.clone(),
            message: message.to_string(),
        }
    }

    pub(crate) async fn layout(&self) -> Result<Layout, QueryError> {
        if self.storage.single_object {
            return Ok(Layout::SingleObject);
        }
        if self.partitioned.load(Ordering::Relaxed) {
            return Ok(Layout::Partitioned);
        }
        let listing = self
            .storage
            .store
            .list_with_delimiter(Some(&self.storage.root))
            .await
            .map_err(|e| self.storage_error(e))?;
        let partitioned = listing
            .common_prefixes
            .iter()
            .any(|p| p.filename().is_some_and(|f| f.starts_with("dt=")));
        if partitioned {
            self.partitioned.store(true, Ordering::Relaxed);
            Ok(Layout::Partitioned)
        } else {
            Ok(Layout::Flat)
        }
    }

    /// Tally every pool that matches `q` from the raw events: the reference the live view is tested
    /// against, and what tools read.
    pub async fn tally(self: &Arc<Self>, q: &Query) -> Result<Tallies, QueryError> {
        let started = Instant::now();
        let layout = self.layout().await?;
        let choice = match layout {
            Layout::Partitioned => match table::window_roots(q.cutoff(), q.now) {
                Some(roots) => Choice::Roots(roots),
                None => Choice::Whole,
            },
            _ => Choice::Whole,
        };
        let raw = self.scan_raw(q, layout, choice, None).await?;
        let mut result = Tallies {
            pools: raw.pools.into_iter().map(|(p, c)| (p, c.tally)).collect(),
            report: raw.report,
        };
        // A fixed order makes every consumer's answer (a seeded draw, the fit's float sums)
        // independent of how the scan went.
        result
            .pools
            .sort_unstable_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        result.report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.observer.scanned(&result.report);
        Ok(result)
    }

    /// Scan raw objects chosen by `choice` and tally them; `moments_mid` collects per-pool moments about
    /// that instant (compaction of one hour). Lines that are not valid events are skipped and counted
    /// by the reader ([`crate::ndjson`]); only storage and engine failures are errors.
    pub(crate) async fn scan_raw(
        self: &Arc<Self>,
        q: &Query,
        layout: Layout,
        choice: Choice,
        moments_mid: Option<i64>,
    ) -> Result<RawScan, QueryError> {
        match self.scan_once(q, layout, &choice, moments_mid).await {
            Ok(t) => Ok(t),
            Err(e) if is_storage_error(&e) => Err(self.storage_error(e)),
            Err(e) => Err(QueryError::Engine(e.to_string())),
        }
    }

    fn session(&self) -> Result<SessionContext, DataFusionError> {
        session(&self.storage, self.target_partitions)
    }

    /// The reader for one scan: its counters, and a hook that logs and counts each object range's bad
    /// lines once per process.
    fn format(self: &Arc<Self>, stats: &Arc<ReadStats>) -> Arc<TolerantNdjson> {
        let this = Arc::downgrade(self);
        Arc::new(TolerantNdjson::new(
            Arc::clone(stats),
            Arc::new(move |path: &Path, size: u64, start: u64, bad_lines: u64| {
                let Some(this) = this.upgrade() else { return };
                let key = (path.clone(), size, start);
                if this.reported.contains_key(&key) {
                    return;
                }
                this.reported.insert(key, ());
                tracing::warn!(
                    object = %path,
                    bad_lines,
                    "malformed lines in an event object; they are skipped and the rest is counted"
                );
                this.observer.quarantined(bad_lines);
            }),
        ))
    }

    async fn scan_once(
        self: &Arc<Self>,
        q: &Query,
        layout: Layout,
        choice: &Choice,
        moments_mid: Option<i64>,
    ) -> Result<RawScan, DataFusionError> {
        let stats = Arc::new(ReadStats::default());
        let ctx = self.session()?;
        let table = table::listing_table(&self.storage, layout, choice, self.format(&stats))?;
        let mut df = ctx.read_table(Arc::new(table))?;
        for f in table::partition_filters(q, layout, choice)
            .into_iter()
            .chain(table::row_filters(q))
        {
            df = df.filter(f)?;
        }
        let df = df.select_columns(&["pool_id", "job_id", "finished_at", "status", "reason"])?;
        let streams = match df.execute_stream_partitioned().await {
            Ok(s) => s,
            // An empty or missing folder is "no data", not an outage.
            Err(e) if is_not_found(&e) => {
                return Ok(RawScan {
                    pools: vec![],
                    report: ScanReport::default(),
                });
            }
            Err(e) => return Err(e),
        };
        // One task per partition: each decodes its objects and tallies them on its own core; they share
        // only the set of events already counted.
        let seen = Arc::new(SeenEvents::default());
        let query = Arc::new(q.clone());
        // A JoinSet, so a scan that is dropped (its every waiter gone) aborts its partition tasks too.
        let mut tasks = tokio::task::JoinSet::new();
        for (i, mut stream) in streams.into_iter().enumerate() {
            let mut acc = Accumulator::new(
                Arc::clone(&query),
                self.options.dedup.then(|| Arc::clone(&seen)),
                self.hasher.clone(),
                moments_mid,
            );
            tasks.spawn(async move {
                while let Some(batch) = stream.try_next().await? {
                    acc.add_batch(&batch);
                }
                Ok::<_, DataFusionError>((i, acc))
            });
        }
        let mut parts = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            parts.push(joined.map_err(|e| DataFusionError::External(Box::new(e)))??);
        }
        // Merged in partition order, so a compaction of the same objects writes the same bytes.
        parts.sort_unstable_by_key(|(i, _)| *i);
        let parts = parts.into_iter().map(|(_, acc)| acc).collect();
        let (pools, mut report) = Accumulator::merge(parts);
        report.objects = stats.objects.load(Ordering::Relaxed);
        report.bytes = stats.bytes.load(Ordering::Relaxed);
        report.skipped_lines = stats.skipped_lines.load(Ordering::Relaxed);
        report.quarantined_objects = stats.objects_with_bad_lines.load(Ordering::Relaxed);
        Ok(RawScan { pools, report })
    }
}
