//! Scoring and ordering pools. Pure functions over per-pool tallies, so the maths is tested on its own.
//!
//! The question is "which pool is least likely to reclaim my job?". The raw termination rate answers it
//! badly: a pool with 2 jobs and 0 terminations has a rate of 0% and beats a pool with 5,000 jobs and 1%.
//! The default strategy ranks by a pessimistic estimate instead, the upper bound of a confidence interval
//! on the termination rate, which is wide (so high) for pools we know little about and tight for pools
//! with a long history.

use std::cmp::Ordering;

use serde::Serialize;
use statrs::distribution::{Beta, ContinuousCDF};

pub use pool_history::Tally;

pub use pool_core::request::Strategy;

/// Standard normal quantile for a two-sided interval at `confidence` (e.g. 0.95 → 1.96).
pub fn z_for(confidence: f64) -> f64 {
    use statrs::distribution::Normal;
    let n = Normal::new(0.0, 1.0).expect("standard normal");
    n.inverse_cdf(0.5 + confidence / 2.0)
}

/// Wilson score interval for a proportion `p` observed over `n` trials.
pub fn wilson_interval(p: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).max(0.0).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Equal-tailed credible interval of the Beta(k + ½, n − k + ½) posterior (Jeffreys prior).
pub fn beta_interval(k: f64, n: f64, confidence: f64) -> (f64, f64) {
    let a = k + 0.5;
    let b = (n - k).max(0.0) + 0.5;
    let beta = Beta::new(a, b).expect("Jeffreys parameters are positive");
    let tail = (1.0 - confidence) / 2.0;
    (beta.inverse_cdf(tail), beta.inverse_cdf(1.0 - tail))
}

/// One pool's place in the ranking.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RankedPool {
    pub pool_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    /// Distinct jobs seen in the window.
    pub jobs: u64,
    /// Jobs lost to `SPOT_INSTANCE_TERMINATION`.
    pub spot_terminations: u64,
    /// Jobs that failed for any other reason (not held against the pool).
    pub other_failures: u64,
    /// Terminations / jobs (weighted when `half_life` is set).
    pub termination_rate: f64,
    /// Lower end of the confidence interval of the termination rate.
    pub ci_low: f64,
    /// Upper end of the confidence interval of the termination rate.
    pub ci_high: f64,
    /// Effective number of jobs behind the estimate (equals `jobs` without recency weighting).
    pub effective_jobs: f64,
    /// The value pools are ordered by, ascending (lower is safer).
    pub score: f64,
    /// Latest `finished_at` of the pool's jobs (UTC, ISO 8601).
    pub last_event_at: String,
}

/// Scoring parameters.
#[derive(Debug, Clone, Copy)]
pub struct Scoring {
    pub strategy: Strategy,
    /// Confidence level of the interval, e.g. 0.95.
    pub confidence: f64,
}

/// Score one pool.
pub fn score(t: &Tally, s: &Scoring) -> (f64, f64, f64) {
    let n = t.effective_jobs();
    let p = t.rate();
    // Terminations on the effective scale, so the posterior sees the same evidence as Wilson.
    let k = p * n;
    match s.strategy {
        Strategy::Wilson => {
            let (lo, hi) = wilson_interval(p, n, z_for(s.confidence));
            (lo, hi, hi)
        }
        Strategy::Bayes => {
            let (lo, hi) = beta_interval(k, n, s.confidence);
            (lo, hi, hi)
        }
        Strategy::Naive => {
            let (lo, hi) = wilson_interval(p, n, z_for(s.confidence));
            let naive = if t.jobs > 0 {
                t.spot_terminations as f64 / t.jobs as f64
            } else {
                0.0
            };
            (lo, hi, naive)
        }
    }
}

/// Order pools: score ascending; ties broken by more jobs, then by pool id (the seed's tie-break).
pub fn compare(a: &RankedPool, b: &RankedPool) -> Ordering {
    a.score
        .total_cmp(&b.score)
        .then_with(|| b.jobs.cmp(&a.jobs))
        .then_with(|| a.pool_id.cmp(&b.pool_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally(jobs: u64, spot: u64) -> Tally {
        let mut t = Tally::default();
        for i in 0..jobs {
            t.add(i < spot, false, 1.0, 0);
        }
        t
    }

    fn ranked(id: &str, t: &Tally, s: &Scoring) -> RankedPool {
        let (ci_low, ci_high, score) = score(t, s);
        RankedPool {
            pool_id: id.into(),
            instance_type: String::new(),
            availability_zone: String::new(),
            jobs: t.jobs,
            spot_terminations: t.spot_terminations,
            other_failures: t.other_failures,
            termination_rate: t.rate(),
            ci_low,
            ci_high,
            effective_jobs: t.effective_jobs(),
            score,
            last_event_at: String::new(),
        }
    }

    #[test]
    fn z_values() {
        assert!((z_for(0.95) - 1.959964).abs() < 1e-5);
        assert!((z_for(0.90) - 1.644854).abs() < 1e-5);
    }

    #[test]
    fn wilson_matches_the_textbook() {
        // 0 of 2: upper bound z²/(n+z²) = 3.8415/5.8415.
        let (lo, hi) = wilson_interval(0.0, 2.0, 1.959964);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.657_61).abs() < 1e-4, "{hi}");
        // 50 of 5000 (1%).
        let (lo, hi) = wilson_interval(0.01, 5000.0, 1.959964);
        assert!((lo - 0.007_60).abs() < 1e-4, "{lo}");
        assert!((hi - 0.013_16).abs() < 1e-4, "{hi}");
    }

    #[test]
    fn small_lucky_pool_does_not_win_by_default() {
        let lucky = tally(2, 0);
        let proven = tally(5000, 50);
        for strategy in [Strategy::Wilson, Strategy::Bayes] {
            let s = Scoring {
                strategy,
                confidence: 0.95,
            };
            let mut pools = [
                ranked("pool-lucky", &lucky, &s),
                ranked("pool-proven", &proven, &s),
            ];
            pools.sort_by(compare);
            assert_eq!(pools[0].pool_id, "pool-proven", "{strategy:?}");
        }
        // The seed's formula falls into the trap, as documented.
        let s = Scoring {
            strategy: Strategy::Naive,
            confidence: 0.95,
        };
        let mut pools = [
            ranked("pool-proven", &proven, &s),
            ranked("pool-lucky", &lucky, &s),
        ];
        pools.sort_by(compare);
        assert_eq!(pools[0].pool_id, "pool-lucky");
    }

    #[test]
    fn naive_ties_break_on_more_jobs_then_pool_id() {
        let s = Scoring {
            strategy: Strategy::Naive,
            confidence: 0.95,
        };
        let mut pools = [
            ranked("pool-b", &tally(10, 0), &s),
            ranked("pool-c", &tally(100, 0), &s),
            ranked("pool-a", &tally(10, 0), &s),
        ];
        pools.sort_by(compare);
        let order: Vec<_> = pools.iter().map(|p| p.pool_id.as_str()).collect();
        assert_eq!(order, ["pool-c", "pool-a", "pool-b"]);
    }

    #[test]
    fn beta_posterior_is_sane() {
        let (lo, hi) = beta_interval(50.0, 5000.0, 0.95);
        assert!(lo < 0.01 && hi > 0.01 && hi < 0.014, "{lo} {hi}");
        let (_, hi_small) = beta_interval(0.0, 2.0, 0.95);
        assert!(hi_small > 0.4, "{hi_small}");
    }

    #[test]
    fn strategies_parse() {
        assert_eq!("WILSON".parse::<Strategy>().unwrap(), Strategy::Wilson);
        assert_eq!("naive".parse::<Strategy>().unwrap(), Strategy::Naive);
        assert_eq!("best".parse::<Strategy>().unwrap_err().field, "strategy");
    }
}
