//! The belief about every pool's termination rate now: the estimated hierarchy as the shared prior
//! ([`crate::hierarchy`]), the change-point posterior on top of it ([`crate::changes`]), and the
//! per-pool summary the API reports.
//!
//! 1. The hierarchy is fitted to every pool's window counts (recency-weighted when asked); each pool
//!    gets its leave-one-out prior `Beta(a_i, b_i)`.
//! 2. With that prior before a change and its reset distribution after one (the same mean, at most 20
//!    pseudo-jobs: [`crate::changes`]), each pool's (and zone's, region's, family's) change posterior
//!    gives the pool's current rate as a mixture, matched to `Beta(α_i, β_i)`.
//! 3. `degraded` is read off the same posterior with the one threshold of the model:
//!    `P(rate now > rate before the change) > 1 − change_alpha`. `change` is reported when a change is
//!    more likely than not, with its probability, most probable age and scope.
//!
//! The previous model (family × zone rates, Fisher tests, a hard switch) is [`crate::v1`], computed
//! only when `pooled-v1` is asked for ([`Model::v1`]).

use std::sync::{Arc, OnceLock};

use crate::changes::{self, Change, ChangeConfig, ChangeScope};
use crate::evidence::Evidence;
use crate::hierarchy::{self, Level, LevelFit, LevelKind, Structure};
use crate::signals::Signals;
use crate::v1;
use crate::zones::ZoneIds;

/// How the model is fitted.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// `degraded` when `P(rate now > rate before) > 1 − change_alpha` (and `pooled-v1`'s tests' level).
    pub change_alpha: f64,
    /// Adapt to changes at all (off: the hierarchy's posterior on the whole window).
    pub adapt: bool,
    pub changes: ChangeConfig,
    /// The hierarchy's structural levels; empty: one fleet prior (one-level empirical Bayes).
    pub levels: Vec<LevelKind>,
    /// Zone names → AZ IDs: zone effects keyed by AZ ID.
    pub zone_ids: Option<Arc<ZoneIds>>,
    /// Outside signals, each an extra level of the hierarchy with a fitted spread.
    pub signals: Option<Arc<Signals>>,
    /// `pooled-v1`: recent spans compared with the rest of the window, hours.
    pub v1_splits: Vec<u32>,
    /// `pooled-v1`: the recent span of its `degraded` test, hours.
    pub v1_degraded_hours: u32,
    /// `pooled-v1`: adapt every pool of a zone when the zone as a whole changed.
    pub v1_zone_changes: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            change_alpha: 0.01,
            adapt: true,
            changes: ChangeConfig::default(),
            levels: LevelKind::STRUCTURAL.to_vec(),
            zone_ids: None,
            signals: None,
            v1_splits: vec![2, 4, 8, 12, 18, 24, 36, 48, 60, 72],
            v1_degraded_hours: 6,
            v1_zone_changes: true,
        }
    }
}

/// The model's belief about one pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolModel {
    /// Mean of the shared prior (the pool's groups without its own jobs).
    pub prior_mean: f64,
    /// Strength of the shared prior, pseudo-jobs.
    pub prior_strength: f64,
    /// Posterior `Beta(alpha, beta)` of the termination rate now.
    pub alpha: f64,
    pub beta: f64,
    /// Probability that the rate changed within the pool's series (its own change or its group's).
    pub change_probability: f64,
    /// The change, when one is more likely than not.
    pub change: Option<Change>,
    /// `P(rate now > rate before the change)`.
    pub worse_probability: f64,
    /// `worse_probability > 1 − change_alpha`.
    pub degraded: bool,
}

impl PoolModel {
    pub fn posterior_mean(&self) -> f64 {
        self.alpha / (self.alpha + self.beta)
    }
}

/// The fitted model: one [`PoolModel`] per evidence entry, same order.
#[derive(Debug, Clone)]
pub struct Model {
    pub pools: Vec<PoolModel>,
    /// The fleet's termination rate.
    pub fleet_rate: f64,
    /// Each level's fitted spread (logit sd; 0: the level does not matter).
    pub levels: Vec<LevelFit>,
    /// Spread of pools around their groups' prediction (logit sd).
    pub pool_sd: f64,
    /// Prior probability of a change within a pool's series (fitted to the fleet unless given).
    pub change_prior: f64,
    /// Groups whose change is more likely than not.
    pub group_alarms: usize,
    config: ModelConfig,
    v1: OnceLock<v1::Model>,
}

impl Model {
    /// `pooled-v1`'s model of the same evidence, fitted on first use.
    pub fn v1(&self, evidence: &[Evidence]) -> &v1::Model {
        self.v1.get_or_init(|| v1::fit(evidence, &self.config))
    }

    /// The configuration the model was fitted with.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Spread of a level, when the model has it.
    pub fn level_sd(&self, kind: LevelKind) -> Option<f64> {
        self.levels.iter().find(|l| l.level == kind).map(|l| l.sd)
    }
}

/// The levels the structure needs: the hierarchy's, the change groups' and the signals'.
fn structure_of(evidence: &[Evidence], cfg: &ModelConfig) -> Structure {
    let mut kinds = cfg.levels.clone();
    for k in [LevelKind::Zone, LevelKind::Region, LevelKind::Family] {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if let Some(s) = &cfg.signals {
        if s.has_advisor() {
            kinds.push(LevelKind::AdvisorBand);
        }
        if s.has_placement() {
            kinds.push(LevelKind::PlacementScore);
        }
    }
    Structure::new(
        evidence,
        &kinds,
        cfg.zone_ids.as_deref(),
        cfg.signals.as_deref(),
    )
}

/// Fit the model to every pool of `evidence` (the candidates and the pools around them).
pub fn fit(evidence: &[Evidence], cfg: &ModelConfig) -> Model {
    let structure = structure_of(evidence, cfg);
    let active: Vec<&Level> = structure
        .levels
        .iter()
        .filter(|l| {
            cfg.levels.contains(&l.kind)
                || matches!(l.kind, LevelKind::AdvisorBand | LevelKind::PlacementScore)
        })
        .collect();
    let nk: Vec<(f64, f64)> = evidence
        .iter()
        .map(|e| (e.effective_jobs, e.effective_spot()))
        .collect();
    let h = hierarchy::fit(&active, &nk);
    let total_n: f64 = nk.iter().map(|p| p.0).sum();
    let total_k: f64 = nk.iter().map(|p| p.1).sum();
    let fleet_rate = ((total_k + 0.5) / (total_n + 1.0)).clamp(1e-6, 0.9);
    let prior = |i: usize| {
        let (a, b) = h.beta_prior[i];
        (a / (a + b), a + b)
    };
    let (pools, change_prior, group_alarms) = if cfg.adapt {
        // Finest first (see `changes`): zones, families, regions.
        let groups: Vec<(&Level, ChangeScope)> = [
            (LevelKind::Zone, ChangeScope::Zone),
            (LevelKind::Family, ChangeScope::Family),
            (LevelKind::Region, ChangeScope::Region),
        ]
        .into_iter()
        .filter_map(|(k, scope)| structure.level(k).map(|l| (l, scope)))
        .collect();
        let c = changes::fit(evidence, &h.beta_prior, &nk, &groups, &cfg.changes);
        let pools = c
            .pools
            .iter()
            .enumerate()
            .map(|(i, cur)| {
                let (prior_mean, prior_strength) = prior(i);
                let change = cur
                    .most_probable
                    .filter(|_| cur.change_probability >= 0.5)
                    .map(|(hours, scope)| Change {
                        probability: cur.change_probability,
                        hours,
                        scope,
                    });
                PoolModel {
                    prior_mean,
                    prior_strength,
                    alpha: cur.alpha,
                    beta: cur.beta,
                    change_probability: cur.change_probability,
                    change,
                    worse_probability: cur.worse_probability,
                    degraded: cur.worse_probability > 1.0 - cfg.change_alpha,
                }
            })
            .collect();
        (pools, c.pool_prior, c.group_alarms)
    } else {
        let pools = (0..evidence.len())
            .map(|i| {
                let (a, b) = h.beta_prior[i];
                let (n, k) = nk[i];
                let (prior_mean, prior_strength) = prior(i);
                PoolModel {
                    prior_mean,
                    prior_strength,
                    alpha: a + k,
                    beta: b + (n - k).max(0.0),
                    change_probability: 0.0,
                    change: None,
                    worse_probability: 0.0,
                    degraded: false,
                }
            })
            .collect();
        (pools, 0.0, 0)
    };
    Model {
        pools,
        fleet_rate,
        levels: h.levels,
        pool_sd: h.pool_sd,
        change_prior,
        group_alarms,
        config: cfg.clone(),
        v1: OnceLock::new(),
    }
}
