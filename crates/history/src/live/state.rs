//! What the view holds in memory ([`ViewState`]: every pool's cells) and what a read adds to it
//! ([`Delta`]). Pure: the loader does the I/O and decides what to add, clear or rebuild.

use std::collections::{BTreeMap, HashMap};

use pool_core::event::{Partition, PoolId};
use pool_core::window::Grain;

use crate::query::Query;
use crate::rollup;
use crate::tally::{MOMENTS, Tally};

use super::cells::{self, Acc, Coverage, Series, Weigh, frame, index};

/// What one read found: per pool, full-precision cells per tier, and what was skipped.
#[derive(Debug, Default)]
pub struct Delta {
    pools: Vec<(PoolId, [BTreeMap<i64, Acc>; 3])>,
    slots: HashMap<PoolId, usize>,
    /// Events counted.
    pub rows: u64,
    /// Redelivered copies dropped.
    pub duplicates: u64,
    /// Rows that decoded but are not valid events.
    pub invalid_rows: u64,
    /// Events stamped beyond the allowed clock skew at the time they were read.
    pub future_events: u64,
    /// Some event lies outside the hour whose folder held it (a misfiled object).
    pub foreign: bool,
}

fn tier(grain: Grain) -> usize {
    match grain {
        Grain::Minute => 0,
        Grain::Hour => 1,
        Grain::Day => 2,
    }
}

/// `u`: where `at` lies in its cell of `grain`, in cells from the cell's middle.
fn offset(grain: Grain, at: i64) -> f64 {
    let unit = grain.micros();
    (at.rem_euclid(unit) as f64 - unit as f64 / 2.0) / unit as f64
}

impl Delta {
    /// The slot of `pool` in this delta (added when new).
    pub fn slot(&mut self, pool: &PoolId) -> usize {
        if let Some(&s) = self.slots.get(pool) {
            return s;
        }
        self.pools.push((pool.clone(), Default::default()));
        self.slots.insert(pool.clone(), self.pools.len() - 1);
        self.pools.len() - 1
    }

    /// One deduplicated job of the pool in `slot`; with `minutes`, its minute cell too.
    pub fn add_job(&mut self, slot: usize, at: i64, spot: bool, other: bool, minutes: bool) {
        self.rows += 1;
        let tiers = &mut self.pools[slot].1;
        for g in Grain::ALL {
            if g == Grain::Minute && !minutes {
                continue;
            }
            tiers[tier(g)]
                .entry(index(g, at))
                .or_default()
                .add_job(offset(g, at), spot, other, at);
        }
    }

    /// One pool's row of a rollup hour `p`: its hour and its day.
    pub fn add_rollup_row(&mut self, pool: &PoolId, p: Partition, row: &rollup::Row) {
        let slot = self.slot(pool);
        self.rows += u64::from(row.jobs);
        self.duplicates += u64::from(row.duplicates);
        let hour = Acc {
            jobs: u64::from(row.jobs),
            spot: u64::from(row.spot),
            other: u64::from(row.other),
            first: row.first_micros,
            last: row.last_micros,
            m: row.m.map(f64::from),
            t: row.t.map(f64::from),
        };
        let h = index(Grain::Hour, p.start_micros());
        let tiers = &mut self.pools[slot].1;
        add_acc(tiers[tier(Grain::Hour)].entry(h).or_default(), &hour);
        let (shift, scale) = frame(Grain::Hour, h, Grain::Day);
        tiers[tier(Grain::Day)]
            .entry(index(Grain::Day, p.start_micros()))
            .or_default()
            .add_shifted(&hour, shift, scale);
    }

    /// Another delta's cells and counts (partitions of one read).
    pub fn merge(&mut self, other: Delta) {
        self.rows += other.rows;
        self.duplicates += other.duplicates;
        self.invalid_rows += other.invalid_rows;
        self.future_events += other.future_events;
        self.foreign |= other.foreign;
        for (pool, tiers) in other.pools {
            let slot = self.slot(&pool);
            for (t, cells) in tiers.into_iter().enumerate() {
                for (idx, acc) in cells {
                    add_acc(self.pools[slot].1[t].entry(idx).or_default(), &acc);
                }
            }
        }
    }
}

fn add_acc(into: &mut Acc, a: &Acc) {
    into.jobs += a.jobs;
    into.spot += a.spot;
    into.other += a.other;
    into.first = into.first.min(a.first);
    into.last = into.last.max(a.last);
    for k in 0..MOMENTS {
        into.m[k] += a.m[k];
        into.t[k] += a.t[k];
    }
}

/// Every pool's cells, and which tiers are complete where.
#[derive(Debug)]
pub struct ViewState {
    /// Bumped by every change to the cells: answers computed from one version can be reused until
    /// the next.
    version: u64,
    pools: Vec<PoolId>,
    slots: HashMap<PoolId, usize>,
    series: Vec<Series>,
    coverage: Coverage,
}

/// What the view holds, for its report and its memory metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Holding {
    pub pools: usize,
    /// Cells per tier: minutes, hours, days.
    pub cells: [usize; 3],
    pub bytes: usize,
}

impl ViewState {
    pub fn new(coverage: Coverage) -> Self {
        Self {
            version: 0,
            pools: vec![],
            slots: HashMap::new(),
            series: vec![],
            coverage,
        }
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Continue another state's versions (a rebuilt view replacing the old one).
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    fn slot(&mut self, pool: &PoolId) -> usize {
        if let Some(&s) = self.slots.get(pool) {
            return s;
        }
        self.pools.push(pool.clone());
        self.series.push(Series::default());
        self.slots.insert(pool.clone(), self.pools.len() - 1);
        self.pools.len() - 1
    }

    /// Add a delta. Minute cells before the minute coverage and hour cells before the hour coverage
    /// are not kept (those tiers are not complete there, so no query reads them).
    pub fn apply(&mut self, d: &Delta) {
        if !d.pools.is_empty() {
            self.version += 1;
        }
        for (pool, tiers) in &d.pools {
            let slot = self.slot(pool);
            let series = &mut self.series[slot];
            for g in Grain::ALL {
                let from = match g {
                    Grain::Minute => self.coverage.minute_from,
                    Grain::Hour => self.coverage.hour_from,
                    Grain::Day => i64::MIN,
                };
                for (&idx, acc) in &tiers[tier(g)] {
                    if idx.saturating_mul(g.micros()) >= from {
                        series.cell_mut(g, idx).add(acc);
                    }
                }
            }
        }
    }

    /// Remove hour `p` (its minutes and its hour cell) from every pool and recompute its day from the
    /// day's remaining hours. Returns false, touching nothing, when the day is older than the hour
    /// coverage (its hours are gone: the caller rebuilds the whole day instead).
    pub fn clear_hour(&mut self, p: Partition) -> bool {
        let day_start = Grain::Day.floor_micros(p.start_micros());
        if day_start < self.coverage.hour_from {
            return false;
        }
        let h = index(Grain::Hour, p.start_micros());
        let (m_from, m_to) = (
            index(Grain::Minute, p.start_micros()),
            index(Grain::Minute, p.end_micros()),
        );
        self.version += 1;
        let d = index(Grain::Day, day_start);
        let hours = (
            index(Grain::Hour, day_start),
            index(Grain::Hour, day_start + Grain::Day.micros()),
        );
        for series in &mut self.series {
            if series.range(Grain::Hour, h, h + 1).is_empty()
                && series.range(Grain::Minute, m_from, m_to).is_empty()
            {
                continue;
            }
            series.remove(Grain::Minute, m_from, m_to);
            series.remove(Grain::Hour, h, h + 1);
            let mut day = Acc::default();
            for (idx, c) in series.range(Grain::Hour, hours.0, hours.1) {
                let (shift, scale) = frame(Grain::Hour, *idx, Grain::Day);
                day.add_shifted(&c.to_acc(), shift, scale);
            }
            series.remove(Grain::Day, d, d + 1);
            if day.jobs > 0 {
                series.cell_mut(Grain::Day, d).add(&day);
            }
        }
        true
    }

    /// Move the coverage forward and drop the cells it no longer needs.
    pub fn retain(&mut self, coverage: Coverage) {
        let minute_from = coverage.minute_from.max(self.coverage.minute_from);
        let hour_from = coverage.hour_from.max(self.coverage.hour_from);
        for series in &mut self.series {
            if minute_from != i64::MAX {
                series.remove(Grain::Minute, i64::MIN, index(Grain::Minute, minute_from));
            }
            if hour_from != i64::MAX {
                series.remove(Grain::Hour, i64::MIN, index(Grain::Hour, hour_from));
            }
            series.shrink();
        }
        self.coverage = Coverage {
            minute_from,
            hour_from,
        };
    }

    pub fn holding(&self) -> Holding {
        let mut h = Holding {
            pools: self.pools.len(),
            ..Holding::default()
        };
        h.bytes = self.pools.capacity() * std::mem::size_of::<PoolId>()
            + self
                .pools
                .iter()
                .map(|p| p.as_str().len() * 3)
                .sum::<usize>()
            + self.slots.capacity() * (std::mem::size_of::<(PoolId, usize)>() + 1)
            + self.series.capacity() * std::mem::size_of::<Series>();
        for s in &self.series {
            for (total, n) in h.cells.iter_mut().zip(s.cells()) {
                *total += n;
            }
            h.bytes += s.bytes();
        }
        h
    }

    /// Every pool `q` wants with a job in its window, in pool-id order: counts, weighted sums and
    /// (with `q.series_from`) the hourly series, from whole cells.
    ///
    /// The window is `[q.cutoff(), b)` with `b` the first minute boundary after `q.horizon_micros()`
    /// (events stamped up to the allowed clock skew ahead, to the minute).
    pub fn tally(&self, q: &Query) -> Vec<(PoolId, Tally)> {
        let a = q
            .cutoff()
            .map(|c| c.timestamp_micros())
            .unwrap_or(Grain::Day.floor_micros(i64::MIN / 2));
        let b = Grain::Minute.floor_micros(q.horizon_micros()) + Grain::Minute.micros();
        let weigh = q.half_life.map(|h| Weigh {
            now_micros: q.now.timestamp_micros(),
            half_life_micros: (h.as_micros() as f64).max(1.0),
        });
        let max = weigh.as_ref().map_or(Grain::Day, Weigh::max_grain);
        let segs = cells::segments(a, b, max, &self.coverage);
        let series_start = q.series_from_micros();
        let hour_segs: Vec<cells::Segment> = series_start
            .map(|s| {
                cells::segments(a.max(s), b, Grain::Hour, &self.coverage)
                    .into_iter()
                    .filter(|s| s.grain != Grain::Day)
                    .collect()
            })
            .unwrap_or_default();
        let mut out: Vec<(PoolId, Tally)> = self
            .pools
            .iter()
            .zip(&self.series)
            .filter(|(pool, _)| q.wants(pool))
            .filter_map(|(pool, series)| {
                let mut t = cells::sum(series, &segs, weigh.as_ref());
                if t.jobs == 0 {
                    return None;
                }
                if let Some(s) = series_start {
                    t.hourly = cells::hourly(series, &hour_segs, s);
                }
                Some((pool.clone(), t))
            })
            .collect();
        out.sort_unstable_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        out
    }
}
