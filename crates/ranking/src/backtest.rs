//! Replaying a recorded history: at each step `t` every strategy picks with only the hours before `t`,
//! and its pick is scored against the best candidate *at that step*. The history comes as hourly
//! counts per pool, so a replay costs pools × hours, never events.
//!
//! **Scoring without bias.** A recorded history has no true rates, and the pick's own jobs in its
//! step are a biased score: a step whose pick ran no job cannot be scored that way (dropping it drops
//! the pools a strategy picks *because* they are quiet), weighting steps by the pick's traffic lets busy
//! picks dominate, and the best single pool in hindsight is a comparator that loses to any strategy
//! that follows a change. So every step counts once, and each candidate gets a *hindsight rate at the
//! step*: with `m = hindsight_min_jobs`, the smallest window centred on the step
//! (`[t − w, t + step + w)`, widened hour by hour, past and future alike: it is hindsight) that holds at
//! least `m` of the pool's jobs, `(k_w, n_w)`, shrunk toward the pool's rate over the whole series
//! `r = (K + ½)/(N + 1)` by `m` pseudo-jobs: `(k_w + m r)/(n_w + m)`. Without the shrinkage a quiet
//! stretch of 30 jobs would make a 10 % pool look like 0 % at that step, and the minimum over
//! candidates would reward luck. A step's regret is the pick's hindsight rate minus
//! the lowest among the candidates that could be picked then (those with at least
//! `hindsight_min_jobs` jobs in the whole history, so a pool seen twice cannot be "best" by luck); the
//! strategy's regret is the mean over steps. The pick's realized rate on its own jobs is still
//! reported, for what it is.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use pool_core::event::PoolId;

use crate::evidence::{Evidence, Hour, SERIES_HOURS};
use crate::model::{Model, ModelConfig, fit};
use crate::rank::{Params, Strategy, rank};

/// One pool's hourly counts; every series of a replay starts at the same hour.
#[derive(Debug, Clone)]
pub struct Series {
    pub pool: PoolId,
    pub hours: Vec<Hour>,
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct Spec {
    pub strategies: Vec<Strategy>,
    pub confidence: f64,
    pub risk: Option<f64>,
    pub model: ModelConfig,
    /// Hour index of the first decision.
    pub first_step: usize,
    pub steps: usize,
    pub step_hours: usize,
    /// Hours before each decision that it may use (its window).
    pub train_hours: usize,
    /// Recency weighting of the window, hours.
    pub half_life_hours: Option<f64>,
    /// Indices of the series that may be picked (the others only inform the priors).
    pub candidates: Vec<usize>,
    /// The best pool in hindsight must have at least this many jobs in the replayed span.
    pub hindsight_min_jobs: u64,
    /// Seed of the Thompson draws.
    pub seed: u64,
}

/// The best single candidate over the replayed span, judged by what happened.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Hindsight {
    pub pool_id: String,
    pub jobs: u64,
    pub spot_terminations: u64,
    pub termination_rate: f64,
}

/// How one strategy's picks fared.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StrategyOutcome {
    pub strategy: Strategy,
    /// Steps replayed with a pick (every one is scored).
    pub steps: usize,
    /// Of those, steps whose pick ran no job in its step (scored by its hindsight rate all the same).
    pub steps_without_jobs: usize,
    /// Jobs and terminations the picks saw in their own steps.
    pub jobs: u64,
    pub spot_terminations: u64,
    /// Terminations / jobs of the picks' own jobs (`null` when they ran none): informative, biased
    /// toward busy picks.
    pub realized_rate: Option<f64>,
    /// Mean over steps of the pick's hindsight rate minus the best candidate's at that step (`null`
    /// with no step scored).
    pub regret: Option<f64>,
    /// Distinct pools picked.
    pub distinct_pools: usize,
    /// Realized rate so far after each step (`null` before the picks ran a job).
    pub cumulative_rate: Vec<Option<f64>>,
    /// Regret summed over the steps so far.
    pub cumulative_regret: Vec<f64>,
    /// Each step's pick, as an index into the replayed series (for tools; not serialised).
    #[serde(skip)]
    pub picks: Vec<Option<usize>>,
}

/// A replay's result.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub hindsight: Option<Hindsight>,
    pub strategies: Vec<StrategyOutcome>,
}

/// Running sums of jobs and terminations, for window totals in O(1).
struct Prefix {
    jobs: Vec<u64>,
    spot: Vec<u64>,
}

impl Prefix {
    fn new(hours: &[Hour]) -> Self {
        let mut jobs = vec![0; hours.len() + 1];
        let mut spot = vec![0; hours.len() + 1];
        for (i, h) in hours.iter().enumerate() {
            jobs[i + 1] = jobs[i] + u64::from(h.jobs);
            spot[i + 1] = spot[i] + u64::from(h.spot);
        }
        Self { jobs, spot }
    }

    /// `(jobs, spot)` in hours `[from, to)`, clamped to the series.
    fn sum(&self, from: usize, to: usize) -> (u64, u64) {
        let last = self.jobs.len() - 1;
        let (from, to) = (from.min(last), to.min(last));
        if to <= from {
            return (0, 0);
        }
        (
            self.jobs[to] - self.jobs[from],
            self.spot[to] - self.spot[from],
        )
    }
}

/// The evidence of `s` for a decision at hour `t`: its window `[t − train, t)`, weighted by recency
/// when `half_life_hours` is set.
pub fn evidence_at(
    s: &Series,
    t: usize,
    train_hours: usize,
    half_life_hours: Option<f64>,
) -> Evidence {
    evidence_with(s, &Prefix::new(&s.hours), t, train_hours, half_life_hours)
}

/// [`evidence_at`] with the series' running sums `p` already built.
fn evidence_with(
    s: &Series,
    p: &Prefix,
    t: usize,
    train_hours: usize,
    half_life_hours: Option<f64>,
) -> Evidence {
    let from = t.saturating_sub(train_hours);
    let (jobs, spot) = p.sum(from, t);
    let end = t.min(s.hours.len());
    let recent_from = end.saturating_sub(SERIES_HOURS).max(from.min(end));
    let mut e = Evidence::new(s.pool.clone(), jobs, spot, &s.hours[recent_from..end]);
    if let Some(h) = half_life_hours {
        let (mut w, mut w2, mut wk) = (0.0, 0.0, 0.0);
        for (i, cell) in s.hours[from.min(end)..end].iter().enumerate() {
            let age = (end - (from + i)) as f64 - 0.5;
            let weight = (-age / h).exp2();
            w += weight * f64::from(cell.jobs);
            w2 += weight * weight * f64::from(cell.jobs);
            wk += weight * f64::from(cell.spot);
        }
        if w > 0.0 {
            e.effective_jobs = w * w / w2;
            e.rate = wk / w;
        }
    }
    e
}

/// Replay `series` under `spec`.
pub fn run(series: &[Series], spec: &Spec) -> Outcome {
    let prefixes: Vec<Prefix> = series.iter().map(|s| Prefix::new(&s.hours)).collect();
    let hindsight = best_in_hindsight(series, &prefixes, spec);
    let mut players: Vec<Player> = spec
        .strategies
        .iter()
        .enumerate()
        .map(|(k, &strategy)| Player::new(strategy, k, series.len(), spec))
        .collect();
    let min_jobs = spec.hindsight_min_jobs.max(1);
    let comparable: Vec<bool> = prefixes
        .iter()
        .map(|p| p.sum(0, usize::MAX).0 >= min_jobs)
        .collect();
    for step in 0..spec.steps {
        let t = spec.first_step + step * spec.step_hours;
        let evidence: Vec<Evidence> = series
            .iter()
            .zip(&prefixes)
            .map(|(s, p)| evidence_with(s, p, t, spec.train_hours, spec.half_life_hours))
            .collect();
        let candidates: Vec<usize> = spec
            .candidates
            .iter()
            .copied()
            .filter(|&i| evidence[i].jobs > 0)
            .collect();
        let model = (!candidates.is_empty()).then(|| fit(&evidence, &spec.model));
        let rate_now = |i: usize| hindsight_rate(&prefixes[i], t, spec.step_hours, min_jobs);
        let best_now = candidates
            .iter()
            .filter(|&&i| comparable[i])
            .map(|&i| rate_now(i))
            .fold(f64::INFINITY, f64::min);
        for player in &mut players {
            let pick = model
                .as_ref()
                .and_then(|model| player.pick(&evidence, model, &candidates, spec));
            let regret = pick
                .filter(|_| best_now.is_finite())
                .map(|i| (rate_now(i) - best_now).max(0.0));
            let counts = pick.map(|i| prefixes[i].sum(t, t + spec.step_hours));
            player.record(pick, counts, regret);
        }
    }
    Outcome {
        hindsight,
        strategies: players.into_iter().map(Player::finish).collect(),
    }
}

/// The candidate with the lowest termination rate over the whole replayed span (ties: more jobs,
/// then the pool id), among those with at least `hindsight_min_jobs` jobs in it: what a strategy that
/// knew the future would have picked once.
fn best_in_hindsight(series: &[Series], prefixes: &[Prefix], spec: &Spec) -> Option<Hindsight> {
    let span_from = spec.first_step;
    let span_to = spec.first_step + spec.steps * spec.step_hours;
    spec.candidates
        .iter()
        .map(|&i| (i, prefixes[i].sum(span_from, span_to)))
        .filter(|(_, (jobs, _))| *jobs >= spec.hindsight_min_jobs.max(1))
        .min_by(|(ia, (ja, sa)), (ib, (jb, sb))| {
            let (ra, rb) = (*sa as f64 / *ja as f64, *sb as f64 / *jb as f64);
            ra.total_cmp(&rb)
                .then_with(|| jb.cmp(ja))
                .then_with(|| series[*ia].pool.as_str().cmp(series[*ib].pool.as_str()))
        })
        .map(|(i, (jobs, spot))| Hindsight {
            pool_id: series[i].pool.to_string(),
            jobs,
            spot_terminations: spot,
            termination_rate: spot as f64 / jobs as f64,
        })
}

/// One strategy's replay: its outcome so far, its regret summed over the steps, the pools it picked,
/// and its own random stream (seeded from the spec's seed and its place in the spec, so a strategy's
/// picks do not depend on which others are replayed alongside it).
struct Player {
    outcome: StrategyOutcome,
    regret_sum: f64,
    picked: Vec<bool>,
    rng: ChaCha8Rng,
}

impl Player {
    fn new(strategy: Strategy, k: usize, pools: usize, spec: &Spec) -> Self {
        Self {
            outcome: StrategyOutcome {
                strategy,
                steps: 0,
                steps_without_jobs: 0,
                jobs: 0,
                spot_terminations: 0,
                realized_rate: None,
                regret: None,
                distinct_pools: 0,
                cumulative_rate: Vec::with_capacity(spec.steps),
                cumulative_regret: Vec::with_capacity(spec.steps),
                picks: Vec::with_capacity(spec.steps),
            },
            regret_sum: 0.0,
            picked: vec![false; pools],
            rng: ChaCha8Rng::seed_from_u64(spec.seed.wrapping_add(k as u64)),
        }
    }

    /// The strategy's first choice among `candidates` under the step's fitted model.
    fn pick(
        &mut self,
        evidence: &[Evidence],
        model: &Model,
        candidates: &[usize],
        spec: &Spec,
    ) -> Option<usize> {
        let params = Params {
            strategy: self.outcome.strategy,
            confidence: spec.confidence,
            risk: spec.risk,
        };
        rank(evidence, model, candidates, &params, &mut self.rng)
            .first()
            .map(|s| s.index)
    }

    /// One step: the pick (`None`: nothing to pick from), the `(jobs, spot)` the picked pool saw in
    /// the step that followed, and the pick's regret (`None`: no candidate to compare it with); then
    /// the running rate and regret.
    fn record(&mut self, pick: Option<usize>, counts: Option<(u64, u64)>, regret: Option<f64>) {
        let o = &mut self.outcome;
        o.picks.push(pick);
        if let (Some(i), Some((jobs, spot))) = (pick, counts) {
            o.steps += 1;
            o.steps_without_jobs += usize::from(jobs == 0);
            o.jobs += jobs;
            o.spot_terminations += spot;
            self.picked[i] = true;
            if let Some(r) = regret {
                self.regret_sum += r;
            }
        }
        o.cumulative_rate
            .push((o.jobs > 0).then(|| o.spot_terminations as f64 / o.jobs as f64));
        o.cumulative_regret.push(self.regret_sum);
    }

    /// The outcome over the whole replay: realised rate, mean regret per step, distinct pools.
    fn finish(self) -> StrategyOutcome {
        let mut o = self.outcome;
        o.realized_rate = (o.jobs > 0).then(|| o.spot_terminations as f64 / o.jobs as f64);
        o.regret = (o.steps > 0).then(|| self.regret_sum / o.steps as f64);
        o.distinct_pools = self.picked.iter().filter(|&&b| b).count();
        o
    }
}

/// A pool's hindsight rate at the step `[t, t + step)`: its jobs `(k_w, n_w)` in the smallest centred
/// window `[t − w, t + step + w)` holding at least `m = min_jobs` of them (the whole series when none
/// does), shrunk toward its rate over the whole series, `(k_w + m r)/(n_w + m)`,
/// `r = (K + ½)/(N + 1)`. The window is found by doubling, then bisection on `w`.
fn hindsight_rate(p: &Prefix, t: usize, step: usize, min_jobs: u64) -> f64 {
    let len = p.jobs.len() - 1;
    let (all_n, all_k) = p.sum(0, len);
    let r = (all_k as f64 + 0.5) / (all_n as f64 + 1.0);
    let m = min_jobs as f64;
    let window = |w: usize| p.sum(t.saturating_sub(w), t + step + w);
    let shrunk = |(n, k): (u64, u64)| (k as f64 + m * r) / (n as f64 + m);
    if window(0).0 >= min_jobs {
        return shrunk(window(0));
    }
    let mut hi = 1;
    while window(hi).0 < min_jobs {
        if hi >= len {
            return shrunk(window(len));
        }
        hi *= 2;
    }
    let mut lo = hi / 2;
    // window(lo) < min_jobs ≤ window(hi)
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if window(mid).0 >= min_jobs {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    shrunk(window(hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(id: &str, f: impl Fn(usize) -> Hour, hours: usize) -> Series {
        Series {
            pool: id.parse().unwrap(),
            hours: (0..hours).map(f).collect(),
        }
    }

    fn spec(strategies: Vec<Strategy>, candidates: Vec<usize>) -> Spec {
        Spec {
            strategies,
            confidence: 0.95,
            risk: None,
            model: ModelConfig::default(),
            first_step: 48,
            steps: 48,
            step_hours: 1,
            train_hours: 48,
            half_life_hours: None,
            candidates,
            hindsight_min_jobs: 30,
            seed: 1,
        }
    }

    #[test]
    fn a_history_with_a_known_answer() {
        // Pool a: 10 jobs an hour, 1 terminated every hour (10 %). Pool b: 10 jobs an hour, none
        // terminated before hour 72, then 5 an hour (50 %). Decisions at hours 48..96, 48-hour window.
        let a = series(
            "pool-c6a.large-us-east-1a",
            |_| Hour { jobs: 10, spot: 1 },
            96,
        );
        let b = series(
            "pool-m6a.large-us-east-1b",
            |h| Hour {
                jobs: 10,
                spot: if h >= 72 { 5 } else { 0 },
            },
            96,
        );
        let out = run(
            &[a, b],
            &spec(vec![Strategy::Naive, Strategy::Pooled], vec![0, 1]),
        );
        // Hindsight over hours 48..96: a 48/480 = 10 %, b 120/480 = 25 %.
        let h = out.hindsight.unwrap();
        assert_eq!(h.pool_id, "pool-c6a.large-us-east-1a");
        assert_eq!((h.jobs, h.spot_terminations), (480, 48));
        // Hindsight rates at a step: the three hours around it (30 jobs), shrunk by 30 pseudo-jobs
        // toward the pool's whole-series rate, r_a = 96.5/961 and r_b = 120.5/961: a is
        // (3 + 30 r_a)/60; b is (k + 30 r_b)/60 with k = 0 up to hour 70, 5 at 71, 10 at 72, 15 from
        // 73, so b − a = (k − 3 + d)/60 with d = 30 (r_b − r_a) = 720/961.
        // Naive picks b while its window rate 5(t − 72)/480 stays under a's 10 %, i.e. up to t = 81,
        // then a. Its regret: b − a at 71, 72 and 73..=81; every step counts.
        let naive = &out.strategies[0];
        assert_eq!((naive.steps, naive.steps_without_jobs), (48, 0));
        assert_eq!((naive.jobs, naive.spot_terminations), (480, 50 + 14));
        assert_eq!(naive.distinct_pools, 2);
        let d = 720.0 / 961.0;
        let want = (2.0 + 7.0 + 9.0 * 12.0 + 11.0 * d) / 60.0;
        assert!(
            (naive.regret.unwrap() - want / 48.0).abs() < 1e-12,
            "{naive:?}"
        );
        assert!((naive.cumulative_regret.last().unwrap() - want).abs() < 1e-12);
        // Pooled sees b's first bad hour at t = 73 (5 of its last 10 jobs against 0 of 470 before: a
        // change beyond doubt) and moves to a at once: regret only at 71 and 72, before any data
        // could show it.
        let pooled = &out.strategies[1];
        assert!(
            (pooled.regret.unwrap() - (9.0 + 2.0 * d) / 60.0 / 48.0).abs() < 1e-12,
            "{pooled:?}"
        );
        assert_eq!(pooled.cumulative_rate.len(), 48);
        assert_eq!(pooled.cumulative_rate[0], Some(0.0));
        assert_eq!(
            pooled.cumulative_rate.last().copied().flatten(),
            pooled.realized_rate
        );
    }

    #[test]
    fn every_step_counts_even_when_the_pick_ran_no_job() {
        // Pool a is best (2 %) but only runs jobs every fourth hour; pool b runs 10 an hour at 10 %.
        // Without the shrinkage, b's clean three-hour stretches would look better than a.
        // A strategy on a is scored at every step, also the three in four where a ran nothing.
        let a = series(
            "pool-c6a.large-us-east-1a",
            |h| Hour {
                jobs: if h % 4 == 0 { 50 } else { 0 },
                spot: if h % 4 == 0 { 1 } else { 0 },
            },
            96,
        );
        let b = series(
            "pool-m6a.large-us-east-1b",
            |_| Hour { jobs: 10, spot: 1 },
            96,
        );
        let out = run(&[a, b], &spec(vec![Strategy::Naive], vec![0, 1]));
        let naive = &out.strategies[0];
        assert_eq!(naive.steps, 48);
        assert_eq!(naive.steps_without_jobs, 36);
        assert_eq!(naive.regret, Some(0.0), "{naive:?}");
    }

    #[test]
    fn hindsight_rates_widen_until_they_hold_enough_jobs() {
        let s = series(
            "pool-c6a.large-us-east-1a",
            |h| Hour {
                jobs: if h == 50 { 40 } else { 1 },
                spot: u32::from(h == 50),
            },
            100,
        );
        let p = Prefix::new(&s.hours);
        // The whole series: 1 of 139, r = 1.5/140.
        let r = 1.5 / 140.0;
        // At hour 50 alone: 1 of 40.
        assert!((hindsight_rate(&p, 50, 1, 30) - (1.0 + 30.0 * r) / 70.0).abs() < 1e-12);
        // At hour 10: 1 job an hour, so 30 jobs need [0, 30) (w = 19 once clamped at 0), no
        // termination in it.
        assert!((hindsight_rate(&p, 10, 1, 30) - 30.0 * r / 60.0).abs() < 1e-12);
        // More than the whole series holds: all of it.
        let m = 10_000.0;
        assert!((hindsight_rate(&p, 10, 1, 10_000) - (1.0 + m * r) / (139.0 + m)).abs() < 1e-12);
    }

    #[test]
    fn the_window_and_the_weights_follow_the_decision_time() {
        let s = series(
            "pool-c6a.large-us-east-1a",
            |h| Hour {
                jobs: 2,
                spot: u32::from(h % 2 == 0),
            },
            100,
        );
        let p = Prefix::new(&s.hours);
        let e = evidence_with(&s, &p, 50, 10, None);
        assert_eq!((e.jobs, e.spot), (20, 5));
        assert_eq!(e.recent.last().copied(), Some(s.hours[49]));
        assert_eq!(e.last(10), (20, 5));
        assert_eq!(e.last(11), (20, 5), "nothing before the window");
        let w = evidence_with(&s, &p, 50, 10, Some(1.0));
        assert!(w.effective_jobs < 20.0 && w.effective_jobs > 2.0);
        assert_eq!(p.sum(95, 200), (10, 2));
    }
}
