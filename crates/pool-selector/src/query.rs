//! Reading the event history with DataFusion and tallying it per pool.
//!
//! DataFusion does the heavy lifting: a listing table over NDJSON with an explicit schema, `dt`/`hr`
//! hive partition columns when the layout has them (so a 24-hour window never opens last month's
//! objects), projection of the five columns, and filters built as DataFusion expressions from parsed
//! values: user input never becomes SQL text. The tally itself is a single pass over the Arrow batches
//! in Rust, because it needs what SQL makes awkward and memory-hungry: counting each `job_id` once (the
//! ingestion pipeline is at-least-once), recency weights, and pool ids parsed into their parts.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::functions::expr_fn::{ends_with, starts_with};
use datafusion::prelude::{Expr, SessionConfig, SessionContext, col, lit};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::Serialize;

use pool_core::event::{
    AvailabilityZone, InstanceType, Outcome, Partition, PoolId, SPOT_INSTANCE_TERMINATION,
    parse_timestamp_micros,
};
use pool_core::storage::Storage;
use pool_core::window::Window;

use crate::metrics::SelectorMetrics;
use crate::ranking::Tally;
use crate::scan_store::{Quarantine, ScanStore};

/// Longest window (in days, counting the day after today) read from per-partition roots instead of a
/// listing of the whole history; see [`EventSource::rooted_table`].
const MAX_ROOTED_WINDOW_DAYS: i64 = 31;

/// The columns read from every event. All nullable: a missing field is an invalid row, not a failed query.
pub fn event_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        // Read as text and parsed in the tally (`parse_timestamp_micros`): Arrow's general timestamp
        // parser was a tenth of a whole-history scan.
        Field::new("finished_at", DataType::Utf8, true),
        Field::new("job_id", DataType::Utf8, true),
        Field::new("pool_id", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("reason", DataType::Utf8, true),
    ]))
}

/// What a ranking request asks of the history. Every field is already parsed and validated.
#[derive(Debug, Clone)]
pub struct Query {
    pub instance_types: Vec<InstanceType>,
    pub zones: Vec<AvailabilityZone>,
    pub window: Window,
    /// Recency weighting: a job `half_life` old counts half as much as one finishing now.
    pub half_life: Option<Duration>,
    pub now: DateTime<Utc>,
}

impl Query {
    fn cutoff(&self) -> Option<DateTime<Utc>> {
        self.window
            .duration()
            .and_then(|d| chrono::Duration::from_std(d).ok())
            .map(|d| self.now - d)
    }

    fn wants(&self, pool: &PoolId) -> bool {
        (self.instance_types.is_empty() || self.instance_types.contains(pool.instance_type()))
            && (self.zones.is_empty() || self.zones.contains(pool.availability_zone()))
    }
}

/// What one scan read and skipped.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ScanReport {
    /// Objects opened.
    pub objects: u64,
    /// Bytes read from storage.
    pub bytes: u64,
    /// Event rows that matched the filters.
    pub rows: u64,
    /// Rows for the same `job_id` seen again (at-least-once delivery), counted once.
    pub duplicates: u64,
    /// Rows that decoded but are not valid events (bad pool id, status/reason mismatch, missing field).
    pub invalid_rows: u64,
    /// Malformed lines skipped inside quarantined objects.
    pub skipped_lines: u64,
    /// Objects served from quarantine (malformed objects with their bad lines removed).
    pub quarantined_objects: u64,
    /// Wall time of the scan in milliseconds.
    pub elapsed_ms: f64,
}

/// Per-pool tallies of one scan, plus the scan's report.
#[derive(Debug)]
pub struct Tallies {
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

/// The event history and everything needed to scan it.
pub struct EventSource {
    storage: Storage,
    quarantine: Arc<Quarantine>,
    metrics: SelectorMetrics,
    target_partitions: usize,
    dedup: bool,
    /// Once hive partitions are seen they stay (writers only add objects).
    partitioned: AtomicBool,
    validating: AtomicBool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    SingleObject,
    Flat,
    Partitioned,
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

impl EventSource {
    pub fn new(storage: Storage, metrics: SelectorMetrics, dedup: bool) -> Self {
        Self {
            storage,
            quarantine: Arc::default(),
            metrics,
            target_partitions: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            dedup,
            partitioned: AtomicBool::new(false),
            validating: AtomicBool::new(false),
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    fn storage_error(&self, message: impl ToString) -> QueryError {
        QueryError::Storage {
            location: self.storage.display.clone(),
            message: message.to_string(),
        }
    }

    async fn layout(&self) -> Result<Layout, QueryError> {
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

    fn table(&self, layout: Layout) -> Result<ListingTable, DataFusionError> {
        let url = ListingTableUrl::parse(self.storage.root_url())?;
        let mut options = ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(
            if layout == Layout::SingleObject {
                ""
            } else {
                ".json"
            },
        );
        if layout == Layout::Partitioned {
            options = options.with_table_partition_cols(vec![
                ("dt".to_owned(), DataType::Utf8),
                ("hr".to_owned(), DataType::Utf8),
            ]);
        }
        ListingTable::try_new(
            ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(event_schema()),
        )
    }

    /// A listing table over only the folders a windowed query can need, or `None` when the whole table
    /// must be listed.
    ///
    /// DataFusion narrows a listing by a partition prefix only for equality filters; a range on
    /// `dt`/`hr` lists every partition of the history first and prunes afterwards. On S3 with the
    /// ingest-worker writing an object per partition every few seconds, that listing grows by about a
    /// million keys a month, so a 24-hour query would pay for 30 days of listing. Windows of up to
    /// [`MAX_ROOTED_WINDOW_DAYS`] are therefore read from explicit roots, listed concurrently: the hours
    /// of the cutoff's day from the cutoff hour on (`dt=D/hr=H/`), then whole days (`dt=D/`) up to the
    /// day after today, so events stamped up to a day ahead (producer clock skew) are still counted.
    /// The row filter on `finished_at` keeps the window exact.
    fn rooted_table(&self, q: &Query) -> Result<Option<ListingTable>, DataFusionError> {
        let Some(cutoff) = q.cutoff() else {
            return Ok(None);
        };
        let last_day = (q.now + chrono::Duration::days(1)).date_naive();
        let first = Partition::of(&cutoff);
        if (last_day - first.date).num_days() > MAX_ROOTED_WINDOW_DAYS {
            return Ok(None);
        }
        let base = self.storage.root_url();
        let mut roots = Vec::with_capacity(24 + MAX_ROOTED_WINDOW_DAYS as usize);
        for hour in first.hour..24 {
            let p = Partition {
                date: first.date,
                hour,
            };
            roots.push(format!("{base}{}/", p.path()));
        }
        let mut day = first.date;
        while day < last_day {
            day = day
                .succ_opt()
                .expect("dates this close to now have a successor");
            roots.push(format!("{base}{}/", Partition::day_folder(day)));
        }
        let urls = roots
            .iter()
            .map(ListingTableUrl::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let options =
            ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".json");
        ListingTable::try_new(
            ListingTableConfig::new_with_multi_paths(urls)
                .with_listing_options(options)
                .with_schema(event_schema()),
        )
        .map(Some)
    }

    /// The table a query reads and the partition filters that go with it: explicit roots for a short
    /// window over the hive layout (nothing left to prune), otherwise the whole table pruned by
    /// `dt`/`hr`. Scans and the malformed-object check both read through here, so they list the same
    /// objects.
    fn scan_table(
        &self,
        q: &Query,
        layout: Layout,
    ) -> Result<(ListingTable, Vec<Expr>), DataFusionError> {
        if layout == Layout::Partitioned
            && let Some(table) = self.rooted_table(q)?
        {
            return Ok((table, vec![]));
        }
        Ok((self.table(layout)?, self.partition_filters(q, layout)))
    }

    /// Filters that only touch `dt`/`hr`: DataFusion evaluates them on the listing, before any object
    /// is opened.
    fn partition_filters(&self, q: &Query, layout: Layout) -> Vec<Expr> {
        match (layout, q.cutoff()) {
            (Layout::Partitioned, Some(cutoff)) => {
                let p = Partition::of(&cutoff);
                vec![
                    col("dt")
                        .gt(lit(p.dt()))
                        .or(col("dt").eq(lit(p.dt())).and(col("hr").gt_eq(lit(p.hr())))),
                ]
            }
            _ => vec![],
        }
    }

    /// Row filters on the event columns, pushed below the projection.
    fn row_filters(&self, q: &Query) -> Vec<Expr> {
        // The exact window (`finished_at` ≥ cutoff) is applied in the tally, where each timestamp is
        // parsed anyway; partitions outside it were never listed or opened.
        let mut filters = vec![];
        // Cheap prefix/suffix pre-filters; the exact match on the parsed pool id happens in the tally.
        if let Some(e) = any_of(
            q.instance_types
                .iter()
                .map(|t| starts_with(col("pool_id"), lit(format!("pool-{t}-")))),
        ) {
            filters.push(e);
        }
        if let Some(e) = any_of(
            q.zones
                .iter()
                .map(|z| ends_with(col("pool_id"), lit(format!("-{z}")))),
        ) {
            filters.push(e);
        }
        filters
    }

    /// Scan the history and tally every pool that matches `q`.
    pub async fn tally(self: &Arc<Self>, q: &Query) -> Result<Tallies, QueryError> {
        let started = Instant::now();
        let layout = self.layout().await?;
        let mut attempt = 0;
        let mut result = loop {
            match self.scan_once(q, layout).await {
                Ok(t) => break t,
                Err(e) if is_storage_error(&e) => return Err(self.storage_error(e)),
                Err(e) if attempt == 0 => {
                    // Most likely a malformed object: find it, quarantine it, and scan again.
                    tracing::warn!(error = %e, "scan failed; checking objects for malformed lines");
                    let found = self.validate_objects(q, layout).await?;
                    if found == 0 {
                        return Err(QueryError::Engine(e.to_string()));
                    }
                    attempt += 1;
                }
                Err(e) => return Err(QueryError::Engine(e.to_string())),
            }
        };
        if result.report.invalid_rows > 0 {
            // The rows were skipped already; find the objects holding them so the log names them and
            // later scans skip them before they reach the engine.
            self.validate_in_background(q.clone(), layout);
        }
        result.report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.metrics.observe_scan(&result.report);
        Ok(result)
    }

    fn session(&self, store: Arc<ScanStore>) -> Result<SessionContext, DataFusionError> {
        // No listing cache: new objects land every few seconds and must be visible on the next request.
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()?;
        runtime.register_object_store(&self.storage.store_url, store);
        let config = SessionConfig::new()
            .with_target_partitions(self.target_partitions)
            .with_collect_statistics(false)
            // A quarantined object is served shorter than listed; never split one into byte ranges.
            .with_repartition_file_scans(self.quarantine.is_empty());
        Ok(SessionContext::new_with_config_rt(config, runtime))
    }

    async fn scan_once(&self, q: &Query, layout: Layout) -> Result<Tallies, DataFusionError> {
        let store = Arc::new(ScanStore::new(
            Arc::clone(&self.storage.store),
            Arc::clone(&self.quarantine),
        ));
        let ctx = self.session(Arc::clone(&store))?;
        let (table, partition_filters) = self.scan_table(q, layout)?;
        let mut df = ctx.read_table(Arc::new(table))?;
        for f in partition_filters.into_iter().chain(self.row_filters(q)) {
            df = df.filter(f)?;
        }
        let df = df.select_columns(&["pool_id", "job_id", "finished_at", "status", "reason"])?;
        let streams = match df.execute_stream_partitioned().await {
            Ok(s) => s,
            // An empty or missing folder is "no data", not an outage.
            Err(e) if is_not_found(&e) => {
                return Ok(Tallies {
                    pools: vec![],
                    report: ScanReport::default(),
                });
            }
            Err(e) => return Err(e),
        };
        // One task per partition: each decodes its objects and tallies them on its own core; they share
        // only the set of job ids already counted.
        let seen = Arc::new(SeenJobs::default());
        let tasks: Vec<_> = streams
            .into_iter()
            .map(|mut stream| {
                let mut acc =
                    Accumulator::new(Arc::new(q.clone()), self.dedup.then(|| Arc::clone(&seen)));
                tokio::spawn(async move {
                    while let Some(batch) = stream.try_next().await? {
                        acc.add_batch(&batch);
                    }
                    Ok::<_, DataFusionError>(acc)
                })
            })
            .collect();
        let mut parts = Vec::with_capacity(tasks.len());
        for task in tasks {
            parts.push(
                task.await
                    .map_err(|e| DataFusionError::External(Box::new(e)))??,
            );
        }
        let acc = Accumulator::merge(parts);
        let stats = &store.stats;
        let mut report = acc.report.clone();
        report.objects = stats.objects.load(Ordering::Relaxed);
        report.bytes = stats.bytes.load(Ordering::Relaxed);
        report.skipped_lines = stats.skipped_lines.load(Ordering::Relaxed);
        report.quarantined_objects = stats.quarantined_objects.load(Ordering::Relaxed);
        Ok(Tallies {
            pools: acc.finish(),
            report,
        })
    }

    /// Check every object the query would read that is not known to be clean; quarantine the malformed
    /// ones. Returns how many were newly quarantined.
    async fn validate_objects(&self, q: &Query, layout: Layout) -> Result<usize, QueryError> {
        let (table, filters) = self
            .scan_table(q, layout)
            .map_err(|e| QueryError::Engine(e.to_string()))?;
        let store = Arc::new(ScanStore::new(
            Arc::clone(&self.storage.store),
            Arc::clone(&self.quarantine),
        ));
        let ctx = self
            .session(store)
            .map_err(|e| QueryError::Engine(e.to_string()))?;
        let state = ctx.state();
        let listed = table
            .list_files_for_scan(&state, &filters, None)
            .await
            .map_err(|e| self.storage_error(e))?;
        let candidates: Vec<_> = listed
            .file_groups
            .into_iter()
            .flat_map(|g| g.into_inner())
            .map(|f| f.object_meta)
            .filter(|m| {
                self.quarantine.get(&m.location).is_none()
                    && !self.quarantine.is_known_good(&m.location, m.size)
            })
            .collect();
        let inner = &self.storage.store;
        let found = futures::stream::iter(candidates)
            .map(|meta| async move {
                let bytes = inner.get(&meta.location).await?.bytes().await?;
                Ok::<_, object_store::Error>((meta.location, bytes))
            })
            .buffer_unordered(4)
            .map_ok(|(path, bytes)| self.check_object(path, &bytes))
            .try_fold(0usize, |n, bad| async move { Ok(n + usize::from(bad)) })
            .await
            .map_err(|e| self.storage_error(e))?;
        Ok(found)
    }

    /// Returns true when the object was malformed and is now quarantined.
    fn check_object(&self, path: Path, bytes: &[u8]) -> bool {
        let s = Quarantine::sanitize(bytes);
        if s.quarantined.bad_lines == 0 {
            self.quarantine.mark_good(path, bytes.len() as u64);
            return false;
        }
        tracing::warn!(
            object = %path,
            bad_lines = s.quarantined.bad_lines,
            good_lines = s.quarantined.good_lines,
            examples = ?s.examples,
            "malformed lines in an event object; they are skipped from now on"
        );
        self.metrics.bad_lines.inc_by(s.quarantined.bad_lines);
        self.metrics.quarantined_objects.inc();
        self.quarantine.insert(path, s.quarantined);
        true
    }

    fn validate_in_background(self: &Arc<Self>, q: Query, layout: Layout) {
        if self.validating.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(e) = this.validate_objects(&q, layout).await {
                tracing::warn!(error = %e, "background check of event objects failed");
            }
            this.validating.store(false, Ordering::Release);
        });
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

fn any_of(exprs: impl Iterator<Item = Expr>) -> Option<Expr> {
    exprs.reduce(|a, b| a.or(b))
}

/// Hashes are already uniformly distributed: the set only needs to use them as they are.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// 64-bit hashes of the job ids counted so far, sharded so partitions rarely wait on each other. Two
/// distinct ids collide with probability about n²/2⁶⁵ (1e-7 for 2M jobs): a vanishing error traded for
/// 8 bytes per job instead of the id itself.
struct SeenJobs {
    shards: Vec<Mutex<HashSet<u64, BuildHasherDefault<IdentityHasher>>>>,
}

impl Default for SeenJobs {
    fn default() -> Self {
        Self {
            shards: (0..Self::SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl SeenJobs {
    const SHARDS: usize = 64;

    /// The shard of a hash, from middle bits: the set itself uses the low bits for buckets and the top
    /// bits for its control bytes.
    fn shard(hash: u64) -> usize {
        ((hash >> 32) as usize) & (Self::SHARDS - 1)
    }
}

/// A row that passed every check and waits for the dedup verdict.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    slot: u32,
    spot: bool,
    other: bool,
    finished_micros: i64,
}

#[derive(Debug, Clone, Copy)]
enum Slot {
    Counted(usize),
    Excluded,
    Malformed,
}

/// One pass over the batches: dedup by job id, parse pool ids once per distinct pool, weight by age.
struct Accumulator {
    query: Arc<Query>,
    /// Job ids already counted, shared by the partitions of one scan; `None` when dedup is off.
    seen: Option<Arc<SeenJobs>>,
    hasher: ahash::RandomState,
    /// Raw pool id → its slot, so each distinct id is parsed once.
    index: HashMap<String, Slot, ahash::RandomState>,
    tallies: Vec<(PoolId, Tally)>,
    now_micros: i64,
    /// Rows that finished before this are outside the window (`i64::MIN`: the whole history).
    cutoff_micros: i64,
    half_life_micros: Option<f64>,
    report: ScanReport,
    /// Rows of the current batch waiting for the dedup verdict, and their hashes grouped by shard so
    /// each shard is locked once per batch instead of once per row (reused between batches).
    candidates: Vec<Candidate>,
    by_shard: Vec<Vec<(u64, u32)>>,
}

impl Accumulator {
    fn new(query: Arc<Query>, seen: Option<Arc<SeenJobs>>) -> Self {
        Self {
            now_micros: query.now.timestamp_micros(),
            cutoff_micros: query.cutoff().map_or(i64::MIN, |c| c.timestamp_micros()),
            half_life_micros: query.half_life.map(|h| h.as_micros() as f64),
            query,
            seen,
            hasher: ahash::RandomState::with_seeds(0x5eed, 0x9001, 0x7a11, 0xb1a5),
            index: HashMap::default(),
            tallies: vec![],
            report: ScanReport::default(),
            candidates: vec![],
            by_shard: vec![vec![]; SeenJobs::SHARDS],
        }
    }

    /// Combine the partitions' tallies (each job was counted by exactly one of them).
    fn merge(parts: Vec<Accumulator>) -> Accumulator {
        let mut parts = parts.into_iter();
        let mut total = parts.next().expect("a scan has at least one partition");
        let mut by_pool: HashMap<PoolId, usize> = total
            .tallies
            .iter()
            .enumerate()
            .map(|(i, (p, _))| (p.clone(), i))
            .collect();
        for part in parts {
            let r = &part.report;
            total.report.rows += r.rows;
            total.report.duplicates += r.duplicates;
            total.report.invalid_rows += r.invalid_rows;
            for (pool, t) in part.tallies {
                match by_pool.get(&pool) {
                    Some(&i) => total.tallies[i].1.merge(&t),
                    None => {
                        by_pool.insert(pool.clone(), total.tallies.len());
                        total.tallies.push((pool, t));
                    }
                }
            }
        }
        total
    }

    fn slot(&mut self, raw: &str) -> Slot {
        if let Some(slot) = self.index.get(raw) {
            return *slot;
        }
        let slot = match raw.parse::<PoolId>() {
            Ok(pool) if self.query.wants(&pool) => {
                self.tallies.push((pool, Tally::default()));
                Slot::Counted(self.tallies.len() - 1)
            }
            Ok(_) => Slot::Excluded,
            Err(_) => Slot::Malformed,
        };
        self.index.insert(raw.to_owned(), slot);
        slot
    }

    fn add_batch(&mut self, batch: &RecordBatch) {
        let pools = batch.column(0).as_string::<i32>();
        let jobs = batch.column(1).as_string::<i32>();
        let times = batch.column(2).as_string::<i32>();
        let statuses = batch.column(3).as_string::<i32>();
        let reasons = batch.column(4).as_string::<i32>();
        for i in 0..batch.num_rows() {
            if pools.is_null(i) || jobs.is_null(i) || times.is_null(i) || statuses.is_null(i) {
                self.report.invalid_rows += 1;
                continue;
            }
            let Some(finished_micros) = parse_timestamp_micros(times.value(i)) else {
                self.report.invalid_rows += 1;
                continue;
            };
            // Outside the window: skipped before any other check, as a filter would have.
            if finished_micros < self.cutoff_micros {
                continue;
            }
            let slot = match self.slot(pools.value(i)) {
                Slot::Counted(slot) => slot,
                Slot::Excluded => continue,
                Slot::Malformed => {
                    self.report.invalid_rows += 1;
                    continue;
                }
            };
            let reason = if reasons.is_null(i) {
                ""
            } else {
                reasons.value(i)
            };
            let status = statuses.value(i);
            let (spot, other) = match (status, reason) {
                ("FAILED", SPOT_INSTANCE_TERMINATION) => (true, false),
                ("SUCCEEDED", "") => (false, false),
                _ => match Outcome::from_parts(status, reason) {
                    Ok(Outcome::SpotTermination) => (true, false),
                    Ok(Outcome::OtherFailure(_)) => (false, true),
                    Ok(Outcome::Succeeded) => (false, false),
                    Err(_) => {
                        self.report.invalid_rows += 1;
                        continue;
                    }
                },
            };
            let job = jobs.value(i);
            if job.is_empty() {
                self.report.invalid_rows += 1;
                continue;
            }
            let c = Candidate {
                slot: slot as u32,
                spot,
                other,
                finished_micros,
            };
            if self.seen.is_some() {
                let hash = self.hasher.hash_one(job);
                self.by_shard[SeenJobs::shard(hash)].push((hash, self.candidates.len() as u32));
                self.candidates.push(c);
            } else {
                self.count(c);
            }
        }
        if let Some(seen) = self.seen.clone() {
            self.settle(&seen);
        }
    }

    /// Count the batch's candidates whose job id was not seen before, one shard lock at a time.
    fn settle(&mut self, seen: &SeenJobs) {
        let mut by_shard = std::mem::take(&mut self.by_shard);
        let mut fresh = Vec::with_capacity(self.candidates.len());
        for (shard, pending) in by_shard.iter_mut().enumerate() {
            if pending.is_empty() {
                continue;
            }
            {
                let mut set = seen.shards[shard].lock().expect("poisoned");
                set.reserve(pending.len());
                for &(hash, idx) in pending.iter() {
                    if set.insert(hash) {
                        fresh.push(idx);
                    } else {
                        self.report.duplicates += 1;
                    }
                }
            }
            pending.clear();
        }
        self.by_shard = by_shard;
        for idx in fresh {
            self.count(self.candidates[idx as usize]);
        }
        self.candidates.clear();
    }

    fn count(&mut self, c: Candidate) {
        let weight = match self.half_life_micros {
            Some(h) => (-((self.now_micros - c.finished_micros).max(0) as f64) / h).exp2(),
            None => 1.0,
        };
        self.report.rows += 1;
        self.tallies[c.slot as usize]
            .1
            .add(c.spot, c.other, weight, c.finished_micros);
    }

    fn finish(self) -> Vec<(PoolId, Tally)> {
        self.tallies
    }
}
