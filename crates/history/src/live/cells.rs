//! The live view's storage: per pool, sparse tallies per minute, hour and day ([`Series`]), and the
//! decomposition of a window into the fewest whole cells ([`segments`]). Pure: no I/O, no clock.
//!
//! Every event is added to three cells, its minute, its hour and its day (minutes only for the hours
//! the view read raw, see [`Coverage`]). A window `[a, b)` whose ends lie on cell boundaries is then a
//! sum of whole cells: minutes up to the first hour boundary, hours up to the first day boundary, whole
//! days, then hours and minutes again up to `b`. A 30-day window is ~75 cells per pool instead of
//! millions of events.
//!
//! Recency weights are exact to about 10⁻⁵ without keeping the events: each cell keeps the power
//! moments `Σ uᵏ` (k = 1…6) of its jobs' and its terminations' times about its middle, in units of the
//! cell (`u ∈ [−½, ½)`), so with `c = ln 2 · cell / half-life`,
//! `Σ 2^(−(now − t)/h) = 2^(−(now − mid)/h) · Σₖ cᵏ/k! · Σ uᵏ` (see [`crate::tally::Moments`]). The
//! series converges fast while `c ≤ 0.7`, i.e. for cells no longer than the half-life, so a weighted
//! window is summed from cells no coarser than the half-life where the view has them
//! ([`segments`]'s `max`). Beyond them (days older than the hour cells are kept, for a half-life under
//! a day) every job of a cell is weighted as if it finished at the cell's mean time, `n · e^(c·ū)`:
//! such a day weighs less than 2⁻⁶³ of a job finishing now.

use pool_core::window::Grain;

use crate::tally::{HOUR_MICROS, HourCount, MOMENTS, Moments, Tally};

/// A cell's index in a tier: `floor(t / grain)`.
pub fn index(grain: Grain, micros: i64) -> i64 {
    micros.div_euclid(grain.micros())
}

fn tier(grain: Grain) -> usize {
    match grain {
        Grain::Minute => 0,
        Grain::Hour => 1,
        Grain::Day => 2,
    }
}

/// One pool's deduplicated jobs in one minute, hour or day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub jobs: u32,
    pub spot: u32,
    pub other: u32,
    /// Earliest and latest `finished_at` (microseconds; `i64::MAX`/`MIN` when empty).
    pub first: i64,
    pub last: i64,
    /// `Σ uᵏ` over the jobs and over the spot terminations, `u` in cells from the cell's middle.
    pub m: [f32; MOMENTS],
    pub t: [f32; MOMENTS],
}

impl Default for Cell {
    fn default() -> Self {
        Self {
            jobs: 0,
            spot: 0,
            other: 0,
            first: i64::MAX,
            last: i64::MIN,
            m: [0.0; MOMENTS],
            t: [0.0; MOMENTS],
        }
    }
}

impl Cell {
    /// Add what `acc` holds (its moments about the same middle, in the same unit).
    pub fn add(&mut self, acc: &Acc) {
        self.jobs = self.jobs.saturating_add(acc.jobs as u32);
        self.spot = self.spot.saturating_add(acc.spot as u32);
        self.other = self.other.saturating_add(acc.other as u32);
        self.first = self.first.min(acc.first);
        self.last = self.last.max(acc.last);
        for k in 0..MOMENTS {
            self.m[k] = (f64::from(self.m[k]) + acc.m[k]) as f32;
            self.t[k] = (f64::from(self.t[k]) + acc.t[k]) as f32;
        }
    }

    pub fn to_acc(self) -> Acc {
        Acc {
            jobs: u64::from(self.jobs),
            spot: u64::from(self.spot),
            other: u64::from(self.other),
            first: self.first,
            last: self.last,
            m: self.m.map(f64::from),
            t: self.t.map(f64::from),
        }
    }
}

/// A cell being filled, in full precision (a reader's delta, or a day rebuilt from its hours).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Acc {
    pub jobs: u64,
    pub spot: u64,
    pub other: u64,
    pub first: i64,
    pub last: i64,
    pub m: [f64; MOMENTS],
    pub t: [f64; MOMENTS],
}

impl Default for Acc {
    fn default() -> Self {
        Self {
            jobs: 0,
            spot: 0,
            other: 0,
            first: i64::MAX,
            last: i64::MIN,
            m: [0.0; MOMENTS],
            t: [0.0; MOMENTS],
        }
    }
}

impl Acc {
    /// One job finishing at `at`, `u` cells from the middle of its cell.
    pub fn add_job(&mut self, u: f64, spot: bool, other: bool, at: i64) {
        self.jobs += 1;
        if spot {
            self.spot += 1;
        } else if other {
            self.other += 1;
        }
        self.first = self.first.min(at);
        self.last = self.last.max(at);
        let mut p = 1.0;
        for k in 0..MOMENTS {
            p *= u;
            self.m[k] += p;
            if spot {
                self.t[k] += p;
            }
        }
    }

    /// Add the jobs of a finer cell: `src` holds moments about its own middle in its own unit; they
    /// are moved to this cell's frame, `u' = (u + shift) · scale` with `shift` the distance between
    /// the two middles in source cells and `scale` = source cell / this cell (binomial expansion).
    pub fn add_shifted(&mut self, src: &Acc, shift: f64, scale: f64) {
        self.jobs += src.jobs;
        self.spot += src.spot;
        self.other += src.other;
        self.first = self.first.min(src.first);
        self.last = self.last.max(src.last);
        shift_moments(&mut self.m, src.jobs as f64, &src.m, shift, scale);
        shift_moments(&mut self.t, src.spot as f64, &src.t, shift, scale);
    }
}

/// `out[k-1] += Σ ((u + s)·q)ᵏ` given `n` and `Σ uʲ` (j = 1…MOMENTS).
fn shift_moments(out: &mut [f64; MOMENTS], n: f64, m: &[f64; MOMENTS], s: f64, q: f64) {
    if n == 0.0 {
        return;
    }
    // raw[j] = Σ uʲ with raw[0] = n.
    let mut raw = [0.0; MOMENTS + 1];
    raw[0] = n;
    raw[1..].copy_from_slice(m);
    let mut qk = 1.0;
    for k in 1..=MOMENTS {
        qk *= q;
        // Σ_j C(k, j) s^(k−j) raw[j]
        let mut sum = 0.0;
        let mut binom = 1.0;
        for (j, r) in raw.iter().enumerate().take(k + 1) {
            sum += binom * s.powi((k - j) as i32) * r;
            binom = binom * (k - j) as f64 / (j + 1) as f64;
        }
        out[k - 1] += qk * sum;
    }
}

/// Where a finer cell's middle lies in a coarser one, for [`Acc::add_shifted`]: `(shift, scale)`.
pub fn frame(fine: Grain, fine_index: i64, coarse: Grain) -> (f64, f64) {
    let fine_mid = fine_index as f64 * fine.micros() as f64 + fine.micros() as f64 / 2.0;
    let coarse_index = index(coarse, fine_index * fine.micros());
    let coarse_mid = coarse_index as f64 * coarse.micros() as f64 + coarse.micros() as f64 / 2.0;
    (
        (fine_mid - coarse_mid) / fine.micros() as f64,
        fine.micros() as f64 / coarse.micros() as f64,
    )
}

/// One pool's cells: per tier, sorted by index, only cells with jobs.
#[derive(Debug, Default, Clone)]
pub struct Series {
    tiers: [Vec<(i64, Cell)>; 3],
}

impl Series {
    /// The cell at `idx`, created empty when missing. Events arrive mostly in time order, so the
    /// search starts from the end.
    pub fn cell_mut(&mut self, grain: Grain, idx: i64) -> &mut Cell {
        let cells = &mut self.tiers[tier(grain)];
        let pos = match cells.last() {
            Some((last, _)) if *last < idx => cells.len(),
            Some((last, _)) if *last == idx => cells.len() - 1,
            _ => match cells.binary_search_by_key(&idx, |(i, _)| *i) {
                Ok(p) => p,
                Err(p) => p,
            },
        };
        if pos == cells.len() || cells[pos].0 != idx {
            cells.insert(pos, (idx, Cell::default()));
        }
        &mut cells[pos].1
    }

    /// Cells with `from ≤ idx < to`.
    pub fn range(&self, grain: Grain, from: i64, to: i64) -> &[(i64, Cell)] {
        let cells = &self.tiers[tier(grain)];
        let lo = cells.partition_point(|(i, _)| *i < from);
        let hi = cells.partition_point(|(i, _)| *i < to);
        &cells[lo..hi.max(lo)]
    }

    /// Drop the cells with `from ≤ idx < to`.
    pub fn remove(&mut self, grain: Grain, from: i64, to: i64) {
        let cells = &mut self.tiers[tier(grain)];
        let lo = cells.partition_point(|(i, _)| *i < from);
        let hi = cells.partition_point(|(i, _)| *i < to);
        if hi > lo {
            cells.drain(lo..hi);
        }
    }

    /// Cells held, per tier.
    pub fn cells(&self) -> [usize; 3] {
        [
            self.tiers[0].len(),
            self.tiers[1].len(),
            self.tiers[2].len(),
        ]
    }

    /// Bytes held (capacity, not length: what the allocator gave).
    pub fn bytes(&self) -> usize {
        self.tiers
            .iter()
            .map(|t| t.capacity() * std::mem::size_of::<(i64, Cell)>())
            .sum()
    }

    pub fn shrink(&mut self) {
        for t in &mut self.tiers {
            if t.capacity() > 2 * t.len() + 16 {
                t.shrink_to_fit();
            }
        }
    }
}

/// Which tiers hold every event of a time: days always; hours from `hour_from`, minutes from
/// `minute_from` (microseconds; `i64::MAX` when the tier holds nothing complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub minute_from: i64,
    pub hour_from: i64,
}

impl Coverage {
    fn start(&self, grain: Grain) -> i64 {
        match grain {
            Grain::Minute => self.minute_from,
            Grain::Hour => self.hour_from,
            Grain::Day => i64::MIN,
        }
    }

    fn covers(&self, grain: Grain, at: i64) -> bool {
        at >= self.start(grain)
    }
}

/// A run of whole cells of one tier: indices `from..to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub grain: Grain,
    pub from: i64,
    pub to: i64,
}

/// `[a, b)` as runs of whole cells, coarsest first where they fit: cells no coarser than `max` where
/// the tiers cover them, coarser ones (weighted approximately, see the module docs) only where no
/// finer tier does. A part that no covered tier can cut exactly (an end inside a cell of the finest
/// covered tier) is left out; with windows on their grain ([`pool_core::window::Window::start`]) and
/// the view's coverage that does not happen.
pub fn segments(a: i64, b: i64, max: Grain, cov: &Coverage) -> Vec<Segment> {
    let mut out = vec![];
    let mut cur = a;
    let fits = |g: Grain, at: i64| {
        cov.covers(g, at) && at.rem_euclid(g.micros()) == 0 && at.saturating_add(g.micros()) <= b
    };
    while cur < b {
        let preferred = [Grain::Day, Grain::Hour, Grain::Minute]
            .into_iter()
            .find(|g| *g <= max && fits(*g, cur));
        let chosen = preferred.or_else(|| Grain::ALL.into_iter().find(|g| fits(*g, cur)));
        let Some(g) = chosen else {
            // Not on a boundary of any tier that covers `cur`: move to the next one.
            let finest = Grain::ALL
                .into_iter()
                .find(|g| cov.covers(*g, cur))
                .unwrap_or(Grain::Day);
            let next = finest.ceil_micros(cur.saturating_add(1));
            if next >= b || next <= cur {
                break;
            }
            cur = next;
            continue;
        };
        let mut end = g.floor_micros(b);
        // Stop where a coarser allowed tier can take over.
        for c in Grain::ALL.into_iter().filter(|c| *c > g && *c <= max) {
            let boundary = c.ceil_micros(cur);
            if boundary > cur && boundary < end && cov.covers(c, boundary) {
                end = end.min(boundary);
            }
        }
        // A tier coarser than `max`, used for lack of a finer one: stop where a finer one starts.
        if g > max {
            for f in Grain::ALL.into_iter().filter(|f| *f <= max) {
                let from = cov.start(f);
                if from > cur && from < end {
                    end = end.min(g.ceil_micros(from));
                }
            }
        }
        debug_assert!(end > cur);
        out.push(Segment {
            grain: g,
            from: index(g, cur),
            to: index(g, end),
        });
        cur = end;
    }
    out
}

/// Recency weighting of one query: `2^(−(now − t)/h)`.
#[derive(Debug, Clone, Copy)]
pub struct Weigh {
    pub now_micros: i64,
    pub half_life_micros: f64,
}

impl Weigh {
    /// The coarsest grain whose cells can be weighted exactly with their moments.
    pub fn max_grain(&self) -> Grain {
        [Grain::Day, Grain::Hour, Grain::Minute]
            .into_iter()
            .find(|g| c_of(*g, self.half_life_micros) <= MAX_C)
            .unwrap_or(Grain::Minute)
    }
}

/// Largest `c` for which six moments give the weighted sums to ~10⁻⁵ (2c ≤ 1.4: the first omitted
/// term of `Σ (2c·u)ᵏ/k!` is below `0.7⁷/7!`).
const MAX_C: f64 = 0.7;

fn c_of(grain: Grain, half_life_micros: f64) -> f64 {
    std::f64::consts::LN_2 * grain.micros() as f64 / half_life_micros
}

/// Add cell `idx` of tier `grain` to `t`.
pub fn add_cell(t: &mut Tally, grain: Grain, idx: i64, c: &Cell, weigh: Option<&Weigh>) {
    t.jobs += u64::from(c.jobs);
    t.spot_terminations += u64::from(c.spot);
    t.other_failures += u64::from(c.other);
    t.first_event_micros = t.first_event_micros.min(c.first);
    t.last_event_micros = t.last_event_micros.max(c.last);
    let jobs = f64::from(c.jobs);
    let spot = f64::from(c.spot);
    let Some(w) = weigh else {
        t.weight += jobs;
        t.weight_sq += jobs;
        t.weighted_terminations += spot;
        return;
    };
    if idx.saturating_mul(grain.micros()) >= w.now_micros {
        // Stamped after `now` (within the allowed clock skew): weighs as a job finishing now.
        t.weight += jobs;
        t.weight_sq += jobs;
        t.weighted_terminations += spot;
        return;
    }
    let unit = grain.micros() as f64;
    let mid = idx as f64 * unit + unit / 2.0;
    let base = (-(w.now_micros as f64 - mid) / w.half_life_micros).exp2();
    let cc = c_of(grain, w.half_life_micros);
    if cc <= MAX_C {
        let m = c.m.map(f64::from);
        t.weight += base * Moments::exp_sum(jobs, &m, cc);
        t.weight_sq += base * base * Moments::exp_sum(jobs, &m, 2.0 * cc);
        if c.spot > 0 {
            t.weighted_terminations += base * Moments::exp_sum(spot, &c.t.map(f64::from), cc);
        }
    } else {
        // Coarser than the half-life: every job of the cell at the cell's mean time (never diverges,
        // and the cell's own rate is kept: no recency inside it).
        let w = base * (cc * f64::from(c.m[0]) / jobs.max(1.0)).exp();
        t.weight += w * jobs;
        t.weight_sq += w * w * jobs;
        t.weighted_terminations += w * spot;
    }
}

/// Sum `segs` of one pool into a tally (without its hourly series: see [`hourly`]).
pub fn sum(series: &Series, segs: &[Segment], weigh: Option<&Weigh>) -> Tally {
    let mut t = Tally::default();
    for s in segs {
        for (idx, c) in series.range(s.grain, s.from, s.to) {
            add_cell(&mut t, s.grain, *idx, c, weigh);
        }
    }
    t
}

/// Unweighted jobs and terminations per hour from `start` (hour-aligned micros), from `segs` (hours
/// and minutes only).
pub fn hourly(series: &Series, segs: &[Segment], start: i64) -> Vec<HourCount> {
    let mut out: Vec<HourCount> = vec![];
    let first_hour = start.div_euclid(HOUR_MICROS);
    for s in segs {
        debug_assert!(s.grain != Grain::Day, "days cannot be split into hours");
        for (idx, c) in series.range(s.grain, s.from, s.to) {
            let hour = index(Grain::Hour, idx * s.grain.micros()) - first_hour;
            if hour < 0 {
                continue;
            }
            let hour = hour as usize;
            if out.len() <= hour {
                out.resize(hour + 1, HourCount::default());
            }
            out[hour].jobs = out[hour].jobs.saturating_add(c.jobs);
            out[hour].spot = out[hour].spot.saturating_add(c.spot);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: i64 = 60_000_000;
    const H: i64 = 60 * M;
    const D: i64 = 24 * H;

    fn cov(minute_from: i64, hour_from: i64) -> Coverage {
        Coverage {
            minute_from,
            hour_from,
        }
    }

    fn seg(grain: Grain, from: i64, to: i64) -> Segment {
        Segment {
            grain,
            from: index(grain, from),
            to: index(grain, to),
        }
    }

    #[test]
    fn a_window_is_the_fewest_whole_cells() {
        let c = cov(10 * D, 0);
        let a = 10 * D + 5 * H + 7 * M;
        let b = 13 * D + 2 * H + 30 * M;
        let s = segments(a, b, Grain::Day, &c);
        assert_eq!(
            s,
            [
                seg(Grain::Minute, a, 10 * D + 6 * H),
                seg(Grain::Hour, 10 * D + 6 * H, 11 * D),
                seg(Grain::Day, 11 * D, 13 * D),
                seg(Grain::Hour, 13 * D, 13 * D + 2 * H),
                seg(Grain::Minute, 13 * D + 2 * H, b),
            ]
        );
        // Contiguous, from a to b.
        for w in s.windows(2) {
            assert_eq!(
                w[0].to * w[0].grain.micros(),
                w[1].from * w[1].grain.micros()
            );
        }
        // No coarser than hours: no days.
        let s = segments(a, b, Grain::Hour, &c);
        assert!(s.iter().all(|s| s.grain != Grain::Day), "{s:?}");
        assert_eq!(s.len(), 3);
    }

    #[test]
    fn uncovered_tiers_fall_back_to_coarser_cells() {
        // Hours kept from day 30 on; a weighted query wants hours: days before 30, hours after.
        let c = cov(40 * D, 30 * D);
        let s = segments(2 * D, 35 * D, Grain::Hour, &c);
        assert_eq!(
            s,
            [
                seg(Grain::Day, 2 * D, 30 * D),
                seg(Grain::Hour, 30 * D, 35 * D)
            ]
        );
        // A start inside an hour no minute covers is moved to the next hour.
        let s = segments(35 * D + 10 * M, 36 * D, Grain::Day, &c);
        assert_eq!(s, [seg(Grain::Hour, 35 * D + H, 36 * D)]);
        // Negative times floor correctly.
        let s = segments(-2 * D, 0, Grain::Day, &cov(i64::MAX, i64::MAX));
        assert_eq!(s, [seg(Grain::Day, -2 * D, 0)]);
    }

    #[test]
    fn shifted_moments_equal_moments_taken_in_the_coarser_frame() {
        // Jobs in minute 7 of hour 3 of a day: moments taken per minute, moved to the hour and the day,
        // against moments taken directly in those frames.
        let minute = index(Grain::Minute, 3 * H + 7 * M);
        let times: Vec<i64> = (0..50).map(|i| 3 * H + 7 * M + i * 1_100_000).collect();
        let mut by_min = Acc::default();
        let mut by_hour = Acc::default();
        let mut by_day = Acc::default();
        let u = |t: i64, g: Grain| {
            let unit = g.micros() as f64;
            let mid = index(g, t) as f64 * unit + unit / 2.0;
            (t as f64 - mid) / unit
        };
        for (i, &t) in times.iter().enumerate() {
            let spot = i % 3 == 0;
            by_min.add_job(u(t, Grain::Minute), spot, false, t);
            by_hour.add_job(u(t, Grain::Hour), spot, false, t);
            by_day.add_job(u(t, Grain::Day), spot, false, t);
        }
        let mut hour = Acc::default();
        let (s, q) = frame(Grain::Minute, minute, Grain::Hour);
        hour.add_shifted(&by_min, s, q);
        let mut day = Acc::default();
        let (s, q) = frame(Grain::Hour, index(Grain::Hour, 3 * H), Grain::Day);
        day.add_shifted(&hour, s, q);
        for k in 0..MOMENTS {
            assert!((hour.m[k] - by_hour.m[k]).abs() < 1e-9, "hour m{k}");
            assert!((hour.t[k] - by_hour.t[k]).abs() < 1e-9, "hour t{k}");
            assert!((day.m[k] - by_day.m[k]).abs() < 1e-9, "day m{k}");
        }
        assert_eq!(
            (day.jobs, day.spot, day.first, day.last),
            (50, 17, times[0], times[49])
        );
    }

    #[test]
    fn weighted_sums_from_cells_match_the_jobs_for_half_lives_down_to_the_cell() {
        // 300 jobs spread over 20 days; summed per cell at each grain vs directly.
        let now = 20 * D + 5 * H;
        let times: Vec<i64> = (0..300)
            .map(|i| i * (20 * D / 300) + i * 7_777_777 % H)
            .collect();
        for (grain, h) in [
            (Grain::Minute, 60.0e6),
            (Grain::Hour, 3600.0e6),
            (Grain::Hour, 7.0 * 3600.0e6),
            (Grain::Day, 86_400.0e6),
            (Grain::Day, 30.0 * 86_400.0e6),
        ] {
            let mut series = Series::default();
            let unit = grain.micros() as f64;
            let mut direct = (0.0, 0.0, 0.0);
            for (i, &t) in times.iter().enumerate() {
                let spot = i % 4 == 0;
                let idx = index(grain, t);
                let mid = idx as f64 * unit + unit / 2.0;
                let mut acc = Acc::default();
                acc.add_job((t as f64 - mid) / unit, spot, false, t);
                series.cell_mut(grain, idx).add(&acc);
                let w = (-((now - t) as f64) / h).exp2();
                direct.0 += w;
                direct.1 += w * w;
                if spot {
                    direct.2 += w;
                }
            }
            let weigh = Weigh {
                now_micros: now,
                half_life_micros: h,
            };
            let seg = Segment {
                grain,
                from: i64::MIN,
                to: i64::MAX,
            };
            let t = sum(&series, &[seg], Some(&weigh));
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs() + 1e-300;
            assert!(
                close(t.weight, direct.0),
                "{grain:?} {h}: {} {}",
                t.weight,
                direct.0
            );
            assert!(close(t.weight_sq, direct.1), "{grain:?} {h}");
            assert!(close(t.weighted_terminations, direct.2), "{grain:?} {h}");
            assert_eq!(t.jobs, 300);
        }
    }

    #[test]
    fn coarse_cells_under_a_short_half_life_stay_finite_and_ordered() {
        let mut series = Series::default();
        let mut acc = Acc::default();
        acc.add_job(0.4, true, false, 0);
        acc.add_job(-0.4, false, false, 0);
        series.cell_mut(Grain::Day, 0).add(&acc);
        let weigh = Weigh {
            now_micros: D,
            half_life_micros: 3600.0e6,
        };
        let t = sum(
            &series,
            &[Segment {
                grain: Grain::Day,
                from: 0,
                to: 1,
            }],
            Some(&weigh),
        );
        assert!(t.weight.is_finite() && t.weight > 0.0);
        assert!(t.weighted_terminations <= t.weight);
    }

    #[test]
    fn cells_are_kept_sorted_and_ranges_cut_exactly() {
        let mut s = Series::default();
        for idx in [5, 1, 9, 3, 5] {
            s.cell_mut(Grain::Hour, idx).jobs += 1;
        }
        let idx: Vec<i64> = s
            .range(Grain::Hour, i64::MIN, i64::MAX)
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(idx, [1, 3, 5, 9]);
        assert_eq!(s.range(Grain::Hour, 3, 9).len(), 2);
        assert_eq!(s.range(Grain::Hour, 5, 5).len(), 0);
        s.remove(Grain::Hour, 2, 6);
        let idx: Vec<i64> = s
            .range(Grain::Hour, i64::MIN, i64::MAX)
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(idx, [1, 9]);
        assert_eq!(s.range(Grain::Hour, 9, 10)[0].1.jobs, 1);
    }
}
