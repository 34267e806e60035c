//! Compaction: turn closed hours of raw events into rollups, and closed days of hourly rollups into one.
//!
//! Every step is idempotent and needs no coordination: an hour's rollup is a pure function of the raw
//! objects its manifest names (the same objects give the same bytes), each rollup is one atomic put, and
//! readers trust an hour only when its manifest matches what is listed now. Two compactors racing at
//! worst do the same work twice; a late object makes its hour's manifest stale, so it is read raw until
//! the next pass compacts it again.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt, PutPayload};

use pool_core::event::Partition;

use crate::catalog::{Catalog, HourListing, Snapshot};
use crate::query::Query;
use crate::rollup::{
    self, HourManifest, Kind, Manifest, ObjectEntry, RollupRow, day_key, hour_key,
};
use crate::scan::{EventSource, QueryError};
use crate::table::{Choice, Layout};
use crate::tally::HOUR_MICROS;

/// Which part of the history this compactor owns: hours (and days) whose stable hash falls to `index`
/// out of `count`. `0/1` owns everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a shard I/N with 0 ≤ I < N (e.g. 0/1, 2/4)");
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// SplitMix64's finaliser: a fixed, well-mixed hash, the same in every process and version.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Shard {
    pub(crate) fn owns_hour(&self, p: Partition) -> bool {
        let hours = (p.start_micros() / HOUR_MICROS) as u64;
        mix(hours) % u64::from(self.count) == u64::from(self.index)
    }
    pub(crate) fn owns_day(&self, date: NaiveDate) -> bool {
        let days = chrono::Datelike::num_days_from_ce(&date) as u64;
        mix(days ^ 0xda7) % u64::from(self.count) == u64::from(self.index)
    }
}

/// Compaction settings.
#[derive(Debug, Clone, Copy)]
pub struct CompactOptions {
    /// How long after an hour closes it is compacted (late events within it still land in raw).
    pub settle: Duration,
    pub shard: Shard,
    /// Hours compacted at once.
    pub concurrency: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(600),
            shard: Shard::default(),
            concurrency: 2,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PassReport {
    /// Closed hours owned by this shard.
    pub closed_hours: u64,
    pub hours_compacted: u64,
    pub days_merged: u64,
    /// Distinct events and redelivered copies read from raw objects.
    pub events: u64,
    pub errors: u64,
    /// Owned closed hours still without an up-to-date rollup after the pass.
    pub pending_hours: u64,
    /// How long the oldest of those has been waiting since it became eligible (0 when none).
    pub lag: Duration,
    /// End of the newest closed hour.
    pub newest_closed: Option<DateTime<Utc>>,
}

/// The rollup files one day's merge has read: decoded once even when several hours point at the same
/// file (the day file), and those refused (unsigned, unreadable) skipped after the first try.
#[derive(Default)]
struct DecodedRollups {
    decoded: HashMap<Path, (Manifest, Vec<RollupRow>)>,
    refused: HashSet<Path>,
}

/// Compacts one history.
pub struct Compactor {
    source: Arc<EventSource>,
    options: CompactOptions,
}

fn is_closed(end_micros: i64, settle: Duration, now: DateTime<Utc>) -> bool {
    end_micros.saturating_add(settle.as_micros() as i64) <= now.timestamp_micros()
}

impl Compactor {
    pub fn new(source: Arc<EventSource>, options: CompactOptions) -> Self {
        Self { source, options }
    }

    fn catalog(&self) -> &Catalog {
        self.source.catalog()
    }

    /// The key rollups are signed with (and checked against), the source's `ROLLUP_HMAC_KEY`.
    fn signing_key(&self) -> Option<&rollup::SigningKey> {
        self.source.options().rollup_key.as_ref()
    }

    /// One pass as of `now`: compact every owned closed hour that lacks an up-to-date rollup, then merge
    /// every owned closed day whose hours are all compacted. `progress` is told `(done, total)` hours.
    pub async fn run_once(
        &self,
        now: DateTime<Utc>,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<PassReport, QueryError> {
        let mut report = PassReport::default();
        if self.source.layout().await? != Layout::Partitioned {
            tracing::debug!("no dt=/hr= partitions under the root; nothing to compact");
            return Ok(report);
        }
        let snapshot = self
            .catalog()
            .list_now()
            .await
            .map_err(|e| self.source.storage_error(e))?;
        let pending = self.pending_hours(&snapshot, now, &mut report).await;
        self.compact_hours(pending, now, progress, &mut report)
            .await;
        // Merge closed days, with a fresh listing that includes the hours just written.
        let snapshot = self
            .catalog()
            .list_now()
            .await
            .map_err(|e| self.source.storage_error(e))?;
        self.merge_closed_days(&snapshot, now, &mut report).await;
        Ok(report)
    }

    /// The closed hours this shard owns that no up-to-date rollup covers yet (counting the closed hours
    /// and the newest closed one into `report`).
    async fn pending_hours(
        &self,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) -> Vec<(Partition, HourListing)> {
        let settle = self.options.settle;
        let closed: Vec<(Partition, &HourListing)> = snapshot
            .hours
            .iter()
            .filter(|(p, _)| is_closed(p.end_micros(), settle, now))
            .filter(|(p, _)| self.options.shard.owns_hour(**p))
            .map(|(p, l)| (*p, l))
            .collect();
        report.closed_hours = closed.len() as u64;
        report.newest_closed = snapshot
            .hours
            .keys()
            .rfind(|p| is_closed(p.end_micros(), settle, now))
            .and_then(|p| DateTime::from_timestamp_micros(p.end_micros()));
        let mut days: Vec<NaiveDate> = closed.iter().map(|(p, _)| p.date).collect();
        days.dedup();
        let blocks = self.catalog().blocks_for(snapshot, days.into_iter()).await;
        closed
            .into_iter()
            .filter(|(p, l)| Catalog::covering(snapshot, &blocks, *p, l).is_none())
            .map(|(p, l)| (p, l.clone()))
            .collect()
    }

    /// Compact `pending` hours, several at once, reporting progress at most every 10 s. A failed hour
    /// is counted, logged and left for the next pass (it is read raw meanwhile); the oldest one sets
    /// the lag.
    async fn compact_hours(
        &self,
        pending: Vec<(Partition, HourListing)>,
        now: DateTime<Utc>,
        progress: &(dyn Fn(u64, u64) + Sync),
        report: &mut PassReport,
    ) {
        let total = pending.len() as u64;
        let mut failed: Vec<Partition> = vec![];
        let mut done = 0u64;
        let mut last_progress = Instant::now();
        let mut results = futures::stream::iter(pending)
            .map(|(p, l)| async move {
                let r = self.compact_hour(p, &l, now).await;
                (p, r)
            })
            .buffer_unordered(self.options.concurrency.max(1));
        while let Some((p, r)) = results.next().await {
            done += 1;
            match r {
                Ok(events) => {
                    report.hours_compacted += 1;
                    report.events += events;
                }
                Err(e) => {
                    report.errors += 1;
                    failed.push(p);
                    tracing::warn!(hour = %p.path(), error = %e, "compacting an hour failed; it is read raw and retried next pass");
                }
            }
            if last_progress.elapsed() >= Duration::from_secs(10) || done == total {
                progress(done, total);
                last_progress = Instant::now();
            }
        }
        drop(results);
        let settle = self.options.settle;
        report.pending_hours = failed.len() as u64;
        report.lag = failed
            .iter()
            .min()
            .map(|p| {
                let eligible = p.end_micros() + settle.as_micros() as i64;
                Duration::from_micros((now.timestamp_micros() - eligible).max(0) as u64)
            })
            .unwrap_or_default();
    }

    /// Merge the hourly rollups of every closed day this shard owns into one day rollup.
    async fn merge_closed_days(
        &self,
        snapshot: &Snapshot,
        now: DateTime<Utc>,
        report: &mut PassReport,
    ) {
        let settle = self.options.settle;
        let days: Vec<NaiveDate> = snapshot
            .rollups
            .keys()
            .copied()
            .filter(|d| {
                let end = Partition { date: *d, hour: 23 }.end_micros();
                is_closed(end, settle, now) && self.options.shard.owns_day(*d)
            })
            .collect();
        for day in days {
            match self.merge_day(snapshot, day).await {
                Ok(true) => report.days_merged += 1,
                Ok(false) => {}
                Err(e) => {
                    report.errors += 1;
                    tracing::warn!(day = %day, error = %e, "merging a day's rollups failed; retried next pass");
                }
            }
        }
    }

    /// Compact one hour from exactly the objects listed; returns the events read.
    async fn compact_hour(
        &self,
        p: Partition,
        listing: &HourListing,
        now: DateTime<Utc>,
    ) -> Result<u64, QueryError> {
        let (manifest, rows) = self.scan_hour(p, listing, now).await?;
        let events = manifest.rows + manifest.duplicates;
        let mut rows = rows;
        let bytes = rollup::encode(
            &Manifest {
                version: 1,
                kind: Kind::Hour,
                date: p.date,
                hours: vec![manifest],
            },
            &mut rows,
            self.signing_key(),
        )
        .map_err(|e| QueryError::Engine(e.to_string()))?;
        let storage = self.source.storage();
        storage
            .store
            .put(&hour_key(&storage.root, p), PutPayload::from(bytes))
            .await
            .map_err(|e| self.source.storage_error(e))?;
        Ok(events)
    }

    /// Tally one hour's listed objects: its manifest and per-pool rows.
    async fn scan_hour(
        &self,
        p: Partition,
        listing: &HourListing,
        now: DateTime<Utc>,
    ) -> Result<(HourManifest, Vec<RollupRow>), QueryError> {
        let storage = self.source.storage();
        let root = storage.root.as_ref();
        let prefix_len = if root.is_empty() { 0 } else { root.len() + 1 };
        let keys: Vec<String> = listing
            .objects
            .iter()
            .filter_map(|m| m.location.as_ref().get(prefix_len..).map(str::to_owned))
            .collect();
        let mid = p.start_micros() + HOUR_MICROS / 2;
        let scan = self
            .source
            .scan_raw(
                &Query::everything(now),
                Layout::Partitioned,
                Choice::Roots(keys),
                Some(mid),
            )
            .await?;
        let (start, end) = (p.start_micros(), p.end_micros());
        let misfiled_pools = scan
            .pools
            .iter()
            .filter(|(_, c)| c.tally.first_event_micros < start || c.tally.last_event_micros >= end)
            .count() as u64;
        let manifest = HourManifest {
            hour: p.hour as u8,
            objects: listing.objects.iter().map(ObjectEntry::from).collect(),
            rows: scan.report.rows,
            duplicates: scan.report.duplicates,
            invalid_rows: scan.report.invalid_rows,
            skipped_lines: scan.report.skipped_lines,
            misfiled_pools,
        };
        let rows = scan
            .pools
            .into_iter()
            .map(|(pool, count)| RollupRow {
                hour: p.hour as u8,
                pool_id: pool.as_str().to_owned(),
                count,
            })
            .collect();
        Ok((manifest, rows))
    }

    /// Merge a closed day's hours into one rollup when every listed hour of it has an up-to-date rollup
    /// and there is something to merge (hourly files, or a day file that went stale). Returns true when a
    /// day rollup was written.
    async fn merge_day(&self, snapshot: &Snapshot, day: NaiveDate) -> Result<bool, QueryError> {
        let Some(rollups) = snapshot.rollups.get(&day) else {
            return Ok(false);
        };
        let mut parts: Vec<(HourManifest, Vec<RollupRow>)> = vec![];
        let mut from_hour_files = 0;
        let mut files = DecodedRollups::default();
        for (p, listing) in snapshot.hours.range(
            Partition { date: day, hour: 0 }..=Partition {
                date: day,
                hour: 23,
            },
        ) {
            let candidates = rollups
                .hours
                .get(&p.hour)
                .into_iter()
                .chain(rollups.day.iter());
            match self
                .hour_in_rollups(*p, listing, candidates, &mut files)
                .await?
            {
                Some((hm, rows, hourly)) => {
                    from_hour_files += usize::from(hourly);
                    parts.push((hm, rows));
                }
                // An hour still waits for compaction (or was just changed): merge later.
                None => return Ok(false),
            }
        }
        if parts.is_empty() || (from_hour_files == 0 && rollups.hours.is_empty()) {
            return Ok(false);
        }
        self.write_day(day, parts, rollups.hours.values()).await?;
        Ok(true)
    }

    /// Hour `p`'s manifest entry and rows from the first of `candidates` (its hour file, then the day
    /// file) that is signed with the key and matches the hour's objects listed now, and whether that
    /// was an hour file. `None`: none matches yet, or a file vanished (another compactor merged it).
    async fn hour_in_rollups(
        &self,
        p: Partition,
        listing: &HourListing,
        candidates: impl Iterator<Item = &ObjectMeta>,
        files: &mut DecodedRollups,
    ) -> Result<Option<(HourManifest, Vec<RollupRow>, bool)>, QueryError> {
        let storage = self.source.storage();
        for meta in candidates {
            if files.refused.contains(&meta.location) {
                continue;
            }
            if !files.decoded.contains_key(&meta.location) {
                let bytes = match storage.store.get(&meta.location).await {
                    Ok(r) => r.bytes().await.map_err(|e| self.source.storage_error(e))?,
                    // Another compactor merged and deleted it meanwhile: try again next pass.
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(self.source.storage_error(e)),
                };
                // An hourly rollup that is not signed with the key is never merged (and so never
                // signed into a day): the hour is compacted again from raw first.
                match rollup::decode(meta.location.as_ref(), bytes, self.signing_key()) {
                    Ok(d) => {
                        files.decoded.insert(meta.location.clone(), d);
                    }
                    Err(e) => {
                        tracing::warn!(rollup = %meta.location, error = %e, "rollup not merged");
                        files.refused.insert(meta.location.clone());
                        continue;
                    }
                }
            }
            let (manifest, rows) = &files.decoded[&meta.location];
            if let Some(hm) = manifest
                .hours
                .iter()
                .find(|h| u32::from(h.hour) == p.hour)
                .filter(|h| rollup::digest(&h.objects) == listing.digest)
            {
                let hour_rows: Vec<RollupRow> = rows
                    .iter()
                    .filter(|r| u32::from(r.hour) == p.hour)
                    .cloned()
                    .collect();
                return Ok(Some((hm.clone(), hour_rows, manifest.kind == Kind::Hour)));
            }
        }
        Ok(None)
    }

    /// Write the day's rollup from its hours' parts, then delete the hourly files it replaces.
    async fn write_day(
        &self,
        day: NaiveDate,
        parts: Vec<(HourManifest, Vec<RollupRow>)>,
        hourly_files: impl Iterator<Item = &ObjectMeta>,
    ) -> Result<(), QueryError> {
        let storage = self.source.storage();
        let mut manifest = Manifest {
            version: 1,
            kind: Kind::Day,
            date: day,
            hours: vec![],
        };
        let mut rows = vec![];
        for (hm, r) in parts {
            manifest.hours.push(hm);
            rows.extend(r);
        }
        let bytes = rollup::encode(&manifest, &mut rows, self.signing_key())
            .map_err(|e| QueryError::Engine(e.to_string()))?;
        storage
            .store
            .put(&day_key(&storage.root, day), PutPayload::from(bytes))
            .await
            .map_err(|e| self.source.storage_error(e))?;
        // The day file now answers for every hour; the hourly files it replaced can go. A file rewritten
        // meanwhile by another compactor is deleted too: its hour reads raw until the next pass.
        for meta in hourly_files {
            match storage.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.source.storage_error(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_split_the_hours_between_them() {
        assert_eq!(
            "1/4".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 4 }
        );
        for bad in ["4/4", "1", "a/b", "0/0", "-1/2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let shards: Vec<Shard> = (0..4).map(|index| Shard { index, count: 4 }).collect();
        let mut p = Partition {
            date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            hour: 0,
        };
        let mut per_shard = [0u32; 4];
        for _ in 0..24 * 365 {
            let owners: Vec<_> = shards.iter().filter(|s| s.owns_hour(p)).collect();
            assert_eq!(owners.len(), 1, "exactly one shard owns {}", p.path());
            per_shard[owners[0].index as usize] += 1;
            p = p.next();
        }
        for n in per_shard {
            assert!((1900..2500).contains(&n), "{per_shard:?}");
        }
        assert!(Shard::default().owns_day(p.date));
    }

    #[test]
    fn an_hour_closes_after_the_settle_time() {
        let p = Partition {
            date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            hour: 10,
        };
        let settle = Duration::from_secs(600);
        let at = |m: i64| DateTime::from_timestamp_micros(p.end_micros() + m * 60_000_000).unwrap();
        assert!(!is_closed(p.end_micros(), settle, at(9)));
        assert!(is_closed(p.end_micros(), settle, at(10)));
    }
}
