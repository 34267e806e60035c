//! Scoring and ordering candidates under a strategy, how sure the pick is, and diverse alternatives.

use std::cmp::Ordering;
use std::collections::HashSet;

use rand::Rng;
use rand_distr::Distribution;
use statrs::distribution::ContinuousCDF;

pub use pool_core::request::Strategy;

use crate::evidence::Evidence;
use crate::model::{Model, PoolModel};
use crate::stats::{beta, beta_interval, beta_quantile, jeffreys_interval, wilson_interval, z_for};

/// How one request scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub strategy: Strategy,
    /// Confidence level of the reported interval (and of Wilson's and Bayes's bounds).
    pub confidence: f64,
    /// `pooled` only: rank by this posterior quantile instead of the mean (0.9 = pessimistic).
    pub risk: Option<f64>,
}

/// One candidate's score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Index into the evidence (and the model).
    pub index: usize,
    /// What candidates are ordered by, ascending (lower is safer).
    pub score: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// Score one pool. `rng` is only drawn from by `thompson`.
pub fn score(index: usize, e: &Evidence, m: &PoolModel, p: &Params, rng: &mut impl Rng) -> Scored {
    let n = e.effective_jobs;
    let (ci_low, ci_high, score) = match p.strategy {
        Strategy::Wilson => {
            let (lo, hi) = wilson_interval(e.rate, n, z_for(p.confidence));
            (lo, hi, hi)
        }
        Strategy::Bayes => {
            let (lo, hi) = jeffreys_interval(e.effective_spot(), n, p.confidence);
            (lo, hi, hi)
        }
        Strategy::Naive => {
            let (lo, hi) = wilson_interval(e.rate, n, z_for(p.confidence));
            let naive = if e.jobs > 0 {
                e.spot as f64 / e.jobs as f64
            } else {
                0.0
            };
            (lo, hi, naive)
        }
        Strategy::Pooled => {
            let (lo, hi) = beta_interval(m.alpha, m.beta, p.confidence);
            let s = match p.risk {
                Some(q) => beta_quantile(m.alpha, m.beta, q),
                None => m.posterior_mean(),
            };
            (lo, hi, s)
        }
        Strategy::Thompson => {
            let (lo, hi) = beta_interval(m.alpha, m.beta, p.confidence);
            let draw = rand_distr::Beta::new(m.alpha.max(1e-9), m.beta.max(1e-9))
                .map(|d| d.sample(rng))
                .unwrap_or_else(|_| m.posterior_mean());
            (lo, hi, draw)
        }
    };
    Scored {
        index,
        score,
        ci_low,
        ci_high,
    }
}

/// Order: score ascending; ties broken by more jobs, then by pool id (the seed's tie-break).
pub fn compare(evidence: &[Evidence], a: &Scored, b: &Scored) -> Ordering {
    let (ea, eb) = (&evidence[a.index], &evidence[b.index]);
    a.score
        .total_cmp(&b.score)
        .then_with(|| eb.jobs.cmp(&ea.jobs))
        .then_with(|| ea.pool.as_str().cmp(eb.pool.as_str()))
}

/// Score and order `candidates` (indices into `evidence`), best first.
pub fn rank(
    evidence: &[Evidence],
    model: &Model,
    candidates: &[usize],
    p: &Params,
    rng: &mut impl Rng,
) -> Vec<Scored> {
    let mut out: Vec<Scored> = candidates
        .iter()
        .map(|&i| score(i, &evidence[i], &model.pools[i], p, rng))
        .collect();
    out.sort_by(|a, b| compare(evidence, a, b));
    out
}

/// Points at which the target's CDF is tabulated, and cells of equal target mass at which the rivals
/// are evaluated, in [`probability_lowest`].
const FINE: usize = 512;
const CELLS: usize = 48;

/// Posterior probability that the rate of Beta `target` is below the rate of every Beta in `others`
/// (independent posteriors): `∫ Π S_i(x) dF(x)`, the target's CDF `F`, each rival's survival `S_i`.
///
/// Integrated in the target's probability space: its central mass (all but 2·10⁻⁹) is cut into
/// [`CELLS`] cells of equal mass, whose midpoints are found on a table of `F` over [`FINE`] points (no
/// quantile function needed, and a density that is infinite at 0 is handled), and the rivals are
/// evaluated once per cell: the rivals' CDFs are the cost, so they are evaluated as few times as the
/// accuracy allows. Rivals with no mass below the target's upper end are skipped, and the sum stops once
/// the product is negligible.
pub fn probability_lowest(target: (f64, f64), others: &[(f64, f64)]) -> f64 {
    let d = beta(target.0, target.1);
    let lo = d.inverse_cdf(1e-9);
    let hi = d.inverse_cdf(1.0 - 1e-9);
    let rivals: Vec<_> = others
        .iter()
        .map(|&(a, b)| beta(a, b))
        .filter(|r| r.cdf(hi) > 1e-12)
        .collect();
    if rivals.is_empty() {
        return 1.0;
    }
    let width = (hi - lo) / FINE as f64;
    let xs: Vec<f64> = (0..=FINE).map(|j| lo + width * j as f64).collect();
    let cdfs: Vec<f64> = xs.iter().map(|&x| d.cdf(x)).collect();
    let (first, mass) = (cdfs[0], cdfs[FINE] - cdfs[0]);
    let cell_mass = mass / CELLS as f64;
    let mut total = 0.0;
    let mut j = 0;
    for m in 0..CELLS {
        // The x where F reaches the middle of this cell's mass, interpolated on the table.
        let u = first + cell_mass * (m as f64 + 0.5);
        while j + 1 < FINE && cdfs[j + 1] < u {
            j += 1;
        }
        let span = cdfs[j + 1] - cdfs[j];
        let t = if span > 0.0 {
            (u - cdfs[j]) / span
        } else {
            0.5
        };
        let x = xs[j] + width * t.clamp(0.0, 1.0);
        let survive: f64 = rivals.iter().map(|r| (1.0 - r.cdf(x)).max(0.0)).product();
        total += cell_mass * survive;
        if survive < 1e-15 {
            break;
        }
    }
    total.clamp(0.0, 1.0)
}

/// The posterior probability that the first of `ranked` has the lowest true rate among all of them.
pub fn probability_best(model: &Model, ranked: &[Scored]) -> f64 {
    let Some(first) = ranked.first() else {
        return 0.0;
    };
    let ab = |s: &Scored| (model.pools[s.index].alpha, model.pools[s.index].beta);
    let others: Vec<_> = ranked[1..].iter().map(ab).collect();
    probability_lowest(ab(first), &others)
}

/// Up to `k − 1` alternatives to `ranked[0]`, as positions in `ranked`, chosen for diversity: at each
/// step, among the pools whose score is within `tolerance` of the best one left, prefer one in a zone
/// not used yet, then one of an instance type not used yet, else the best one left. A spot reclaim
/// usually hits a zone or an instance type, so alternatives that differ in both survive it.
pub fn alternatives(
    evidence: &[Evidence],
    ranked: &[Scored],
    k: usize,
    tolerance: f64,
) -> Vec<usize> {
    if ranked.is_empty() {
        return vec![];
    }
    let pool = |pos: usize| &evidence[ranked[pos].index].pool;
    let mut zones: HashSet<&str> = HashSet::from([pool(0).availability_zone().as_str()]);
    let mut types: HashSet<&str> = HashSet::from([pool(0).instance_type().as_str()]);
    let mut taken = vec![false; ranked.len()];
    taken[0] = true;
    let mut out = vec![];
    while out.len() + 1 < k {
        let Some(next) = (0..ranked.len()).find(|&p| !taken[p]) else {
            break;
        };
        let limit = ranked[next].score + tolerance;
        let near: Vec<usize> = (next..ranked.len())
            .filter(|&p| !taken[p])
            .take_while(|&p| ranked[p].score <= limit)
            .collect();
        let choice = near
            .iter()
            .copied()
            .find(|&p| !zones.contains(pool(p).availability_zone().as_str()))
            .or_else(|| {
                near.iter()
                    .copied()
                    .find(|&p| !types.contains(pool(p).instance_type().as_str()))
            })
            .unwrap_or(next);
        taken[choice] = true;
        zones.insert(pool(choice).availability_zone().as_str());
        types.insert(pool(choice).instance_type().as_str());
        out.push(choice);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ModelConfig, fit};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn ev(id: &str, jobs: u64, spot: u64) -> Evidence {
        Evidence::new(id.parse().unwrap(), jobs, spot, &[])
    }

    fn params(strategy: Strategy) -> Params {
        Params {
            strategy,
            confidence: 0.95,
            risk: None,
        }
    }

    #[test]
    fn small_lucky_pool_does_not_win_except_naively() {
        let e = vec![
            ev("pool-c6a.large-us-east-1a", 2, 0),
            ev("pool-m6a.large-us-east-1b", 5000, 50),
            ev("pool-r6a.large-us-east-1c", 5000, 400),
            ev("pool-c6i.large-us-east-1d", 3000, 300),
        ];
        let m = fit(&e, &ModelConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let all = [0, 1, 2, 3];
        for s in [Strategy::Wilson, Strategy::Bayes, Strategy::Pooled] {
            let r = rank(&e, &m, &all, &params(s), &mut rng);
            assert_eq!(
                e[r[0].index].pool.as_str(),
                "pool-m6a.large-us-east-1b",
                "{s:?}"
            );
        }
        let r = rank(&e, &m, &all, &params(Strategy::Naive), &mut rng);
        assert_eq!(r[0].index, 0);
    }

    #[test]
    fn naive_ties_break_on_more_jobs_then_pool_id() {
        let e = vec![
            ev("pool-b.large-us-east-1a", 10, 0),
            ev("pool-c.large-us-east-1a", 100, 0),
            ev("pool-a.large-us-east-1a", 10, 0),
        ];
        let m = fit(&e, &ModelConfig::default());
        let r = rank(
            &e,
            &m,
            &[0, 1, 2],
            &params(Strategy::Naive),
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        let order: Vec<_> = r.iter().map(|s| e[s.index].pool.as_str()).collect();
        assert_eq!(
            order,
            [
                "pool-c.large-us-east-1a",
                "pool-a.large-us-east-1a",
                "pool-b.large-us-east-1a"
            ]
        );
    }

    #[test]
    fn risk_ranks_by_a_posterior_quantile() {
        let e = vec![
            ev("pool-c6a.large-us-east-1a", 20, 0),
            ev("pool-m6a.large-us-east-1b", 20_000, 500),
            ev("pool-r6a.large-us-east-1c", 2000, 200),
        ];
        let m = fit(&e, &ModelConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mean = rank(&e, &m, &[0, 1, 2], &params(Strategy::Pooled), &mut rng);
        let cautious = rank(
            &e,
            &m,
            &[0, 1, 2],
            &Params {
                risk: Some(0.99),
                ..params(Strategy::Pooled)
            },
            &mut rng,
        );
        for s in &cautious {
            let p = &m.pools[s.index];
            let q = beta_quantile(p.alpha, p.beta, 0.99);
            assert!((s.score - q).abs() < 1e-12);
            assert!(s.score > p.posterior_mean());
        }
        assert!(mean[0].score <= cautious[0].score);
    }

    #[test]
    fn probability_best_matches_a_brute_force_estimate() {
        let cases: [&[(f64, f64)]; 4] = [
            &[(5.0, 95.0), (8.0, 92.0), (30.0, 270.0)],
            &[(0.3, 4.0), (2.0, 30.0), (50.0, 950.0), (1.2, 10.0)],
            &[(100.0, 9900.0), (101.0, 9899.0)],
            &[(3.0, 97.0), (300.0, 700.0)],
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        for case in cases {
            let exact = probability_lowest(case[0], &case[1..]);
            let draws = 200_000;
            let dists: Vec<_> = case
                .iter()
                .map(|&(a, b)| rand_distr::Beta::new(a, b).unwrap())
                .collect();
            let wins = (0..draws)
                .filter(|_| {
                    let x: Vec<f64> = dists.iter().map(|d| d.sample(&mut rng)).collect();
                    x[1..].iter().all(|&y| x[0] < y)
                })
                .count();
            let mc = wins as f64 / draws as f64;
            // The Monte Carlo standard error is at most 0.0011.
            assert!((exact - mc).abs() < 0.005, "{case:?}: {exact} vs {mc}");
        }
        assert_eq!(probability_lowest((1.0, 1000.0), &[(900.0, 100.0)]), 1.0);
    }

    #[test]
    fn thompson_picks_each_pool_as_often_as_it_is_probably_best() {
        let e = vec![
            ev("pool-c6a.large-us-east-1a", 100, 5),
            ev("pool-m6a.large-us-east-1b", 100, 6),
            ev("pool-r6a.large-us-east-1c", 300, 30),
            ev("pool-c6i.large-us-east-1d", 10, 1),
        ];
        let m = fit(&e, &ModelConfig::default());
        let all = [0, 1, 2, 3];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws = 20_000;
        let mut picks = [0usize; 4];
        for _ in 0..draws {
            let r = rank(&e, &m, &all, &params(Strategy::Thompson), &mut rng);
            picks[r[0].index] += 1;
        }
        for (i, &count) in picks.iter().enumerate() {
            let others: Vec<_> = all
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| (m.pools[j].alpha, m.pools[j].beta))
                .collect();
            let p = probability_lowest((m.pools[i].alpha, m.pools[i].beta), &others);
            let share = count as f64 / draws as f64;
            assert!((share - p).abs() < 0.015, "pool {i}: {share} vs {p}");
        }
        // The same seed, the same draws.
        let a = rank(
            &e,
            &m,
            &all,
            &params(Strategy::Thompson),
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        let b = rank(
            &e,
            &m,
            &all,
            &params(Strategy::Thompson),
            &mut ChaCha8Rng::seed_from_u64(3),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn alternatives_prefer_other_zones_then_other_types_within_the_tolerance() {
        let e = vec![
            ev("pool-c6a.large-us-east-1a", 1, 0),
            ev("pool-m6a.large-us-east-1b", 1, 0),
            ev("pool-c6a.large-us-east-1b", 1, 0),
            ev("pool-r6a.large-us-east-1a", 1, 0),
            ev("pool-c6i.large-us-east-1c", 1, 0),
        ];
        let s = |index: usize, score: f64| Scored {
            index,
            score,
            ci_low: 0.0,
            ci_high: 1.0,
        };
        let ranked = vec![
            s(0, 0.010),
            s(1, 0.011),
            s(2, 0.012),
            s(3, 0.013),
            s(4, 0.050),
        ];
        // Tolerance 0.005: after the pick (c6a.large in 1a), m6a.large in 1b brings a new zone; then
        // no pool within reach has a new zone (1c is too far), and r6a.large in 1a brings a new type,
        // so it beats the better c6a.large in 1b.
        assert_eq!(alternatives(&e, &ranked, 3, 0.005), [1, 3]);
        // No tolerance: plain order.
        assert_eq!(alternatives(&e, &ranked, 3, 0.0), [1, 2]);
        // Asking for more than there is.
        assert_eq!(alternatives(&e, &ranked, 10, 0.0).len(), 4);
        assert!(alternatives(&e, &ranked, 1, 0.5).is_empty());
    }
}
