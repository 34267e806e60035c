//! What is in storage now (raw objects per hour, rollups) and which hours of a query each rollup can
//! answer.
//!
//! A listing of the whole root is kept as a [`Snapshot`] and renewed when it is older than the caller
//! allows: from half that age on, in the background (so warm requests do not wait for a listing), past
//! it, before answering. Decoded rollups are cached by key and e-tag, bounded by bytes.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use pool_core::event::{Partition, PoolId};
use pool_storage::Storage;

use crate::query::Query;
use crate::rollup::{self, Block, BlockHour, ObjectEntry, ROLLUPS_DIR, RollupKey};
use crate::table;
use crate::tally::{HOUR_MICROS, Moments, Tally};

/// The raw objects of one hourly partition.
#[derive(Debug, Clone)]
pub struct HourListing {
    pub digest: u64,
    pub objects: Vec<ObjectMeta>,
}

/// The rollup objects of one day.
#[derive(Debug, Clone, Default)]
pub struct DayRollups {
    pub day: Option<ObjectMeta>,
    pub hours: BTreeMap<u32, ObjectMeta>,
}

/// One listing of the root.
#[derive(Debug)]
pub struct Snapshot {
    pub taken: Instant,
    pub hours: BTreeMap<Partition, HourListing>,
    pub rollups: BTreeMap<NaiveDate, DayRollups>,
    /// Rollups this listing's requests have decoded, so a warm request neither looks each one up in
    /// the cache nor builds its key again. Lives as long as the listing (`ROLLUP_RECHECK`).
    resolved: std::sync::Mutex<Arc<HashMap<Path, Arc<Block>>>>,
}

/// Cache key of a decoded rollup: its key plus what changes when it is rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BlockKey {
    path: Path,
    size: u64,
    e_tag: Option<String>,
    modified_micros: i64,
}

struct Inner {
    storage: Storage,
    current: RwLock<Option<Arc<Snapshot>>>,
    refreshing: Arc<tokio::sync::Mutex<()>>,
    blocks: moka::sync::Cache<BlockKey, Arc<Block>>,
}

/// Storage's contents and the decoded-rollup cache. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

/// How a query's hours are answered.
#[derive(Debug, Default)]
pub struct Plan {
    /// Per-pool counts from rollups.
    pub tallies: HashMap<PoolId, Tally>,
    /// Events counted from rollups.
    pub rows: u64,
    /// Redelivered copies dropped in the rollup hours.
    pub duplicates: u64,
    pub rollup_hours: u64,
    pub raw_hours: u64,
    /// Folders (relative to the root) the raw scan must read; empty when rollups cover everything.
    pub raw_roots: Vec<String>,
}

impl Catalog {
    pub fn new(storage: Storage, cache_bytes: u64) -> Self {
        let blocks = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_: &BlockKey, b: &Arc<Block>| b.weight().try_into().unwrap_or(u32::MAX))
            .build();
        Self {
            inner: Arc::new(Inner {
                storage,
                current: RwLock::new(None),
                refreshing: Arc::new(tokio::sync::Mutex::new(())),
                blocks,
            }),
        }
    }

    fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// Bytes of decoded rollups held in memory.
    pub fn cached_bytes(&self) -> u64 {
        self.inner.blocks.run_pending_tasks();
        self.inner.blocks.weighted_size()
    }

    /// Forget the listing, so the next request lists again (tests, and the compactor between phases).
    pub fn invalidate(&self) {
        *self.inner.current.write().expect("poisoned") = None;
    }

    /// A listing no older than `max_age`; one between half that and `max_age` old is returned at once
    /// and renewed in the background.
    pub async fn snapshot(&self, max_age: Duration) -> Result<Arc<Snapshot>, object_store::Error> {
        let current = self.inner.current.read().expect("poisoned").clone();
        if let Some(s) = current {
            let age = s.taken.elapsed();
            if age < max_age / 2 {
                return Ok(s);
            }
            if age < max_age {
                if let Ok(guard) = Arc::clone(&self.inner.refreshing).try_lock_owned() {
                    let this = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = this.list_now().await {
                            tracing::warn!(error = %e, "background listing of the history failed");
                        }
                        drop(guard);
                    });
                }
                return Ok(s);
            }
        }
        let _guard = self.inner.refreshing.lock().await;
        // Someone else may have listed while we waited.
        if let Some(s) = self.inner.current.read().expect("poisoned").clone()
            && s.taken.elapsed() < max_age
        {
            return Ok(s);
        }
        self.list_now().await
    }

    /// List the root now and keep the result.
    pub async fn list_now(&self) -> Result<Arc<Snapshot>, object_store::Error> {
        let taken = Instant::now();
        let storage = self.storage();
        let root = storage.root.as_ref().to_owned();
        let prefix_len = if root.is_empty() { 0 } else { root.len() + 1 };
        // One listing per top-level folder (each day, and the rollups), several at once: on S3 a
        // listing is a sequence of 1,000-key pages, so a year of days listed one after the other
        // would be slow; locally each walk runs on its own blocking thread.
        let top = storage
            .store
            .list_with_delimiter(Some(&storage.root))
            .await?;
        let mut objects: Vec<ObjectMeta> = top.objects;
        let per_folder: Vec<Vec<ObjectMeta>> = futures::stream::iter(top.common_prefixes)
            .map(|prefix| async move {
                storage
                    .store
                    .list(Some(&prefix))
                    .try_collect::<Vec<_>>()
                    .await
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        objects.extend(per_folder.into_iter().flatten());
        let mut hours: BTreeMap<Partition, Vec<ObjectMeta>> = BTreeMap::new();
        let mut rollups: BTreeMap<NaiveDate, DayRollups> = BTreeMap::new();
        for meta in objects {
            let key = meta.location.as_ref();
            let Some(rel) = key.get(prefix_len..) else {
                continue;
            };
            if let Some(r) = rel
                .strip_prefix(ROLLUPS_DIR)
                .and_then(|r| r.strip_prefix('/'))
            {
                match RollupKey::parse(r) {
                    Some(RollupKey::Day(d)) => rollups.entry(d).or_default().day = Some(meta),
                    Some(RollupKey::Hour(p)) => {
                        rollups
                            .entry(p.date)
                            .or_default()
                            .hours
                            .insert(p.hour, meta);
                    }
                    None => {}
                }
                continue;
            }
            if !rel.ends_with(".json") {
                continue;
            }
            if let Some(p) = Partition::from_key(rel) {
                hours.entry(p).or_default().push(meta);
            }
        }
        let hours = hours
            .into_iter()
            .map(|(p, objects)| {
                let entries: Vec<ObjectEntry> = objects.iter().map(ObjectEntry::from).collect();
                let digest = rollup::digest(&entries);
                (p, HourListing { digest, objects })
            })
            .collect();
        let snapshot = Arc::new(Snapshot {
            taken,
            hours,
            rollups,
            resolved: Default::default(),
        });
        *self.inner.current.write().expect("poisoned") = Some(Arc::clone(&snapshot));
        Ok(snapshot)
    }

    /// A decoded rollup, from the cache or storage.
    pub async fn block(&self, meta: &ObjectMeta) -> Result<Arc<Block>, object_store::Error> {
        let key = BlockKey {
            path: meta.location.clone(),
            size: meta.size,
            e_tag: meta.e_tag.clone(),
            modified_micros: meta.last_modified.timestamp_micros(),
        };
        if let Some(b) = self.inner.blocks.get(&key) {
            return Ok(b);
        }
        let bytes = self
            .storage()
            .store
            .get(&meta.location)
            .await?
            .bytes()
            .await?;
        let name = meta.location.to_string();
        let block = tokio::task::spawn_blocking(move || Block::from_bytes(&name, bytes))
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "rollup",
                source: Box::new(e),
            })?
            .map_err(|e| object_store::Error::Generic {
                store: "rollup",
                source: Box::new(e),
            })?;
        let block = Arc::new(block);
        self.inner.blocks.insert(key, Arc::clone(&block));
        Ok(block)
    }

    /// The rollups that may cover hours of `days`, decoded (missing or unreadable ones are skipped with
    /// a warning: those hours are read raw).
    pub(crate) async fn blocks_for(
        &self,
        snapshot: &Snapshot,
        days: impl Iterator<Item = NaiveDate>,
    ) -> Arc<HashMap<Path, Arc<Block>>> {
        let known = Arc::clone(&snapshot.resolved.lock().expect("poisoned"));
        let missing: Vec<ObjectMeta> = days
            .filter_map(|d| snapshot.rollups.get(&d))
            .flat_map(|r| r.day.iter().chain(r.hours.values()))
            .filter(|m| !known.contains_key(&m.location))
            .cloned()
            .collect();
        if missing.is_empty() {
            return known;
        }
        let loaded: Vec<(Path, Arc<Block>)> = futures::stream::iter(missing)
            .map(|meta| async move {
                let r = self.block(&meta).await;
                (meta.location, r)
            })
            .buffer_unordered(16)
            .filter_map(|(path, r)| async move {
                match r {
                    Ok(b) => Some((path, b)),
                    Err(e) => {
                        tracing::warn!(rollup = %path, error = %e, "unreadable rollup; its hours are read raw");
                        None
                    }
                }
            })
            .collect()
            .await;
        let mut guard = snapshot.resolved.lock().expect("poisoned");
        Arc::make_mut(&mut guard).extend(loaded);
        Arc::clone(&guard)
    }

    /// The rollup hour that answers partition `p` as listed, if any.
    pub fn covering<'a>(
        snapshot: &Snapshot,
        blocks: &'a HashMap<Path, Arc<Block>>,
        p: Partition,
        listing: &HourListing,
    ) -> Option<(&'a Arc<Block>, &'a BlockHour)> {
        let day = snapshot.rollups.get(&p.date)?;
        day.hours
            .get(&p.hour)
            .into_iter()
            .chain(day.day.iter())
            .filter_map(|meta| blocks.get(&meta.location))
            .find_map(|b| {
                b.hour(p.hour)
                    .filter(|h| h.digest == listing.digest)
                    .map(|h| (b, h))
            })
    }

    /// Decide, hour by hour, where `q` is answered from, and tally the rollup part.
    ///
    /// An hour is read from a rollup when the rollup's manifest equals the raw objects listed now, every
    /// event in it lies inside the window (so the hour the window starts in is raw), it closed before
    /// `q.now` (weights never need clamping), and no event in it is stamped outside the hour. Everything
    /// else (the open hour, hours not compacted yet, hours that received a late object) is read raw.
    pub async fn plan(&self, snapshot: &Snapshot, q: &Query) -> Result<Plan, object_store::Error> {
        let cutoff = q.cutoff();
        let cutoff_micros = cutoff.map_or(i64::MIN, |c| c.timestamp_micros());
        let first = cutoff.map(|c| Partition::of(&c));
        let now_micros = q.now.timestamp_micros();
        let in_window = |p: &Partition| first.is_none_or(|f| *p >= f);
        let days: std::collections::BTreeSet<NaiveDate> = snapshot
            .hours
            .keys()
            .filter(|p| in_window(p))
            .map(|p| p.date)
            .collect();
        let blocks = self.blocks_for(snapshot, days.into_iter()).await;

        let mut plan = Plan::default();
        let mut raw: Vec<Partition> = vec![];
        let mut frontier: Option<Partition> = None;
        let weighting = Weighting::new(q);
        // Per-pool tallies in a vector; each block's pool index maps to a slot once (or to `None` when
        // the query does not want that pool), so the row loop neither hashes nor clones pool ids.
        let mut tallies: Vec<(PoolId, Tally)> = vec![];
        let mut slot_of: HashMap<PoolId, usize> = HashMap::new();
        let mut slots_cache: HashMap<*const Block, Vec<Option<usize>>> = HashMap::new();
        let unweighted = q.half_life.is_none();
        // Start of the hourly series; hour-aligned, so an hour is either wholly in it or wholly before.
        let series_micros = q.series_from_micros();
        let window_hours: Vec<(&Partition, &HourListing)> = snapshot
            .hours
            .iter()
            .filter(|(p, _)| in_window(p))
            .collect();
        for day in window_hours.chunk_by(|a, b| a.0.date == b.0.date) {
            // Which rollup hour answers each hour of the day, if any.
            let covered: Vec<Option<(&Arc<Block>, &BlockHour)>> = day
                .iter()
                .map(|(p, listing)| {
                    Self::covering(snapshot, &blocks, **p, listing).filter(|(_, h)| {
                        h.misfiled_pools == 0
                            && p.end_micros() <= now_micros
                            && (h.rows.is_empty() || h.first_micros >= cutoff_micros)
                    })
                })
                .collect();
            for ((p, _), c) in day.iter().zip(&covered) {
                if c.is_some() {
                    plan.rollup_hours += 1;
                    frontier = Some(**p);
                } else {
                    plan.raw_hours += 1;
                    raw.push(**p);
                }
            }
            // Unweighted, with every hour of one block in use, and the day wholly before the hourly
            // series (if any): its per-pool totals stand for its rows.
            let before_series =
                series_micros.is_none_or(|s| day.last().is_none_or(|(p, _)| p.end_micros() <= s));
            let whole_block = match covered.first() {
                Some(Some((b, _)))
                    if unweighted
                        && before_series
                        && covered.len() == b.hours.len()
                        && covered
                            .iter()
                            .all(|c| c.is_some_and(|(o, _)| Arc::ptr_eq(o, b))) =>
                {
                    Some(*b)
                }
                _ => None,
            };
            for ((p, _), c) in day.iter().zip(&covered) {
                let Some((block, hour)) = c else { continue };
                let slots = slots_cache.entry(Arc::as_ptr(block)).or_insert_with(|| {
                    block
                        .pools
                        .iter()
                        .map(|id| {
                            q.wants(id).then(|| {
                                *slot_of.entry(id.clone()).or_insert_with(|| {
                                    tallies.push((id.clone(), Tally::default()));
                                    tallies.len() - 1
                                })
                            })
                        })
                        .collect()
                });
                let rows = match whole_block {
                    Some(b) if Arc::ptr_eq(b, block) => {
                        if p.hour != day[0].0.hour {
                            continue; // the totals were added with the first hour
                        }
                        &block.totals[..]
                    }
                    _ => &block.rows[hour.rows.clone()],
                };
                let factors = weighting.factors(p.start_micros() + HOUR_MICROS / 2);
                // The hour's cell in the series: every event of a covered hour lies inside it.
                let cell = series_micros
                    .filter(|&s| p.start_micros() >= s)
                    .map(|s| ((p.start_micros() - s) / HOUR_MICROS) as usize);
                debug_assert!(
                    cell.is_none() || !matches!(whole_block, Some(b) if Arc::ptr_eq(b, block)),
                    "a block's totals stand for hours of the series"
                );
                for row in rows {
                    let Some(slot) = slots[row.pool as usize] else {
                        continue;
                    };
                    add_row(&mut tallies[slot].1, row, factors, cell);
                    plan.rows += u64::from(row.jobs);
                    plan.duplicates += u64::from(row.duplicates);
                }
            }
        }
        plan.tallies = tallies.into_iter().collect();
        plan.raw_roots = raw_roots(&raw, frontier, first, q.now);
        Ok(plan)
    }
}

/// Folders the raw scan reads: the hours after the last covered one up to the current hour (new hours
/// appear there between listings: they are listed live), every other uncovered hour one by one (older
/// ones, and hours stamped ahead of the clock that the listing found), and nothing else, so a warm
/// request lists a handful of folders. When the live part spans days (nothing compacted yet), it is read
/// as the hours of its first day and then whole days.
fn raw_roots(
    raw: &[Partition],
    frontier: Option<Partition>,
    first: Option<Partition>,
    now: DateTime<Utc>,
) -> Vec<String> {
    let now_p = Partition::of(&now);
    let from = frontier
        .map(|f| f.next())
        .or(first)
        .or(raw.first().copied())
        .unwrap_or(now_p)
        .min(now_p.next());
    let end_of_today = now_p.date.succ_opt().expect("dates have a successor");
    let long = (now_p.date - from.date).num_days() >= 2;
    let live = |p: &Partition| {
        if long {
            *p >= from && p.date < end_of_today
        } else {
            *p >= from && *p <= now_p
        }
    };
    let mut roots: Vec<String> = raw
        .iter()
        .filter(|p| !live(p))
        .map(|p| format!("{}/", p.path()))
        .collect();
    if long {
        roots.extend(table::roots_from(from, end_of_today));
    } else {
        let mut p = from;
        while p <= now_p {
            roots.push(format!("{}/", p.path()));
            p = p.next();
        }
    }
    roots
}

/// Turns a rollup row's moments into the raw path's weighted sums for one query.
struct Weighting {
    now_micros: i64,
    /// Half-life in microseconds, or `None` (every job weighs 1).
    half_life: Option<f64>,
}

/// Per-hour factors: `2^(−age/h)` of the hour's middle, and `c = ln 2 · 1 h / h`.
#[derive(Clone, Copy)]
struct Factors {
    base: f64,
    c: f64,
}

impl Weighting {
    fn new(q: &Query) -> Self {
        Self {
            now_micros: q.now.timestamp_micros(),
            half_life: q.half_life.map(|h| h.as_micros() as f64),
        }
    }

    fn factors(&self, mid_micros: i64) -> Option<Factors> {
        let h = self.half_life?;
        Some(Factors {
            base: (-((self.now_micros - mid_micros) as f64) / h).exp2(),
            c: std::f64::consts::LN_2 * HOUR_MICROS as f64 / h,
        })
    }
}

/// Add one rollup row to `t`; `cell` is the row's hour in the query's hourly series, if it is in it.
fn add_row(t: &mut Tally, row: &rollup::Row, factors: Option<Factors>, cell: Option<usize>) {
    if let Some(hour) = cell {
        t.add_hourly(hour, row.jobs, row.spot);
    }
    let jobs = f64::from(row.jobs);
    let spot = f64::from(row.spot);
    t.jobs += u64::from(row.jobs);
    t.spot_terminations += u64::from(row.spot);
    t.other_failures += u64::from(row.other);
    t.first_event_micros = t.first_event_micros.min(row.first_micros);
    t.last_event_micros = t.last_event_micros.max(row.last_micros);
    match factors {
        None => {
            t.weight += jobs;
            t.weight_sq += jobs;
            t.weighted_terminations += spot;
        }
        Some(Factors { base, c }) => {
            let m = row.m.map(f64::from);
            let s = row.t.map(f64::from);
            t.weight += base * Moments::exp_sum(jobs, &m, c);
            t.weight_sq += base * base * Moments::exp_sum(jobs, &m, 2.0 * c);
            if row.spot > 0 {
                t.weighted_terminations += base * Moments::exp_sum(spot, &s, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn p(day: u32, hour: u32) -> Partition {
        Partition {
            date: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            hour,
        }
    }

    #[test]
    fn raw_roots_cover_uncovered_hours_and_the_live_tail_once() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap();
        // Hours 20/05 and 21/03 uncovered before the frontier 22/08; 22/10 is the open hour after it.
        let roots = raw_roots(&[p(20, 5), p(21, 3), p(22, 10)], Some(p(22, 8)), None, now);
        assert_eq!(
            roots,
            [
                "dt=2026-11-20/hr=05/",
                "dt=2026-11-21/hr=03/",
                "dt=2026-11-22/hr=09/",
                "dt=2026-11-22/hr=10/",
            ]
        );
        // An hour stamped in 9999 that the listing found is its own root.
        let far = Partition {
            date: NaiveDate::from_ymd_opt(9999, 12, 31).unwrap(),
            hour: 0,
        };
        let roots = raw_roots(&[far], Some(p(22, 9)), None, now);
        assert_eq!(roots, ["dt=9999-12-31/hr=00/", "dt=2026-11-22/hr=10/"]);
        // Nothing covered yet, window from 09:00: the live hours.
        let roots = raw_roots(&[p(22, 9)], None, Some(p(22, 9)), now);
        assert_eq!(roots, ["dt=2026-11-22/hr=09/", "dt=2026-11-22/hr=10/"]);
        // Nothing covered over days: the first day's hours, then whole days through today.
        let roots = raw_roots(&[p(19, 22), p(22, 1)], None, None, now);
        assert_eq!(
            roots,
            [
                "dt=2026-11-19/hr=22/",
                "dt=2026-11-19/hr=23/",
                "dt=2026-11-20/",
                "dt=2026-11-21/",
                "dt=2026-11-22/",
            ]
        );
        // Everything covered up to the current hour.
        assert_eq!(
            raw_roots(&[], Some(p(22, 10)), None, now),
            Vec::<String>::new()
        );
    }
}
