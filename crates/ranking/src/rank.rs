//! Scoring and ordering candidates under a strategy, how sure the pick is, and diverse alternatives.

use std::cmp::Ordering;
use std::collections::HashSet;

use rand::Rng;
use rand_distr::Distribution;

pub use pool_core::request::Strategy;

use crate::evidence::Evidence;
use crate::integrate::best_and_regret;
use crate::model::Model;
use crate::stats::{beta_interval, beta_quantile, jeffreys_interval, wilson_interval, z_for};

/// How one request scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    pub strategy: Strategy,
    /// Confidence level of the reported interval (and of Wilson's and Bayes's bounds).
    pub confidence: f64,
    /// `pooled` and `pooled-v1`: rank by this posterior quantile instead of the mean (0.9 = pessimistic).
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

/// Score one pool whose posterior (under the model the strategy reads) is `Beta(post)`. `rng` is only
/// drawn from by `thompson`.
pub fn score(
    index: usize,
    e: &Evidence,
    post: (f64, f64),
    p: &Params,
    rng: &mut impl Rng,
) -> Scored {
    let n = e.effective_jobs;
    let (alpha, beta) = post;
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
        Strategy::Pooled | Strategy::PooledV1 => {
            let (lo, hi) = beta_interval(alpha, beta, p.confidence);
            let s = match p.risk {
                Some(q) => beta_quantile(alpha, beta, q),
                None => alpha / (alpha + beta),
            };
            (lo, hi, s)
        }
        Strategy::Thompson => {
            let (lo, hi) = beta_interval(alpha, beta, p.confidence);
            let draw = rand_distr::Beta::new(alpha.max(1e-9), beta.max(1e-9))
                .map(|d| d.sample(rng))
                .unwrap_or_else(|_| alpha / (alpha + beta));
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

/// The posterior `Beta(α, β)` each pool is scored with under `strategy`: `pooled-v1`'s own model,
/// the default model's for every other strategy.
pub fn posteriors<'a>(
    evidence: &'a [Evidence],
    model: &'a Model,
    strategy: Strategy,
) -> impl Fn(usize) -> (f64, f64) + 'a {
    let v1 = (strategy == Strategy::PooledV1).then(|| model.v1(evidence));
    move |i| match v1 {
        Some(v1) => (v1.pools[i].alpha, v1.pools[i].beta),
        None => (model.pools[i].alpha, model.pools[i].beta),
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
    let post = posteriors(evidence, model, p.strategy);
    let mut out: Vec<Scored> = candidates
        .iter()
        .map(|&i| score(i, &evidence[i], post(i), p, rng))
        .collect();
    out.sort_by(|a, b| compare(evidence, a, b));
    out
}

/// Posterior probability that the rate of `Beta(target)` is below the rate of every `Beta` in
/// `others` (independent posteriors), by exact numeric integration ([`crate::integrate`]).
pub fn probability_lowest(target: (f64, f64), others: &[(f64, f64)]) -> f64 {
    best_and_regret(target, others).0
}

/// How sure the pick is, under one model's posterior: the probability that it has the lowest true rate
/// of the candidates, and its expected regret `E[p_pick − min_j p_j]` (termination-probability units,
/// whatever the strategy that picked).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    pub probability_best: f64,
    pub expected_regret: f64,
}

/// [`Confidence`] of `ranked[0]` among all of `ranked`, under `posterior` (e.g. [`posteriors`]).
pub fn confidence(ranked: &[Scored], posterior: impl Fn(usize) -> (f64, f64)) -> Confidence {
    let Some(first) = ranked.first() else {
        return Confidence {
            probability_best: 0.0,
            expected_regret: 0.0,
        };
    };
    let others: Vec<(f64, f64)> = ranked[1..].iter().map(|s| posterior(s.index)).collect();
    let (probability_best, expected_regret) = best_and_regret(posterior(first.index), &others);
    Confidence {
        probability_best,
        expected_regret,
    }
}

/// An exploration probe for `ranked[0]`'s request: the candidate whose expected improvement over the
/// pick, `E[(p_pick − p_j)⁺]` under `posterior`, is largest, when that exceeds `min_gain` (as a
/// position in `ranked`). A pool nobody picks any more keeps its old estimate; its posterior widens as
/// its data age ([`crate::changes`]), and this is the pool a small, bounded share of requests should
/// try, because it is the one most likely to have become much better.
pub fn probe(
    ranked: &[Scored],
    posterior: impl Fn(usize) -> (f64, f64),
    min_gain: f64,
) -> Option<usize> {
    let pick = posterior(ranked.first()?.index);
    ranked
        .iter()
        .enumerate()
        .skip(1)
        .map(|(pos, s)| (pos, best_and_regret(pick, &[posterior(s.index)]).1))
        .filter(|&(_, gain)| gain > min_gain)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(pos, _)| pos)
}

/// The posterior probability (under the default model) that the first of `ranked` has the lowest true
/// rate among all of them.
pub fn probability_best(model: &Model, ranked: &[Scored]) -> f64 {
    confidence(ranked, |i| (model.pools[i].alpha, model.pools[i].beta)).probability_best
}

/// Up to `k − 1` alternatives to `ranked[0]`, as positions in `ranked`, chosen for diversity: at each
/// step, among the pools whose score is within `tolerance` of the best one left, prefer one whose zone
/// *and* instance family are both new, then one with a new zone, then one with a new family, else the
/// best one left. A spot reclaim hits a zone, or a family's capacity (its sizes share the same
/// hardware), so another size of the same family is not an alternative that survives it.
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
    let zone = |pos: usize| pool(pos).availability_zone().as_str();
    let family = |pos: usize| pool(pos).instance_type().family();
    let mut zones: HashSet<&str> = HashSet::from([zone(0)]);
    let mut families: HashSet<&str> = HashSet::from([family(0)]);
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
        let new_zone = |p: &usize| !zones.contains(zone(*p));
        let new_family = |p: &usize| !families.contains(family(*p));
        let choice = near
            .iter()
            .copied()
            .find(|p| new_zone(p) && new_family(p))
            .or_else(|| near.iter().copied().find(new_zone))
            .or_else(|| near.iter().copied().find(new_family))
            .unwrap_or(next);
        taken[choice] = true;
        zones.insert(zone(choice));
        families.insert(family(choice));
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
    fn alternatives_prefer_new_zones_and_families_and_another_size_is_not_diverse() {
        let e = vec![
            ev("pool-c6a.large-us-east-1a", 1, 0),
            ev("pool-c6a.xlarge-us-east-1b", 1, 0),
            ev("pool-m6a.large-us-east-1c", 1, 0),
            ev("pool-c6a.2xlarge-us-east-1a", 1, 0),
            ev("pool-r6a.large-us-east-1a", 1, 0),
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
            s(4, 0.014),
        ];
        // Tolerance 0.005: after the pick (c6a in 1a), m6a in 1c brings a new zone and a new family;
        // then c6a.xlarge in 1b a new zone; then r6a in 1a a new family, ahead of the better
        // c6a.2xlarge, which is only another size of the pick's family in the pick's zone.
        assert_eq!(alternatives(&e, &ranked, 4, 0.005), [2, 1, 4]);
        // No tolerance: plain order.
        assert_eq!(alternatives(&e, &ranked, 3, 0.0), [1, 2]);
        // Asking for more than there is.
        assert_eq!(alternatives(&e, &ranked, 10, 0.0).len(), 4);
        assert!(alternatives(&e, &ranked, 1, 0.5).is_empty());
    }

    #[test]
    fn the_probe_is_the_candidate_most_likely_to_beat_the_pick_by_much() {
        let s = |index: usize| Scored {
            index,
            score: 0.0,
            ci_low: 0.0,
            ci_high: 1.0,
        };
        // The pick: 3 % for sure. A known 5 % pool, and a stale one whose posterior is wide around
        // 6 %: only the wide one can be much better.
        let post = [(300.0, 9700.0), (500.0, 9500.0), (0.6, 9.4)];
        let ranked = [s(0), s(1), s(2)];
        assert_eq!(probe(&ranked, |i| post[i], 0.0), Some(2));
        // Its expected improvement, by brute force over its Beta: E[(0.03 − p)⁺].
        let gain = best_and_regret(post[0], &[post[2]]).1;
        assert!(gain > 0.003 && gain < 0.03, "{gain}");
        assert_eq!(probe(&ranked, |i| post[i], 0.5), None);
        assert_eq!(probe(&ranked[..1], |i| post[i], 0.0), None);
    }

    #[test]
    fn confidence_is_the_pick_s_probability_of_being_best_and_its_expected_regret() {
        let e = vec![
            ev("pool-c6a.large-us-east-1a", 100, 5),
            ev("pool-m6a.large-us-east-1b", 100, 6),
            ev("pool-r6a.large-us-east-1c", 300, 30),
        ];
        let m = fit(&e, &ModelConfig::default());
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let r = rank(&e, &m, &[0, 1, 2], &params(Strategy::Pooled), &mut rng);
        let post = |i: usize| (m.pools[i].alpha, m.pools[i].beta);
        let c = confidence(&r, post);
        // Against Monte Carlo over the same posteriors: P(best) and E[p_pick − min_j p_j].
        let dists: Vec<_> = r
            .iter()
            .map(|s| {
                let (a, b) = post(s.index);
                rand_distr::Beta::new(a, b).unwrap()
            })
            .collect();
        let draws = 200_000;
        let (mut wins, mut loss) = (0usize, 0.0);
        for _ in 0..draws {
            let x: Vec<f64> = dists.iter().map(|d| d.sample(&mut rng)).collect();
            let min = x.iter().copied().fold(f64::INFINITY, f64::min);
            wins += usize::from(x[0] == min);
            loss += x[0] - min;
        }
        let (p, l) = (wins as f64 / draws as f64, loss / draws as f64);
        assert!((c.probability_best - p).abs() < 0.006, "{c:?} vs {p}");
        assert!((c.expected_regret - l).abs() < 0.03 * l, "{c:?} vs {l}");
        assert_eq!(c.probability_best, probability_best(&m, &r));
        // The same units whatever ranked the candidates: naive's order has its own pick's regret.
        let naive = rank(&e, &m, &[0, 1, 2], &params(Strategy::Naive), &mut rng);
        let cn = confidence(&naive, post);
        assert!(cn.expected_regret >= 0.0 && cn.probability_best <= 1.0);
        let single = confidence(&r[..1], post);
        assert_eq!(
            (single.probability_best, single.expected_regret),
            (1.0, 0.0)
        );
    }
}
