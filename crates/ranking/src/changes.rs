//! Change points as a posterior: how likely each pool (and each zone, region and family) changed, when,
//! and what its rate is now, with no hard switch.
//!
//! # A pool on its own
//!
//! The model is Bayesian online change-point detection (Adams & MacKay, 2007) reduced to what a
//! ranking needs: the posterior of the time of the *most recent* change, under a constant hazard.
//! With `h` hours in the pool's hourly series, a change happened within them with prior probability
//! `ρ`, at any hour equally likely (`ρ/h` each, a geometric hazard with `ρ` small); before and after
//! it the rate is a fresh draw from the pool's shared prior `Beta(a, b)` (the reset distribution,
//! [`crate::hierarchy`]). The split times are evaluated at [`SPLITS`], log-spaced from 1 hour to 30
//! days; each stands for the hours between its neighbours' midpoints (`width_j`). With `(n₁, k₁)` the
//! jobs and terminations of the last `s_j` hours and `(n₀, k₀)` the rest of the window, the sequence's
//! marginal likelihood under a Beta prior is `L(k, n) = ln B(a + k, b + n − k) − ln B(a, b)`, and
//!
//! ```text
//! ln BF_j = L(k₁, n₁) + L(k₀, n₀) − L(k, n),
//! P(change at s_j | data) ∝ ρ · width_j/h · BF_j,   P(no change | data) ∝ 1 − ρ.
//! ```
//!
//! Each `L` is three rising factorials ([`crate::special::ln_rising`]): a product for the few jobs of
//! a few hours, Stirling's series otherwise. `ρ` is fitted to the fleet: the share of pools whose
//! prior-averaged Bayes factor `B̄_i = Σ_j width_j/h · BF_j` shows a change beyond doubt (≥ 19),
//! shrunk as `(count + 1)/(N + 20)` (see [`fit_pool_prior`] for why not the marginal likelihood): a
//! fleet whose pools keep changing gets a quick trigger, a stable one a reluctant one, and no
//! `CHANGE_ALPHA` has to be guessed.
//!
//! # Zones, regions, families
//!
//! A zone outage shows in every pool of the zone, most of them too thin to see it alone. For each
//! group `G` and split `s_j`, the terminations of its pools' last `s_j` hours are compared with what
//! each pool's own past predicts: `O = Σ (1 − q_i) k₁ᵢ`, `E = Σ (1 − q_i) n₁ᵢ r₀ᵢ`, where
//! `r₀ᵢ = (a_i + k₀ᵢ)/(a_i + b_i + n₀ᵢ)` is the pool's rate before the split and `q_i` the probability
//! that the pool changed on its own (so one pool that changed does not make its zone look changed).
//! Under "the group's rates were multiplied by θ at `s_j`", `O ~ Poisson(θE)` with `θ ~ Gamma(c, c)`,
//! `c = 1`; under "no change", `O ~ Poisson(E)`:
//!
//! ```text
//! ln BF = c ln c + ln Γ(c + O) − ln Γ(c) + E − (c + O) ln(c + E),   θ | O ~ Gamma(c + O, c + E).
//! ```
//!
//! Multiplicity is handled by the prior, not by thresholds: the probability that *some* group of the
//! fleet changed within the series is [`ChangeConfig::group_prior`], split evenly over the groups
//! tested, so testing 27 groups does not make 27 times the false alarms.
//!
//! # The pool's current rate
//!
//! A mixture: with the probability that one of its groups changed, the group's components (prior
//! mean `θ̂ r₀ᵢ` with the spread of `θ` and of `r₀ᵢ`, updated with the pool's own last `s_j` hours);
//! otherwise the pool's own: "no change" (`Beta(a + k, b + n − k)`, the whole window) and each split
//! (`Beta(a + k₁, b + n₁ − k₁)`). The mixture is matched to the Beta with its mean and variance. A pool
//! whose data grow old widens by itself: the hours since its last job carry prior weight `ρ/h` each
//! for a change whose new rate only the prior knows.

use crate::evidence::Evidence;
use crate::hierarchy::Level;
use crate::special::{ln_gamma, ln_rising, normal_cdf};

/// Candidate ages of the most recent change, hours (the last `s` hours are the new regime).
pub const SPLITS: [u32; 19] = [
    1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 720,
];
const S: usize = SPLITS.len();
/// Bounds of the fitted per-pool change probability within the series.
pub const POOL_PRIOR_RANGE: (f64, f64) = (0.002, 0.5);
/// Shape of the Gamma prior of a group's shift factor θ (mean 1).
const SHIFT_SHAPE: f64 = 1.0;
/// Group components below this posterior weight are skipped.
const NEGLIGIBLE: f64 = 1e-9;

/// How changes are looked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeConfig {
    /// Prior probability that a pool changed within its series; `None`: fitted to the fleet.
    pub pool_prior: Option<f64>,
    /// Look for changes of whole zones, regions and families.
    pub groups: bool,
    /// Prior probability that some group of the fleet changed within the series (split over the
    /// groups tested).
    pub group_prior: f64,
}

impl Default for ChangeConfig {
    fn default() -> Self {
        Self {
            pool_prior: None,
            groups: true,
            group_prior: 0.2,
        }
    }
}

/// Who a change was seen in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeScope {
    Pool,
    Zone,
    Region,
    Family,
}

/// The most probable recent change of a pool's rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Change {
    /// Posterior probability that the pool's rate changed within its series (its own change or its
    /// zone's, region's or family's).
    pub probability: f64,
    /// The most probable age of the change, hours.
    pub hours: u32,
    /// Where the most probable change was seen.
    pub scope: ChangeScope,
}

/// One pool's current-rate belief.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Current {
    /// The mixture matched to `Beta(alpha, beta)`.
    pub alpha: f64,
    pub beta: f64,
    /// Probability of any change within the series.
    pub change_probability: f64,
    /// The most probable change (whatever its probability).
    pub most_probable: Option<(u32, ChangeScope)>,
    /// Posterior probability that the rate now is higher than before the change.
    pub worse_probability: f64,
}

/// What the fit found beyond the pools.
#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    pub pools: Vec<Current>,
    /// The per-pool prior probability of a change within the series (fitted or given).
    pub pool_prior: f64,
    /// Groups whose change is more likely than not.
    pub group_alarms: usize,
}

/// Per-pool statistics at each split.
#[derive(Clone, Copy)]
struct Splits {
    /// Valid splits: `SPLITS[..count]` are shorter than the series.
    count: usize,
    hours: usize,
    n1: [u64; S],
    k1: [u64; S],
    /// `ln(width_j / h) + ln BF_j`.
    lw: [f64; S],
    /// `ln Σ_j width_j/h · BF_j`.
    lse: f64,
}

/// Bin widths of the splits for a series of `h` hours: split `j` stands for the change ages between
/// the midpoints to its neighbours; the last valid one runs to `h`.
fn widths(h: usize) -> ([f64; S], usize) {
    let mut w = [0.0; S];
    let count = SPLITS.iter().take_while(|&&s| (s as usize) < h).count();
    for (j, width) in w.iter_mut().enumerate().take(count) {
        let lo = if j == 0 {
            0.0
        } else {
            f64::from(SPLITS[j - 1] + SPLITS[j]) / 2.0
        };
        let hi = if j + 1 < count {
            f64::from(SPLITS[j] + SPLITS[j + 1]) / 2.0
        } else {
            h as f64
        };
        *width = hi - lo;
    }
    (w, count)
}

fn log_sum_exp(xs: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = xs.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + xs.map(|x| (x - max).exp()).sum::<f64>().ln()
}

/// `L(k, n)` up to the constant `−ln B(a, b)` (which cancels in every Bayes factor).
struct Marginal {
    a: f64,
    b: f64,
    lga: f64,
    lgb: f64,
    lgab: f64,
}

impl Marginal {
    fn new(a: f64, b: f64) -> Self {
        Self {
            a,
            b,
            lga: ln_gamma(a),
            lgb: ln_gamma(b),
            lgab: ln_gamma(a + b),
        }
    }

    fn ln(&self, k: u64, n: u64) -> f64 {
        let (k, n) = (k as f64, n as f64);
        ln_rising(self.a, k, self.lga) + ln_rising(self.b, n - k, self.lgb)
            - ln_rising(self.a + self.b, n, self.lgab)
    }
}

fn pool_splits(e: &Evidence, prior: (f64, f64)) -> Splits {
    let h = e.recent.len();
    let (width, count) = widths(h);
    let mut out = Splits {
        count,
        hours: h,
        n1: [0; S],
        k1: [0; S],
        lw: [f64::NEG_INFINITY; S],
        lse: f64::NEG_INFINITY,
    };
    if count == 0 {
        return out;
    }
    let (n, k) = (e.jobs, e.spot);
    let (mut cn, mut ck, mut j) = (0u64, 0u64, 0usize);
    let last = SPLITS[count - 1] as usize;
    for (age, cell) in e.recent.iter().rev().take(last).enumerate() {
        cn += u64::from(cell.jobs);
        ck += u64::from(cell.spot);
        if SPLITS[j] as usize == age + 1 {
            out.n1[j] = cn.min(n);
            out.k1[j] = ck.min(k).min(out.n1[j]);
            j += 1;
        }
    }
    let m = Marginal::new(prior.0, prior.1);
    let all = m.ln(k, n);
    let mut previous: Option<(u64, u64, f64)> = None;
    for (j, &w) in width.iter().enumerate().take(count) {
        let (n1, k1) = (out.n1[j], out.k1[j]);
        let lbf = match previous {
            Some((pn, pk, lbf)) if pn == n1 && pk == k1 => lbf,
            _ if n1 == 0 || n1 >= n => 0.0,
            _ => {
                let k0 = k.saturating_sub(k1);
                m.ln(k1, n1) + m.ln(k0, n - n1) - all
            }
        };
        previous = Some((n1, k1, lbf));
        out.lw[j] = (w / h as f64).ln() + lbf;
    }
    out.lse = log_sum_exp(out.lw[..count].iter().copied());
    out
}

/// Prior-averaged Bayes factor above which a pool's data show a change beyond doubt (posterior odds
/// 19:1 at even prior odds).
const DECISIVE: f64 = 19.0;

/// The fleet's `ρ`: the share of pools whose data show a change beyond doubt (prior-averaged Bayes
/// factor `B̄_i ≥ 19`), shrunk by `(count + 1)/(N + 20)`, within [`POOL_PRIOR_RANGE`].
///
/// Not the maximum of the marginal likelihood `Σ ln(1 − ρ + ρ B̄_i)`: a "change" to a rate close to the
/// old one cannot be told from no change, so a stable pool's `B̄` sits near 1 and argues little against
/// change, and that maximum runs to the cap as soon as a share of the fleet changes visibly (30 %
/// changed pools gave `ρ = 0.5`, which then reported a change for stable pools too). Counting the
/// decisive cases estimates the rate of changes that matter.
fn fit_pool_prior(lse: &[f64]) -> f64 {
    let decisive = lse.iter().filter(|&&l| l >= DECISIVE.ln()).count();
    ((decisive as f64 + 1.0) / (lse.len() as f64 + 20.0))
        .clamp(POOL_PRIOR_RANGE.0, POOL_PRIOR_RANGE.1)
}

/// Mean and variance of `Beta(a, b)`.
fn beta_moments(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let m = a / s;
    (m, m * (1.0 - m) / (s + 1.0))
}

/// `P(X > 1)` for `X ~ Gamma(shape, rate)`, by the Wilson–Hilferty cube-root normal approximation.
fn gamma_above_one(shape: f64, rate: f64) -> f64 {
    let x = rate / shape; // the value 1 on the scale of X/E[X]
    let z = (x.cbrt() - (1.0 - 1.0 / (9.0 * shape))) / (1.0 / (9.0 * shape)).sqrt();
    1.0 - normal_cdf(z)
}

/// A group's posterior over its splits.
struct GroupPosterior {
    /// `P(change at s_j)`, and the total.
    p: [f64; S],
    changed: f64,
    /// Posterior of θ at each split: `(c + O, c + E)`.
    theta: [(f64, f64); S],
}

/// The change-point posterior of every pool. `priors[i]` is pool `i`'s shared prior `(a, b)` (the
/// reset distribution); `groups` the groupings whose changes are looked for, with their scope, finest
/// first;
/// `effective[i]` the `(n, k)` of the whole window as the no-change component uses them (recency
/// weighted when asked).
pub fn fit(
    evidence: &[Evidence],
    priors: &[(f64, f64)],
    effective: &[(f64, f64)],
    groups: &[(&Level, ChangeScope)],
    cfg: &ChangeConfig,
) -> Changes {
    let splits: Vec<Splits> = evidence
        .iter()
        .zip(priors)
        .map(|(e, &p)| pool_splits(e, p))
        .collect();
    let with_data: Vec<f64> = evidence
        .iter()
        .zip(&splits)
        .filter(|(e, _)| e.jobs > 0)
        .map(|(_, s)| s.lse)
        .collect();
    let rho = cfg
        .pool_prior
        .unwrap_or_else(|| fit_pool_prior(&with_data))
        .clamp(1e-9, 1.0 - 1e-9);
    let (ln_rho, ln_stay) = (rho.ln(), (1.0 - rho).ln());
    // The pools' own change probabilities.
    let q: Vec<f64> = splits
        .iter()
        .map(|s| {
            let z = ln_rho + s.lse - ln_stay;
            1.0 / (1.0 + (-z).exp())
        })
        .collect();
    // Old rates before each split, for the group tests and components.
    let r0 = |i: usize, j: usize| -> (f64, f64) {
        let (a, b) = priors[i];
        let s = &splits[i];
        let e = &evidence[i];
        let (n0, k0) = if j < s.count {
            (
                (e.jobs - s.n1[j]) as f64,
                e.spot.saturating_sub(s.k1[j]) as f64,
            )
        } else {
            (0.0, 0.0)
        };
        (a + k0, b + n0 - k0)
    };
    // Group posteriors.
    let tested: usize = if cfg.groups {
        groups.iter().map(|(l, _)| l.groups).sum()
    } else {
        0
    };
    let rho_g = if tested > 0 {
        (cfg.group_prior / tested as f64).clamp(1e-9, 0.5)
    } else {
        0.0
    };
    let mut posteriors: Vec<Vec<GroupPosterior>> = vec![];
    let mut group_alarms = 0;
    if tested > 0 {
        let lgc = ln_gamma(SHIFT_SHAPE);
        let c = SHIFT_SHAPE;
        // How much of each pool's recent deviation is still unexplained: not by its own change, nor
        // (after each level) by its group's. Levels come finest first, so a zone outage is not also
        // counted as a change of its region and of every family with a pool in the zone.
        let mut unexplained: Vec<f64> = q.iter().map(|q| 1.0 - q).collect();
        for (level, _) in groups {
            let mut o = vec![[0.0f64; S]; level.groups];
            let mut ex = vec![[0.0f64; S]; level.groups];
            let mut hours = vec![0usize; level.groups];
            for (i, s) in splits.iter().enumerate() {
                if evidence[i].jobs == 0 {
                    continue;
                }
                let g = level.group_of[i] as usize;
                hours[g] = hours[g].max(s.hours);
                let weight = unexplained[i];
                for j in 0..s.count {
                    if s.n1[j] == 0 {
                        continue;
                    }
                    let (a0, b0) = r0(i, j);
                    o[g][j] += weight * s.k1[j] as f64;
                    ex[g][j] += weight * s.n1[j] as f64 * a0 / (a0 + b0);
                }
            }
            let mut level_post = Vec::with_capacity(level.groups);
            for g in 0..level.groups {
                let (width, count) = widths(hours[g]);
                let mut lw = [f64::NEG_INFINITY; S];
                let mut theta = [(c, c); S];
                for j in 0..count {
                    let (oo, ee) = (o[g][j], ex[g][j]);
                    theta[j] = (c + oo, c + ee);
                    if ee <= 0.0 {
                        continue;
                    }
                    let lbf = c * c.ln() + ln_gamma(c + oo) - lgc + ee - (c + oo) * (c + ee).ln();
                    lw[j] = rho_g.ln() + (width[j] / hours[g] as f64).ln() + lbf;
                }
                let stay = (1.0 - rho_g).ln();
                let z = log_sum_exp(lw[..count].iter().copied().chain(std::iter::once(stay)));
                let mut p = [0.0; S];
                let mut changed = 0.0;
                for j in 0..count {
                    p[j] = (lw[j] - z).exp();
                    changed += p[j];
                }
                group_alarms += usize::from(changed >= 0.5);
                level_post.push(GroupPosterior { p, changed, theta });
            }
            for (i, u) in unexplained.iter_mut().enumerate() {
                *u *= 1.0 - level_post[level.group_of[i] as usize].changed;
            }
            posteriors.push(level_post);
        }
    }
    // Each pool's mixture.
    let pools = splits
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (a, b) = priors[i];
            let e = &evidence[i];
            // Which groups changed, and how likely any of them.
            let mut stay_all = 1.0;
            let mut total_group = 0.0;
            for (l, (level, _)) in groups.iter().enumerate().take(posteriors.len()) {
                let gp = &posteriors[l][level.group_of[i] as usize];
                stay_all *= 1.0 - gp.changed;
                total_group += gp.changed;
            }
            let any_group = 1.0 - stay_all;
            let mut m1 = 0.0;
            let mut m2 = 0.0;
            let mut worse = 0.0;
            let mut best: Option<(f64, u32, ChangeScope)> = None;
            let mut consider = |w: f64, hours: u32, scope: ChangeScope| {
                if best.is_none_or(|(bw, _, _)| w > bw) {
                    best = Some((w, hours, scope));
                }
            };
            // The pool's own components, scaled by the probability that no group changed. A split
            // with no job before it is the same as no change (nothing to change from): its weight
            // goes to "no change".
            let own = 1.0 - any_group;
            let z = log_sum_exp([ln_stay, ln_rho + s.lse].into_iter());
            let mut weights = [0.0; S];
            let mut w0 = own * (ln_stay - z).exp();
            for (j, slot) in weights.iter_mut().enumerate().take(s.count) {
                let w = own * (ln_rho + s.lw[j] - z).exp();
                if s.n1[j] >= e.jobs && e.jobs > 0 {
                    w0 += w;
                } else {
                    *slot = w;
                }
            }
            let (n_eff, k_eff) = effective[i];
            let (m, v) = beta_moments(a + k_eff, b + (n_eff - k_eff).max(0.0));
            m1 += w0 * m;
            m2 += w0 * (v + m * m);
            for (j, &w) in weights.iter().enumerate().take(s.count) {
                if w < NEGLIGIBLE {
                    continue;
                }
                let (n1, k1) = (s.n1[j] as f64, s.k1[j] as f64);
                let (m, v) = beta_moments(a + k1, b + n1 - k1);
                m1 += w * m;
                m2 += w * (v + m * m);
                let (a0, b0) = r0(i, j);
                let (mo, vo) = beta_moments(a0, b0);
                worse += w * normal_cdf((m - mo) / (v + vo).sqrt().max(1e-12));
                consider(w, SPLITS[j], ChangeScope::Pool);
            }
            // The groups' components.
            if any_group > 0.0 && total_group > 0.0 {
                for (l, (level, scope)) in groups.iter().enumerate().take(posteriors.len()) {
                    let gp = &posteriors[l][level.group_of[i] as usize];
                    if gp.changed < NEGLIGIBLE {
                        continue;
                    }
                    let share = any_group * gp.changed / total_group;
                    for (j, &split) in SPLITS.iter().enumerate() {
                        let w = share * gp.p[j] / gp.changed;
                        if w < NEGLIGIBLE {
                            continue;
                        }
                        let (ts, tr) = gp.theta[j];
                        let theta = ts / tr;
                        let (a0, b0) = r0(i, j);
                        let (mo, vo) = beta_moments(a0, b0);
                        let mean = (theta * mo).clamp(1e-7, 0.95);
                        let cv2 = 1.0 / ts + vo / (mo * mo);
                        let strength = ((1.0 - mean) / (cv2 * mean) - 1.0).max(0.5);
                        let (n1, k1) = if j < s.count {
                            (s.n1[j] as f64, s.k1[j] as f64)
                        } else {
                            (e.jobs as f64, e.spot as f64)
                        };
                        let (m, v) = beta_moments(
                            strength * mean + k1,
                            strength * (1.0 - mean) + (n1 - k1).max(0.0),
                        );
                        m1 += w * m;
                        m2 += w * (v + m * m);
                        worse += w * gamma_above_one(ts, tr);
                        consider(w, split, *scope);
                    }
                }
            }
            let var = (m2 - m1 * m1).max(0.0);
            let (alpha, beta) = if var > 0.0 && m1 > 0.0 && m1 < 1.0 {
                let strength = (m1 * (1.0 - m1) / var - 1.0).max(1e-3);
                (m1 * strength, (1.0 - m1) * strength)
            } else {
                (a + k_eff, b + (n_eff - k_eff).max(0.0))
            };
            Current {
                alpha,
                beta,
                change_probability: (1.0 - w0).clamp(0.0, 1.0),
                most_probable: best.map(|(_, h, sc)| (h, sc)),
                worse_probability: worse.clamp(0.0, 1.0),
            }
        })
        .collect();
    Changes {
        pools,
        pool_prior: rho,
        group_alarms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Hour;
    use crate::hierarchy::{LevelKind, Structure};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// `hours` hours of `per_hour` jobs at `old`, the last `changed` of them at `new`.
    fn pool(
        id: &str,
        old: f64,
        new: f64,
        changed: usize,
        per_hour: u32,
        hours: usize,
        seed: u64,
    ) -> Evidence {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut series = vec![];
        let (mut jobs, mut spot) = (0u64, 0u64);
        for h in 0..hours {
            let rate = if h + changed >= hours { new } else { old };
            let mut cell = Hour::default();
            for _ in 0..per_hour {
                cell.jobs += 1;
                cell.spot += u32::from(rng.random_bool(rate));
            }
            jobs += u64::from(cell.jobs);
            spot += u64::from(cell.spot);
            series.push(cell);
        }
        Evidence::new(id.parse().unwrap(), jobs, spot, &series)
    }

    fn effective(ev: &[Evidence]) -> Vec<(f64, f64)> {
        ev.iter().map(|e| (e.jobs as f64, e.spot as f64)).collect()
    }

    fn alone(e: &Evidence, prior: (f64, f64), rho: Option<f64>) -> Current {
        let cfg = ChangeConfig {
            pool_prior: rho,
            ..ChangeConfig::default()
        };
        fit(
            std::slice::from_ref(e),
            &[prior],
            &effective(std::slice::from_ref(e)),
            &[],
            &cfg,
        )
        .pools[0]
    }

    #[test]
    fn a_pool_that_turned_bad_is_judged_by_its_last_hours() {
        // 5 % for a week, 30 % for the last 5 hours, 20 jobs an hour; the prior says 5 % ± a lot.
        let e = pool("pool-c6a.large-us-east-1a", 0.05, 0.30, 5, 20, 168, 1);
        let c = alone(&e, (1.0, 19.0), Some(0.2));
        assert!(c.change_probability > 0.99, "{c:?}");
        let (hours, scope) = c.most_probable.unwrap();
        assert!((4..=6).contains(&hours), "{c:?}");
        assert_eq!(scope, ChangeScope::Pool);
        assert!(c.alpha / (c.alpha + c.beta) > 0.2, "{c:?}");
        assert!(c.worse_probability > 0.99, "{c:?}");
    }

    #[test]
    fn changes_older_than_three_days_are_found() {
        // 3 % for 22 days, then 12 % for the last 8 days (192 hours), 10 jobs an hour.
        let e = pool("pool-c6a.large-us-east-1a", 0.03, 0.12, 192, 10, 720, 2);
        let c = alone(&e, (1.0, 24.0), Some(0.1));
        assert!(c.change_probability > 0.99, "{c:?}");
        let (hours, _) = c.most_probable.unwrap();
        assert!((128..=256).contains(&hours), "{c:?}");
        let mean = c.alpha / (c.alpha + c.beta);
        assert!((mean - 0.12).abs() < 0.02, "{mean}");
    }

    #[test]
    fn stationary_pools_rarely_look_changed_or_degraded() {
        // 600 stable pools at 5 % with 10 jobs an hour for a week, fitted together (ρ fitted).
        let ev: Vec<Evidence> = (0..600)
            .map(|i| pool("pool-c6a.large-us-east-1a", 0.05, 0.05, 0, 10, 168, 100 + i))
            .collect();
        let priors = vec![(5.0, 95.0); ev.len()];
        let c = fit(&ev, &priors, &effective(&ev), &[], &ChangeConfig::default());
        let changed = c
            .pools
            .iter()
            .filter(|p| p.change_probability >= 0.5)
            .count();
        let degraded = c
            .pools
            .iter()
            .filter(|p| p.worse_probability > 0.99)
            .count();
        assert!(changed <= 6, "{changed} of 600 look changed");
        assert!(degraded <= 6, "{degraded} of 600 look degraded");
        assert!(c.pool_prior < 0.05, "fitted ρ {}", c.pool_prior);
        // Their posteriors are their whole history's.
        for (e, p) in ev.iter().zip(&c.pools).take(20) {
            let full = (5.0 + e.spot as f64) / (100.0 + e.jobs as f64);
            let mean = p.alpha / (p.alpha + p.beta);
            assert!((mean - full).abs() < 0.1 * full, "{mean} vs {full}");
        }
    }

    #[test]
    fn the_change_prior_is_fitted_to_how_often_pools_change() {
        let make = |share: f64| -> f64 {
            let ev: Vec<Evidence> = (0..200)
                .map(|i| {
                    let changed = (i as f64) < share * 200.0;
                    let new = if changed { 0.25 } else { 0.05 };
                    pool("pool-c6a.large-us-east-1a", 0.05, new, 24, 10, 168, 500 + i)
                })
                .collect();
            let priors = vec![(5.0, 95.0); ev.len()];
            fit(&ev, &priors, &effective(&ev), &[], &ChangeConfig::default()).pool_prior
        };
        let (none, some) = (make(0.0), make(0.3));
        assert!(some > 0.2 && some < 0.45, "{some}");
        assert!(none < 0.05, "{none}");
    }

    #[test]
    fn a_zone_that_turns_bad_moves_its_thin_pools() {
        // Eight thin pools per zone (2 jobs an hour). Zone a goes from 4 % to 30 % 8 hours ago: too
        // few jobs for most pools to show it on their own, plain for the zone. Zone b stays.
        let types = ["c6a", "m6a", "r6a", "c6i", "m6i", "r6i", "c7g", "m7g"];
        let mut ev = vec![];
        for (i, f) in types.iter().enumerate() {
            ev.push(pool(
                &format!("pool-{f}.large-us-east-1a"),
                0.04,
                0.30,
                8,
                2,
                168,
                i as u64,
            ));
            ev.push(pool(
                &format!("pool-{f}.large-us-east-1b"),
                0.04,
                0.04,
                0,
                2,
                168,
                100 + i as u64,
            ));
        }
        let s = Structure::new(
            &ev,
            &[LevelKind::Zone, LevelKind::Region, LevelKind::Family],
            None,
            None,
        );
        let groups: Vec<(&Level, ChangeScope)> = vec![
            (s.level(LevelKind::Zone).unwrap(), ChangeScope::Zone),
            (s.level(LevelKind::Family).unwrap(), ChangeScope::Family),
            (s.level(LevelKind::Region).unwrap(), ChangeScope::Region),
        ];
        let priors = vec![(2.0, 48.0); ev.len()];
        let c = fit(
            &ev,
            &priors,
            &effective(&ev),
            &groups,
            &ChangeConfig::default(),
        );
        let mut by_zone = 0;
        for (e, p) in ev.iter().zip(&c.pools) {
            let in_a = e.pool.availability_zone().as_str() == "us-east-1a";
            let mean = p.alpha / (p.alpha + p.beta);
            if in_a {
                assert!(p.change_probability > 0.9, "{} {p:?}", e.pool);
                assert!(mean > 0.12, "{} {mean}", e.pool);
                by_zone +=
                    usize::from(p.most_probable.is_some_and(|(_, s)| s == ChangeScope::Zone));
            } else {
                assert!(p.change_probability < 0.2, "{} {p:?}", e.pool);
                assert!(mean < 0.07, "{} {mean}", e.pool);
            }
        }
        assert!(by_zone >= 4, "{by_zone} pools moved through their zone");
        // Without the group posteriors, the thin pools keep vouching with last week.
        let cfg = ChangeConfig {
            groups: false,
            ..ChangeConfig::default()
        };
        let alone = fit(&ev, &priors, &effective(&ev), &groups, &cfg);
        let moved = alone
            .pools
            .iter()
            .filter(|p| p.alpha / (p.alpha + p.beta) > 0.12)
            .count();
        assert!(moved < 8, "{moved}");
    }

    #[test]
    fn testing_many_groups_does_not_multiply_false_alarms() {
        // 27 groups of stable thin pools: the fleet-wide prior of a group change (20 %, split over the
        // groups) keeps alarms rare over 40 such fleets.
        let families = [
            "c6a", "m6a", "r6a", "c6i", "m6i", "r6i", "c7g", "m7g", "r7g",
        ];
        let zones = [
            "us-east-1a",
            "us-east-1b",
            "us-west-2a",
            "us-west-2b",
            "eu-west-1a",
            "eu-west-1b",
        ];
        let mut alarms = 0;
        for seed in 0..40u64 {
            let mut ev = vec![];
            for (i, f) in families.iter().enumerate() {
                for (j, z) in zones.iter().enumerate() {
                    let s = seed * 1000 + (i * 10 + j) as u64;
                    ev.push(pool(
                        &format!("pool-{f}.large-{z}"),
                        0.04,
                        0.04,
                        0,
                        2,
                        168,
                        s,
                    ));
                }
            }
            let s = Structure::new(
                &ev,
                &[LevelKind::Zone, LevelKind::Region, LevelKind::Family],
                None,
                None,
            );
            let groups: Vec<(&Level, ChangeScope)> = vec![
                (s.level(LevelKind::Zone).unwrap(), ChangeScope::Zone),
                (s.level(LevelKind::Family).unwrap(), ChangeScope::Family),
                (s.level(LevelKind::Region).unwrap(), ChangeScope::Region),
            ];
            let priors = vec![(2.0, 48.0); ev.len()];
            alarms += fit(
                &ev,
                &priors,
                &effective(&ev),
                &groups,
                &ChangeConfig::default(),
            )
            .group_alarms;
        }
        assert!(alarms <= 4, "{alarms} group alarms in 40 stable fleets");
    }

    #[test]
    fn a_pool_whose_data_grow_old_widens_toward_its_prior() {
        // The same 10 days of clean 2 % history, ending now or ending 200 hours ago.
        let fresh = pool("pool-c6a.large-us-east-1a", 0.02, 0.02, 0, 10, 240, 7);
        let mut series = fresh.recent.clone();
        series.extend(std::iter::repeat_n(Hour::default(), 200));
        let old = Evidence::new(fresh.pool.clone(), fresh.jobs, fresh.spot, &series);
        let prior = (0.8, 9.2); // 8 %, weak
        let a = alone(&fresh, prior, Some(0.2));
        let b = alone(&old, prior, Some(0.2));
        let var = |c: &Current| {
            let m = c.alpha / (c.alpha + c.beta);
            m * (1.0 - m) / (c.alpha + c.beta + 1.0)
        };
        let mean = |c: &Current| c.alpha / (c.alpha + c.beta);
        assert!(var(&b) > 3.0 * var(&a), "{a:?} {b:?}");
        assert!(mean(&b) > mean(&a), "{a:?} {b:?}");
        // The hours without jobs carry no evidence either way: only the prior's weight for a change.
        assert!(b.change_probability > a.change_probability);
        assert!(b.worse_probability < 0.5);
    }

    #[test]
    fn split_widths_cover_the_series() {
        for h in [2usize, 5, 72, 168, 336, 720, 1000] {
            let (w, count) = widths(h);
            let total: f64 = w[..count].iter().sum();
            assert!((total - h as f64).abs() < 1e-9, "{h}: {total}");
            assert!(SPLITS[..count].iter().all(|&s| (s as usize) < h));
        }
        assert_eq!(widths(1).1, 0);
    }
}
