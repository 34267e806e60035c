//! `SIMULATE_TRUTH`: spot terminations on a laptop. The generator's truth file gives each pool's true
//! termination probability; a local attempt on pool P is lost to a spot reclaim with that probability.
//!
//! The draw is a pure function of the attempt's job id, so a launcher restarted mid-run decides the same
//! way again, and a test can know in advance which attempts will be reclaimed.

use std::collections::HashMap;
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use pool_core::event::PoolId;

#[derive(Debug, thiserror::Error)]
pub enum TruthError {
    #[error("SIMULATE_TRUTH {0}: {1}")]
    Read(String, String),
}

/// One pool of either truth format: `termination_probability` (a stationary run) or `rate` segments (a
/// scenario run; the last segment is the pool's current rate).
#[derive(Deserialize)]
struct TruthPool {
    pool_id: String,
    termination_probability: Option<f64>,
    #[serde(default)]
    rate: Vec<Segment>,
}

#[derive(Deserialize)]
struct Segment {
    probability: f64,
}

#[derive(Deserialize)]
struct TruthFile {
    pools: Vec<TruthPool>,
}

/// Each pool's true termination probability.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    probabilities: HashMap<PoolId, f64>,
}

impl Truth {
    pub fn load(path: &Path) -> Result<Self, TruthError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| TruthError::Read(shown.clone(), e.to_string()))?;
        Self::parse(&text).map_err(|e| TruthError::Read(shown, e))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: TruthFile =
            serde_json::from_str(text).map_err(|e| format!("not a truth file: {e}"))?;
        let mut probabilities = HashMap::new();
        for p in file.pools {
            let pool: PoolId = p
                .pool_id
                .parse()
                .map_err(|e: pool_core::event::EventError| e.message)?;
            let prob = p
                .termination_probability
                .or_else(|| p.rate.last().map(|s| s.probability))
                .ok_or_else(|| format!("pool {pool}: neither termination_probability nor rate"))?;
            if !(0.0..=1.0).contains(&prob) {
                return Err(format!("pool {pool}: probability {prob} is not in [0, 1]"));
            }
            probabilities.insert(pool, prob);
        }
        Ok(Self { probabilities })
    }

    /// The pool's probability; a pool the truth does not know is never reclaimed.
    pub fn probability(&self, pool: &PoolId) -> f64 {
        self.probabilities.get(pool).copied().unwrap_or(0.0)
    }

    /// Whether the attempt with `job_id` on `pool` is lost to a spot reclaim.
    pub fn reclaimed(&self, pool: &PoolId, job_id: &str) -> bool {
        uniform(job_id) < self.probability(pool)
    }
}

/// A number in [0, 1) fixed by the job id (FNV-1a of its bytes seeds the generator).
pub fn uniform(job_id: &str) -> f64 {
    let seed = job_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    ChaCha8Rng::seed_from_u64(seed).random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_truth_formats_parse() {
        let t = Truth::parse(r#"{"seed":1,"pools":[
            {"pool_id":"pool-c6a.xlarge-us-east-1a","termination_probability":0.25,"jobs":3},
            {"pool_id":"pool-m6a.xlarge-us-east-1a","rate":[{"probability":0.5},{"probability":0.125}]}]}"#)
        .unwrap();
        assert_eq!(
            t.probability(&"pool-c6a.xlarge-us-east-1a".parse().unwrap()),
            0.25
        );
        assert_eq!(
            t.probability(&"pool-m6a.xlarge-us-east-1a".parse().unwrap()),
            0.125
        );
        assert_eq!(
            t.probability(&"pool-r6a.xlarge-us-east-1a".parse().unwrap()),
            0.0
        );
    }

    #[test]
    fn bad_truth_files_say_why() {
        for (text, want) in [
            ("[]", "not a truth file"),
            (
                r#"{"pools":[{"pool_id":"nope","termination_probability":0.1}]}"#,
                "pool",
            ),
            (
                r#"{"pools":[{"pool_id":"pool-c6a.xlarge-us-east-1a"}]}"#,
                "neither",
            ),
            (
                r#"{"pools":[{"pool_id":"pool-c6a.xlarge-us-east-1a","termination_probability":1.5}]}"#,
                "not in [0, 1]",
            ),
        ] {
            let e = Truth::parse(text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn draws_follow_the_probability_and_repeat() {
        let pool: PoolId = "pool-c6a.xlarge-us-east-1a".parse().unwrap();
        let t = Truth::parse(
            r#"{"pools":[{"pool_id":"pool-c6a.xlarge-us-east-1a","termination_probability":0.3}]}"#,
        )
        .unwrap();
        let n = 20_000;
        let lost = (0..n)
            .filter(|i| t.reclaimed(&pool, &format!("job-{i}")))
            .count();
        let rate = lost as f64 / n as f64;
        // Binomial(20000, 0.3): sd ≈ 0.0032; 5 sd.
        assert!((rate - 0.3).abs() < 0.017, "{rate}");
        assert_eq!(t.reclaimed(&pool, "job-7"), t.reclaimed(&pool, "job-7"));
        assert_eq!(uniform("a"), uniform("a"));
        assert_ne!(uniform("a"), uniform("b"));
    }
}
