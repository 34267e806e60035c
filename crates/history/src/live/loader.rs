//! Keeping the view current: what to list, what to read, and what a change replaces.
//!
//! The history is read in units of one hourly partition (`dt=…/hr=…/`), or the whole root for the
//! flat and single-object layouts. For each unit the loader remembers the digest of what it counted
//! (the keys, sizes and e-tags of the raw objects, or a rollup hour's manifest), and for the live hours
//! (the previous, the current and, within the clock skew, the next hour) also the objects it read and
//! the hashes of the events it counted, so a new object is read once and a redelivered copy counted
//! once. Everything else keeps only its digest: dedup state is held for a few hours, not the history.
//!
//! * **Start:** one listing of the whole root and of the rollups. An hour whose rollup manifest equals
//!   the objects listed is added from the rollup (unless it is live: live hours are read raw, so their
//!   minutes are known); every other hour is read raw.
//! * **Every refresh** (`REFRESH_INTERVAL`): the live hours' folders are listed from the last key seen
//!   (less a minute of writer clock skew for time-ordered UUID names) and the new objects are read.
//! * **Every `ROLLUP_RECHECK`:** the rollups are listed; a new or rewritten one whose hour differs from
//!   what the view counted (the compactor folded in a late object) replaces that hour, after one
//!   listing of the hour decides whether the rollup or the view is behind.
//! * **Every `RELIST_INTERVAL`:** the whole root is listed; an hour whose objects changed (a late
//!   object written into an old hour) is read again whole and replaces what the view counted.
//!
//! Replacing an hour removes its hour and minute cells and recomputes its day from the day's other
//! hours, under one write lock, so a request sees the old hour or the new one, never half. The rare
//! changes that cannot be undone hour by hour (an hour older than the hour cells, an hour holding
//! events stamped in other hours, a changed object in a flat layout) rebuild the whole view in the
//! background while the old one keeps answering.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileScanConfigBuilder;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion_datasource::file_groups::FileGroup;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use pool_core::event::{Partition, PoolId, parse_timestamp_micros};
use pool_core::window::Grain;
use pool_storage::Storage;

use crate::catalog::{Catalog, Snapshot};
use crate::ndjson::{ReadStats, TolerantNdjson};
use crate::rollup::{self, Block, ObjectEntry, ROLLUPS_DIR, RollupKey};
use crate::scan::{QueryError, session};
use crate::table::{Layout, event_schema};
use crate::tally::{SeenEvents, outcome_flags};

use super::cells::Coverage;
use super::state::{Delta, ViewState};
use super::{ViewObserver, ViewOptions};

/// The view's cells, shared by the loader (writer) and requests (readers). `None` until loaded.
pub(crate) type Shared = RwLock<Option<ViewState>>;

/// How many days of hour cells the view keeps: the longest backtest (a 31-day span after a 31-day
/// training window) and the longest hour-grained window (62 days), plus the day in progress.
const HOUR_CELL_DAYS: i64 = 64;

/// Minutes are kept from the start of the previous hour: a window of up to an hour is exact to the
/// minute.
fn minute_from(now: DateTime<Utc>) -> i64 {
    Grain::Hour.floor_micros(now.timestamp_micros()) - Grain::Hour.micros()
}

fn hour_from(now: DateTime<Utc>) -> i64 {
    Grain::Day.floor_micros(now.timestamp_micros()) - HOUR_CELL_DAYS * Grain::Day.micros()
}

pub(crate) fn coverage(now: DateTime<Utc>) -> Coverage {
    Coverage {
        minute_from: minute_from(now),
        hour_from: hour_from(now),
    }
}

/// Cumulative counts of what the view read, for its report and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReadTotals {
    /// Raw objects read (each at most once, but for hours read again after a change).
    pub objects: u64,
    /// Bytes of raw objects and rollups fetched.
    pub bytes: u64,
    /// Rollup objects decoded.
    pub rollups: u64,
    /// Distinct events added.
    pub events: u64,
    /// Redelivered copies dropped.
    pub duplicates: u64,
    /// Rows that decoded but are not valid events (bad pool id, status/reason mismatch, missing field).
    pub invalid_rows: u64,
    /// Malformed lines skipped.
    pub skipped_lines: u64,
    /// Objects (or byte ranges of one) that held such lines; their other lines count.
    pub quarantined_objects: u64,
    /// Hours loaded from rollups and read raw.
    pub rollup_hours: u64,
    pub raw_hours: u64,
    /// Hours replaced after a change (a late object, a rewritten rollup).
    pub replaced_hours: u64,
    /// Whole reloads (changes that cannot be replaced hour by hour).
    pub rebuilds: u64,
    /// Events stamped further ahead than the allowed clock skew when they were read: left out of
    /// every window until their time comes (a forged `9999-12-31` never counts).
    pub future_events: u64,
}

/// The objects of a live hour and the events counted from them.
#[derive(Debug, Default)]
struct LiveUnit {
    entries: BTreeMap<String, ObjectEntry>,
    seen: Arc<SeenEvents>,
}

#[derive(Debug)]
struct Unit {
    /// Digest of what was counted: the raw objects' entries, or the rollup hour's manifest.
    digest: u64,
    from_rollup: bool,
    /// Holds events stamped outside its hour: its contribution is not all in its hour's cells.
    foreign: bool,
    live: Option<LiveUnit>,
}

/// The flat and single-object layouts: one unit, the whole root.
#[derive(Debug, Default)]
struct FlatUnit {
    entries: BTreeMap<String, ObjectEntry>,
    seen: Arc<SeenEvents>,
}

/// What one refresh did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefreshReport {
    /// The cells changed (new events, a replaced hour, a rebuild).
    pub changed: bool,
    pub objects: u64,
    pub bytes: u64,
    pub events: u64,
    pub listed_rollups: bool,
    pub relisted: bool,
    pub replaced_hours: u64,
    pub future_events: u64,
    pub rebuilt: bool,
}

/// The rollup objects seen, by key, with what changes when one is rewritten.
type RollupVersions = HashMap<Path, (u64, Option<String>, i64)>;

fn version_of(meta: &ObjectMeta) -> (u64, Option<String>, i64) {
    (
        meta.size,
        meta.e_tag.clone(),
        meta.last_modified.timestamp_micros(),
    )
}

pub(crate) struct Loader {
    storage: Storage,
    catalog: Catalog,
    options: ViewOptions,
    observer: Arc<dyn ViewObserver>,
    /// Seeded at random per process: the dedup key cannot be aimed at.
    hasher: ahash::RandomState,
    layout: Layout,
    units: BTreeMap<Partition, Unit>,
    flat: FlatUnit,
    rollups: RollupVersions,
    last_rollups: DateTime<Utc>,
    last_relist: DateTime<Utc>,
    pub totals: ReadTotals,
    /// A change that needs a whole reload was seen.
    pub rebuild: bool,
}

/// The layout under the root: the seed's single object, a flat folder, or hive partitions.
async fn detect_layout(storage: &Storage) -> Result<Layout, object_store::Error> {
    if storage.single_object {
        return Ok(Layout::SingleObject);
    }
    let listing = storage
        .store
        .list_with_delimiter(Some(&storage.root))
        .await?;
    let partitioned = listing
        .common_prefixes
        .iter()
        .any(|p| p.filename().is_some_and(|f| f.starts_with("dt=")));
    Ok(if partitioned {
        Layout::Partitioned
    } else {
        Layout::Flat
    })
}

/// The prefix of hour `p` under `root`.
fn hour_prefix(root: &Path, p: Partition) -> Path {
    if root.as_ref().is_empty() {
        Path::from(p.path())
    } else {
        Path::from(format!("{root}/{}", p.path()))
    }
}

/// Where to start listing a live hour again: when every key read so far is a time-ordered UUID name
/// (v7: the first 48 bits are Unix milliseconds, as the ingest-worker writes), after the newest one less
/// a minute for writers whose clocks run behind. Any other name (the generator's `gen-…`, an import's
/// `import-…`, a hand-copied file) says nothing about where the next object will sort, so such an hour
/// is listed whole (`None`): a new object must never sort before the offset. Keys already read are
/// skipped by name either way.
fn list_offset(entries: &BTreeMap<String, ObjectEntry>) -> Option<Path> {
    let mut newest = None;
    for key in entries.keys() {
        let (folder, name) = key.rsplit_once('/')?;
        newest = Some((folder, uuid7_millis(name)?));
    }
    let (folder, ms) = newest?;
    let hex = format!("{:012x}", ms.saturating_sub(60_000));
    Some(Path::from(format!("{folder}/{}-{}", &hex[..8], &hex[8..])))
}

/// The Unix milliseconds of a name that starts with a lowercase version-7 UUID.
fn uuid7_millis(name: &str) -> Option<u64> {
    let b = name.as_bytes();
    let uuid = name.get(..36)?;
    let shaped = b[8] == b'-' && b[13] == b'-' && b[14] == b'7' && b[18] == b'-' && b[23] == b'-';
    let hex = |c: &u8| c.is_ascii_digit() || (b'a'..=b'f').contains(c);
    if !shaped || !uuid.bytes().filter(|c| *c != b'-').all(|c| hex(&c)) {
        return None;
    }
    u64::from_str_radix(&uuid[..13].replace('-', ""), 16).ok()
}

fn is_event_object(meta: &ObjectMeta) -> bool {
    meta.location.as_ref().ends_with(".json")
}

fn storage_error(storage: &Storage, e: impl ToString) -> QueryError {
    QueryError::Storage {
        location: storage.display.clone(),
        message: e.to_string(),
    }
}

impl Loader {
    /// Read the whole history into a new state.
    pub async fn load(
        storage: Storage,
        options: ViewOptions,
        observer: Arc<dyn ViewObserver>,
        now: DateTime<Utc>,
    ) -> Result<(Self, ViewState), QueryError> {
        storage
            .check_reachable()
            .await
            .map_err(|e| storage_error(&storage, e))?;
        let layout = detect_layout(&storage)
            .await
            .map_err(|e| storage_error(&storage, e))?;
        let mut loader = Loader {
            catalog: Catalog::with_key(storage.clone(), 0, options.rollup_key),
            storage,
            options,
            observer,
            hasher: ahash::RandomState::new(),
            layout,
            units: BTreeMap::new(),
            flat: FlatUnit::default(),
            rollups: HashMap::new(),
            last_rollups: now,
            last_relist: now,
            totals: ReadTotals::default(),
            rebuild: false,
        };
        let mut state = ViewState::new(coverage(now));
        match layout {
            Layout::Partitioned => loader.load_partitioned(&mut state, now).await?,
            Layout::Flat | Layout::SingleObject => {
                let metas = loader.list_flat().await?;
                let delta = loader.read_flat(metas, now).await?;
                state.apply(&delta);
            }
        }
        Ok((loader, state))
    }

    /// The live hours at `now`: the previous one, the current one, and the one `now + skew` falls in.
    fn live_range(&self, now: DateTime<Utc>) -> (Partition, Partition) {
        let skew = chrono::Duration::from_std(self.options.max_clock_skew).unwrap_or_default();
        let current = Partition::of(&now);
        let previous =
            Partition::of(&DateTime::from_timestamp_micros(minute_from(now)).expect("in range"));
        (previous, Partition::of(&(now + skew)).max(current))
    }

    fn dedup_set(&self) -> Option<Arc<SeenEvents>> {
        self.options.dedup.then(|| Arc::new(SeenEvents::default()))
    }

    async fn load_partitioned(
        &mut self,
        state: &mut ViewState,
        now: DateTime<Utc>,
    ) -> Result<(), QueryError> {
        let snapshot = self
            .catalog
            .list_now()
            .await
            .map_err(|e| storage_error(&self.storage, e))?;
        let minutes = minute_from(now);
        let from_rollups = if self.options.use_rollups && self.options.dedup {
            self.load_rollup_hours(state, &snapshot, minutes).await
        } else {
            HashSet::new()
        };
        self.load_raw_hours(state, &snapshot, &from_rollups, minutes, now)
            .await
    }

    /// Closed hours from rollups, a day at a time (bounded memory), several days at once. An hour is
    /// taken from a rollup only when the rollup's digest matches the raw objects listed now, it has no
    /// misfiled pool, and it is over; the hours taken are returned (the rest are read raw).
    async fn load_rollup_hours(
        &mut self,
        state: &mut ViewState,
        snapshot: &Snapshot,
        minutes: i64,
    ) -> HashSet<Partition> {
        let mut from_rollups: HashSet<Partition> = HashSet::new();
        let days: Vec<_> = snapshot
            .rollups
            .iter()
            .map(|(date, r)| {
                // Hour files first: after a late object an hour's own file is newer than the day's.
                let metas: Vec<ObjectMeta> =
                    r.hours.values().chain(r.day.iter()).cloned().collect();
                (*date, metas)
            })
            .collect();
        let catalog = self.catalog.clone();
        let mut loaded = futures::stream::iter(days)
            .map(|(date, metas)| {
                let catalog = catalog.clone();
                async move {
                    let mut blocks = vec![];
                    for meta in metas {
                        match catalog.block(&meta).await {
                            Ok(b) => blocks.push((meta, b)),
                            Err(e) => tracing::warn!(rollup = %meta.location, error = %e,
                                "unreadable rollup; its hours are read raw"),
                        }
                    }
                    (date, blocks)
                }
            })
            .buffer_unordered(8);
        while let Some((_, blocks)) = loaded.next().await {
            let mut delta = Delta::default();
            for (meta, block) in blocks {
                self.rollups
                    .insert(meta.location.clone(), version_of(&meta));
                self.totals.rollups += 1;
                self.totals.bytes += meta.size;
                for (i, bh) in block.hours.iter().enumerate() {
                    let p = bh.partition;
                    let usable = snapshot
                        .hours
                        .get(&p)
                        .is_some_and(|l| l.digest == bh.digest)
                        && bh.misfiled_pools == 0
                        && p.start_micros() < minutes
                        && !from_rollups.contains(&p);
                    if !usable {
                        continue;
                    }
                    add_block_hour(&mut delta, &block, i);
                    from_rollups.insert(p);
                    self.units.insert(
                        p,
                        Unit {
                            digest: bh.digest,
                            from_rollup: true,
                            foreign: false,
                            live: None,
                        },
                    );
                }
            }
            self.totals.rollup_hours = from_rollups.len() as u64;
            self.totals.events += delta.rows;
            self.totals.duplicates += delta.duplicates;
            state.apply(&delta);
        }
        from_rollups
    }

    /// Every hour not taken from a rollup, read raw: an hour per unit, several hours at once. Hours in
    /// the live range keep their objects' entries and seen set, so a refresh reads only new objects.
    async fn load_raw_hours(
        &mut self,
        state: &mut ViewState,
        snapshot: &Snapshot,
        from_rollups: &HashSet<Partition>,
        minutes: i64,
        now: DateTime<Utc>,
    ) -> Result<(), QueryError> {
        let (live_from, live_to) = self.live_range(now);
        let raw: Vec<(Partition, Vec<ObjectMeta>)> = snapshot
            .hours
            .iter()
            .filter(|(p, _)| !from_rollups.contains(p))
            .map(|(p, l)| (*p, l.objects.clone()))
            .collect();
        let reads = futures::stream::iter(raw)
            .map(|(p, objects)| {
                let seen = self.dedup_set();
                let this = &*self;
                async move {
                    let read = this
                        .read_objects(&objects, seen.clone(), minutes, Some(p), now)
                        .await;
                    (p, objects, seen, read)
                }
            })
            .buffer_unordered(self.options.read_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        for (p, objects, seen, read) in reads {
            let delta = self.count(read?);
            state.apply(&delta);
            let entries: BTreeMap<String, ObjectEntry> = objects
                .iter()
                .map(|m| (m.location.to_string(), ObjectEntry::from(m)))
                .collect();
            let live = (p >= live_from && p <= live_to).then(|| LiveUnit {
                entries: entries.clone(),
                seen: seen.unwrap_or_default(),
            });
            self.units.insert(
                p,
                Unit {
                    digest: rollup::digest(entries.values()),
                    from_rollup: false,
                    foreign: delta.foreign,
                    live,
                },
            );
            self.totals.raw_hours += 1;
        }
        Ok(())
    }

    /// One refresh at `now`: the live hours always, the rollups and the whole root when due.
    pub async fn refresh(
        &mut self,
        shared: &Shared,
        now: DateTime<Utc>,
    ) -> Result<RefreshReport, QueryError> {
        let before = self.totals;
        let mut report = RefreshReport::default();
        match self.layout {
            Layout::Partitioned => {
                report.changed |= self.refresh_live(shared, now).await?;
                let due = |last: DateTime<Utc>, every: Duration| {
                    (now - last).to_std().unwrap_or_default() >= every
                };
                if self.options.use_rollups
                    && self.options.dedup
                    && due(self.last_rollups, self.options.rollup_recheck)
                {
                    report.changed |= self.refresh_rollups(shared, now).await?;
                    report.listed_rollups = true;
                    self.last_rollups = now;
                }
                if due(self.last_relist, self.options.relist_interval) {
                    report.changed |= self.relist(shared, now).await?;
                    report.relisted = true;
                    self.last_relist = now;
                }
                self.retire(shared, now);
            }
            Layout::Flat | Layout::SingleObject => {
                report.changed |= self.refresh_flat(shared, now).await?;
            }
        }
        report.objects = self.totals.objects - before.objects;
        report.bytes = self.totals.bytes - before.bytes;
        report.events = self.totals.events - before.events;
        report.replaced_hours = self.totals.replaced_hours - before.replaced_hours;
        report.future_events = self.totals.future_events - before.future_events;
        Ok(report)
    }

    /// Drop the live state of hours that left the live range, and cells the coverage no longer needs.
    fn retire(&mut self, shared: &Shared, now: DateTime<Utc>) {
        let (live_from, _) = self.live_range(now);
        for (_, unit) in self.units.range_mut(..live_from) {
            unit.live = None;
        }
        if let Some(state) = shared.write().expect("poisoned").as_mut() {
            state.retain(coverage(now));
        }
    }

    /// List the live hours from the last key seen and read what is new.
    async fn refresh_live(
        &mut self,
        shared: &Shared,
        now: DateTime<Utc>,
    ) -> Result<bool, QueryError> {
        let (from, to) = self.live_range(now);
        let mut changed = false;
        let mut p = from;
        while p <= to {
            changed |= self.refresh_live_hour(shared, p, now).await?;
            p = p.next();
        }
        Ok(changed)
    }

    async fn refresh_live_hour(
        &mut self,
        shared: &Shared,
        p: Partition,
        now: DateTime<Utc>,
    ) -> Result<bool, QueryError> {
        let prefix = hour_prefix(&self.storage.root, p);
        if self.units.get(&p).is_some_and(|u| u.live.is_none()) {
            // Known but not live (the clock went back, or a start between hours): read it again whole.
            let objects = self.list_prefix(&prefix).await?;
            return self.replace_raw(shared, p, objects, now).await;
        }
        let offset = self
            .units
            .get(&p)
            .and_then(|u| u.live.as_ref())
            .and_then(|l| list_offset(&l.entries));
        let listed: Vec<ObjectMeta> = match &offset {
            Some(o) => self.storage.store.list_with_offset(Some(&prefix), o),
            None => self.storage.store.list(Some(&prefix)),
        }
        .try_collect()
        .await
        .map_err(|e| storage_error(&self.storage, e))?;
        self.add_live_objects(shared, p, listed, now).await
    }

    /// Read the objects of live hour `p` not read yet, and add them.
    async fn add_live_objects(
        &mut self,
        shared: &Shared,
        p: Partition,
        listed: Vec<ObjectMeta>,
        now: DateTime<Utc>,
    ) -> Result<bool, QueryError> {
        let unit = self.units.entry(p).or_insert_with(|| Unit {
            digest: rollup::digest(std::iter::empty()),
            from_rollup: false,
            foreign: false,
            live: Some(LiveUnit::default()),
        });
        let Some(live) = unit.live.as_ref() else {
            return Ok(false);
        };
        let new: Vec<ObjectMeta> = listed
            .into_iter()
            .filter(|m| is_event_object(m) && !live.entries.contains_key(m.location.as_ref()))
            .collect();
        if new.is_empty() {
            return Ok(false);
        }
        let seen = self.options.dedup.then(|| Arc::clone(&live.seen));
        let read = self
            .read_objects(&new, seen, minute_from(now), Some(p), now)
            .await?;
        let delta = self.count(read);
        let unit = self.units.get_mut(&p).expect("inserted above");
        let live = unit.live.as_mut().expect("live above");
        for m in &new {
            live.entries
                .insert(m.location.to_string(), ObjectEntry::from(m));
        }
        unit.digest = rollup::digest(live.entries.values());
        unit.foreign |= delta.foreign;
        unit.from_rollup = false;
        if let Some(state) = shared.write().expect("poisoned").as_mut() {
            state.apply(&delta);
        }
        Ok(true)
    }

    async fn list_prefix(&self, prefix: &Path) -> Result<Vec<ObjectMeta>, QueryError> {
        let all: Vec<ObjectMeta> = self
            .storage
            .store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| storage_error(&self.storage, e))?;
        Ok(all.into_iter().filter(is_event_object).collect())
    }

    /// Read hour `p` again from `objects` and replace what the view counted for it.
    async fn replace_raw(
        &mut self,
        shared: &Shared,
        p: Partition,
        objects: Vec<ObjectMeta>,
        now: DateTime<Utc>,
    ) -> Result<bool, QueryError> {
        let seen = self.dedup_set();
        let read = self
            .read_objects(&objects, seen.clone(), minute_from(now), Some(p), now)
            .await?;
        let delta = self.count(read);
        let entries: BTreeMap<String, ObjectEntry> = objects
            .iter()
            .map(|m| (m.location.to_string(), ObjectEntry::from(m)))
            .collect();
        let (live_from, live_to) = self.live_range(now);
        let unit = Unit {
            digest: rollup::digest(entries.values()),
            from_rollup: false,
            foreign: delta.foreign,
            live: (p >= live_from && p <= live_to).then(|| LiveUnit {
                entries,
                seen: seen.unwrap_or_default(),
            }),
        };
        self.replace(shared, p, &delta, unit);
        Ok(true)
    }

    /// Replace hour `p`'s contribution by `delta` (one write lock), or ask for a rebuild when that
    /// cannot be done hour by hour.
    fn replace(&mut self, shared: &Shared, p: Partition, delta: &Delta, unit: Unit) {
        if self.units.get(&p).is_some_and(|u| u.foreign) {
            tracing::info!(hour = %p.path(), "an hour holding events of other hours changed: reloading the view");
            self.rebuild = true;
            return;
        }
        let mut guard = shared.write().expect("poisoned");
        let Some(state) = guard.as_mut() else { return };
        if !state.clear_hour(p) {
            drop(guard);
            tracing::info!(hour = %p.path(), "an hour older than the hour cells changed: reloading the view");
            self.rebuild = true;
            return;
        }
        state.apply(delta);
        drop(guard);
        self.totals.replaced_hours += 1;
        self.units.insert(p, unit);
    }

    /// List the rollups; act on the new and rewritten ones.
    async fn refresh_rollups(
        &mut self,
        shared: &Shared,
        now: DateTime<Utc>,
    ) -> Result<bool, QueryError> {
        let root = &self.storage.root;
        let dir = if root.as_ref().is_empty() {
            Path::from(ROLLUPS_DIR)
        } else {
            Path::from(format!("{root}/{ROLLUPS_DIR}"))
        };
        let listed: Vec<ObjectMeta> = self
            .storage
            .store
            .list(Some(&dir))
            .try_collect()
            .await
            .map_err(|e| storage_error(&self.storage, e))?;
        let mut versions: RollupVersions = HashMap::new();
        let mut changed_metas = vec![];
        let dir_len = dir.as_ref().len() + 1;
        for meta in listed {
            let Some(rel) = meta.location.as_ref().get(dir_len..) else {
                continue;
            };
            if RollupKey::parse(rel).is_none() {
                continue;
            }
            let v = version_of(&meta);
            if self.rollups.get(&meta.location) != Some(&v) {
                changed_metas.push(meta.clone());
            }
            versions.insert(meta.location.clone(), v);
        }
        self.rollups = versions;
        let (live_from, _) = self.live_range(now);
        let mut changed = false;
        for meta in changed_metas {
            let block = match self.catalog.block(&meta).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(rollup = %meta.location, error = %e, "unreadable rollup; skipped");
                    continue;
                }
            };
            self.totals.rollups += 1;
            self.totals.bytes += meta.size;
            for (i, bh) in block.hours.iter().enumerate() {
                let p = bh.partition;
                let Some(unit) = self.units.get_mut(&p) else {
                    // No raw objects known for this hour (yet): hours are counted from what is listed.
                    continue;
                };
                if unit.digest == bh.digest {
                    unit.from_rollup = true;
                    continue;
                }
                if unit.live.is_some() || p >= live_from || bh.misfiled_pools > 0 {
                    continue;
                }
                let counted = unit.digest;
                // The rollup and the view disagree on this hour: the listing decides who is behind.
                let objects = self
                    .list_prefix(&hour_prefix(&self.storage.root, p))
                    .await?;
                let entries: Vec<ObjectEntry> = objects.iter().map(ObjectEntry::from).collect();
                let listed = rollup::digest(&entries);
                if listed == counted {
                    continue; // the rollup is behind; the compactor will catch up
                }
                changed = true;
                if listed == bh.digest {
                    let mut delta = Delta::default();
                    add_block_hour(&mut delta, &block, i);
                    let unit = Unit {
                        digest: bh.digest,
                        from_rollup: true,
                        foreign: false,
                        live: None,
                    };
                    self.replace(shared, p, &delta, unit);
                } else {
                    self.replace_raw(shared, p, objects, now).await?;
                }
            }
        }
        Ok(changed)
    }

    /// List the whole root; read hours that are new or whose objects changed.
    async fn relist(&mut self, shared: &Shared, now: DateTime<Utc>) -> Result<bool, QueryError> {
        let snapshot: Arc<Snapshot> = self
            .catalog
            .list_now()
            .await
            .map_err(|e| storage_error(&self.storage, e))?;
        let mut changed = false;
        for (p, listing) in &snapshot.hours {
            let (is_live, digest) = match self.units.get(p) {
                Some(u) => (u.live.is_some(), Some(u.digest)),
                None => (false, None),
            };
            if digest == Some(listing.digest) {
                continue;
            }
            changed = true;
            if is_live {
                self.add_live_objects(shared, *p, listing.objects.clone(), now)
                    .await?;
            } else if digest.is_none() {
                // An hour never seen (written late, far from the live hours): new cells, nothing to undo.
                let seen = self.dedup_set();
                let read = self
                    .read_objects(&listing.objects, seen, minute_from(now), Some(*p), now)
                    .await?;
                let delta = self.count(read);
                let entries: Vec<ObjectEntry> =
                    listing.objects.iter().map(ObjectEntry::from).collect();
                self.units.insert(
                    *p,
                    Unit {
                        digest: rollup::digest(&entries),
                        from_rollup: false,
                        foreign: delta.foreign,
                        live: None,
                    },
                );
                self.totals.raw_hours += 1;
                if let Some(state) = shared.write().expect("poisoned").as_mut() {
                    state.apply(&delta);
                }
            } else {
                self.replace_raw(shared, *p, listing.objects.clone(), now)
                    .await?;
            }
        }
        // Hours whose objects are all gone count nothing any more.
        let gone: Vec<Partition> = self
            .units
            .iter()
            .filter(|(p, u)| u.live.is_none() && !snapshot.hours.contains_key(p))
            .map(|(p, _)| *p)
            .collect();
        for p in gone {
            changed = true;
            let unit = Unit {
                digest: rollup::digest(std::iter::empty()),
                from_rollup: false,
                foreign: false,
                live: None,
            };
            self.replace(shared, p, &Delta::default(), unit);
            self.units.remove(&p);
        }
        Ok(changed)
    }

    /// The objects of a flat folder, or the single object.
    async fn list_flat(&self) -> Result<Vec<ObjectMeta>, QueryError> {
        let storage = &self.storage;
        let metas = if self.layout == Layout::SingleObject {
            match storage.store.head(&storage.root).await {
                Ok(m) => vec![m],
                Err(object_store::Error::NotFound { .. }) => vec![],
                Err(e) => return Err(storage_error(storage, e)),
            }
        } else {
            storage
                .store
                .list_with_delimiter(Some(&storage.root))
                .await
                .map_err(|e| storage_error(storage, e))?
                .objects
                .into_iter()
                .filter(is_event_object)
                .collect()
        };
        Ok(metas)
    }

    async fn read_flat(
        &mut self,
        metas: Vec<ObjectMeta>,
        now: DateTime<Utc>,
    ) -> Result<Delta, QueryError> {
        let seen = self.options.dedup.then(|| Arc::clone(&self.flat.seen));
        let read = self
            .read_objects(&metas, seen, minute_from(now), None, now)
            .await?;
        let delta = self.count(read);
        for m in &metas {
            self.flat
                .entries
                .insert(m.location.to_string(), ObjectEntry::from(m));
        }
        Ok(delta)
    }

    /// Flat layouts are listed whole on every refresh: new objects are added; a changed or removed one
    /// reloads the view, and so do hourly partitions appearing (an empty root looks flat until the
    /// first partition is written).
    async fn refresh_flat(
        &mut self,
        shared: &Shared,
        now: DateTime<Utc>,
    ) -> Result<bool, QueryError> {
        if self.layout == Layout::Flat
            && detect_layout(&self.storage)
                .await
                .map_err(|e| storage_error(&self.storage, e))?
                == Layout::Partitioned
        {
            tracing::info!("hourly partitions appeared under the root: reloading the view");
            self.rebuild = true;
            return Ok(false);
        }
        let metas = self.list_flat().await?;
        let listed: HashMap<String, ObjectEntry> = metas
            .iter()
            .map(|m| (m.location.to_string(), ObjectEntry::from(m)))
            .collect();
        let altered = self
            .flat
            .entries
            .iter()
            .any(|(k, e)| listed.get(k) != Some(e));
        if altered {
            self.rebuild = true;
            return Ok(false);
        }
        let new: Vec<ObjectMeta> = metas
            .into_iter()
            .filter(|m| !self.flat.entries.contains_key(m.location.as_ref()))
            .collect();
        if new.is_empty() {
            return Ok(false);
        }
        let delta = self.read_flat(new, now).await?;
        if let Some(state) = shared.write().expect("poisoned").as_mut() {
            state.apply(&delta);
        }
        Ok(true)
    }

    /// Hashes held for deduplication (live hours, or the flat layout's whole history).
    pub fn dedup_hashes(&self) -> usize {
        self.units
            .values()
            .filter_map(|u| u.live.as_ref())
            .map(|l| l.seen.len())
            .sum::<usize>()
            + self.flat.seen.len()
    }

    /// Read `objects` with DataFusion (the tolerant NDJSON reader) into a delta: each event once
    /// (through `seen`), its minute cell too from `minutes` on. `unit` is the hour whose folder holds
    /// them, to notice events stamped in other hours.
    async fn read_objects(
        &self,
        objects: &[ObjectMeta],
        seen: Option<Arc<SeenEvents>>,
        minutes: i64,
        unit: Option<Partition>,
        now: DateTime<Utc>,
    ) -> Result<Read, QueryError> {
        let objects: Vec<ObjectMeta> = objects.iter().filter(|m| m.size > 0).cloned().collect();
        let stats = Arc::new(ReadStats::default());
        if objects.is_empty() {
            return Ok(Read {
                delta: Delta::default(),
                stats,
            });
        }
        let skew = i64::try_from(self.options.max_clock_skew.as_micros()).unwrap_or(i64::MAX);
        let horizon = now.timestamp_micros().saturating_add(skew);
        let delta = self
            .execute(&objects, &stats, seen, minutes, unit, horizon)
            .await
            .map_err(|e| {
                if crate::scan::is_storage_failure(&e) {
                    storage_error(&self.storage, e)
                } else {
                    QueryError::Engine(e.to_string())
                }
            })?;
        self.observer.read(
            stats.objects.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
        );
        Ok(Read { delta, stats })
    }

    async fn execute(
        &self,
        objects: &[ObjectMeta],
        stats: &Arc<ReadStats>,
        seen: Option<Arc<SeenEvents>>,
        minutes: i64,
        unit: Option<Partition>,
        horizon: i64,
    ) -> Result<Delta, DataFusionError> {
        let observer = Arc::clone(&self.observer);
        let format = TolerantNdjson::new(
            Arc::clone(stats),
            Arc::new(
                move |path: &Path, _size: u64, _start: u64, bad_lines: u64| {
                    tracing::warn!(object = %path, bad_lines,
                    "malformed lines in an event object; they are skipped and the rest is counted");
                    observer.quarantined(bad_lines);
                },
            ),
        );
        let partitions = self.options.read_partitions.max(1).min(objects.len());
        let mut groups: Vec<Vec<PartitionedFile>> = vec![vec![]; partitions];
        let mut sorted: Vec<&ObjectMeta> = objects.iter().collect();
        sorted.sort_by_key(|m| std::cmp::Reverse(m.size));
        let mut loads = vec![0u64; partitions];
        for m in sorted {
            let i = (0..partitions)
                .min_by_key(|i| loads[*i])
                .expect("partitions ≥ 1");
            loads[i] += m.size;
            groups[i].push(PartitionedFile::from((*m).clone()));
        }
        let ctx = session(&self.storage, partitions)?;
        let source = format.file_source(TableSchema::from(event_schema()));
        let config = FileScanConfigBuilder::new(
            ObjectStoreUrl::parse(self.storage.store_url.as_str())?,
            source,
        )
        .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
        .build();
        let plan = format.create_physical_plan(&ctx.state(), config).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..plan.output_partitioning().partition_count() {
            let mut stream = plan.execute(i, ctx.task_ctx())?;
            let mut reader = RowReader {
                hasher: self.hasher.clone(),
                seen: seen.clone(),
                pools: HashMap::new(),
                delta: Delta::default(),
                minutes,
                unit,
                horizon,
            };
            tasks.spawn(async move {
                while let Some(batch) = stream.try_next().await? {
                    reader.add(&batch);
                }
                Ok::<_, DataFusionError>(reader.delta)
            });
        }
        let mut delta = Delta::default();
        while let Some(joined) = tasks.join_next().await {
            delta.merge(joined.map_err(|e| DataFusionError::External(Box::new(e)))??);
        }
        Ok(delta)
    }

    /// Fold what a read found into the totals; its delta.
    fn count(&mut self, read: Read) -> Delta {
        let (delta, stats) = (read.delta, read.stats);
        self.totals.events += delta.rows;
        self.totals.duplicates += delta.duplicates;
        self.totals.invalid_rows += delta.invalid_rows;
        self.totals.future_events += delta.future_events;
        self.totals.objects += stats.objects.load(Ordering::Relaxed);
        self.totals.bytes += stats.bytes.load(Ordering::Relaxed);
        self.totals.skipped_lines += stats.skipped_lines.load(Ordering::Relaxed);
        self.totals.quarantined_objects += stats.objects_with_bad_lines.load(Ordering::Relaxed);
        delta
    }
}

/// What one read of raw objects found.
struct Read {
    delta: Delta,
    stats: Arc<ReadStats>,
}

/// Add hour `i` of a decoded rollup to `delta`.
fn add_block_hour(delta: &mut Delta, block: &Block, i: usize) {
    let bh = &block.hours[i];
    for row in &block.rows[bh.rows.clone()] {
        delta.add_rollup_row(&block.pools[row.pool as usize], bh.partition, row);
    }
}

/// Decodes event rows into a delta: one per read partition.
struct RowReader {
    hasher: ahash::RandomState,
    seen: Option<Arc<SeenEvents>>,
    /// Raw pool id → its slot in the delta (`None`: not a pool id), so each is parsed once.
    pools: HashMap<String, Option<usize>>,
    delta: Delta,
    minutes: i64,
    unit: Option<Partition>,
    /// Events stamped after this (the clock skew allowed past the read's time) are counted as such;
    /// queries leave them out until their time comes.
    horizon: i64,
}

impl RowReader {
    /// Columns in the event schema's order: `finished_at, job_id, pool_id, status, reason`.
    fn add(&mut self, batch: &RecordBatch) {
        let times = batch.column(0).as_string::<i32>();
        let jobs = batch.column(1).as_string::<i32>();
        let pools = batch.column(2).as_string::<i32>();
        let statuses = batch.column(3).as_string::<i32>();
        let reasons = batch.column(4).as_string::<i32>();
        for i in 0..batch.num_rows() {
            if pools.is_null(i) || jobs.is_null(i) || times.is_null(i) || statuses.is_null(i) {
                self.delta.invalid_rows += 1;
                continue;
            }
            let time = times.value(i);
            let Some(at) = parse_timestamp_micros(time) else {
                self.delta.invalid_rows += 1;
                continue;
            };
            let pool = pools.value(i);
            let slot = match self.pools.get(pool) {
                Some(s) => *s,
                None => {
                    let s = pool.parse::<PoolId>().ok().map(|id| self.delta.slot(&id));
                    self.pools.insert(pool.to_owned(), s);
                    s
                }
            };
            let Some(slot) = slot else {
                self.delta.invalid_rows += 1;
                continue;
            };
            let reason = if reasons.is_null(i) {
                ""
            } else {
                reasons.value(i)
            };
            let status = statuses.value(i);
            let Some((spot, other)) = outcome_flags(status, reason) else {
                self.delta.invalid_rows += 1;
                continue;
            };
            let job = jobs.value(i);
            if job.is_empty() {
                self.delta.invalid_rows += 1;
                continue;
            }
            if let Some(seen) = &self.seen {
                let hash = self.hasher.hash_one((job, time, pool, status, reason));
                if !seen.insert(hash) {
                    self.delta.duplicates += 1;
                    continue;
                }
            }
            if let Some(u) = self.unit
                && (at < u.start_micros() || at >= u.end_micros())
            {
                self.delta.foreign = true;
            }
            if at > self.horizon {
                self.delta.future_events += 1;
            }
            self.delta
                .add_job(slot, at, spot, other, at >= self.minutes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(keys: &[&str]) -> BTreeMap<String, ObjectEntry> {
        keys.iter()
            .map(|k| {
                (
                    k.to_string(),
                    ObjectEntry {
                        key: k.to_string(),
                        size: 1,
                        e_tag: None,
                        last_modified: DateTime::from_timestamp(0, 0).unwrap(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn listing_resumes_a_minute_before_the_newest_uuid_and_lists_other_names_whole() {
        // 0x019af3c2_1a00 ms; a minute earlier is 0x019af3c2_1a00 - 60000 = 0x019af3c1_2fa0.
        let e = entries(&[
            "ev/dt=2026-11-22/hr=10/019af3c2-0000-7000-8000-000000000000.json",
            "ev/dt=2026-11-22/hr=10/019af3c2-1a00-7abc-8000-000000000000.json",
        ]);
        assert_eq!(
            list_offset(&e).unwrap().as_ref(),
            "ev/dt=2026-11-22/hr=10/019af3c1-2fa0"
        );
        // Other names say nothing about where the next one sorts: a UUID written after `gen-…` sorts
        // before it, so the hour is listed whole.
        for names in [
            &[
                "ev/dt=2026-11-22/hr=10/batch-1.json",
                "ev/dt=2026-11-22/hr=10/batch-2.json",
            ][..],
            &[
                "ev/dt=2026-11-22/hr=10/019af3c2-0000-7000-8000-000000000000.json",
                "ev/dt=2026-11-22/hr=10/gen-1-20cc1307-000003.json",
            ][..],
            &["ev/dt=2026-11-22/hr=10/019af3c2-0000-4000-8000-000000000000.json"][..],
        ] {
            assert_eq!(list_offset(&entries(names)), None, "{names:?}");
        }
        assert_eq!(list_offset(&BTreeMap::new()), None);
    }
}
