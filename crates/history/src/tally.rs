//! Tallying decoded event rows per pool: one pass over Arrow batches that dedups redelivered events,
//! parses each distinct pool id once, applies the window's cutoff and weighs jobs by age.
//!
//! The same pass feeds two consumers: a ranking query (per-pool [`Tally`], weighted by recency) and the
//! compactor (per-pool [`Moments`] of one hour, from which any later recency weighting is recovered).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};

use pool_core::event::{Outcome, PoolId, SPOT_INSTANCE_TERMINATION, parse_timestamp_micros};

use crate::query::{Query, ScanReport};

/// Number of power moments kept per pool and hour (see [`Moments`]).
pub const MOMENTS: usize = 6;

/// One hour in microseconds.
pub const HOUR_MICROS: i64 = 3_600_000_000;

/// Unweighted, deduplicated counts of one pool in one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HourCount {
    pub jobs: u32,
    pub spot: u32,
}

/// What a scan counted for one pool. With recency weighting each job carries a weight in (0, 1];
/// without it every weight is 1 and the weighted sums equal the counts.
///
/// When the query asks for an hourly series ([`Query::series_from`]), `hourly[i]` holds the unweighted
/// counts of the counted events (inside the window, deduplicated, not in the future) that finished in
/// `[series_from + i h, series_from + (i + 1) h)`, whatever the weighting. Events before `series_from`
/// are not in it, and it is empty when the query asks for no series. It grows only as far as the last
/// hour with an event of this pool (missing trailing hours are zero), never beyond the hour of the
/// query's horizon ([`Query::horizon_micros`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    pub jobs: u64,
    pub spot_terminations: u64,
    pub other_failures: u64,
    /// Σw over jobs.
    pub weight: f64,
    /// Σw² over jobs (for the effective sample size).
    pub weight_sq: f64,
    /// Σw over spot terminations.
    pub weighted_terminations: f64,
    /// Earliest `finished_at`, microseconds since the epoch.
    pub first_event_micros: i64,
    /// Latest `finished_at`, microseconds since the epoch.
    pub last_event_micros: i64,
    /// Unweighted counts per hour from the query's `series_from` (see above).
    pub hourly: Vec<HourCount>,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            jobs: 0,
            spot_terminations: 0,
            other_failures: 0,
            weight: 0.0,
            weight_sq: 0.0,
            weighted_terminations: 0.0,
            first_event_micros: i64::MAX,
            last_event_micros: i64::MIN,
            hourly: Vec::new(),
        }
    }
}

impl Tally {
    /// Add one job finishing with `weight`.
    pub fn add(&mut self, spot: bool, other_failure: bool, weight: f64, finished_micros: i64) {
        self.jobs += 1;
        self.weight += weight;
        self.weight_sq += weight * weight;
        if spot {
            self.spot_terminations += 1;
            self.weighted_terminations += weight;
        } else if other_failure {
            self.other_failures += 1;
        }
        self.first_event_micros = self.first_event_micros.min(finished_micros);
        self.last_event_micros = self.last_event_micros.max(finished_micros);
    }

    /// Add another tally of the same pool (from another partition of the scan, or a rollup).
    pub(crate) fn merge(&mut self, o: &Tally) {
        self.jobs += o.jobs;
        self.spot_terminations += o.spot_terminations;
        self.other_failures += o.other_failures;
        self.weight += o.weight;
        self.weight_sq += o.weight_sq;
        self.weighted_terminations += o.weighted_terminations;
        self.first_event_micros = self.first_event_micros.min(o.first_event_micros);
        self.last_event_micros = self.last_event_micros.max(o.last_event_micros);
        if self.hourly.len() < o.hourly.len() {
            self.hourly.resize(o.hourly.len(), HourCount::default());
        }
        for (a, b) in self.hourly.iter_mut().zip(&o.hourly) {
            a.jobs = a.jobs.saturating_add(b.jobs);
            a.spot = a.spot.saturating_add(b.spot);
        }
    }

    /// Add `jobs` jobs, `spot` of them spot terminations, to hour `hour` of the series (growing it).
    #[inline]
    pub(crate) fn add_hourly(&mut self, hour: usize, jobs: u32, spot: u32) {
        if hour >= self.hourly.len() {
            self.hourly.resize(hour + 1, HourCount::default());
        }
        let cell = &mut self.hourly[hour];
        cell.jobs = cell.jobs.saturating_add(jobs);
        cell.spot = cell.spot.saturating_add(spot);
    }

    /// The (weighted) termination rate.
    pub fn rate(&self) -> f64 {
        if self.weight > 0.0 {
            self.weighted_terminations / self.weight
        } else {
            0.0
        }
    }

    /// Kish's effective sample size, (Σw)² / Σw². Equal to `jobs` when unweighted; smaller when old jobs
    /// are discounted, so the interval widens as the evidence ages.
    pub fn effective_jobs(&self) -> f64 {
        if self.weight_sq > 0.0 {
            self.weight * self.weight / self.weight_sq
        } else {
            0.0
        }
    }
}

/// Power moments of the jobs of one pool in one hour, about the middle of the hour.
///
/// With `u = (finished_at − mid) / 1 h ∈ [−½, ½)`, a job's recency weight for any `now` and half-life `h`
/// is `2^(−(now − mid)/h) · e^(c·u)` with `c = ln 2 · 1 h / h`. Summed over the hour's jobs,
/// `Σ e^(c·u) = Σₖ cᵏ/k! · Σ uᵏ`, so the sums `Σ uᵏ` (k = 1…[`MOMENTS`]) recover Σw, Σw² (with 2c) and
/// Σw over terminations for every half-life without keeping the jobs. For `h ≥ 1 h`, `|c·u| ≤ 0.35`
/// and `|2c·u| ≤ 0.7`, and the first omitted term is below 3·10⁻⁵ of the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    /// Σ uᵏ over all jobs, k = 1…MOMENTS.
    pub jobs: [f64; MOMENTS],
    /// Σ uᵏ over spot terminations.
    pub spot: [f64; MOMENTS],
}

impl Moments {
    /// Add one job finishing at `u` hours from the middle of its hour.
    pub fn add(&mut self, u: f64, spot: bool) {
        let mut p = 1.0;
        for k in 0..MOMENTS {
            p *= u;
            self.jobs[k] += p;
            if spot {
                self.spot[k] += p;
            }
        }
    }

    /// `Σ e^(c·u)` for `n` jobs with moments `m`.
    pub fn exp_sum(n: f64, m: &[f64; MOMENTS], c: f64) -> f64 {
        let mut sum = n;
        let mut coef = 1.0;
        for (k, mk) in m.iter().enumerate() {
            coef *= c / (k + 1) as f64;
            sum += coef * mk;
        }
        sum
    }
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

/// 64-bit hashes of the events counted so far, sharded so partitions rarely wait on each other.
///
/// The key is the whole event (all five fields): a redelivery is the same bytes, while a second event
/// reusing a real job id is not silently merged into (or allowed to pre-empt) the real one. Because a
/// redelivered copy carries the same `finished_at`, it always lands in the same hour, which is what lets
/// the compactor dedup each hour on its own. Two distinct events collide with probability about
/// n²/2⁶⁵ (1e-7 for 2M events); the hasher is seeded at random per process, so collisions cannot be
/// aimed at.
pub struct SeenEvents {
    shards: Vec<Mutex<HashSet<u64, BuildHasherDefault<IdentityHasher>>>>,
}

impl std::fmt::Debug for SeenEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeenEvents")
            .field("hashes", &self.len())
            .finish()
    }
}

impl Default for SeenEvents {
    fn default() -> Self {
        Self {
            shards: (0..Self::SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl SeenEvents {
    const SHARDS: usize = 64;

    /// Record `hash`; false when it was already there (a redelivered copy).
    pub fn insert(&self, hash: u64) -> bool {
        self.shards[Self::shard(hash)]
            .lock()
            .expect("poisoned")
            .insert(hash)
    }

    /// Hashes held.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().expect("poisoned").len())
            .sum()
    }

    /// The shard of a hash, from middle bits: the set itself uses the low bits for buckets and the top
    /// bits for its control bytes.
    fn shard(hash: u64) -> usize {
        ((hash >> 32) as usize) & (Self::SHARDS - 1)
    }
}

/// `(spot termination, other failure)` of a status and reason, `None` when they do not form a valid
/// outcome (`SUCCEEDED` with a reason, an unknown status).
#[inline]
pub fn outcome_flags(status: &str, reason: &str) -> Option<(bool, bool)> {
    match (status, reason) {
        ("FAILED", SPOT_INSTANCE_TERMINATION) => Some((true, false)),
        ("SUCCEEDED", "") => Some((false, false)),
        _ => match Outcome::from_parts(status, reason) {
            Ok(Outcome::SpotTermination) => Some((true, false)),
            Ok(Outcome::OtherFailure(_)) => Some((false, true)),
            Ok(Outcome::Succeeded) => Some((false, false)),
            Err(_) => None,
        },
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

/// Per-pool output of a pass: the tally and, when collecting for a rollup, the hour's moments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolCount {
    pub tally: Tally,
    pub moments: Moments,
    /// Redelivered copies of this pool's events that were dropped.
    pub duplicates: u64,
}

/// One pass over the batches: dedup, parse pool ids once per distinct pool, weight by age.
pub struct Accumulator {
    query: Arc<Query>,
    /// Events already counted, shared by the partitions of one scan; `None` when dedup is off.
    seen: Option<Arc<SeenEvents>>,
    hasher: ahash::RandomState,
    /// Raw pool id → its slot, so each distinct id is parsed once.
    index: HashMap<String, Slot, ahash::RandomState>,
    pools: Vec<(PoolId, PoolCount)>,
    now_micros: i64,
    /// Rows that finished before this are outside the window (`i64::MIN`: the whole history).
    cutoff_micros: i64,
    /// Rows that finished after this are in the future beyond the allowed clock skew.
    horizon_micros: i64,
    half_life_micros: Option<f64>,
    /// Middle of the hour whose moments are collected (compaction), or `None`.
    moments_mid: Option<i64>,
    /// Start of the hourly series (`Query::series_from`, hour-aligned), `i64::MAX` when there is none,
    /// so the per-event test is one comparison.
    series_micros: i64,
    pub report: ScanReport,
    /// Rows of the current batch waiting for the dedup verdict, and their hashes grouped by shard so
    /// each shard is locked once per batch instead of once per row (reused between batches).
    candidates: Vec<Candidate>,
    by_shard: Vec<Vec<(u64, u32)>>,
}

impl Accumulator {
    /// `hasher` must be the same for every accumulator sharing `seen`.
    pub fn new(
        query: Arc<Query>,
        seen: Option<Arc<SeenEvents>>,
        hasher: ahash::RandomState,
        moments_mid: Option<i64>,
    ) -> Self {
        Self {
            now_micros: query.now.timestamp_micros(),
            cutoff_micros: query.cutoff().map_or(i64::MIN, |c| c.timestamp_micros()),
            horizon_micros: query.horizon_micros(),
            half_life_micros: query.half_life.map(|h| h.as_micros() as f64),
            series_micros: query.series_from_micros().unwrap_or(i64::MAX),
            query,
            seen,
            hasher,
            index: HashMap::default(),
            pools: vec![],
            moments_mid,
            report: ScanReport::default(),
            candidates: vec![],
            by_shard: vec![vec![]; SeenEvents::SHARDS],
        }
    }

    /// Combine the partitions' tallies (each event was counted by exactly one of them).
    pub fn merge(parts: Vec<Accumulator>) -> (Vec<(PoolId, PoolCount)>, ScanReport) {
        let mut report = ScanReport::default();
        let mut by_pool: HashMap<PoolId, usize> = HashMap::new();
        let mut pools: Vec<(PoolId, PoolCount)> = vec![];
        for part in parts {
            let r = &part.report;
            report.rows += r.rows;
            report.duplicates += r.duplicates;
            report.invalid_rows += r.invalid_rows;
            report.future_events += r.future_events;
            for (pool, c) in part.pools {
                match by_pool.get(&pool) {
                    Some(&i) => {
                        let t = &mut pools[i].1;
                        t.tally.merge(&c.tally);
                        t.duplicates += c.duplicates;
                        for k in 0..MOMENTS {
                            t.moments.jobs[k] += c.moments.jobs[k];
                            t.moments.spot[k] += c.moments.spot[k];
                        }
                    }
                    None => {
                        by_pool.insert(pool.clone(), pools.len());
                        pools.push((pool, c));
                    }
                }
            }
        }
        (pools, report)
    }

    fn slot(&mut self, raw: &str) -> Slot {
        if let Some(slot) = self.index.get(raw) {
            return *slot;
        }
        let slot = match raw.parse::<PoolId>() {
            Ok(pool) if self.query.wants(&pool) => {
                self.pools.push((pool, PoolCount::default()));
                Slot::Counted(self.pools.len() - 1)
            }
            Ok(_) => Slot::Excluded,
            Err(_) => Slot::Malformed,
        };
        self.index.insert(raw.to_owned(), slot);
        slot
    }

    /// Tally one batch with the columns `pool_id, job_id, finished_at, status, reason`.
    pub fn add_batch(&mut self, batch: &RecordBatch) {
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
            let time = times.value(i);
            let Some(finished_micros) = parse_timestamp_micros(time) else {
                self.report.invalid_rows += 1;
                continue;
            };
            // Outside the window: skipped before any other check, as a filter would have.
            if finished_micros < self.cutoff_micros {
                continue;
            }
            // Stamped in the future: a forged or badly clocked event must not steer every ranking.
            if finished_micros > self.horizon_micros {
                self.report.future_events += 1;
                continue;
            }
            let pool = pools.value(i);
            let slot = match self.slot(pool) {
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
            let Some((spot, other)) = outcome_flags(status, reason) else {
                self.report.invalid_rows += 1;
                continue;
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
                let hash = self.hasher.hash_one((job, time, pool, status, reason));
                self.by_shard[SeenEvents::shard(hash)].push((hash, self.candidates.len() as u32));
                self.candidates.push(c);
            } else {
                self.count(c);
            }
        }
        if let Some(seen) = self.seen.clone() {
            self.settle(&seen);
        }
    }

    /// Count the batch's candidates that were not seen before, one shard lock at a time.
    fn settle(&mut self, seen: &SeenEvents) {
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
                        let slot = self.candidates[idx as usize].slot as usize;
                        self.pools[slot].1.duplicates += 1;
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
        let entry = &mut self.pools[c.slot as usize].1;
        entry.tally.add(c.spot, c.other, weight, c.finished_micros);
        if c.finished_micros >= self.series_micros {
            // Not beyond the horizon's hour: later events were dropped before they got here.
            let hour = ((c.finished_micros - self.series_micros) / HOUR_MICROS) as usize;
            entry.tally.add_hourly(hour, 1, u32::from(c.spot));
        }
        if let Some(mid) = self.moments_mid {
            let u = (c.finished_micros - mid) as f64 / HOUR_MICROS as f64;
            entry.moments.add(u, c.spot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_recover_weighted_sums_for_any_half_life() {
        // Jobs spread over one hour; compare Σ e^(c·u) from moments with the direct sum.
        let us: Vec<f64> = (0..1000).map(|i| -0.5 + i as f64 / 1000.0).collect();
        let mut m = Moments::default();
        for (i, &u) in us.iter().enumerate() {
            m.add(u, i % 7 == 0);
        }
        for h_hours in [1.0, 1.5, 6.0, 24.0, 24.0 * 30.0] {
            for c in [
                std::f64::consts::LN_2 / h_hours,
                2.0 * std::f64::consts::LN_2 / h_hours,
            ] {
                let direct: f64 = us.iter().map(|u| (c * u).exp()).sum();
                let approx = Moments::exp_sum(us.len() as f64, &m.jobs, c);
                assert!(((approx - direct) / direct).abs() < 1e-5, "{h_hours} {c}");
                let direct_spot: f64 = us
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % 7 == 0)
                    .map(|(_, u)| (c * u).exp())
                    .sum();
                let n_spot = us.len().div_ceil(7) as f64;
                let approx_spot = Moments::exp_sum(n_spot, &m.spot, c);
                assert!(((approx_spot - direct_spot) / direct_spot).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn merging_adds_hourly_series_elementwise_and_extends_the_shorter() {
        let h = |jobs, spot| HourCount { jobs, spot };
        let mut a = Tally::default();
        a.add_hourly(0, 3, 1);
        a.add_hourly(1, 2, 0);
        let mut b = Tally::default();
        b.add_hourly(0, 1, 1);
        b.add_hourly(3, 5, 2);
        let mut ab = a.clone();
        ab.merge(&b);
        assert_eq!(ab.hourly, [h(4, 2), h(2, 0), h(0, 0), h(5, 2)]);
        // The other way round: the longer one is extended by nothing, the sums are the same.
        let mut ba = b.clone();
        ba.merge(&a);
        assert_eq!(ba.hourly, ab.hourly);
        // With an empty series on either side.
        let mut e = Tally::default();
        e.merge(&a);
        assert_eq!(e.hourly, a.hourly);
        let mut a2 = a.clone();
        a2.merge(&Tally::default());
        assert_eq!(a2.hourly, a.hourly);
        assert!(Tally::default().hourly.is_empty());
    }

    #[test]
    fn recency_weighting_shrinks_the_effective_sample() {
        let mut t = Tally::default();
        for i in 0..100 {
            t.add(i % 10 == 0, false, if i < 50 { 1.0 } else { 0.25 }, i);
        }
        assert_eq!(t.jobs, 100);
        assert!(t.effective_jobs() < 100.0 && t.effective_jobs() > 50.0);
        assert!((t.rate() - 0.1).abs() < 1e-9);
        assert_eq!(t.first_event_micros, 0);
        assert_eq!(t.last_event_micros, 99);
    }
}
