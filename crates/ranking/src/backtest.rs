//! Replaying a recorded history: at each step `t` every strategy picks with only the hours before `t`,
//! and its pick is scored with the outcomes actually recorded in `[t, t + step)`. The history comes as
//! hourly counts per pool, so a replay costs pools × hours, never events.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use pool_core::event::PoolId;

use crate::evidence::{Evidence, Hour, RECENT_HOURS};
use crate::model::{ModelConfig, fit};
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
    /// Steps whose pick ran jobs in its step, so it could be scored.
    pub steps_scored: usize,
    /// Steps whose pick ran no job in its step (or with no candidate to pick).
    pub steps_unscored: usize,
    /// Jobs and terminations the picks saw in their steps.
    pub jobs: u64,
    pub spot_terminations: u64,
    /// Terminations / jobs over the scored steps (`null` when none was scored).
    pub realized_rate: Option<f64>,
    /// Realized rate minus the best pool in hindsight's rate.
    pub regret: Option<f64>,
    /// Distinct pools picked.
    pub distinct_pools: usize,
    /// Realized rate so far after each step (`null` before the first scored step).
    pub cumulative_rate: Vec<Option<f64>>,
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
    let recent_from = end.saturating_sub(RECENT_HOURS).max(from.min(end));
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
    let span_from = spec.first_step;
    let span_to = spec.first_step + spec.steps * spec.step_hours;
    let hindsight = spec
        .candidates
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
        });
    let mut outcomes: Vec<StrategyOutcome> = spec
        .strategies
        .iter()
        .map(|&strategy| StrategyOutcome {
            strategy,
            steps_scored: 0,
            steps_unscored: 0,
            jobs: 0,
            spot_terminations: 0,
            realized_rate: None,
            regret: None,
            distinct_pools: 0,
            cumulative_rate: Vec::with_capacity(spec.steps),
        })
        .collect();
    let mut picked: Vec<Vec<bool>> = vec![vec![false; series.len()]; spec.strategies.len()];
    let mut rngs: Vec<ChaCha8Rng> = (0..spec.strategies.len())
        .map(|i| ChaCha8Rng::seed_from_u64(spec.seed.wrapping_add(i as u64)))
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
        for (k, o) in outcomes.iter_mut().enumerate() {
            let pick = model.as_ref().and_then(|model| {
                let params = Params {
                    strategy: o.strategy,
                    confidence: spec.confidence,
                    risk: spec.risk,
                };
                rank(&evidence, model, &candidates, &params, &mut rngs[k])
                    .first()
                    .map(|s| s.index)
            });
            match pick.map(|i| (i, prefixes[i].sum(t, t + spec.step_hours))) {
                Some((i, (jobs, spot))) if jobs > 0 => {
                    o.steps_scored += 1;
                    o.jobs += jobs;
                    o.spot_terminations += spot;
                    picked[k][i] = true;
                }
                _ => o.steps_unscored += 1,
            }
            o.cumulative_rate
                .push((o.jobs > 0).then(|| o.spot_terminations as f64 / o.jobs as f64));
        }
    }
    for (o, p) in outcomes.iter_mut().zip(&picked) {
        o.realized_rate = (o.jobs > 0).then(|| o.spot_terminations as f64 / o.jobs as f64);
        o.regret = o
            .realized_rate
            .zip(hindsight.as_ref())
            .map(|(r, h)| r - h.termination_rate);
        o.distinct_pools = p.iter().filter(|&&b| b).count();
    }
    Outcome {
        hindsight,
        strategies: outcomes,
    }
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
        // Naive picks b while its window rate 5(t − 72)/480 stays under a's 10 %, i.e. up to t = 81:
        // 24 clean hours, then 10 hours of 5 terminations; then a for 14 hours.
        let naive = &out.strategies[0];
        assert_eq!((naive.steps_scored, naive.steps_unscored), (48, 0));
        assert_eq!((naive.jobs, naive.spot_terminations), (480, 50 + 14));
        assert_eq!(naive.distinct_pools, 2);
        assert!((naive.regret.unwrap() - (64.0 / 480.0 - 0.1)).abs() < 1e-12);
        // Pooled sees b's first bad hour at t = 73: 5 of its last 20 jobs (the 2-hour split) against
        // 0 of 460 before is a change, and 5/20 under a weak prior (two pools say little about how
        // pools differ) is far above a's 10 %, so it moves to a at once: 25 hours on b with 5
        // terminations, 23 on a with 23.
        let pooled = &out.strategies[1];
        assert_eq!((pooled.jobs, pooled.spot_terminations), (480, 5 + 23));
        assert!((pooled.regret.unwrap() - (28.0 / 480.0 - 0.1)).abs() < 1e-12);
        assert_eq!(pooled.cumulative_rate.len(), 48);
        assert_eq!(pooled.cumulative_rate[0], Some(0.0));
        assert_eq!(
            pooled.cumulative_rate.last().copied().flatten(),
            pooled.realized_rate
        );
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
