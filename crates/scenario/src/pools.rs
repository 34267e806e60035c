//! The simulated world: which spot pools exist, how much traffic each gets, and how likely each is to
//! lose a job to a spot termination.
//!
//! The termination probability is hidden in the data (only outcomes are written) and revealed through
//! the truth file, so a ranking can be scored against what the generator actually used.

use std::collections::HashSet;

use pool_core::event::{AvailabilityZone, InstanceType, PoolId};
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use statrs::distribution::{Beta, ContinuousCDF};

/// Instance families seen in real Spark fleets: AMD, Intel and Graviton; compute, general, memory.
pub const FAMILIES: &[&str] = &[
    "c6a", "m6a", "r6a", "c6i", "m6i", "r6i", "c7g", "m7g", "r7g", "c7i", "m7i", "r7i",
];
pub const SIZES: &[&str] = &["large", "xlarge", "2xlarge"];
pub const ZONES: &[&str] = &[
    "us-east-1a",
    "us-east-1b",
    "us-east-1c",
    "us-east-1d",
    "us-east-1e",
    "us-east-1f",
    "us-west-2a",
    "us-west-2b",
    "us-west-2c",
    "eu-west-1a",
    "eu-west-1b",
    "eu-west-1c",
];

/// Share of pools that are "bad": markedly more often reclaimed than the rest.
const BAD_POOL_SHARE: f64 = 0.15;
/// Termination probability of an ordinary pool: Beta(2.2, 45), mean ≈ 4.7 %, 90 % of the mass in ≈ 0.9–10 %.
const GOOD_BETA: (f64, f64) = (2.2, 45.0);
/// Termination probability of a bad pool: Beta(6, 24), mean 20 %.
const BAD_BETA: (f64, f64) = (6.0, 24.0);
/// Probabilities are kept in this range so every pool both succeeds and fails now and then.
const PROBABILITY_RANGE: (f64, f64) = (0.001, 0.6);

/// Every pool of the catalogue: families × sizes × zones.
pub fn catalogue() -> Vec<PoolId> {
    let mut out = Vec::with_capacity(FAMILIES.len() * SIZES.len() * ZONES.len());
    for family in FAMILIES {
        for size in SIZES {
            let it: InstanceType = format!("{family}.{size}")
                .parse()
                .expect("catalogue instance types are valid");
            for zone in ZONES {
                let az: AvailabilityZone = zone.parse().expect("catalogue zones are valid");
                out.push(PoolId::new(it.clone(), az));
            }
        }
    }
    out
}

/// Which pools to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolChoice {
    /// `n` distinct pools drawn from the [`catalogue`].
    Count(usize),
    /// Exactly these pools.
    List(Vec<PoolId>),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PoolError {
    #[error("--pools must be between 1 and {max} (the catalogue's size), got {got}")]
    BadCount { got: usize, max: usize },
    #[error("--pool-list is empty")]
    EmptyList,
    #[error("--pool-list names {0} twice")]
    Duplicate(String),
}

/// One simulated pool and its hidden parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    pub pool_id: PoolId,
    /// Share of all jobs that run in this pool (the weights sum to 1).
    pub weight: f64,
    /// Chance that a job in this pool ends with `SPOT_INSTANCE_TERMINATION`.
    pub termination_probability: f64,
}

/// Draw the pools, their traffic shares and termination probabilities from `rng`.
///
/// Traffic follows a Zipf-like law: the pool of rank `k` (1-based, in a random order) gets a weight
/// proportional to `1 / k^skew`, so a few pools carry most jobs and some have very few, which is exactly
/// where a naive termination rate lies. `skew = 0` spreads jobs evenly.
pub fn draw_pools(
    rng: &mut ChaCha8Rng,
    choice: &PoolChoice,
    skew: f64,
) -> Result<Vec<PoolSpec>, PoolError> {
    let mut ids = match choice {
        PoolChoice::Count(n) => {
            let all = catalogue();
            if *n == 0 || *n > all.len() {
                return Err(PoolError::BadCount {
                    got: *n,
                    max: all.len(),
                });
            }
            rand::seq::index::sample(rng, all.len(), *n)
                .into_iter()
                .map(|i| all[i].clone())
                .collect::<Vec<_>>()
        }
        PoolChoice::List(list) => {
            if list.is_empty() {
                return Err(PoolError::EmptyList);
            }
            let mut seen = HashSet::new();
            for p in list {
                if !seen.insert(p.as_str()) {
                    return Err(PoolError::Duplicate(p.to_string()));
                }
            }
            list.clone()
        }
    };
    ids.shuffle(rng);
    let raw: Vec<f64> = (1..=ids.len())
        .map(|k| 1.0 / (k as f64).powf(skew))
        .collect();
    let total: f64 = raw.iter().sum();
    let good = Beta::new(GOOD_BETA.0, GOOD_BETA.1).expect("valid Beta parameters");
    let bad = Beta::new(BAD_BETA.0, BAD_BETA.1).expect("valid Beta parameters");
    Ok(ids
        .into_iter()
        .zip(raw)
        .map(|(pool_id, w)| {
            let is_bad = rng.random::<f64>() < BAD_POOL_SHARE;
            let u: f64 = rng.random();
            let p = if is_bad { &bad } else { &good }.inverse_cdf(u);
            PoolSpec {
                pool_id,
                weight: w / total,
                termination_probability: p.clamp(PROBABILITY_RANGE.0, PROBABILITY_RANGE.1),
            }
        })
        .collect())
}

/// What happened to one pool's jobs in a run, next to its hidden parameters.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TruthPool {
    pub pool_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub weight: f64,
    pub termination_probability: f64,
    /// Jobs generated in this pool during the run.
    pub jobs: u64,
    /// Of those, spot terminations.
    pub spot_terminations: u64,
    /// Of those, other failures (TIMED_OUT, SPARK_EXECUTION_ERROR).
    pub other_failures: u64,
}

/// The truth file (`--truth FILE`): the hidden parameters of every pool, best pool first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Truth {
    pub seed: u64,
    pub skew: f64,
    pub other_failure_probability: f64,
    pub events: u64,
    /// Pools sorted by termination probability, lowest (best) first; ties by pool id.
    pub pools: Vec<TruthPool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn catalogue_is_valid_and_distinct() {
        let all = catalogue();
        assert_eq!(all.len(), FAMILIES.len() * SIZES.len() * ZONES.len());
        let distinct: HashSet<_> = all.iter().map(|p| p.as_str().to_owned()).collect();
        assert_eq!(distinct.len(), all.len());
        // Round-trips through the core parser (zones hold dashes).
        for p in &all {
            assert_eq!(&p.as_str().parse::<PoolId>().unwrap(), p);
        }
    }

    #[test]
    fn pools_are_reproducible_uneven_and_plausible() {
        let draw = |seed| {
            draw_pools(
                &mut ChaCha8Rng::seed_from_u64(seed),
                &PoolChoice::Count(200),
                1.0,
            )
            .unwrap()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        assert_ne!(a, draw(8));
        let sum: f64 = a.iter().map(|p| p.weight).sum();
        assert!((sum - 1.0).abs() < 1e-9);
        let max = a.iter().map(|p| p.weight).fold(0.0, f64::max);
        let min = a.iter().map(|p| p.weight).fold(1.0, f64::min);
        assert!(max / min > 100.0, "traffic should be uneven: {max} / {min}");
        let in_band = a
            .iter()
            .filter(|p| (0.005..=0.10).contains(&p.termination_probability))
            .count();
        assert!(in_band > 200 * 6 / 10, "most pools in 0.5–10 %: {in_band}");
        let bad = a
            .iter()
            .filter(|p| p.termination_probability > 0.12)
            .count();
        assert!(bad > 5, "some pools should be bad: {bad}");
    }

    #[test]
    fn pool_choice_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert!(matches!(
            draw_pools(&mut rng, &PoolChoice::Count(0), 1.0),
            Err(PoolError::BadCount { .. })
        ));
        assert!(matches!(
            draw_pools(&mut rng, &PoolChoice::Count(100_000), 1.0),
            Err(PoolError::BadCount { .. })
        ));
        let p: PoolId = "pool-c6a.large-us-east-1a".parse().unwrap();
        assert_eq!(
            draw_pools(&mut rng, &PoolChoice::List(vec![p.clone(), p]), 1.0),
            Err(PoolError::Duplicate("pool-c6a.large-us-east-1a".into()))
        );
    }

    #[test]
    fn even_traffic_with_zero_skew() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let pools = draw_pools(&mut rng, &PoolChoice::Count(4), 0.0).unwrap();
        for p in pools {
            assert!((p.weight - 0.25).abs() < 1e-12);
        }
    }
}
