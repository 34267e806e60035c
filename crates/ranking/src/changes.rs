//! Change points as a posterior: how likely each pool (and each zone, region and family) changed, when,
//! and what its rate is now, with no hard switch.
//!
//! # A pool on its own
//!
//! The model is Bayesian online change-point detection (Adams & MacKay, 2007) reduced to what a
//! ranking needs: the posterior of the time of the *most recent* change, under a constant hazard.
//! With `h` hours in the pool's hourly series, a change happened within them with prior probability
//! `ρ`, at any hour equally likely (`ρ/h` each, a geometric hazard with `ρ` small). Before it the rate
//! is the pool's draw from its shared prior `Beta(a, b)` ([`crate::hierarchy`]); after it, a fresh
//! draw from the *reset distribution* `Beta(a_r, b_r)` (below). The split times are evaluated at
//! [`SPLITS`], log-spaced from 1 hour to 30 days; each stands for the hours between its neighbours'
//! midpoints (`width_j`). With `(n₁, k₁)` the jobs and terminations of the last `s_j` hours and
//! `(n₀, k₀)` the rest of the window, the marginal likelihood of a run of jobs under a Beta prior is
//! `L(k, n) = ln B(a + k, b + n − k) − ln B(a, b)` (`L_r` under the reset), and
//!
//! ```text
//! ln BF_j = L_r(k₁, n₁) + L(k₀, n₀) − L(k, n),
//! P(change at s_j | data) ∝ ρ · width_j/h · BF_j,   P(no change | data) ∝ 1 − ρ.
//! ```
//!
//! Each `L` is three rising factorials ([`crate::special::ln_rising`]): a product for the few jobs of
//! a few hours, Stirling's series otherwise. `ρ` is fitted to the fleet: the share of pools whose
//! prior-averaged Bayes factor `B̄_i = Σ_j width_j/h · BF_j` shows a change beyond doubt (≥ 19),
//! shrunk as `(count + 1)/(N + 20)` (see `fit_pool_prior` for why not the marginal likelihood): a
//! fleet whose pools keep changing gets a quick trigger, a stable one a reluctant one, and no
//! `CHANGE_ALPHA` has to be guessed.
//!
//! # The reset distribution
//!
//! The shared prior says how far a pool strays from its groups *in a steady fleet*, and it can be
//! strong: hundreds of pseudo-jobs when the fleet's pools agree with their groups, more when a handful
//! of pools agree by chance. A change is precisely a departure from that. Were the shared prior the
//! reset, a pool that jumps from 2 % to 30 % in a fleet whose pools all sit near 2.7 % would have its
//! new rate held near 2.7 %: the new regime's jobs would be almost as unlikely under "change" as under
//! "no change" (the evidence for the change diluted), and the rate after the change pulled back to the
//! fleet's. So the reset keeps the shared prior's mean (where a pool's rate lands is still best guessed
//! by its groups) with its strength capped at [`ChangeConfig::reset_strength`] (default
//! [`RESET_STRENGTH`] = 20 pseudo-jobs): `(a_r, b_r) = (a, b) · min(1, 20/(a + b))`. At 3 % that reset
//! has a standard deviation of 3.7 points and puts 6 % of its mass above 10 % and 0.5 % above 20 %
//! (the shared prior of 2,000 pseudo-jobs it replaces put none above 4.5 %); 20 jobs of the new regime weigh as much as it, so a pool that turned bad is judged by its last hours
//! after a few hours of traffic. The wider reset also costs a small shift its Occam factor: a change to
//! a rate close to the old one is not worth calling a change. A weak shared prior (fewer than 20
//! pseudo-jobs) is its own reset.
//!
//! # Zones, regions, families
//!
//! A zone outage shows in every pool of the zone, most of them too thin to see it alone. For each
//! group `G` and split `s_j`, the terminations of its pools' last `s_j` hours are compared with what
//! each pool's own past predicts: `O = Σ u_i κ_ij k₁ᵢ`, `E = Σ u_i κ_ij n₁ᵢ r₀ᵢ`, where
//! `r₀ᵢ = (a_i + k₀ᵢ)/(a_i + b_i + n₀ᵢ)` is the pool's rate before the split, `u_i` starts at `1 − q_i`
//! with `q_i` the probability that the pool changed on its own (so one pool that changed does not make
//! its zone look changed), and `κ_ij = n₀ᵢ/(n₀ᵢ + a_i + b_i)` is the share of `r₀ᵢ` that is the pool's
//! own past rather than its prior: a pool with no job before the split has no past to have changed
//! from, and a pool that is merely unlike its prior is not a change (without `κ`, a fleet whose
//! history is all recent had its zones "change" whenever their pools differed from their priors).
//! Under "the group's rates were multiplied by θ at `s_j`", `O ~ Poisson(θE)` with `θ ~ Gamma(c, c)`,
//! `c = 1`; under "no change", `O ~ Poisson(E)`:
//!
//! ```text
//! ln BF = c ln c + ln Γ(c + O) − ln Γ(c) + E − (c + O) ln(c + E),   θ | O ~ Gamma(c + O, c + E).
//! ```
//!
//! Levels are taken finest first (zones, families, regions), each pool's `u_i` then multiplied by
//! `1 − P(its group changed)`, so a zone outage is not also a change of its region and of every family
//! with a pool in the zone. A group with fewer than two pools with jobs is not tested at all: its
//! change would be its one pool's, which the pool's own posterior already weighs, and naming it a zone
//! change would assume more than the data show.
//!
//! Multiplicity is handled by the prior, not by thresholds: the probability that *some* group of the
//! fleet changed within the series is [`ChangeConfig::group_prior`], split evenly over the groups
//! tested, so testing 27 groups does not make 27 times the false alarms.
//!
//! # The pool's current rate
//!
//! A mixture over every hypothesis about the pool, each weighed by its prior and by the pool's own
//! data. The pool's own: "no change" (`Beta(a + k, b + n − k)`, the whole window) and each split
//! (`Beta(a_r + k₁, b_r + n₁ − k₁)`), with prior mass `1 − π · P(some group of the pool changed)`
//! shared as above. Each group change at `s_j`: prior mass `π` (a pool follows its group's change
//! with probability `π` = 0.9: an outage rarely spares a pool of its zone, but can) times its
//! posterior probability (mostly the other pools' evidence), times the pool's own Bayes factor for it, `P(k₁ | n₁, new rate) / P(k₁ | n₁, r₀)` (both
//! beta-binomial; the new rate has mean `θ̂ r₀ᵢ` and the spread of `θ` and of `r₀ᵢ`), and then updated
//! with the pool's last `s_j` hours. A thin pool keeps its group's weight; a thick pool that did not
//! move with its group, or moved much further on its own, is not dragged along. (A limit: `θ` is one
//! factor per group, estimated before it is known which pools followed it, so a zone whose busiest pool
//! did not change moves its thin pools less than they really moved.) The mixture is matched to the
//! Beta with its mean and variance. A pool whose data grow old widens by itself: the
//! hours since its last job carry prior weight `ρ/h` each for a change whose new rate only the reset
//! knows.

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
/// A pool's own split components below this posterior weight are left out of its mixture: together
/// (at most 19 of them) they could move its mean by a few 10⁻⁴ of the distance to their own means,
/// and its probability of being worse by at most 2·10⁻⁴.
const NEGLIGIBLE: f64 = 1e-5;
/// A group whose change is less likely than this, or than twice its prior, is left out of its pools'
/// mixtures (its mass goes to their own hypotheses). Each of its components costs a beta-binomial
/// per pool; at this weight it moves no pool's mean by more than a hundredth of the distance to its
/// group's, and a posterior within twice its prior is a group whose data barely speak (Bayes factor
/// below 2), whose shift `θ̂` is then close to 1 anyway.
const GROUP_NEGLIGIBLE: f64 = 1e-2;
/// Prior probability that a pool follows its group's change (otherwise its own hypotheses hold).
const FOLLOW: f64 = 0.9;
/// A group component (one split of a changed group) below this prior weight is skipped.
const COMPONENT_NEGLIGIBLE: f64 = 1e-6;
/// Default strength cap of the reset distribution, pseudo-jobs ([`ChangeConfig::reset_strength`]).
pub const RESET_STRENGTH: f64 = 20.0;

/// The reset distribution of a pool whose shared prior is `Beta(a, b)`: the same mean, at most
/// `cap` pseudo-jobs.
pub fn reset_of((a, b): (f64, f64), cap: f64) -> (f64, f64) {
    let strength = a + b;
    if strength <= cap {
        (a, b)
    } else {
        (a * cap / strength, b * cap / strength)
    }
}

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
    /// Strongest reset distribution, pseudo-jobs: a pool's new rate after a change is drawn from its
    /// shared prior's mean with at most this strength (see the module's "The reset distribution").
    pub reset_strength: f64,
}

impl Default for ChangeConfig {
    fn default() -> Self {
        Self {
            pool_prior: None,
            groups: true,
            group_prior: 0.2,
            reset_strength: RESET_STRENGTH,
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
    /// `ln P(k₁ | n₁, the jobs before s_j)` under no change (the shared prior), `L(k, n) − L(k₀, n₀)`.
    pred: [f64; S],
    /// `L(k, n)`: the predictive of a split that holds every job.
    all: f64,
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

/// `L(k, n) = ln B(a + k, b + n − k) − ln B(a, b)`, exactly: three rising factorials.
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

fn pool_splits(e: &Evidence, prior: (f64, f64), reset: (f64, f64)) -> Splits {
    let h = e.recent.len();
    let (width, count) = widths(h);
    let mut out = Splits {
        count,
        hours: h,
        n1: [0; S],
        k1: [0; S],
        lw: [f64::NEG_INFINITY; S],
        lse: f64::NEG_INFINITY,
        pred: [0.0; S],
        all: 0.0,
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
    let fresh = Marginal::new(reset.0, reset.1);
    let all = m.ln(k, n);
    out.all = all;
    let mut previous: Option<(u64, u64, f64, f64)> = None;
    for (j, &w) in width.iter().enumerate().take(count) {
        let (n1, k1) = (out.n1[j], out.k1[j]);
        let (lbf, pred) = match previous {
            Some((pn, pk, lbf, pred)) if pn == n1 && pk == k1 => (lbf, pred),
            _ if n1 == 0 => (0.0, 0.0),
            _ if n1 >= n => (0.0, all),
            _ => {
                let old = m.ln(k.saturating_sub(k1), n - n1);
                (fresh.ln(k1, n1) + old - all, all - old)
            }
        };
        previous = Some((n1, k1, lbf, pred));
        out.lw[j] = (w / h as f64).ln() + lbf;
        out.pred[j] = pred;
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

impl GroupPosterior {
    /// A group that is not tested: no change, θ at its prior.
    fn untested() -> Self {
        Self {
            p: [0.0; S],
            changed: 0.0,
            theta: [(SHIFT_SHAPE, SHIFT_SHAPE); S],
        }
    }
}

/// The change-point posterior of every pool. `priors[i]` is pool `i`'s shared prior `(a, b)` (its
/// reset distribution is [`reset_of`] it); `groups` the groupings whose changes are looked for, with
/// their scope, finest first; `effective[i]` the `(n, k)` of the whole window as the no-change
/// component uses them (recency weighted when asked).
pub fn fit(
    evidence: &[Evidence],
    priors: &[(f64, f64)],
    effective: &[(f64, f64)],
    groups: &[(&Level, ChangeScope)],
    cfg: &ChangeConfig,
) -> Changes {
    let own = OwnFits::new(evidence, priors, cfg);
    let testable = testable_groups(groups, evidence);
    let rho_g = group_prior(cfg, &testable);
    let (posteriors, group_alarms) = match rho_g {
        Some(rho_g) => group_posteriors(&own, groups, &testable, rho_g),
        None => (vec![], 0),
    };
    // Each pool's mixture.
    let group_floor = GROUP_NEGLIGIBLE.max(2.0 * rho_g.unwrap_or(0.0));
    let pools = (0..own.splits.len())
        .map(|i| {
            let (any_group, components) =
                group_components(&own, i, groups, &posteriors, group_floor);
            mix_pool(&own, i, effective[i], any_group, &components)
        })
        .collect();
    Changes {
        pools,
        pool_prior: own.rho,
        group_alarms,
    }
}

/// Every pool's own change-point posterior, and the fleet's `ρ`: what the group tests and the
/// mixtures both start from.
struct OwnFits<'a> {
    evidence: &'a [Evidence],
    priors: &'a [(f64, f64)],
    /// Each pool's reset distribution ([`reset_of`] its prior).
    resets: Vec<(f64, f64)>,
    splits: Vec<Splits>,
    /// The per-pool prior probability of a change within the series, and `ln ρ`, `ln(1 − ρ)`.
    rho: f64,
    ln_rho: f64,
    ln_stay: f64,
    /// Each pool's posterior probability that it changed on its own.
    q: Vec<f64>,
}

impl<'a> OwnFits<'a> {
    /// Each pool's splits under its prior and reset, then `ρ` (given, or fitted to the pools with
    /// jobs), then each pool's own change probability under it.
    fn new(evidence: &'a [Evidence], priors: &'a [(f64, f64)], cfg: &ChangeConfig) -> Self {
        let resets: Vec<(f64, f64)> = priors
            .iter()
            .map(|&p| reset_of(p, cfg.reset_strength))
            .collect();
        let splits: Vec<Splits> = evidence
            .iter()
            .zip(priors.iter().zip(&resets))
            .map(|(e, (&p, &r))| pool_splits(e, p, r))
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
        let q: Vec<f64> = splits
            .iter()
            .map(|s| {
                let z = ln_rho + s.lse - ln_stay;
                1.0 / (1.0 + (-z).exp())
            })
            .collect();
        Self {
            evidence,
            priors,
            resets,
            splits,
            rho,
            ln_rho,
            ln_stay,
            q,
        }
    }

    /// Pool `i`'s old rate before split `j`, `Beta(a + k₀, b + n₀ − k₀)` (its prior alone for a split
    /// past its series): what the group tests and the group components measure a change against.
    fn old_rate(&self, i: usize, j: usize) -> (f64, f64) {
        let (a, b) = self.priors[i];
        let s = &self.splits[i];
        let e = &self.evidence[i];
        let (n0, k0) = if j < s.count {
            (
                (e.jobs - s.n1[j]) as f64,
                e.spot.saturating_sub(s.k1[j]) as f64,
            )
        } else {
            (0.0, 0.0)
        };
        (a + k0, b + n0 - k0)
    }
}

/// For each level, which of its groups are tested. A group with fewer than two pools with jobs is
/// not: its change is its one pool's, which the pool's own posterior already weighs (testing it
/// again would only split the same evidence between two names, and spend prior mass on a hypothesis
/// that adds nothing).
fn testable_groups(groups: &[(&Level, ChangeScope)], evidence: &[Evidence]) -> Vec<Vec<bool>> {
    groups
        .iter()
        .map(|(level, _)| {
            let mut count = vec![0u8; level.groups];
            for (i, e) in evidence.iter().enumerate() {
                if e.jobs > 0 {
                    let c = &mut count[level.group_of[i] as usize];
                    *c = c.saturating_add(1);
                }
            }
            count.into_iter().map(|c| c >= 2).collect()
        })
        .collect()
}

/// Each tested group's prior probability of a change: [`ChangeConfig::group_prior`] split evenly
/// over the groups tested (multiplicity handled by the prior). `None`: no group is tested.
fn group_prior(cfg: &ChangeConfig, testable: &[Vec<bool>]) -> Option<f64> {
    let tested: usize = if cfg.groups {
        testable
            .iter()
            .map(|t| t.iter().filter(|&&x| x).count())
            .sum()
    } else {
        0
    };
    (tested > 0).then(|| (cfg.group_prior / tested as f64).clamp(1e-9, 0.5))
}

/// Each pool's observed and expected terminations after each split, the same at every level. The
/// pool's own past is what a change is measured against: its share of the old rate,
/// `n₀/(n₀ + a + b)`, weighs its contribution. A pool with no job before the split has no past (its
/// old rate would be its prior, and a pool merely unlike its prior is not a change).
fn split_contributions(own: &OwnFits) -> Vec<[(f64, f64); S]> {
    own.splits
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut out = [(0.0, 0.0); S];
            let strength = own.priors[i].0 + own.priors[i].1;
            for (j, slot) in out.iter_mut().enumerate().take(s.count) {
                if s.n1[j] == 0 {
                    continue;
                }
                let n0 = (own.evidence[i].jobs - s.n1[j]) as f64;
                let past = n0 / (n0 + strength);
                let (a0, b0) = own.old_rate(i, j);
                *slot = (
                    past * s.k1[j] as f64,
                    past * s.n1[j] as f64 * a0 / (a0 + b0),
                );
            }
            out
        })
        .collect()
}

/// One group's terminations after each split, observed (`O`) and expected from its pools' pasts
/// (`E`), and the longest series of its pools.
struct GroupSums {
    observed: [f64; S],
    expected: [f64; S],
    hours: usize,
}

/// Every level's group posteriors (levels in the order given, finest first), and how many groups
/// changed more likely than not. After each level, each pool's weight in the coarser levels' tests
/// drops by the probability that its group there changed, so a zone outage is not also counted as a
/// change of its region and of every family with a pool in the zone.
fn group_posteriors(
    own: &OwnFits,
    groups: &[(&Level, ChangeScope)],
    testable: &[Vec<bool>],
    rho_g: f64,
) -> (Vec<Vec<GroupPosterior>>, usize) {
    // How much of each pool's recent deviation is still unexplained: not by its own change, nor
    // (after each level) by its group's.
    let mut unexplained: Vec<f64> = own.q.iter().map(|q| 1.0 - q).collect();
    let contributions = split_contributions(own);
    let mut posteriors: Vec<Vec<GroupPosterior>> = vec![];
    let mut group_alarms = 0;
    for ((level, _), testable) in groups.iter().zip(testable) {
        let sums = group_sums(own, level, &contributions, &unexplained);
        let level_post: Vec<GroupPosterior> = sums
            .iter()
            .zip(testable)
            .map(|(sums, &testable)| {
                if testable {
                    group_posterior(sums, rho_g)
                } else {
                    GroupPosterior::untested()
                }
            })
            .collect();
        group_alarms += level_post.iter().filter(|p| p.changed >= 0.5).count();
        for (i, u) in unexplained.iter_mut().enumerate() {
            *u *= 1.0 - level_post[level.group_of[i] as usize].changed;
        }
        posteriors.push(level_post);
    }
    (posteriors, group_alarms)
}

/// Each group of `level`: its pools' contributions after each split, each pool weighed by how much
/// of its deviation is still `unexplained`. Pools with no job are left out.
fn group_sums(
    own: &OwnFits,
    level: &Level,
    contributions: &[[(f64, f64); S]],
    unexplained: &[f64],
) -> Vec<GroupSums> {
    let mut sums: Vec<GroupSums> = (0..level.groups)
        .map(|_| GroupSums {
            observed: [0.0; S],
            expected: [0.0; S],
            hours: 0,
        })
        .collect();
    for (i, s) in own.splits.iter().enumerate() {
        if own.evidence[i].jobs == 0 {
            continue;
        }
        let group = &mut sums[level.group_of[i] as usize];
        group.hours = group.hours.max(s.hours);
        let weight = unexplained[i];
        for (j, &(ko, eo)) in contributions[i].iter().enumerate().take(s.count) {
            group.observed[j] += weight * ko;
            group.expected[j] += weight * eo;
        }
    }
    sums
}

/// One tested group's posterior over its splits: `O ~ Poisson(θE)` with `θ ~ Gamma(c, c)` under a
/// change at `s_j` against `O ~ Poisson(E)` under none (the module doc's formula), each split with
/// prior `ρ_g · width_j/h`.
fn group_posterior(sums: &GroupSums, rho_g: f64) -> GroupPosterior {
    let c = SHIFT_SHAPE;
    let lgc = ln_gamma(SHIFT_SHAPE);
    let hours = sums.hours;
    let (width, count) = widths(hours);
    let mut lw = [f64::NEG_INFINITY; S];
    let mut theta = [(c, c); S];
    for j in 0..count {
        let (oo, ee) = (sums.observed[j], sums.expected[j]);
        theta[j] = (c + oo, c + ee);
        if ee <= 0.0 {
            continue;
        }
        let lbf = c * c.ln() + ln_gamma(c + oo) - lgc + ee - (c + oo) * (c + ee).ln();
        lw[j] = rho_g.ln() + (width[j] / hours as f64).ln() + lbf;
    }
    let stay = (1.0 - rho_g).ln();
    let z = log_sum_exp(lw[..count].iter().copied().chain(std::iter::once(stay)));
    let mut p = [0.0; S];
    let mut changed = 0.0;
    for j in 0..count {
        p[j] = (lw[j] - z).exp();
        changed += p[j];
    }
    GroupPosterior { p, changed, theta }
}

/// One split of a changed group, as a hypothesis about one pool: "this pool moved with its group at
/// `split`".
struct GroupComponent {
    ln_mass: f64,
    split: u32,
    scope: ChangeScope,
    theta: (f64, f64),
    /// The new rate before the pool's own last hours, and those hours.
    prior: (f64, f64),
    n1: f64,
    k1: f64,
}

/// Pool `i`'s group hypotheses: the probability that some group of it changed (groups below
/// `group_floor` left out), and one component per split of each changed group. Each group change's
/// posterior (mostly the other pools' data) is the prior of "this pool moved with its group at
/// s_j", and the pool's own last s_j hours then weigh it against its own hypotheses, by their
/// predictive given its past: `ln BF = ln P(k₁ | n₁, the group's new rate) − ln P(k₁ | n₁, its old
/// rate)`, both beta-binomial. A thin pool (n₁ small) keeps its group's weight; a thick one that
/// did not move with its group, or moved much more, is not dragged along.
fn group_components(
    own: &OwnFits,
    i: usize,
    groups: &[(&Level, ChangeScope)],
    posteriors: &[Vec<GroupPosterior>],
    group_floor: f64,
) -> (f64, Vec<GroupComponent>) {
    let s = &own.splits[i];
    let e = &own.evidence[i];
    // Which groups changed, and how likely any of them.
    let mut stay_all = 1.0;
    let mut total_group = 0.0;
    for (l, (level, _)) in groups.iter().enumerate().take(posteriors.len()) {
        let gp = &posteriors[l][level.group_of[i] as usize];
        if gp.changed < group_floor {
            continue;
        }
        stay_all *= 1.0 - gp.changed;
        total_group += gp.changed;
    }
    let any_group = 1.0 - stay_all;
    let mut components: Vec<GroupComponent> = vec![];
    if any_group > 0.0 && total_group > 0.0 {
        for (l, (level, scope)) in groups.iter().enumerate().take(posteriors.len()) {
            let gp = &posteriors[l][level.group_of[i] as usize];
            if gp.changed < group_floor {
                continue;
            }
            let share = any_group * gp.changed / total_group;
            for (j, &split) in SPLITS.iter().enumerate() {
                let w = share * gp.p[j] / gp.changed;
                if w < COMPONENT_NEGLIGIBLE {
                    continue;
                }
                let (ts, tr) = gp.theta[j];
                let theta = ts / tr;
                let (a0, b0) = own.old_rate(i, j);
                let (mo, vo) = beta_moments(a0, b0);
                let mean = (theta * mo).clamp(1e-7, 0.95);
                let cv2 = 1.0 / ts + vo / (mo * mo);
                let strength = ((1.0 - mean) / (cv2 * mean) - 1.0).max(0.5);
                let (n1, k1, pred) = if j < s.count {
                    (s.n1[j], s.k1[j], s.pred[j])
                } else {
                    (e.jobs, e.spot, s.all)
                };
                let prior = (strength * mean, strength * (1.0 - mean));
                let ln_bf = if n1 > 0 {
                    Marginal::new(prior.0, prior.1).ln(k1, n1) - pred
                } else {
                    0.0
                };
                components.push(GroupComponent {
                    ln_mass: (FOLLOW * w).ln() + ln_bf,
                    split,
                    scope: *scope,
                    theta: (ts, tr),
                    prior,
                    n1: n1 as f64,
                    k1: k1 as f64,
                });
            }
        }
    }
    (any_group, components)
}

/// Pool `i`'s current rate: every hypothesis (its own "no change" and splits, and its groups'
/// `components`) weighed by its posterior, the mixture matched to a Beta by mean and variance, with
/// the probability that the rate got worse and the most probable change.
fn mix_pool(
    own: &OwnFits,
    i: usize,
    (n_eff, k_eff): (f64, f64),
    any_group: f64,
    components: &[GroupComponent],
) -> Current {
    let (a, b) = own.priors[i];
    let s = &own.splits[i];
    let (w0, weights, total) = own_weights(own, i, any_group, components);
    let mut m1 = 0.0;
    let mut m2 = 0.0;
    let mut worse = 0.0;
    let mut best: Option<(f64, u32, ChangeScope)> = None;
    let mut consider = |w: f64, hours: u32, scope: ChangeScope| {
        if best.is_none_or(|(bw, _, _)| w > bw) {
            best = Some((w, hours, scope));
        }
    };
    let (m, v) = beta_moments(a + k_eff, b + (n_eff - k_eff).max(0.0));
    m1 += w0 * m;
    m2 += w0 * (v + m * m);
    for (j, &w) in weights.iter().enumerate().take(s.count) {
        if w < NEGLIGIBLE {
            continue;
        }
        let (n1, k1) = (s.n1[j] as f64, s.k1[j] as f64);
        let (ra, rb) = own.resets[i];
        let (m, v) = beta_moments(ra + k1, rb + n1 - k1);
        m1 += w * m;
        m2 += w * (v + m * m);
        let (a0, b0) = own.old_rate(i, j);
        let (mo, vo) = beta_moments(a0, b0);
        worse += w * normal_cdf((m - mo) / (v + vo).sqrt().max(1e-12));
        consider(w, SPLITS[j], ChangeScope::Pool);
    }
    for c in components {
        let w = (c.ln_mass - total).exp();
        if w < NEGLIGIBLE {
            continue;
        }
        let (m, v) = beta_moments(c.prior.0 + c.k1, c.prior.1 + (c.n1 - c.k1).max(0.0));
        m1 += w * m;
        m2 += w * (v + m * m);
        worse += w * gamma_above_one(c.theta.0, c.theta.1);
        consider(w, c.split, c.scope);
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
}

/// The posterior weights of pool `i`'s own hypotheses, with the probability that no group changed:
/// "no change" (likelihood ratio 1; `w0`) and each split (ρ · width_j/h · BF_j), and `total`, the
/// log total mass of own and group hypotheses that the group components' weights are taken against.
/// A split with no job before it is the same as no change (nothing to change from): its weight goes
/// to "no change".
fn own_weights(
    own: &OwnFits,
    i: usize,
    any_group: f64,
    components: &[GroupComponent],
) -> (f64, [f64; S], f64) {
    let s = &own.splits[i];
    let e = &own.evidence[i];
    let (ln_rho, ln_stay) = (own.ln_rho, own.ln_stay);
    let z = log_sum_exp([ln_stay, ln_rho + s.lse].into_iter());
    let ln_own = (1.0 - FOLLOW * any_group).max(0.0).ln() + z;
    let total = log_sum_exp(std::iter::once(ln_own).chain(components.iter().map(|c| c.ln_mass)));
    let own_mass = (ln_own - total).exp();
    let mut weights = [0.0; S];
    let mut w0 = own_mass * (ln_stay - z).exp();
    for (j, slot) in weights.iter_mut().enumerate().take(s.count) {
        let w = own_mass * (ln_rho + s.lw[j] - z).exp();
        if s.n1[j] >= e.jobs && e.jobs > 0 {
            w0 += w;
        } else {
            *slot = w;
        }
    }
    (w0, weights, total)
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

    /// Eight thin pools (2 jobs an hour) in each of zones a and b: zone a's go from 4 % to 30 % 8 hours
    /// ago, zone b's stay at 4 %. `seed` numbers zone a's pools' histories, `seed + 100` zone b's.
    fn zone_a_turns_bad(seed: u64) -> Vec<Evidence> {
        let types = ["c6a", "m6a", "r6a", "c6i", "m6i", "r6i", "c7g", "m7g"];
        let mut ev = vec![];
        for (i, f) in types.iter().enumerate() {
            let i = i as u64;
            ev.push(pool(
                &format!("pool-{f}.large-us-east-1a"),
                0.04,
                0.30,
                8,
                2,
                168,
                seed + i,
            ));
            ev.push(pool(
                &format!("pool-{f}.large-us-east-1b"),
                0.04,
                0.04,
                0,
                2,
                168,
                seed + 100 + i,
            ));
        }
        ev
    }

    #[test]
    fn a_zone_that_turns_bad_moves_its_thin_pools() {
        // Too few jobs for most pools to show it on their own, plain for the zone. Zone b stays.
        let ev = zone_a_turns_bad(0);
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
    fn a_strong_shared_prior_does_not_hide_a_change() {
        // A fleet whose pools agree on 2.7 % gives a shared prior of 2,000 pseudo-jobs. Two days at
        // 1.7 %, then 12 of 40 jobs lost in the last two hours: the reset (the prior's mean at 20
        // pseudo-jobs) lets the new regime speak.
        let mut series: Vec<Hour> = (2..50)
            .rev()
            .map(|h| Hour {
                jobs: 20,
                spot: u32::from(h % 3 == 0),
            })
            .collect();
        series.extend([Hour { jobs: 20, spot: 6 }, Hour { jobs: 20, spot: 6 }]);
        let (n, k) = series.iter().fold((0, 0), |(n, k), h| {
            (n + u64::from(h.jobs), k + u64::from(h.spot))
        });
        let e = Evidence::new("pool-c6a.large-us-east-1a".parse().unwrap(), n, k, &series);
        let prior = (0.027 * 2000.0, 0.973 * 2000.0);
        let c = alone(&e, prior, Some(0.05));
        assert!(c.change_probability > 0.99, "{c:?}");
        assert_eq!(c.most_probable, Some((2, ChangeScope::Pool)), "{c:?}");
        assert!(c.worse_probability > 0.99, "{c:?}");
        assert!(c.alpha / (c.alpha + c.beta) > 0.15, "{c:?}");
        // With the shared prior itself as the reset, the same jobs barely look like a change.
        let cfg = ChangeConfig {
            pool_prior: Some(0.05),
            reset_strength: f64::INFINITY,
            ..ChangeConfig::default()
        };
        let held = fit(
            std::slice::from_ref(&e),
            &[prior],
            &effective(std::slice::from_ref(&e)),
            &[],
            &cfg,
        )
        .pools[0];
        assert!(held.alpha / (held.alpha + held.beta) < 0.06, "{held:?}");
        assert_eq!(reset_of((1.0, 9.0), 20.0), (1.0, 9.0));
        let (a, b) = reset_of(prior, 20.0);
        assert!((a + b - 20.0).abs() < 1e-9 && (a / (a + b) - 0.027).abs() < 1e-12);
    }

    /// The zone, family and region levels of `ev`, finest first.
    fn group_levels(ev: &[Evidence]) -> Structure {
        Structure::new(
            ev,
            &[LevelKind::Zone, LevelKind::Family, LevelKind::Region],
            None,
            None,
        )
    }

    fn fit_with_groups(ev: &[Evidence], priors: &[(f64, f64)]) -> Changes {
        let s = group_levels(ev);
        let groups: Vec<(&Level, ChangeScope)> = vec![
            (s.level(LevelKind::Zone).unwrap(), ChangeScope::Zone),
            (s.level(LevelKind::Family).unwrap(), ChangeScope::Family),
            (s.level(LevelKind::Region).unwrap(), ChangeScope::Region),
        ];
        fit(
            ev,
            priors,
            &effective(ev),
            &groups,
            &ChangeConfig::default(),
        )
    }

    #[test]
    fn a_group_of_one_pool_is_not_tested_and_the_change_is_the_pool_s() {
        // Two pools, each alone in its zone and family; one turns bad 4 hours ago.
        let ev = vec![
            pool("pool-c6a.large-us-east-1a", 0.02, 0.30, 4, 20, 168, 11),
            pool("pool-m6a.large-us-east-1b", 0.02, 0.02, 0, 20, 168, 12),
        ];
        let c = fit_with_groups(&ev, &[(2.0, 98.0), (2.0, 98.0)]);
        let (_, scope) = c.pools[0].most_probable.unwrap();
        assert_eq!(scope, ChangeScope::Pool, "{:?}", c.pools[0]);
        assert!(c.pools[0].change_probability > 0.99);
        // Only the region (two pools) was tested, and it did not change.
        assert_eq!(c.group_alarms, 0);
        assert!(c.pools[1].change_probability < 0.5, "{:?}", c.pools[1]);
    }

    #[test]
    fn a_pool_unlike_its_prior_with_no_past_is_not_a_group_change() {
        // Every job in the last hour (a new fleet): zone a's pools lose 1 %, well below their prior of
        // 5 %, zone b's 5 %. Nothing changed; there is no past to have changed from.
        let mut ev = vec![];
        for f in ["c6a", "m6a", "r6a", "c6i"] {
            for (zone, spot) in [("us-east-1a", 5u32), ("us-east-1b", 25)] {
                let mut series = vec![Hour::default(); 167];
                series.push(Hour { jobs: 500, spot });
                ev.push(Evidence::new(
                    format!("pool-{f}.large-{zone}").parse().unwrap(),
                    500,
                    u64::from(spot),
                    &series,
                ));
            }
        }
        let c = fit_with_groups(&ev, &vec![(5.0, 95.0); ev.len()]);
        assert_eq!(c.group_alarms, 0);
        for p in &c.pools {
            assert!(p.change_probability < 0.5, "{p:?}");
        }
    }

    #[test]
    fn a_thick_pool_that_did_not_move_with_its_zone_is_not_dragged_along() {
        // Zone a's eight thin pools go from 4 % to 30 % 8 hours ago; its ninth pool, with 60 jobs an
        // hour, stays at 4 %. Zone b stays.
        let mut ev = zone_a_turns_bad(200);
        ev.push(pool(
            "pool-r7g.large-us-east-1a",
            0.04,
            0.04,
            0,
            60,
            168,
            400,
        ));
        let c = fit_with_groups(&ev, &vec![(2.0, 48.0); ev.len()]);
        let thick = c.pools.last().unwrap();
        let mean = thick.alpha / (thick.alpha + thick.beta);
        assert!(mean < 0.06, "{thick:?}");
        assert!(thick.worse_probability < 0.5, "{thick:?}");
        // The thin pools of the zone did move, if much less than to their true 30 %: the zone's shift
        // is one factor, and the thick pool's jobs weigh most in it (a limit of the group model: one
        // θ per group, estimated before knowing which pools followed it).
        for (e, p) in ev.iter().zip(&c.pools).take(16) {
            if e.pool.availability_zone().as_str() == "us-east-1a" {
                assert!(p.alpha / (p.alpha + p.beta) > 0.06, "{} {p:?}", e.pool);
                assert!(p.change_probability > 0.9, "{} {p:?}", e.pool);
            }
        }
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
