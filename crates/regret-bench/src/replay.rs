//! The backtest, checked against the truth: on drawn histories, `pool_ranking::backtest` replays the
//! last hours as `/backtest` does, and its regret (each step's pick against the best candidate at that
//! step, by hindsight rates) is set beside the true regret of the same picks and beside the old,
//! biased score (the picks' realized rate on their own jobs against the best single pool in
//! hindsight).

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pool_ranking::backtest::{Spec, evidence_at, run as replay};
use pool_ranking::{Evidence, ModelConfig, Strategy};
use pool_scenario::{RateModel, ScenarioKind};

use crate::open::instance_types;
use crate::worlds::draw;

pub const STRATEGIES: &[Strategy] = &[
    Strategy::Naive,
    Strategy::PooledV1,
    Strategy::Pooled,
    Strategy::Thompson,
];

pub const WORLDS: &[(&str, RateModel, ScenarioKind)] = &[
    (
        "regime change",
        RateModel::Structured,
        ScenarioKind::RegimeChange,
    ),
    (
        "transient spikes",
        RateModel::Structured,
        ScenarioKind::Spikes,
    ),
];

/// Per strategy: (true regret, backtest regret, old biased regret), means over the sets replayed.
pub fn run(
    model: RateModel,
    kind: ScenarioKind,
    seed: u64,
    hours: u32,
    steps: usize,
    sets: usize,
) -> Vec<(f64, f64, f64)> {
    let d = draw(model, kind, seed, hours);
    let first = hours as usize - steps;
    let start: Vec<Evidence> = d
        .series
        .iter()
        .map(|s| evidence_at(s, first, first, None))
        .collect();
    let types = instance_types(&start);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xbac);
    let mut sums = vec![(0.0, 0.0, 0.0); STRATEGIES.len()];
    for _ in 0..sets {
        let m = rng.random_range(2..=3usize);
        let chosen: Vec<&String> = types.choose_multiple(&mut rng, m).collect();
        let candidates: Vec<usize> = (0..d.series.len())
            .filter(|&i| {
                chosen
                    .iter()
                    .any(|c| c.as_str() == d.series[i].pool.instance_type().as_str())
            })
            .collect();
        let spec = Spec {
            strategies: STRATEGIES.to_vec(),
            confidence: 0.95,
            risk: None,
            model: ModelConfig::default(),
            first_step: first,
            steps,
            step_hours: 1,
            train_hours: first,
            half_life_hours: None,
            candidates: candidates.clone(),
            hindsight_min_jobs: 30,
            seed,
        };
        let out = replay(&d.series, &spec);
        for (o, sum) in out.strategies.iter().zip(sums.iter_mut()) {
            // The true regret of the same picks, step by step.
            let mut truth = 0.0;
            for (step, pick) in o.picks.iter().enumerate() {
                let Some(i) = *pick else { continue };
                let h = (first + step) as u32;
                let t = first + step;
                let best = candidates
                    .iter()
                    .filter(|&&j| d.series[j].hours[..t].iter().any(|c| c.jobs > 0))
                    .map(|&j| d.world.pools[j].rate_at(h))
                    .fold(f64::INFINITY, f64::min);
                truth += d.world.pools[i].rate_at(h) - best;
            }
            sum.0 += truth / o.picks.len().max(1) as f64;
            sum.1 += o.regret.unwrap_or(0.0);
            sum.2 += o
                .realized_rate
                .zip(out.hindsight.as_ref())
                .map_or(0.0, |(r, h)| r - h.termination_rate);
        }
    }
    sums.into_iter()
        .map(|(a, b, c)| (a / sets as f64, b / sets as f64, c / sets as f64))
        .collect()
}
