//! `pooled-v1`: the previous default, kept as a named strategy so the benchmark can compare against
//! it (and users can still ask for it) until the hierarchy is better everywhere.
//!
//! **Change.** For each pool, the last hours ([`ModelConfig::v1_splits`]) are compared with the rest of
//! the window by Fisher's exact test (two-sided, Bonferroni over the splits, so a stable pool is flagged
//! with probability at most `change_alpha`). When a pool, or the rest of its zone as a whole (the pools
//! that did not change on their own, pooled), has changed, its posterior uses only the hours since the
//! most significant split: a hard switch between all history and the last few hours. Separately,
//! `degraded` flags a pool whose last [`ModelConfig::v1_degraded_hours`] are significantly *worse* than the
//! rest (one-sided, at `change_alpha`).
//!
//! **Prior.** A pool's prior mean is the rate of its instance family times that of its zone over the
//! fleet's rate (a two-way model; each computed without the pool itself and shrunk toward the fleet),
//! and its strength (pseudo-jobs) comes from how much pools really differ beyond binomial noise,
//! estimated by the method of moments as a common relative spread (see `fit_prior`). This is the
//! structure the event generator plants; without it, thin pools are ranked by the noise of their
//! family and zone rates (see the crate's note and `regret-bench`).

use std::collections::HashMap;

use crate::changes::ChangeScope;
use crate::evidence::Evidence;
use crate::model::ModelConfig;
use crate::stats::{fisher_one_sided, fisher_two_sided};

/// Weakest and strongest prior allowed, in pseudo-jobs.
pub const MIN_PRIOR_STRENGTH: f64 = 2.0;
pub const MAX_PRIOR_STRENGTH: f64 = 20_000.0;
/// Spread assumed when fewer than three pools have two jobs or more.
pub const FALLBACK_CV: f64 = 1.0;

/// A detected change: only the last `hours` are used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// The posterior uses the jobs of this many last hours.
    pub hours: u32,
    /// Two-sided p-value of the split (before the Bonferroni correction).
    pub p_value: f64,
    pub scope: ChangeScope,
}

/// The v1 model's belief about one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolModel {
    /// Prior mean from the pool's family and zone.
    pub prior_mean: f64,
    /// Prior strength in pseudo-jobs.
    pub prior_strength: f64,
    /// Evidence behind the posterior (effective jobs and terminations).
    pub n: f64,
    pub k: f64,
    /// Posterior Beta(alpha, beta) of the termination rate.
    pub alpha: f64,
    pub beta: f64,
    pub change: Option<Change>,
    /// One-sided p-value of "the last [`ModelConfig::v1_degraded_hours`] are worse than the rest".
    pub degraded_p: f64,
    pub degraded: bool,
}

impl PoolModel {
    pub fn posterior_mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }
}

/// The fitted v1 model: one [`PoolModel`] per evidence entry, same order.
#[derive(Debug, Clone)]
pub struct Model {
    pub pools: Vec<PoolModel>,
    /// The fleet's termination rate in the evidence the prior was fitted on.
    pub fleet_rate: f64,
    /// How much pools' true rates differ from their family-and-zone mean, relative to it (the prior's
    /// coefficient of variation; each pool's strength follows from it and its mean).
    pub prior_cv: f64,
}

/// The most significant split of a change test, if it passes Bonferroni at `alpha`.
fn change_split(
    recent: impl Fn(usize) -> (u64, u64),
    jobs: u64,
    spot: u64,
    cfg: &ModelConfig,
) -> Option<(u32, f64)> {
    let tests = cfg.v1_splits.len().max(1) as f64;
    let mut best: Option<(u32, f64)> = None;
    for &s in &cfg.v1_splits {
        let (n1, k1) = recent(s as usize);
        let (n0, k0) = (jobs.saturating_sub(n1), spot.saturating_sub(k1));
        let p = fisher_two_sided(k1, n1, k0, n0);
        if p * tests < cfg.change_alpha && best.is_none_or(|(_, bp)| p < bp) {
            best = Some((s, p));
        }
    }
    best
}

/// The most significant split of a zone's pools taken together, if it passes Bonferroni at `alpha`.
///
/// Each pool is compared with its own past (a stratified, Mantel–Haenszel test: the recent
/// terminations summed over pools against the sum of what each pool's own history predicts, normal
/// approximation with a continuity correction), so pools that merely ran at different times with
/// different rates do not look like a change.
fn zone_split(evidence: &[Evidence], members: &[usize], cfg: &ModelConfig) -> Option<(u32, f64)> {
    let tests = cfg.v1_splits.len().max(1) as f64;
    let normal = statrs::distribution::Normal::new(0.0, 1.0).expect("standard normal");
    let mut best: Option<(u32, f64)> = None;
    for &s in &cfg.v1_splits {
        let (mut observed, mut expected, mut variance) = (0.0, 0.0, 0.0);
        for &i in members {
            let e = &evidence[i];
            let (n1, k1) = e.last(s as usize);
            let n = e.jobs as f64;
            let k = e.spot as f64;
            let n1 = n1 as f64;
            let n0 = n - n1;
            if n1 <= 0.0 || n0 <= 0.0 || k <= 0.0 || k >= n {
                continue;
            }
            observed += k1 as f64;
            expected += n1 * k / n;
            variance += n1 * n0 * k * (n - k) / (n * n * (n - 1.0).max(1.0));
        }
        if variance <= 0.0 {
            continue;
        }
        let z = ((observed - expected).abs() - 0.5).max(0.0) / variance.sqrt();
        let p = 2.0 * (1.0 - statrs::distribution::ContinuousCDF::cdf(&normal, z));
        if p * tests < cfg.change_alpha && best.is_none_or(|(_, bp)| p < bp) {
            best = Some((s, p));
        }
    }
    best
}

/// Fit the model to every pool of `evidence` (the candidates and the pools around them).
pub fn fit(evidence: &[Evidence], cfg: &ModelConfig) -> Model {
    // 1. Changes, per pool and per zone.
    let mut changes: Vec<Option<Change>> = vec![None; evidence.len()];
    let mut degraded = vec![(1.0, false); evidence.len()];
    for (i, e) in evidence.iter().enumerate() {
        let (n1, k1) = e.last(cfg.v1_degraded_hours as usize);
        let (worse, _) =
            fisher_one_sided(k1, n1, e.spot.saturating_sub(k1), e.jobs.saturating_sub(n1));
        degraded[i] = (worse, worse < cfg.change_alpha);
        if cfg.adapt {
            changes[i] =
                change_split(|h| e.last(h), e.jobs, e.spot, cfg).map(|(hours, p)| Change {
                    hours,
                    p_value: p,
                    scope: ChangeScope::Pool,
                });
        }
    }
    if cfg.adapt && cfg.v1_zone_changes {
        let mut zones: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, e) in evidence.iter().enumerate() {
            zones
                .entry(e.pool.availability_zone().as_str())
                .or_default()
                .push(i);
        }
        for members in zones.values() {
            // Pools that changed on their own are set aside: a zone has changed only when the rest
            // of it did too, not because one of its pools did.
            let members: Vec<usize> = members
                .iter()
                .copied()
                .filter(|&i| changes[i].is_none())
                .collect();
            if let Some((hours, p)) = zone_split(evidence, &members, cfg) {
                for &i in &members {
                    changes[i].get_or_insert(Change {
                        hours,
                        p_value: p,
                        scope: ChangeScope::Zone,
                    });
                }
            }
        }
    }
    // 2. The evidence each posterior uses.
    let nk: Vec<(f64, f64)> = evidence
        .iter()
        .zip(&changes)
        .map(|(e, c)| match c {
            Some(c) => {
                let (n, k) = e.last(c.hours as usize);
                (n as f64, k as f64)
            }
            None => (e.effective_jobs, e.effective_spot()),
        })
        .collect();
    // 3. The shared prior.
    let prior = fit_prior(evidence, &nk);
    let pools = evidence
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let (n, k) = nk[i];
            let m = prior.means[i];
            let s = prior.strengths[i];
            PoolModel {
                prior_mean: m,
                prior_strength: s,
                n,
                k,
                alpha: m * s + k,
                beta: (1.0 - m) * s + (n - k).max(0.0),
                change: changes[i],
                degraded_p: degraded[i].0,
                degraded: degraded[i].1,
            }
        })
        .collect();
    Model {
        pools,
        fleet_rate: prior.fleet_rate,
        prior_cv: prior.cv,
    }
}

struct Prior {
    means: Vec<f64>,
    strengths: Vec<f64>,
    cv: f64,
    fleet_rate: f64,
}

/// Group sums for a leave-one-out rate: `(jobs, terminations)` per group.
fn group_sums<'a>(
    keys: impl Iterator<Item = &'a str>,
    nk: &[(f64, f64)],
) -> (Vec<usize>, Vec<(f64, f64)>) {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut sums: Vec<(f64, f64)> = vec![];
    let ids = keys
        .zip(nk)
        .map(|(key, &(n, k))| {
            let g = *index.entry(key).or_insert_with(|| {
                sums.push((0.0, 0.0));
                sums.len() - 1
            });
            sums[g].0 += n;
            sums[g].1 += k;
            g
        })
        .collect();
    (ids, sums)
}

/// Prior strength (pseudo-jobs) of a Beta with mean `m` and coefficient of variation `cv`.
fn strength(m: f64, cv: f64) -> f64 {
    ((1.0 - m) / (cv * cv * m) - 1.0).clamp(MIN_PRIOR_STRENGTH, MAX_PRIOR_STRENGTH)
}

/// Method-of-moments fit of the two-way prior (see the module docs).
///
/// Pools differ from their family-and-zone mean `m` by a similar *relative* amount (a pool 30 % worse
/// than its neighbours is as plausible at 2 % as at 20 %), so the prior has a common coefficient of
/// variation `cv`: variance `(cv·m)²`, hence a strength `(1 − m)/(cv²·m) − 1` pseudo-jobs, larger for the
/// low rates that matter most. With `v = (cv·m)²`, `E[(p̂ − m)²] = v(1 − 1/n) + m(1 − m)/n`, so
/// `cv² = Σ w [(p̂ − m)² − m(1 − m)/n] / Σ w m² (1 − 1/n)`, each pool weighted by the information it
/// carries about its own rate, `w = n / (1 + n·v/(m(1 − m)))` (a busy pool counts as about one prior's
/// worth, not as thousands of jobs).
fn fit_prior(evidence: &[Evidence], nk: &[(f64, f64)]) -> Prior {
    let total_n: f64 = nk.iter().map(|p| p.0).sum();
    let total_k: f64 = nk.iter().map(|p| p.1).sum();
    // Half a termination in the fleet at least, so a fleet that never lost a job is not "certain".
    let fleet = ((total_k + 0.5) / (total_n + 1.0)).clamp(1e-5, 0.9);
    let (family_of, family) =
        group_sums(evidence.iter().map(|e| e.pool.instance_type().family()), nk);
    let (zone_of, zone) = group_sums(
        evidence.iter().map(|e| e.pool.availability_zone().as_str()),
        nk,
    );
    // Family and zone rates without the pool itself, shrunk toward the fleet by `s` pseudo-jobs.
    let means_for = |s: f64| -> Vec<f64> {
        nk.iter()
            .enumerate()
            .map(|(i, &(n, k))| {
                let (fnn, fk) = family[family_of[i]];
                let (zn, zk) = zone[zone_of[i]];
                let rf = ((fk - k).max(0.0) + s * fleet) / ((fnn - n).max(0.0) + s);
                let rz = ((zk - k).max(0.0) + s * fleet) / ((zn - n).max(0.0) + s);
                (rf * rz / fleet).clamp(1e-5, 0.9)
            })
            .collect()
    };
    let max_cv = {
        // The weakest prior allowed at the fleet's rate.
        let m = fleet;
        ((1.0 - m) / (m * (MIN_PRIOR_STRENGTH + 1.0))).sqrt()
    };
    let mut cv: f64 = 0.5_f64.min(max_cv);
    let mut means = means_for(strength(fleet, cv));
    for _ in 0..8 {
        let (mut num, mut den, mut count) = (0.0, 0.0, 0);
        for (i, &(n, k)) in nk.iter().enumerate() {
            if n < 2.0 {
                continue;
            }
            let m = means[i];
            let binomial = m * (1.0 - m);
            let v = (cv * m).powi(2);
            let w = n / (1.0 + n * v / binomial);
            num += w * ((k / n - m).powi(2) - binomial / n);
            den += w * m * m * (1.0 - 1.0 / n);
            count += 1;
        }
        let next = if count >= 3 && den > 0.0 {
            (num / den).max(0.0).sqrt().clamp(1e-3, max_cv)
        } else {
            // Too few pools to tell how they differ: a diffuse prior (sd as large as the mean).
            FALLBACK_CV.min(max_cv)
        };
        let settled = (next - cv).abs() < 1e-4;
        cv = next;
        means = means_for(strength(fleet, cv));
        if settled {
            break;
        }
    }
    Prior {
        strengths: means.iter().map(|&m| strength(m, cv)).collect(),
        means,
        cv,
        fleet_rate: fleet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Hour;
    use pool_core::event::PoolId;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn pool(id: &str) -> PoolId {
        id.parse().unwrap()
    }

    fn flat(id: &str, jobs: u64, spot: u64) -> Evidence {
        Evidence::new(pool(id), jobs, spot, &[])
    }

    #[test]
    fn a_thin_pool_borrows_from_its_family_and_zone_and_a_thick_one_barely_moves() {
        // Four pools at exactly 10 % with 1,000 jobs each, so the family, zone and fleet are all 10 %
        // and the pools do not differ beyond noise (strongest prior). A 3-job pool with no termination
        // is pulled to about 10 %; its naive 0 % is not believed.
        let mut ev = vec![
            flat("pool-c6a.large-us-east-1a", 1000, 100),
            flat("pool-c6a.2xlarge-us-east-1a", 1000, 100),
            flat("pool-m6a.large-us-east-1a", 1000, 100),
            flat("pool-c6a.large-us-east-1b", 1000, 100),
            flat("pool-c6a.xlarge-us-east-1a", 3, 0),
        ];
        let m = fit(&ev, &ModelConfig::default());
        let thin = &m.pools[4];
        assert_eq!(thin.prior_strength, MAX_PRIOR_STRENGTH);
        // Leave-one-out: the thin pool's family and zone are the other pools, all at 10 %; the fleet
        // rate (4000 jobs, 400.5 terminations incl. the half) is ≈ 10 %.
        assert!((thin.prior_mean - 0.1).abs() < 0.001, "{}", thin.prior_mean);
        assert!((thin.posterior_mean() - 0.1).abs() < 0.001);
        // A thick pool at 2 % among pools at 10 %: the pools now differ far beyond noise, so the prior
        // is weak and the 5,000-job pool stays near its own 2 %.
        ev.push(flat("pool-r6a.large-us-east-1c", 5000, 100));
        let m = fit(&ev, &ModelConfig::default());
        let thick = &m.pools[5];
        assert!(thick.prior_strength < 500.0, "{}", thick.prior_strength);
        assert!(
            (thick.posterior_mean() - 0.02).abs() < 0.003,
            "{}",
            thick.posterior_mean()
        );
    }

    #[test]
    fn the_posterior_is_the_prior_plus_the_counts() {
        let ev = vec![
            flat("pool-c6a.large-us-east-1a", 200, 10),
            flat("pool-c6a.xlarge-us-east-1a", 50, 0),
            flat("pool-m6a.large-us-east-1b", 400, 40),
            flat("pool-r6a.large-us-east-1c", 100, 2),
        ];
        let m = fit(&ev, &ModelConfig::default());
        for (e, p) in ev.iter().zip(&m.pools) {
            let s = p.prior_strength;
            assert!((p.alpha - (p.prior_mean * s + e.spot as f64)).abs() < 1e-9);
            assert!((p.beta - ((1.0 - p.prior_mean) * s + (e.jobs - e.spot) as f64)).abs() < 1e-9);
            assert!(p.change.is_none() && !p.degraded);
        }
        // Hand-computed prior mean of the first pool for the fleet's strength s: family c6a without it
        // is (0 + s·f)/(50 + s); zone us-east-1a without it is the same; fleet f = 52.5 / 751.
        let s = strength(m.fleet_rate, m.prior_cv);
        let f = 52.5 / 751.0;
        let r = (s * f) / (50.0 + s);
        assert!((m.pools[0].prior_mean - r * r / f).abs() < 1e-12);
        assert!((m.fleet_rate - f).abs() < 1e-12);
    }

    fn hours_at(
        rate_old: f64,
        rate_new: f64,
        change_at: usize,
        per_hour: u32,
        seed: u64,
    ) -> Evidence {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let total_hours = 24 * 7;
        let mut jobs = 0;
        let mut spot = 0;
        let mut recent = vec![];
        for h in 0..total_hours {
            let rate = if h >= total_hours - change_at {
                rate_new
            } else {
                rate_old
            };
            let mut cell = Hour::default();
            for _ in 0..per_hour {
                cell.jobs += 1;
                if rng.random_bool(rate) {
                    cell.spot += 1;
                }
            }
            jobs += u64::from(cell.jobs);
            spot += u64::from(cell.spot);
            recent.push(cell);
        }
        Evidence::new(pool("pool-c6a.large-us-east-1a"), jobs, spot, &recent)
    }

    #[test]
    fn a_pool_that_turned_bad_is_judged_by_its_last_hours() {
        // 5 % for a week, 30 % for the last 5 hours, 20 jobs an hour.
        let e = hours_at(0.05, 0.30, 5, 20, 1);
        let m = fit(std::slice::from_ref(&e), &ModelConfig::default());
        let p = &m.pools[0];
        assert!(p.degraded, "{}", p.degraded_p);
        let change = p.change.expect("change detected");
        // The most significant split is the one nearest the change (the splits are 2, 4, 8, … hours).
        assert!(change.hours == 4 || change.hours == 8, "{change:?}");
        assert_eq!(change.scope, ChangeScope::Pool);
        assert_eq!(p.n, e.last(change.hours as usize).0 as f64);
        assert!(p.posterior_mean() > 0.15, "{}", p.posterior_mean());
        // Without adaptation the week of good history hides it.
        let cfg = ModelConfig {
            adapt: false,
            ..ModelConfig::default()
        };
        let m = fit(std::slice::from_ref(&e), &cfg);
        assert!(m.pools[0].posterior_mean() < 0.08);
    }

    #[test]
    fn the_degraded_test_keeps_its_false_alarm_rate_on_a_stationary_history() {
        // 2,000 stationary pools at 5 % with 10 jobs an hour for a week: at α = 1 %, at most 1 % are
        // flagged (Fisher's test is exact and conservative), with room for sampling noise (sd 0.22 %).
        let cfg = ModelConfig::default();
        let mut flagged = 0;
        let mut adapted = 0;
        let trials = 2000;
        for seed in 0..trials {
            let e = hours_at(0.05, 0.05, 0, 10, seed);
            let m = fit(
                std::slice::from_ref(&e),
                &ModelConfig {
                    v1_zone_changes: true,
                    ..cfg.clone()
                },
            );
            flagged += usize::from(m.pools[0].degraded);
            adapted += usize::from(m.pools[0].change.is_some());
        }
        let rate = flagged as f64 / trials as f64;
        let adapt_rate = adapted as f64 / trials as f64;
        assert!(rate <= 0.01 + 3.0 * 0.0022, "false alarms {rate}");
        assert!(
            adapt_rate <= 0.01 + 3.0 * 0.0022,
            "false changes {adapt_rate}"
        );
        // And the test has power: a tripled rate over 6 hours is caught most of the time.
        let caught = (0..200)
            .filter(|&seed| {
                let e = hours_at(0.05, 0.15, 6, 10, 10_000 + seed);
                fit(std::slice::from_ref(&e), &cfg).pools[0].degraded
            })
            .count();
        assert!(caught > 100, "power {caught}/200");
    }

    #[test]
    fn a_zone_that_turns_bad_adapts_its_thin_pools_too() {
        // Eight thin pools per zone (2 jobs an hour). Zone a goes from 4 % to 30 % 8 hours ago: too
        // few jobs for most pools to show it on their own, plain when the zone is pooled. Zone b stays.
        let types = [
            "c6a.large",
            "m6a.large",
            "r6a.large",
            "c6i.large",
            "m6i.large",
            "r6i.large",
            "c7g.large",
            "m7g.large",
        ];
        let mut ev = vec![];
        for (i, it) in types.iter().enumerate() {
            ev.push(Evidence {
                pool: pool(&format!("pool-{it}-us-east-1a")),
                ..hours_at(0.04, 0.30, 8, 2, i as u64)
            });
            ev.push(Evidence {
                pool: pool(&format!("pool-{it}-us-east-1b")),
                ..hours_at(0.04, 0.04, 0, 2, 100 + i as u64)
            });
        }
        let m = fit(&ev, &ModelConfig::default());
        let mut by_zone = 0;
        for (e, p) in ev.iter().zip(&m.pools) {
            let in_a = e.pool.availability_zone().as_str() == "us-east-1a";
            assert_eq!(p.change.is_some(), in_a, "{} {:?}", e.pool, p.change);
            by_zone += usize::from(p.change.is_some_and(|c| c.scope == ChangeScope::Zone));
        }
        assert!(by_zone >= 4, "{by_zone} pools adapted through their zone");
        // Without the zone test, the thin pools keep vouching with last week.
        let alone = fit(
            &ev,
            &ModelConfig {
                v1_zone_changes: false,
                ..ModelConfig::default()
            },
        );
        let adapted = alone.pools.iter().filter(|p| p.change.is_some()).count();
        assert!(adapted < 8, "{adapted}");
    }
}
