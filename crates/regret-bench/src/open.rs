//! The open-loop part: at the end of a drawn history, every strategy picks a pool for many random
//! instance-type sets, and its regret is the true current termination probability of its pick minus
//! the best candidate's.

use std::cmp::Ordering;
use std::sync::Arc;

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution;

use pool_ranking::backtest::evidence_at;
use pool_ranking::rank::score;
use pool_ranking::{Evidence, LevelKind, Model, ModelConfig, Params, Strategy, fit};

use crate::worlds::{Drawn, advisor_bands};

/// What a variant scores pools by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Naive,
    Wilson,
    Bayes,
    /// The posterior mean of one of the fitted models.
    Mean(Fitted),
    /// One draw per pool from the default posterior.
    Thompson,
}

/// The models a draw fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fitted {
    Default,
    NoChanges,
    OneLevelChanges,
    FlatEb,
    V1,
    Oracle,
    AdvisorInformative,
    AdvisorNoise,
}

pub struct Variant {
    pub name: &'static str,
    pub kind: Kind,
}

pub const VARIANTS: &[Variant] = &[
    Variant {
        name: "naive",
        kind: Kind::Naive,
    },
    Variant {
        name: "wilson",
        kind: Kind::Wilson,
    },
    Variant {
        name: "bayes",
        kind: Kind::Bayes,
    },
    Variant {
        name: "one-level EB (one fleet prior)",
        kind: Kind::Mean(Fitted::FlatEb),
    },
    Variant {
        name: "pooled-v1 (previous default)",
        kind: Kind::Mean(Fitted::V1),
    },
    Variant {
        name: "pooled (default)",
        kind: Kind::Mean(Fitted::Default),
    },
    Variant {
        name: "pooled, no change posterior",
        kind: Kind::Mean(Fitted::NoChanges),
    },
    Variant {
        name: "pooled, one level + change posterior",
        kind: Kind::Mean(Fitted::OneLevelChanges),
    },
    Variant {
        name: "thompson",
        kind: Kind::Thompson,
    },
    Variant {
        name: "oracle: pooled told when each pool changed",
        kind: Kind::Mean(Fitted::Oracle),
    },
    Variant {
        name: "pooled + Spot Advisor bands (informative)",
        kind: Kind::Mean(Fitted::AdvisorInformative),
    },
    Variant {
        name: "pooled + Spot Advisor bands (random)",
        kind: Kind::Mean(Fitted::AdvisorNoise),
    },
];

pub fn position(name: &str) -> usize {
    VARIANTS
        .iter()
        .position(|v| v.name == name)
        .unwrap_or_else(|| panic!("no variant {name}"))
}

/// The default configuration and the variants' own.
pub fn config(f: Fitted) -> ModelConfig {
    let d = ModelConfig::default();
    match f {
        Fitted::Default | Fitted::V1 | Fitted::AdvisorInformative | Fitted::AdvisorNoise => d,
        Fitted::NoChanges | Fitted::Oracle => ModelConfig { adapt: false, ..d },
        Fitted::OneLevelChanges => ModelConfig {
            levels: vec![],
            ..d
        },
        Fitted::FlatEb => ModelConfig {
            levels: vec![],
            adapt: false,
            ..d
        },
    }
}

/// What one draw yields: each variant's mean regret over the sets, and the default model's fit.
pub struct DrawResult {
    pub regret: Vec<f64>,
    /// The default model's level spreads (logit sd) and pool spread.
    pub levels: Vec<(LevelKind, f64)>,
    pub pool_sd: f64,
    /// Spread of the advisor-band level with informative and with random bands.
    pub advisor_sd: (f64, f64),
}

/// Order like the service: score ascending, then more jobs, then pool id.
fn order(evidence: &[Evidence], a: (usize, f64), b: (usize, f64)) -> Ordering {
    a.1.total_cmp(&b.1)
        .then_with(|| evidence[b.0].jobs.cmp(&evidence[a.0].jobs))
        .then_with(|| evidence[a.0].pool.as_str().cmp(evidence[b.0].pool.as_str()))
}

/// The instance types of the pools with jobs, sorted.
pub fn instance_types(evidence: &[Evidence]) -> Vec<String> {
    let mut t: Vec<String> = evidence
        .iter()
        .filter(|e| e.jobs > 0)
        .map(|e| e.pool.instance_type().as_str().to_owned())
        .collect();
    t.sort();
    t.dedup();
    t
}

/// The pools with jobs of the `chosen` instance types.
pub fn candidates_of(evidence: &[Evidence], chosen: &[&String]) -> Vec<usize> {
    (0..evidence.len())
        .filter(|&i| {
            evidence[i].jobs > 0
                && chosen
                    .iter()
                    .any(|c| c.as_str() == evidence[i].pool.instance_type().as_str())
        })
        .collect()
}

/// Every variant's mean regret on one drawn world.
pub fn run(d: &Drawn, seed: u64, sets: usize, draws: usize) -> DrawResult {
    let t = d.world.hours as usize;
    let plain: Vec<Evidence> = d
        .series
        .iter()
        .map(|s| evidence_at(s, t, t, None))
        .collect();
    let truth = d.truth_at(d.world.hours - 1);
    // The oracle's evidence: each pool's hours since its last change.
    let told: Vec<Evidence> = d
        .series
        .iter()
        .zip(&d.world.pools)
        .map(|(s, p)| {
            let since = p.rate.last().map_or(0, |r| r.0) as usize;
            evidence_at(s, t, t - since, None)
        })
        .collect();
    let fits = Fits::new(d, seed, &plain, &told);
    let scores = variant_scores(&fits, &plain);
    let thompson: Vec<rand_distr::Beta<f64>> = fits
        .default
        .pools
        .iter()
        .map(|p| rand_distr::Beta::new(p.alpha.max(1e-9), p.beta.max(1e-9)).expect("Beta"))
        .collect();
    let (sums, count) = score_sets(&plain, &truth, &scores, &thompson, seed, sets, draws);
    let level_sd = |m: &Model| m.level_sd(LevelKind::AdvisorBand).unwrap_or(0.0);
    DrawResult {
        regret: sums
            .into_iter()
            .map(|s| if count > 0 { s / count as f64 } else { 0.0 })
            .collect(),
        levels: fits
            .default
            .levels
            .iter()
            .map(|l| (l.level, l.sd))
            .collect(),
        pool_sd: fits.default.pool_sd,
        advisor_sd: (level_sd(&fits.informative), level_sd(&fits.noise)),
    }
}

/// Every model the variants read, fitted once per drawn world.
struct Fits<'a> {
    plain: &'a [Evidence],
    default: Model,
    /// With the Spot Advisor bands drawn informative, and drawn at random.
    informative: Model,
    noise: Model,
    /// The variants with a configuration of their own (the oracle's on its `told` evidence).
    others: Vec<(Fitted, Model)>,
}

impl<'a> Fits<'a> {
    fn new(d: &Drawn, seed: u64, plain: &'a [Evidence], told: &[Evidence]) -> Self {
        let with_bands = |informative: bool| ModelConfig {
            signals: Some(Arc::new(advisor_bands(d, informative, seed))),
            ..ModelConfig::default()
        };
        Self {
            plain,
            default: fit(plain, &config(Fitted::Default)),
            informative: fit(plain, &with_bands(true)),
            noise: fit(plain, &with_bands(false)),
            others: vec![
                (Fitted::NoChanges, fit(plain, &config(Fitted::NoChanges))),
                (
                    Fitted::OneLevelChanges,
                    fit(plain, &config(Fitted::OneLevelChanges)),
                ),
                (Fitted::FlatEb, fit(plain, &config(Fitted::FlatEb))),
                (Fitted::Oracle, fit(told, &config(Fitted::Oracle))),
            ],
        }
    }

    /// Every pool's posterior mean under the model `f` (`pooled-v1`'s from the default's).
    fn means(&self, f: Fitted) -> Vec<f64> {
        let means =
            |m: &Model| -> Vec<f64> { m.pools.iter().map(|p| p.posterior_mean()).collect() };
        match f {
            Fitted::Default => means(&self.default),
            Fitted::V1 => self
                .default
                .v1(self.plain)
                .pools
                .iter()
                .map(|p| p.posterior_mean())
                .collect(),
            Fitted::AdvisorInformative => means(&self.informative),
            Fitted::AdvisorNoise => means(&self.noise),
            other => means(
                &self
                    .others
                    .iter()
                    .find(|(k, _)| *k == other)
                    .expect("fitted")
                    .1,
            ),
        }
    }
}

/// Every variant's score per pool, lowest picked; `None` for Thompson, which draws per set.
/// Naive, Wilson and Bayes read only the evidence (and draw nothing).
fn variant_scores(fits: &Fits, plain: &[Evidence]) -> Vec<Option<Vec<f64>>> {
    let simple = |s: Strategy| -> Vec<f64> {
        let params = Params {
            strategy: s,
            confidence: 0.95,
            risk: None,
        };
        let mut unused = ChaCha8Rng::seed_from_u64(0);
        plain
            .iter()
            .enumerate()
            .map(|(i, e)| score(i, e, (1.0, 1.0), &params, &mut unused).score)
            .collect()
    };
    VARIANTS
        .iter()
        .map(|v| match v.kind {
            Kind::Naive => Some(simple(Strategy::Naive)),
            Kind::Wilson => Some(simple(Strategy::Wilson)),
            Kind::Bayes => Some(simple(Strategy::Bayes)),
            Kind::Mean(f) => Some(fits.means(f)),
            Kind::Thompson => None,
        })
        .collect()
}

/// Each variant's regret summed over `sets` random candidate sets (one to three instance types, at
/// least two pools), and how many sets counted. Thompson's regret is the mean over `draws` draws.
/// Sets and Thompson draws come from separate streams, so the sets do not depend on the draws.
fn score_sets(
    plain: &[Evidence],
    truth: &[f64],
    scores: &[Option<Vec<f64>>],
    thompson: &[rand_distr::Beta<f64>],
    seed: u64,
    sets: usize,
    draws: usize,
) -> (Vec<f64>, usize) {
    let types = instance_types(plain);
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(7919));
    let mut draws_rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(7919) ^ 0xd4a5);
    let mut sums = vec![0.0; VARIANTS.len()];
    let mut count = 0usize;
    for _ in 0..sets {
        let m = rng.random_range(1..=3usize);
        let chosen: Vec<&String> = types.choose_multiple(&mut rng, m).collect();
        let candidates = candidates_of(plain, &chosen);
        if candidates.len() < 2 {
            continue;
        }
        count += 1;
        let best = candidates
            .iter()
            .map(|&i| truth[i])
            .fold(f64::INFINITY, f64::min);
        let pick_by = |s: &dyn Fn(usize) -> f64| -> usize {
            candidates
                .iter()
                .map(|&i| (i, s(i)))
                .min_by(|a, b| order(plain, *a, *b))
                .expect("candidates")
                .0
        };
        for (v, sum) in scores.iter().zip(sums.iter_mut()) {
            match v {
                Some(s) => *sum += truth[pick_by(&|i| s[i])] - best,
                None => {
                    let mut total = 0.0;
                    for _ in 0..draws {
                        let x: Vec<(usize, f64)> = candidates
                            .iter()
                            .map(|&i| (i, thompson[i].sample(&mut draws_rng)))
                            .collect();
                        let pick = x
                            .iter()
                            .copied()
                            .min_by(|a, b| order(plain, *a, *b))
                            .expect("candidates")
                            .0;
                        total += truth[pick] - best;
                    }
                    *sum += total / draws as f64;
                }
            }
        }
    }
    (sums, count)
}
