//! The shared prior: an estimated hierarchy of crossed random effects on the logit of every pool's
//! termination probability.
//!
//! # The model
//!
//! For pool `i` with `k_i` of `n_i` jobs lost,
//!
//! ```text
//! k_i ~ Binomial(n_i, p_i),   logit p_i = μ + Σ_ℓ u_ℓ[g_ℓ(i)] + ε_i,
//! u_ℓ[g] ~ N(0, σ²_ℓ),        ε_i ~ N(0, σ²_pool),
//! ```
//!
//! where each level `ℓ` groups the pools one way ([`LevelKind`]: region, zone, instance family, size
//! across families, instance type, family × zone, and optionally the outside signals of
//! [`crate::signals`]) and `g_ℓ(i)` is pool `i`'s group in it. Every level carries its own variance
//! component `σ²_ℓ`, estimated from the fleet: a level whose groups do not really differ gets
//! `σ²_ℓ → 0` and drops out, and with every level gone the prior is one fleet rate with the pools'
//! spread `σ²_pool` around it (one-level empirical Bayes). The previous model multiplied a family rate
//! by a zone rate whatever the data said, which ranked thin pools by noise when there was no such
//! structure.
//!
//! # The fit (penalised quasi-likelihood with backfitting)
//!
//! 1. *Working data.* Each pool's binomial likelihood is linearised at its current posterior mode
//!    `θ*_i` (one Newton step per sweep on `k θ − n ln(1 + e^θ) − (θ − η_i)²/(2σ²_pool)`):
//!    `z_i = θ*_i + (k_i − n_i p*_i)/(n_i p*_i (1 − p*_i))` with variance `v_i = 1/(n_i p*_i(1 − p*_i))`,
//!    so `z_i ≈ η_i + ε_i + e_i`, `Var = σ²_pool + v_i`, weight `w_i = 1/(σ²_pool + v_i)`. A pool with
//!    0 of 3 jobs has `v ≈ 9` at 4 %: it barely moves its groups (the empirical logit would claim much more).
//! 2. *Backfitting.* Gauss–Seidel over the levels: with the partial residuals `r_i + u_ℓ[g(i)]`
//!    summed per group, `S_g = Σ w_i (r_i + u_g)`, `W_g = Σ w_i`, the group effect is the BLUP
//!    `u_g = S_g σ²_ℓ/(1 + σ²_ℓ W_g)`.
//! 3. *Variance components.* Given the other levels, `S_g ~ N(0, W_g + σ²_ℓ W_g²)`; two Fisher-scoring
//!    steps on that likelihood, `σ²_ℓ ← σ²_ℓ + Σ (S_g² − V_g)/(1 + σ²_ℓ W_g)² / Σ W_g²/(1 + σ²_ℓ W_g)²`,
//!    clamped at 0 (so a level with no effect reaches exactly 0, where EM would crawl).
//! 4. *The pools' own spread.* With one observation per pool (`S = r_i/v_i`, `W = 1/v_i`), `σ²_pool`
//!    is the posterior mode under a scaled inverse-χ² prior of [`POOL_PRIOR_WEIGHT`] = 4 pseudo-pools
//!    at a logit sd of [`POOL_PRIOR_SD`] = 0.5, by EM:
//!    `σ² ← (Σ_i E[ε_i²] + ν₀ s₀²)/(N + ν₀ + 2)`. Unlike a structural level, pools always differ a
//!    little, and this is the spread every prior's strength rests on: fitted without a prior, two or
//!    five pools that happen to agree give `σ_pool = 0`, and each one's prior then claims thousands of
//!    pseudo-jobs taken from a neighbour (a pool with 2 jobs was "known" to ±17 % from the one other
//!    pool of its zone). Four pseudo-pools barely move a fleet of hundreds (with 432 pools and no
//!    spread at all the estimate is about 0.05), and keep a fleet of a few pools from certainty.
//! 5. At most [`MAX_SWEEPS`] sweeps, fewer once the components settle. Each sweep is a few passes over
//!    the pools with no allocation: about 30 µs for 432 pools.
//!
//! # Leave one out, and the Beta
//!
//! A pool's prior must not contain its own jobs (the posterior adds them). Its groups' sums without
//! it give `u^{−i}_g = (S_g − w_i q_i) σ²_ℓ/(1 + σ²_ℓ (W_g − w_i))` with variance
//! `σ²_ℓ/(1 + σ²_ℓ (W_g − w_i))`, `q_i` its partial residual, and the intercept without it is
//! `μ^{−i} = μ − w_i r_i/(Σ w − w_i)` with variance `1/(Σ w − w_i)` (`r_i` its residual); the prior of
//! its logit is then `N(m_i, s²_i)`, `m_i = μ^{−i} + Σ_ℓ u^{−i}_ℓ`,
//! `s²_i = σ²_pool + Σ_ℓ Var u^{−i}_ℓ + 1/(Σ w − w_i)`. (In a fleet of two pools, each one's prior is
//! the other's rate.) That normal is
//! turned into the Beta with the same mean and variance of `p` (moments by the trapezoidal rule on the
//! normal, [`crate::special::logit_normal_moments`], accurate to 10⁻¹⁰ at any spread), so
//! the conjugate posterior `Beta(a + k, b + n − k)`, Thompson draws, intervals and the probability of
//! being best all work on it unchanged.

use crate::evidence::Evidence;
use crate::signals::Signals;
use crate::special::{expit, logit, logit_normal_moments};
use crate::zones::ZoneIds;

/// Most backfitting sweeps per fit.
pub const MAX_SWEEPS: usize = 40;
/// Weakest and strongest Beta prior allowed, in pseudo-jobs.
pub const MIN_PRIOR_STRENGTH: f64 = 0.5;
pub const MAX_PRIOR_STRENGTH: f64 = 1e5;
/// Largest variance component (logit scale): a level this spread is no longer a prior worth having.
const MAX_VARIANCE: f64 = 16.0;
/// Where the components start: moderate effects everywhere, so no level is ruled out before the data
/// speak.
const START_VARIANCE: f64 = 0.1;

/// One way of grouping pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LevelKind {
    /// The region (`us-east-1`).
    Region,
    /// The zone: its AZ ID when a map is given (`use1-az1`), else its name.
    Zone,
    /// The instance family (`c6a`).
    Family,
    /// The size across families (`xlarge`).
    Size,
    /// The instance type (`c6a.xlarge`), i.e. a size within its family.
    InstanceType,
    /// Family × zone: a family that is bad in one zone only.
    FamilyZone,
    /// AWS Spot Advisor's interruption band of the region and instance type.
    AdvisorBand,
    /// The Spot placement score of the zone (or region).
    PlacementScore,
}

impl LevelKind {
    /// The structural levels, in fitting order (coarse to fine).
    pub const STRUCTURAL: [LevelKind; 6] = [
        LevelKind::Region,
        LevelKind::Zone,
        LevelKind::Family,
        LevelKind::Size,
        LevelKind::InstanceType,
        LevelKind::FamilyZone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LevelKind::Region => "region",
            LevelKind::Zone => "zone",
            LevelKind::Family => "family",
            LevelKind::Size => "size",
            LevelKind::InstanceType => "instance_type",
            LevelKind::FamilyZone => "family_zone",
            LevelKind::AdvisorBand => "advisor_band",
            LevelKind::PlacementScore => "placement_score",
        }
    }
}

/// One level: every pool's group in it.
#[derive(Debug, Clone)]
pub struct Level {
    pub kind: LevelKind,
    /// `group_of[i]`: pool `i`'s group.
    pub group_of: Vec<u32>,
    pub groups: usize,
}

/// The pools' groups in every level, built once per set of pools (pure function of their ids, the
/// zone map and the signals).
#[derive(Debug, Clone)]
pub struct Structure {
    pub levels: Vec<Level>,
}

/// Names of the advisor bands and placement scores as group keys.
const NUMBERS: [&str; 11] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"];

/// Pool `e`'s key in a level, borrowed from its id (or the map and signals): two parts, the second
/// empty for one-part keys (`None`: the level does not apply, e.g. no signal for the pool).
fn key<'a>(
    kind: LevelKind,
    e: &'a Evidence,
    zones: Option<&'a ZoneIds>,
    signals: Option<&Signals>,
) -> Option<(&'a str, &'a str)> {
    let it = e.pool.instance_type();
    let az = e.pool.availability_zone();
    let zone = zones
        .and_then(|z| z.id_of(az.as_str()))
        .unwrap_or(az.as_str());
    let region = zones
        .and_then(|z| z.region_of(az.as_str()))
        .unwrap_or(az.region());
    Some(match kind {
        LevelKind::Region => (region, ""),
        LevelKind::Zone => (zone, ""),
        LevelKind::Family => (it.family(), ""),
        LevelKind::Size => (it.size(), ""),
        LevelKind::InstanceType => (it.as_str(), ""),
        LevelKind::FamilyZone => (it.family(), zone),
        LevelKind::AdvisorBand => {
            let band = signals?.advisor_band(region, it.as_str())?;
            (NUMBERS[usize::from(band.min(4))], "")
        }
        LevelKind::PlacementScore => {
            let id = zones.and_then(|z| z.id_of(az.as_str()));
            let score = signals?.placement_score(id, region)?;
            (NUMBERS[usize::from(score.min(10))], "")
        }
    })
}

/// Groups of a coarser level from the ids of a finer one: `coarse[id]` for each fine id, and the
/// number of coarse groups.
fn coarsen<'a>(keys: impl Iterator<Item = &'a str>) -> (Vec<u32>, usize) {
    let mut index: ahash::AHashMap<&str, u32> = ahash::AHashMap::new();
    let ids = keys
        .map(|k| {
            let next = index.len() as u32;
            *index.entry(k).or_insert(next)
        })
        .collect();
    (ids, index.len())
}

/// Every pool's zone and instance type, interned once: the structural levels follow from those ids
/// without hashing a string again (the fit's cost for 432 pools was a third string hashing).
struct PoolIds<'a> {
    zone_of: Vec<u32>,
    type_of: Vec<u32>,
    /// Per zone id: (zone, region).
    zone_keys: Vec<(&'a str, &'a str)>,
    /// Per type id: (family, size).
    type_keys: Vec<(&'a str, &'a str)>,
    family_of_type: Vec<u32>,
    families: usize,
}

impl<'a> PoolIds<'a> {
    fn new(
        evidence: &'a [Evidence],
        zones: Option<&'a ZoneIds>,
        signals: Option<&Signals>,
    ) -> Self {
        let mut zone_index: ahash::AHashMap<&str, u32> = ahash::AHashMap::new();
        let mut type_index: ahash::AHashMap<&str, u32> = ahash::AHashMap::new();
        let mut zone_keys: Vec<(&str, &str)> = vec![]; // (zone, region)
        let mut type_keys: Vec<(&str, &str)> = vec![]; // (family, size)
        let mut zone_of = Vec::with_capacity(evidence.len());
        let mut type_of = Vec::with_capacity(evidence.len());
        for e in evidence {
            let (Some((zone, _)), Some((region, _)), Some((ty, _))) = (
                key(LevelKind::Zone, e, zones, signals),
                key(LevelKind::Region, e, zones, signals),
                key(LevelKind::InstanceType, e, zones, signals),
            ) else {
                unreachable!("structural keys always exist");
            };
            let next = zone_keys.len() as u32;
            zone_of.push(*zone_index.entry(zone).or_insert_with(|| {
                zone_keys.push((zone, region));
                next
            }));
            let next = type_keys.len() as u32;
            type_of.push(*type_index.entry(ty).or_insert_with(|| {
                let it = e.pool.instance_type();
                type_keys.push((it.family(), it.size()));
                next
            }));
        }
        let (family_of_type, families) = coarsen(type_keys.iter().map(|k| k.0));
        Self {
            zone_of,
            type_of,
            zone_keys,
            type_keys,
            family_of_type,
            families,
        }
    }

    /// Each pool's group in the level `kind`, and the number of groups: structural levels from the
    /// interned ids, signal levels from each pool's key (`None`: no pool has one).
    fn groups(
        &self,
        kind: LevelKind,
        evidence: &[Evidence],
        zones: Option<&ZoneIds>,
        signals: Option<&Signals>,
    ) -> Option<(Vec<u32>, usize)> {
        let (zone_of, type_of) = (&self.zone_of, &self.type_of);
        Some(match kind {
            LevelKind::Zone => (zone_of.clone(), self.zone_keys.len()),
            LevelKind::InstanceType => (type_of.clone(), self.type_keys.len()),
            LevelKind::Region => {
                let (of_zone, n) = coarsen(self.zone_keys.iter().map(|k| k.1));
                (zone_of.iter().map(|&z| of_zone[z as usize]).collect(), n)
            }
            LevelKind::Family => (
                type_of
                    .iter()
                    .map(|&t| self.family_of_type[t as usize])
                    .collect(),
                self.families,
            ),
            LevelKind::Size => {
                let (of_type, n) = coarsen(self.type_keys.iter().map(|k| k.1));
                (type_of.iter().map(|&t| of_type[t as usize]).collect(), n)
            }
            LevelKind::FamilyZone => {
                let mut index: ahash::AHashMap<(u32, u32), u32> = ahash::AHashMap::new();
                let ids = type_of
                    .iter()
                    .zip(zone_of)
                    .map(|(&t, &z)| {
                        let next = index.len() as u32;
                        *index
                            .entry((self.family_of_type[t as usize], z))
                            .or_insert(next)
                    })
                    .collect();
                (ids, index.len())
            }
            LevelKind::AdvisorBand | LevelKind::PlacementScore => {
                let mut index: ahash::AHashMap<(&str, &str), u32> = ahash::AHashMap::new();
                let mut any = false;
                let ids = evidence
                    .iter()
                    .map(|e| {
                        let k = key(kind, e, zones, signals);
                        any |= k.is_some();
                        let k = k.unwrap_or(("unknown", "?"));
                        let next = index.len() as u32;
                        *index.entry(k).or_insert(next)
                    })
                    .collect();
                if !any {
                    return None;
                }
                (ids, index.len())
            }
        })
    }
}

impl Structure {
    /// The levels `kinds` for `evidence`'s pools. A level none of whose pools has a key (a signal with
    /// no data) is left out; pools without a key in a level share one "unknown" group. Groups are
    /// numbered in the order their first pool appears.
    pub fn new(
        evidence: &[Evidence],
        kinds: &[LevelKind],
        zones: Option<&ZoneIds>,
        signals: Option<&Signals>,
    ) -> Self {
        let ids = PoolIds::new(evidence, zones, signals);
        let mut levels = Vec::with_capacity(kinds.len());
        for &kind in kinds {
            let Some((group_of, groups)) = ids.groups(kind, evidence, zones, signals) else {
                continue;
            };
            levels.push(Level {
                kind,
                group_of,
                groups,
            });
        }
        Self { levels }
    }

    /// The groups of `kind`, when the structure has that level.
    pub fn level(&self, kind: LevelKind) -> Option<&Level> {
        self.levels.iter().find(|l| l.kind == kind)
    }
}

/// A fitted level: its spread and its groups' effects.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct LevelFit {
    pub level: LevelKind,
    pub groups: usize,
    /// Standard deviation of the level's effects on the logit (0: the level does not matter).
    pub sd: f64,
}

/// The fitted hierarchy and every pool's leave-one-out prior.
#[derive(Debug, Clone, PartialEq)]
pub struct HierarchyFit {
    /// The fleet's logit intercept.
    pub mu: f64,
    pub levels: Vec<LevelFit>,
    /// Spread of pools around their groups' prediction (logit sd).
    pub pool_sd: f64,
    /// Per pool: the prior of its logit, `(m_i, s_i)`.
    pub logit_prior: Vec<(f64, f64)>,
    /// Per pool: the Beta prior `(a_i, b_i)` with the same mean and variance of `p`.
    pub beta_prior: Vec<(f64, f64)>,
    pub sweeps: usize,
}

/// Prior of the pools' own spread `σ²_pool`: a scaled inverse-χ² with [`POOL_PRIOR_WEIGHT`] pseudo-pools
/// at a logit sd of [`POOL_PRIOR_SD`] (step 4 of the fit in the module's documentation).
pub const POOL_PRIOR_SD: f64 = 0.5;
pub const POOL_PRIOR_WEIGHT: f64 = 4.0;

/// Fisher-scoring steps for a variance component from group sums `(S_g, W_g)`, from `s2`.
fn scoring(sums: &[(f64, f64)], mut s2: f64, steps: usize) -> f64 {
    for _ in 0..steps {
        let (mut score, mut info) = (0.0, 0.0);
        for &(s, w) in sums {
            if w <= 0.0 {
                continue;
            }
            let d = 1.0 + s2 * w;
            let d2 = d * d;
            score += (s * s - w * d) / d2;
            info += w * w / d2;
        }
        if info <= 0.0 {
            return 0.0;
        }
        s2 = (s2 + score / info).clamp(0.0, MAX_VARIANCE);
    }
    s2
}

/// EM steps for a variance component with a scaled inverse-χ² prior (`weight` pseudo-groups at
/// `scale2`): `σ² ← (Σ_g E[u_g²] + ν₀ s₀²)/(G + ν₀ + 2)`, with `E[u_g²] = û_g² + σ²/(1 + σ² W_g)` and
/// `û_g = S_g σ²/(1 + σ² W_g)`, `G` the groups with data: the posterior mode, approached
/// monotonically, never 0.
fn em_with_prior(sums: &[(f64, f64)], mut s2: f64, steps: usize, weight: f64, scale2: f64) -> f64 {
    for _ in 0..steps {
        let (mut total, mut groups) = (weight * scale2, weight + 2.0);
        for &(s, w) in sums {
            if w <= 0.0 {
                continue;
            }
            let d = 1.0 + s2 * w;
            let u = s * s2 / d;
            total += u * u + s2 / d;
            groups += 1.0;
        }
        s2 = (total / groups).clamp(1e-6, MAX_VARIANCE);
    }
    s2
}

/// The Beta `(a, b)` whose mean and variance are those of `expit(θ)`, `θ ~ N(m, s²)`.
pub fn beta_from_logit_normal(m: f64, s: f64) -> (f64, f64) {
    let (mean, var) = logit_normal_moments(m, s);
    let mean = mean.clamp(1e-7, 1.0 - 1e-7);
    let strength = if var > 0.0 {
        (mean * (1.0 - mean) / var - 1.0).clamp(MIN_PRIOR_STRENGTH, MAX_PRIOR_STRENGTH)
    } else {
        MAX_PRIOR_STRENGTH
    };
    (mean * strength, (1.0 - mean) * strength)
}

/// Fit the hierarchy to per-pool counts `nk[i] = (n_i, k_i)` (effective counts are fine; a pool with
/// no job has no weight and still gets a prior).
pub fn fit(levels: &[&Level], nk: &[(f64, f64)]) -> HierarchyFit {
    let mut state = Backfit::new(levels, nk);
    let mut sweeps = 0;
    for sweep in 0..MAX_SWEEPS {
        sweeps = sweep + 1;
        state.working_data();
        state.eta_start.copy_from_slice(&state.eta);
        if !state.update_intercept() {
            break;
        }
        // Convergence is judged on what the priors are made of, the variance components and each
        // pool's prediction `η_i`: nested levels (zone within region, type within family) can keep
        // trading an effect between them for many sweeps while every `η_i` stays put.
        let mut moved = state.update_levels();
        moved = moved.max(state.update_pool_spread());
        for (e, s) in state.eta.iter().zip(&state.eta_start) {
            moved = moved.max((e - s).abs());
        }
        if sweep >= 3 && moved < 1e-3 {
            break;
        }
    }
    let (logit_prior, beta_prior) = state.leave_one_out_priors();
    HierarchyFit {
        mu: state.mu,
        levels: levels
            .iter()
            .zip(&state.s2)
            .map(|(l, &s)| LevelFit {
                level: l.kind,
                groups: l.groups,
                sd: s.sqrt(),
            })
            .collect(),
        pool_sd: state.s2_pool.sqrt(),
        logit_prior,
        beta_prior,
        sweeps,
    }
}

/// Per pool: the prior of its logit `(m_i, s_i)`, and the Beta prior `(a_i, b_i)` with its moments.
type PoolPriors = (Vec<(f64, f64)>, Vec<(f64, f64)>);

/// The state of [`fit`]'s sweeps: the components fitted so far and each pool's working data. Each
/// step of a sweep (the module's documentation numbers them) is a method.
struct Backfit<'a> {
    levels: &'a [&'a Level],
    nk: &'a [(f64, f64)],
    /// The intercept, each level's variance component and effects, the pools' own spread.
    mu: f64,
    s2: Vec<f64>,
    effects: Vec<Vec<f64>>,
    s2_pool: f64,
    /// Per level and group: `(S_g, W_g)`.
    sums: Vec<Vec<(f64, f64)>>,
    /// Group part of each pool's logit, its linearisation point, working data and residual.
    eta: Vec<f64>,
    theta: Vec<f64>,
    /// `expit(θ*_i)`, carried from one sweep to the next.
    p_at: Vec<f64>,
    z: Vec<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
    r: Vec<f64>,
    /// Buffers reused by every sweep.
    pool_sums: Vec<(f64, f64)>,
    deltas: Vec<f64>,
    eta_start: Vec<f64>,
}

impl<'a> Backfit<'a> {
    /// Every effect at 0, the intercept at the fleet's rate.
    fn new(levels: &'a [&'a Level], nk: &'a [(f64, f64)]) -> Self {
        let pools = nk.len();
        let total_n: f64 = nk.iter().map(|p| p.0).sum();
        let total_k: f64 = nk.iter().map(|p| p.1).sum();
        // Half a termination at least, so a fleet that never lost a job is not "certain".
        let fleet = ((total_k + 0.5) / (total_n + 1.0)).clamp(1e-6, 0.9);
        let mu = logit(fleet);
        Self {
            levels,
            nk,
            mu,
            s2: vec![START_VARIANCE; levels.len()],
            effects: levels.iter().map(|l| vec![0.0; l.groups]).collect(),
            s2_pool: 0.25,
            sums: levels.iter().map(|l| vec![(0.0, 0.0); l.groups]).collect(),
            eta: vec![mu; pools],
            theta: vec![mu; pools],
            p_at: vec![expit(mu); pools],
            z: vec![0.0; pools],
            v: vec![f64::INFINITY; pools],
            w: vec![0.0; pools],
            r: vec![0.0; pools],
            pool_sums: vec![(0.0, 0.0); pools],
            deltas: vec![0.0; levels.iter().map(|l| l.groups).max().unwrap_or(0)],
            eta_start: vec![0.0; pools],
        }
    }

    /// 1. Working data at the pools' posterior modes: one Newton step of each pool's logit from its
    ///    last linearisation point, then its working observation, variance, weight and residual. A
    ///    pool with no job has no weight.
    fn working_data(&mut self) {
        let s2_pool = self.s2_pool;
        for i in 0..self.nk.len() {
            let (n, k) = self.nk[i];
            if n <= 0.0 {
                self.w[i] = 0.0;
                self.r[i] = 0.0;
                continue;
            }
            let mut t = self.theta[i];
            let p = self.p_at[i];
            let grad = k - n * p - (t - self.eta[i]) / s2_pool;
            let hess = n * p * (1.0 - p) + 1.0 / s2_pool;
            t += (grad / hess).clamp(-3.0, 3.0);
            self.theta[i] = t;
            let p = expit(t);
            self.p_at[i] = p;
            let info = (n * p * (1.0 - p)).max(1e-12);
            self.z[i] = t + (k - n * p) / info;
            self.v[i] = 1.0 / info;
            self.w[i] = 1.0 / (s2_pool + self.v[i]);
            self.r[i] = self.z[i] - self.eta[i];
        }
    }

    /// 2. The intercept: the weighted mean residual moves into it. False when no pool has weight
    ///    (nothing to fit).
    fn update_intercept(&mut self) -> bool {
        let (w, r) = (&self.w, &self.r);
        let (sw, swr) =
            (0..self.nk.len()).fold((0.0, 0.0), |(a, b), i| (a + w[i], b + w[i] * r[i]));
        if sw <= 0.0 {
            return false;
        }
        let shift = swr / sw;
        self.mu += shift;
        for i in 0..self.nk.len() {
            self.r[i] -= shift;
            self.eta[i] += shift;
        }
        true
    }

    /// 3. Each level in turn: its variance component, then its effects (Gauss–Seidel: the next level
    ///    sees this one's new effects through the residuals). Returns the largest change of a
    ///    variance component.
    fn update_levels(&mut self) -> f64 {
        let pools = self.nk.len();
        let (w, r, eta) = (&self.w, &mut self.r, &mut self.eta);
        let mut moved: f64 = 0.0;
        for (l, level) in self.levels.iter().enumerate() {
            let sum = &mut self.sums[l];
            sum.iter_mut().for_each(|s| *s = (0.0, 0.0));
            let u = &mut self.effects[l];
            for i in 0..pools {
                let g = level.group_of[i] as usize;
                sum[g].0 += w[i] * (r[i] + u[g]);
                sum[g].1 += w[i];
            }
            let before = self.s2[l];
            self.s2[l] = scoring(sum, self.s2[l], 2);
            moved = moved.max((self.s2[l] - before).abs());
            let delta = &mut self.deltas[..level.groups];
            let mut any = false;
            for (g, &(s, wg)) in sum.iter().enumerate() {
                let next = s * self.s2[l] / (1.0 + self.s2[l] * wg);
                delta[g] = next - u[g];
                any |= delta[g] != 0.0;
                u[g] = next;
            }
            // A level at σ² = 0 whose effects were already 0 moves nothing.
            if any {
                for i in 0..pools {
                    let d = delta[level.group_of[i] as usize];
                    eta[i] += d;
                    r[i] -= d;
                }
            }
        }
        moved
    }

    /// 4. The pools' own spread, from their residuals (EM towards its prior). Returns how far it
    ///    moved.
    fn update_pool_spread(&mut self) -> f64 {
        for i in 0..self.nk.len() {
            self.pool_sums[i] = if self.w[i] > 0.0 {
                (self.r[i] / self.v[i], 1.0 / self.v[i])
            } else {
                (0.0, 0.0)
            };
        }
        let before = self.s2_pool;
        self.s2_pool = em_with_prior(
            &self.pool_sums,
            self.s2_pool,
            3,
            POOL_PRIOR_WEIGHT,
            POOL_PRIOR_SD * POOL_PRIOR_SD,
        );
        (self.s2_pool - before).abs()
    }

    /// Every pool's prior, `(m_i, s_i)` on the logit and the Beta with the same moments, from the
    /// final sums with the pool's own data taken out (so a pool's prior does not count its jobs
    /// twice).
    fn leave_one_out_priors(&mut self) -> PoolPriors {
        let pools = self.nk.len();
        let (w, r, effects, s2) = (&self.w, &self.r, &self.effects, &self.s2);
        let sw: f64 = w.iter().sum();
        for (l, level) in self.levels.iter().enumerate() {
            let sum = &mut self.sums[l];
            sum.iter_mut().for_each(|s| *s = (0.0, 0.0));
            for i in 0..pools {
                let g = level.group_of[i] as usize;
                sum[g].0 += w[i] * (r[i] + effects[l][g]);
                sum[g].1 += w[i];
            }
        }
        let mut logit_prior = Vec::with_capacity(pools);
        let mut beta_prior = Vec::with_capacity(pools);
        for i in 0..pools {
            // The intercept without the pool: its weighted residual taken out of the fleet's mean.
            let rest = sw - w[i];
            let (mut m, mut var) = if rest > 1e-9 {
                (self.mu - w[i] * r[i] / rest, self.s2_pool + 1.0 / rest)
            } else {
                (self.mu, self.s2_pool + 1.0)
            };
            for (l, level) in self.levels.iter().enumerate() {
                let g = level.group_of[i] as usize;
                let (s, wg) = self.sums[l][g];
                let partial = r[i] + effects[l][g];
                let (s, wg) = ((s - w[i] * partial), (wg - w[i]).max(0.0));
                let denom = 1.0 + s2[l] * wg;
                m += s * s2[l] / denom;
                var += s2[l] / denom;
            }
            let sd = var.sqrt();
            logit_prior.push((m, sd));
            beta_prior.push(beta_from_logit_normal(m, sd));
        }
        (logit_prior, beta_prior)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::special::expit;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Binomial, Distribution, StandardNormal};

    // The generator's catalogue: the fleet the ranking is tested on is the one it is benchmarked on.
    use pool_scenario::pools::{FAMILIES, ZONES};

    /// Every family × size × zone pool, `jobs` each, rates `expit(logit 0.04 + family + zone + pool)`
    /// with the given spreads.
    fn fleet(family_sd: f64, zone_sd: f64, pool_sd: f64, jobs: u64, seed: u64) -> Vec<Evidence> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = |sd: f64| sd * rng.sample::<f64, _>(StandardNormal);
        let fam: Vec<f64> = FAMILIES.iter().map(|_| normal(family_sd)).collect();
        let zon: Vec<f64> = ZONES.iter().map(|_| normal(zone_sd)).collect();
        let mut out = vec![];
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 99);
        for (f, family) in FAMILIES.iter().enumerate() {
            for size in ["large", "xlarge", "2xlarge"] {
                for (z, zone) in ZONES.iter().enumerate() {
                    let eps = pool_sd * rng.sample::<f64, _>(StandardNormal);
                    let p = expit(logit(0.04) + fam[f] + zon[z] + eps);
                    let k = Binomial::new(jobs, p).unwrap().sample(&mut rng);
                    out.push(Evidence::new(
                        format!("pool-{family}.{size}-{zone}").parse().unwrap(),
                        jobs,
                        k,
                        &[],
                    ));
                }
            }
        }
        out
    }

    fn fit_all(ev: &[Evidence]) -> HierarchyFit {
        let s = Structure::new(ev, &LevelKind::STRUCTURAL, None, None);
        let levels: Vec<&Level> = s.levels.iter().collect();
        let nk: Vec<(f64, f64)> = ev.iter().map(|e| (e.jobs as f64, e.spot as f64)).collect();
        fit(&levels, &nk)
    }

    fn sd_of(h: &HierarchyFit, kind: LevelKind) -> f64 {
        h.levels.iter().find(|l| l.level == kind).unwrap().sd
    }

    #[test]
    fn levels_without_an_effect_shrink_to_nothing_and_the_pool_spread_remains() {
        // No family or zone structure: pools differ by their own noise (sd 0.5) only.
        let ev = fleet(0.0, 0.0, 0.5, 2000, 1);
        let h = fit_all(&ev);
        for kind in LevelKind::STRUCTURAL {
            assert!(sd_of(&h, kind) < 0.15, "{kind:?}: {h:?}");
        }
        assert!((h.pool_sd - 0.5).abs() < 0.12, "{}", h.pool_sd);
        // The prior means then barely differ: every pool starts from the fleet.
        let means: Vec<f64> = h.logit_prior.iter().map(|p| p.0).collect();
        let spread = means.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b))
            - means.iter().fold(f64::INFINITY, |a, &b| a.min(b));
        assert!(spread < 0.8, "{spread}");
    }

    #[test]
    fn real_family_and_zone_effects_are_found() {
        let ev = fleet(0.8, 0.5, 0.2, 2000, 2);
        let h = fit_all(&ev);
        let family = sd_of(&h, LevelKind::Family);
        let zone = sd_of(&h, LevelKind::Zone) + sd_of(&h, LevelKind::Region);
        // 12 draws each: the sample spread of the true effects is itself uncertain (±25 %).
        assert!((0.45..1.3).contains(&family), "{h:?}");
        assert!((0.25..0.9).contains(&zone), "{h:?}");
        assert!(sd_of(&h, LevelKind::Size) < 0.2, "{h:?}");
        assert!((h.pool_sd - 0.2).abs() < 0.1, "{h:?}");
    }

    #[test]
    fn a_pool_s_prior_does_not_contain_its_own_jobs() {
        // The prior of pool 0 with its own jobs in the fit, whatever they say, is close to the prior it
        // gets when it is fitted with no jobs at all.
        let ev = fleet(0.6, 0.4, 0.3, 500, 3);
        let mut nk: Vec<(f64, f64)> = ev.iter().map(|e| (e.jobs as f64, e.spot as f64)).collect();
        let s = Structure::new(&ev, &LevelKind::STRUCTURAL, None, None);
        let levels: Vec<&Level> = s.levels.iter().collect();
        nk[0] = (0.0, 0.0);
        let without = fit(&levels, &nk).logit_prior[0];
        for k in [0.0, 20.0, 250.0] {
            nk[0] = (500.0, k);
            let with = fit(&levels, &nk).logit_prior[0];
            assert!(
                (with.0 - without.0).abs() < 0.08,
                "k {k}: {with:?} vs {without:?}"
            );
        }
    }

    #[test]
    fn a_thin_pool_is_judged_by_its_groups_and_a_thick_one_barely_by_them() {
        let mut ev = fleet(0.8, 0.0, 0.1, 3000, 4);
        // Pool 0 now has 3 jobs: its prior is its groups' (its own family's rate), not the fleet's.
        ev[0].jobs = 3;
        ev[0].spot = 0;
        ev[0].effective_jobs = 3.0;
        ev[0].rate = 0.0;
        let h = fit_all(&ev);
        let family = ev[0].pool.instance_type().family().to_owned();
        let (n, k) = ev
            .iter()
            .skip(1)
            .filter(|e| e.pool.instance_type().family() == family)
            .fold((0u64, 0u64), |(n, k), e| (n + e.jobs, k + e.spot));
        let family_rate = k as f64 / n as f64;
        let (a, b) = h.beta_prior[0];
        let prior_mean = a / (a + b);
        assert!(
            (prior_mean / family_rate - 1.0).abs() < 0.15,
            "{prior_mean} vs family {family_rate}"
        );
        // Strong: 3 jobs cannot move it far (pools of a family in this fleet differ by 10 %).
        assert!(a + b > 200.0, "{a} {b}");
    }

    #[test]
    fn the_beta_has_the_logit_normal_s_mean_and_variance() {
        for (m, s) in [(-3.2, 0.3), (-3.0, 1.2), (-1.0, 0.05)] {
            let (a, b) = beta_from_logit_normal(m, s);
            let (mean, var) = logit_normal_moments(m, s);
            let bm = a / (a + b);
            let bv = bm * (1.0 - bm) / (a + b + 1.0);
            assert!((bm - mean).abs() < 1e-12 * mean.max(1.0) + 1e-12);
            assert!((bv - var).abs() < 1e-9 * var.max(1e-12), "{m} {s}");
        }
        // A spread of 2.5 at 4 % is weaker than one pseudo-job: a < 1, the density spiked at 0.
        let (a, _) = beta_from_logit_normal(logit(0.04), 2.5);
        assert!(a < 1.0, "{a}");
    }

    #[test]
    fn zones_are_keyed_by_az_id_when_mapped() {
        let pools = [
            "pool-c6a.large-us-east-1a",
            "pool-c6a.large-us-east-1b",
            "pool-m6a.large-us-east-1c",
        ];
        let ev: Vec<Evidence> = pools
            .iter()
            .map(|p| Evidence::new(p.parse().unwrap(), 10, 1, &[]))
            .collect();
        // Account names 1a and 1b are the same physical zone in this (made-up) map.
        let ids = ZoneIds::from_pairs([
            ("us-east-1a", "use1-az4"),
            ("us-east-1b", "use1-az4"),
            ("us-east-1c", "use1-az1"),
        ]);
        let s = Structure::new(
            &ev,
            &[LevelKind::Zone, LevelKind::FamilyZone],
            Some(&ids),
            None,
        );
        let zone = s.level(LevelKind::Zone).unwrap();
        assert_eq!(zone.groups, 2);
        assert_eq!(zone.group_of[0], zone.group_of[1]);
        let fz = s.level(LevelKind::FamilyZone).unwrap();
        assert_eq!(fz.group_of[0], fz.group_of[1]);
        let plain = Structure::new(&ev, &[LevelKind::Zone], None, None);
        assert_eq!(plain.level(LevelKind::Zone).unwrap().groups, 3);
    }

    #[test]
    fn every_level_groups_exactly_the_pools_that_share_its_key() {
        // The interned levels against grouping by the key strings themselves, with a zone map that
        // merges two names and leaves a third unmapped.
        let mut ev = fleet(0.3, 0.3, 0.3, 10, 9);
        ev.push(Evidence::new(
            "pool-c7i.metal-24xl-us-west-2-lax-1a".parse().unwrap(),
            5,
            0,
            &[],
        ));
        let ids = ZoneIds::from_pairs([("us-east-1a", "use1-az4"), ("us-east-1b", "use1-az4")]);
        for zones in [None, Some(&ids)] {
            let s = Structure::new(&ev, &LevelKind::STRUCTURAL, zones, None);
            for level in &s.levels {
                let mut first: std::collections::HashMap<(&str, &str), u32> = Default::default();
                for (i, e) in ev.iter().enumerate() {
                    let k = key(level.kind, e, zones, None).unwrap();
                    let g = *first.entry(k).or_insert(level.group_of[i]);
                    assert_eq!(g, level.group_of[i], "{:?} {}", level.kind, e.pool);
                }
                assert_eq!(first.len(), level.groups, "{:?}", level.kind);
                let distinct: std::collections::HashSet<u32> = first.values().copied().collect();
                assert_eq!(distinct.len(), level.groups, "{:?}", level.kind);
            }
        }
    }

    #[test]
    fn pools_without_jobs_get_a_prior_and_weigh_nothing() {
        let mut ev = fleet(0.5, 0.5, 0.2, 300, 6);
        ev[5].jobs = 0;
        ev[5].spot = 0;
        ev[5].effective_jobs = 0.0;
        let h = fit_all(&ev);
        let (a, b) = h.beta_prior[5];
        assert!(a > 0.0 && b > 0.0 && (a / (a + b)) < 0.5);
        assert!(h.sweeps <= MAX_SWEEPS);
        // One-level: no levels at all, one fleet prior for everyone: the fleet's rate without the
        // pool itself, so the pools' prior means differ only by each one's own share of the fleet
        // (one pool of 432 moves it by a hundredth of its own deviation).
        let nk: Vec<(f64, f64)> = ev.iter().map(|e| (e.jobs as f64, e.spot as f64)).collect();
        let flat = fit(&[], &nk);
        assert!(flat.levels.is_empty());
        let means: Vec<f64> = flat.logit_prior.iter().map(|p| p.0).collect();
        let spread = means.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b))
            - means.iter().fold(f64::INFINITY, |a, &b| a.min(b));
        assert!(spread < 0.02, "{spread}");
        // The pool without jobs weighs nothing: its prior is the whole fleet's.
        assert!((means[5] - flat.mu).abs() < 1e-12);
    }

    #[test]
    fn the_fleet_rate_in_a_pool_s_prior_leaves_the_pool_out() {
        // Two pools: each one's prior is the other's rate, whatever its own jobs say.
        let nk = [(1000.0, 300.0), (1000.0, 20.0)];
        let flat = fit(&[], &nk);
        let mean = |i: usize| {
            let (a, b) = flat.beta_prior[i];
            a / (a + b)
        };
        assert!(mean(1) > 0.15, "{}", mean(1));
        assert!(mean(0) < 0.05, "{}", mean(0));
    }

    #[test]
    fn a_few_pools_do_not_make_a_certain_prior() {
        // Two pools that agree: their spread cannot be told from 0, and a prior that claimed so would
        // outweigh hundreds of the pool's own jobs. The prior on the pools' spread keeps it near
        // POOL_PRIOR_SD until the fleet says otherwise.
        let ev = vec![
            Evidence::new("pool-c6a.large-us-east-1a".parse().unwrap(), 1000, 28, &[]),
            Evidence::new("pool-m6a.large-us-east-1b".parse().unwrap(), 1000, 25, &[]),
        ];
        let h = fit_all(&ev);
        assert!((0.2..0.6).contains(&h.pool_sd), "{h:?}");
        for (a, b) in &h.beta_prior {
            assert!(a + b < 300.0, "{h:?}");
        }
        // Many pools that agree: the fleet says so, and the spread goes well below the prior's.
        let many = fleet(0.0, 0.0, 0.0, 2000, 8);
        let h = fit_all(&many);
        assert!(h.pool_sd < 0.12, "{}", h.pool_sd);
    }
}
