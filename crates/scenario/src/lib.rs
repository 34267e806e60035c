//! Scenarios: seeded simulated worlds whose hidden termination probabilities change over time.
//!
//! A [`World`] is a set of spot pools, each with an hourly job rate, an hour from which it has jobs and
//! a piecewise-constant termination probability. It is built by [`world`] from a [`ScenarioKind`] and a
//! seed, and is pure data: no I/O, no clock, nothing random outside the seed. The event generator turns
//! a world into events (`--scenario`); a benchmark can use the same world directly, drawing hourly
//! counts with [`sample_counts`] and scoring an estimator against [`WorldPool::rate_at`].
//!
//! # The model
//!
//! The rates are structured the way the real spot market is, so that pooling evidence helps:
//!
//! * every instance family `f` has a log-effect `a_f ~ N(0, 0.5²)` and every zone `z` one
//!   `b_z ~ N(0, 0.5²)` (drawn first, in catalogue order, so all scenarios of a seed share them);
//! * a pool's base rate is `clamp(0.04 · exp(a_f + b_z + e_p), 0.002, 0.5)` with its own noise
//!   `e_p ~ N(0, 0.25²)`, so the sizes of one family in one zone are alike, and a family (or a zone)
//!   that is bad somewhere tends to be bad everywhere;
//! * traffic is Zipf-like: the `k`-th busiest pool (in a random order) expects `busiest / k^exponent`
//!   jobs per hour.
//!
//! That structure is exactly what the ranking's shared prior assumes, so a benchmark on it alone
//! flatters the prior. A [`RateModel`] draws the base rates other ways (`--rate-model`):
//!
//! | rate model | base rate |
//! |---|---|
//! | `structured` (default) | `0.04 · exp(a_f + b_z + e_p)`, `e_p ~ N(0, 0.25²)`, as above |
//! | `unstructured` | `0.04 · exp(e_p)`, `e_p ~ N(0, 0.75²)`: the same spread, no family or zone in it |
//! | `idiosyncratic` | `0.04 · exp(a_f + b_z + e_p)`, `e_p ~ N(0, 1)`: pools differ mostly on their own |
//! | `two-kinds` | 15 % "bad" pools `Beta(6, 24)` (mean 20 %), the rest `Beta(2.2, 45)` (≈ 4.7 %), as the generator's non-scenario mode |
//! | `size-effect` | structured, plus `c_{f,s} ~ N(0, 0.5²)` per size within each family |
//! | `interaction` | structured, plus `d_{f,z} ~ N(0, 0.5²)` per family × zone |
//! | `bad-traffic` | structured, but the busiest pools are the worst (traffic ranked by rate, with noise) |
//!
//! The scenarios differ in which pools exist, how thin their traffic is and how the rates move:
//!
//! | scenario | pools | jobs/hour of the k-th busiest | rates |
//! |---|---|---|---|
//! | `stationary` | 150 of the catalogue | `40 / k^0.8` (≈ 0.7 for the thinnest) | constant |
//! | `long-tail` | all 432 | `20 / k^1.3` (most pools: 2–30 jobs in 14 days) | constant |
//! | `regime-change` | as stationary | as stationary | 25 % of pools change once in the last 72 h: half × 3–8 (capped at 0.6), half ÷ 3–8 |
//! | `cold-start` | as stationary | as stationary | constant; 30 % of pools only have jobs from an hour in the last 48 h |
//! | `zone-outage` | as stationary | as stationary | every pool of one random zone × 5 (capped at 0.6) from an hour in the last 24 h |
//! | `outages` | as stationary | as stationary | every pool of one random region × 5 from an hour in the last 24 h, and of one random family × 5 from another |
//! | `spikes` | as stationary | as stationary | each pool has Poisson(1.5) spikes of 2–8 hours, × 4–10, anywhere in the history |
//! | `drift` | as stationary | as stationary | each pool's log-rate moves linearly by `N(0, 0.8²)` over the history, in 6-hour steps |
//! | `seasonality` | as stationary | as stationary | the 30 busiest pools' rates swing ×(1 ± 0.7) over the day, peaking at a region's own hour |
//!
//! "In the last N hours" means an hour in `[max(hours − N, 1), hours)`: never hour 0, so a change is
//! always a change (only a one-hour world has nowhere else to put it, and changes from hour 0).

pub mod pools;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use pool_core::event::PoolId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Poisson, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::pools::{FAMILIES, SIZES, ZONES, catalogue};

/// History length a scenario gets when `--hours` is not given: 14 days.
pub const DEFAULT_HOURS: u32 = 14 * 24;

/// Median base termination probability (family, zone and pool effects all zero).
const BASE_RATE: f64 = 0.04;
/// Standard deviation of a family's log-effect on the rate.
const FAMILY_SD: f64 = 0.5;
/// Standard deviation of a zone's log-effect on the rate.
const ZONE_SD: f64 = 0.5;
/// Standard deviation of a pool's own log-effect on the rate.
const POOL_SD: f64 = 0.25;
/// Base rates are clamped into this range.
const BASE_RANGE: (f64, f64) = (0.002, 0.5);
/// A rate that worsens (regime change up, zone outage) never goes above this.
const WORSE_CAP: f64 = 0.6;
/// `two-kinds`: share of bad pools and the two Beta distributions (the generator's non-scenario
/// model, `pools.rs`).
const TWO_KINDS_BAD_SHARE: f64 = 0.15;
const TWO_KINDS_GOOD: (f64, f64) = (2.2, 45.0);
const TWO_KINDS_BAD: (f64, f64) = (6.0, 24.0);
/// Pools in every scenario but `long-tail` (which has the whole catalogue).
const STANDARD_POOLS: usize = 150;
/// Share of pools whose rate changes in `regime-change`.
const REGIME_CHANGE_SHARE: f64 = 0.25;
/// A regime change happens in this many last hours.
const REGIME_CHANGE_WINDOW: u32 = 72;
/// Range of the factor a regime change multiplies or divides a rate by.
const REGIME_CHANGE_FACTOR: (f64, f64) = (3.0, 8.0);
/// Share of pools that are new in `cold-start`.
const COLD_START_SHARE: f64 = 0.3;
/// New pools appear in this many last hours.
const COLD_START_WINDOW: u32 = 48;
/// A zone outage starts in this many last hours.
const OUTAGE_WINDOW: u32 = 24;
/// A zone outage multiplies its pools' rates by this.
const OUTAGE_FACTOR: f64 = 5.0;
/// Spikes per pool over the history (Poisson mean), their length in hours and their factor.
const SPIKES_PER_POOL: f64 = 1.5;
const SPIKE_HOURS: (u32, u32) = (2, 8);
const SPIKE_FACTOR: (f64, f64) = (4.0, 10.0);
/// Standard deviation of a pool's log-rate drift over the whole history, and the drift's step.
const DRIFT_SD: f64 = 0.8;
const DRIFT_STEP_HOURS: u32 = 6;
/// Pools with a daily cycle (the busiest), and its relative amplitude.
const SEASONAL_POOLS: usize = 30;
const SEASONAL_AMPLITUDE: f64 = 0.7;
/// Spread of the extra effects of the `size-effect` and `interaction` rate models (log scale).
const EXTRA_SD: f64 = 0.5;
/// Pool noise of `unstructured` (the structured model's total spread) and of `idiosyncratic`.
const UNSTRUCTURED_SD: f64 = 0.75;
const IDIOSYNCRATIC_SD: f64 = 1.0;

/// Which world to simulate. The names (`as_str`, `FromStr`, serde) are kebab-case: `long-tail`, ….
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioKind {
    /// 150 pools, skewed traffic, rates constant over time.
    Stationary,
    /// The whole catalogue (432 pools) with very thin traffic for most of them.
    LongTail,
    /// Like `Stationary`, but a quarter of the pools change rate (up or down 3–8×) in the last 3 days.
    RegimeChange,
    /// Like `Stationary`, but 30 % of the pools only get jobs from an hour in the last 2 days.
    ColdStart,
    /// Like `Stationary`, but one zone's pools all get 5× worse from an hour in the last day.
    ZoneOutage,
    /// Like `Stationary`, but one region's and one family's pools get 5× worse, each from an hour in
    /// the last day.
    Outages,
    /// Like `Stationary`, with transient spikes (2–8 hours, × 4–10) anywhere in every pool's history.
    Spikes,
    /// Like `Stationary`, with every pool's rate drifting slowly (log-linear) over the history.
    Drift,
    /// Like `Stationary`, with a daily cycle on the busiest pools' rates.
    Seasonality,
}

impl ScenarioKind {
    /// Every scenario, in the order they are documented.
    pub const ALL: [ScenarioKind; 9] = [
        ScenarioKind::Stationary,
        ScenarioKind::LongTail,
        ScenarioKind::RegimeChange,
        ScenarioKind::ColdStart,
        ScenarioKind::ZoneOutage,
        ScenarioKind::Outages,
        ScenarioKind::Spikes,
        ScenarioKind::Drift,
        ScenarioKind::Seasonality,
    ];

    /// The scenario's name, as accepted by `FromStr` and `--scenario`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScenarioKind::Stationary => "stationary",
            ScenarioKind::LongTail => "long-tail",
            ScenarioKind::RegimeChange => "regime-change",
            ScenarioKind::ColdStart => "cold-start",
            ScenarioKind::ZoneOutage => "zone-outage",
            ScenarioKind::Outages => "outages",
            ScenarioKind::Spikes => "spikes",
            ScenarioKind::Drift => "drift",
            ScenarioKind::Seasonality => "seasonality",
        }
    }
}

impl fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown scenario name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scenario {0:?}; expected one of stationary, long-tail, regime-change, cold-start, zone-outage, outages, spikes, drift, seasonality"
)]
pub struct UnknownScenario(pub String);

impl FromStr for ScenarioKind {
    type Err = UnknownScenario;
    /// Exact names, case-insensitive, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        ScenarioKind::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownScenario(name.to_owned()))
    }
}

/// How a world's base rates are drawn (see the module docs). The names are kebab-case.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum RateModel {
    /// Family × zone × pool noise: the structure the ranking's prior assumes.
    #[default]
    Structured,
    /// Pool noise only, with the structured model's total spread.
    Unstructured,
    /// Family and zone effects, but pool noise four times larger.
    Idiosyncratic,
    /// Good pools and bad pools, nothing else.
    TwoKinds,
    /// Structured, plus an effect per size within each family.
    SizeEffect,
    /// Structured, plus an effect per family × zone.
    Interaction,
    /// Structured rates, but traffic concentrated in the worst pools.
    BadTraffic,
}

impl RateModel {
    pub const ALL: [RateModel; 7] = [
        RateModel::Structured,
        RateModel::Unstructured,
        RateModel::Idiosyncratic,
        RateModel::TwoKinds,
        RateModel::SizeEffect,
        RateModel::Interaction,
        RateModel::BadTraffic,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            RateModel::Structured => "structured",
            RateModel::Unstructured => "unstructured",
            RateModel::Idiosyncratic => "idiosyncratic",
            RateModel::TwoKinds => "two-kinds",
            RateModel::SizeEffect => "size-effect",
            RateModel::Interaction => "interaction",
            RateModel::BadTraffic => "bad-traffic",
        }
    }
}

impl fmt::Display for RateModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown rate model name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown rate model {0:?}; expected one of structured, unstructured, idiosyncratic, two-kinds, size-effect, interaction, bad-traffic"
)]
pub struct UnknownRateModel(pub String);

impl FromStr for RateModel {
    type Err = UnknownRateModel;
    /// Exact names, case-insensitive, surrounding blanks ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        RateModel::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownRateModel(name.to_owned()))
    }
}

/// A simulated world: which pools exist, how busy they are and how their hidden termination
/// probability moves over `hours` hours from `start`.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// Start of hour 0. Hour `h` covers `[start + h hours, start + h + 1 hours)`.
    pub start: DateTime<Utc>,
    /// Number of hours simulated.
    pub hours: u32,
    /// The pools, busiest (highest `jobs_per_hour`) first.
    pub pools: Vec<WorldPool>,
}

impl World {
    /// Start of hour `hour` (`hour == hours` gives the end of the world).
    pub fn hour_start(&self, hour: u32) -> DateTime<Utc> {
        self.start + chrono::Duration::hours(i64::from(hour))
    }

    /// End of the last hour.
    pub fn end(&self) -> DateTime<Utc> {
        self.hour_start(self.hours)
    }
}

/// One pool of a [`World`] and its hidden parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct WorldPool {
    pub pool_id: PoolId,
    /// Expected jobs per hour while the pool exists.
    pub jobs_per_hour: f64,
    /// First hour index (0-based from `start`) the pool has jobs (cold-start pools appear late).
    pub first_hour: u32,
    /// Piecewise-constant termination probability: (from_hour, probability), sorted, first from 0.
    pub rate: Vec<(u32, f64)>,
}

impl WorldPool {
    /// The termination probability during hour `hour`: that of the last segment starting at or before
    /// it (0 if `rate` is empty, which [`world`] never builds).
    pub fn rate_at(&self, hour: u32) -> f64 {
        let after = self.rate.partition_point(|(from, _)| *from <= hour);
        self.rate.get(after.saturating_sub(1)).map_or(0.0, |s| s.1)
    }

    /// Expected jobs during hour `hour`: `jobs_per_hour`, or 0 before `first_hour`.
    pub fn expected_jobs_at(&self, hour: u32) -> f64 {
        if hour < self.first_hour {
            0.0
        } else {
            self.jobs_per_hour
        }
    }
}

/// Build the world of scenario `kind` for `hours` hours from `start`, its base rates from the
/// [`RateModel::Structured`] model. The same `(kind, seed, hours)` always gives the same world
/// (`start` only places it in time); different scenarios of one seed share the family and zone
/// effects.
pub fn world(kind: ScenarioKind, seed: u64, start: DateTime<Utc>, hours: u32) -> World {
    world_with(kind, RateModel::Structured, seed, start, hours)
}

/// [`world`] with the base rates drawn by `model`.
pub fn world_with(
    kind: ScenarioKind,
    model: RateModel,
    seed: u64,
    start: DateTime<Utc>,
    hours: u32,
) -> World {
    // Every draw comes from one stream, in a fixed order: effects, pools, extra effects, base rates,
    // traffic order, then the scenario's own schedule.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let family_effects: Vec<f64> = FAMILIES
        .iter()
        .map(|_| FAMILY_SD * standard_normal(&mut rng))
        .collect();
    let zone_effects: Vec<f64> = ZONES
        .iter()
        .map(|_| ZONE_SD * standard_normal(&mut rng))
        .collect();
    let ids = pool_ids(kind, &mut rng);
    let rates = BaseRates {
        model,
        family: family_effects,
        zone: zone_effects,
        extra: extra_effects(model, &mut rng),
    };
    let bases: Vec<f64> = ids.iter().map(|id| rates.draw(id, &mut rng)).collect();
    let (busiest, exponent) = if kind == ScenarioKind::LongTail {
        (20.0, 1.3)
    } else {
        (40.0, 0.8)
    };
    let mut pools: Vec<WorldPool> = traffic_order(model, &bases, &mut rng)
        .into_iter()
        .enumerate()
        .map(|(k, i)| WorldPool {
            pool_id: ids[i].clone(),
            jobs_per_hour: busiest / ((k + 1) as f64).powf(exponent),
            first_hour: 0,
            rate: vec![(0, bases[i])],
        })
        .collect();
    match kind {
        ScenarioKind::Stationary | ScenarioKind::LongTail => {}
        ScenarioKind::RegimeChange => regime_changes(&mut pools, hours, &mut rng),
        ScenarioKind::ColdStart => cold_starts(&mut pools, hours, &mut rng),
        ScenarioKind::ZoneOutage => zone_outage(&mut pools, hours, &mut rng),
        ScenarioKind::Outages => region_and_family_outages(&mut pools, hours, &mut rng),
        ScenarioKind::Spikes => spikes(&mut pools, hours, &mut rng),
        ScenarioKind::Drift => drift(&mut pools, hours, &mut rng),
        ScenarioKind::Seasonality => seasonality(&mut pools, hours, &mut rng),
    }
    World {
        start,
        hours,
        pools,
    }
}

/// The world's pools: the whole catalogue for the long tail, else [`STANDARD_POOLS`] of it; in a
/// random traffic order, so busy and thin pools are spread over families and zones.
fn pool_ids(kind: ScenarioKind, rng: &mut ChaCha8Rng) -> Vec<PoolId> {
    let all = catalogue();
    let mut ids: Vec<PoolId> = if kind == ScenarioKind::LongTail {
        all
    } else {
        rand::seq::index::sample(rng, all.len(), STANDARD_POOLS.min(all.len()))
            .into_iter()
            .map(|i| all[i].clone())
            .collect()
    };
    rand::seq::SliceRandom::shuffle(ids.as_mut_slice(), rng);
    ids
}

/// The extra effects of the rate models that have them (per family and size, or per family and
/// zone), drawn after everything the structured model draws, so structured worlds stay what they
/// were.
fn extra_effects(model: RateModel, rng: &mut ChaCha8Rng) -> Vec<Vec<f64>> {
    match model {
        RateModel::SizeEffect => FAMILIES
            .iter()
            .map(|_| {
                SIZES
                    .iter()
                    .map(|_| EXTRA_SD * standard_normal(rng))
                    .collect()
            })
            .collect(),
        RateModel::Interaction => FAMILIES
            .iter()
            .map(|_| {
                ZONES
                    .iter()
                    .map(|_| EXTRA_SD * standard_normal(rng))
                    .collect()
            })
            .collect(),
        _ => vec![],
    }
}

/// What a pool's base rate is drawn from: the rate model and its effects.
struct BaseRates {
    model: RateModel,
    family: Vec<f64>,
    zone: Vec<f64>,
    extra: Vec<Vec<f64>>,
}

impl BaseRates {
    /// A pool's base termination probability: [`BASE_RATE`] times its effects and its own noise (or
    /// a draw from one of two Betas for [`RateModel::TwoKinds`]), within [`BASE_RANGE`].
    fn draw(&self, pool_id: &PoolId, rng: &mut ChaCha8Rng) -> f64 {
        let family = family_index(pool_id);
        let zone = zone_index(pool_id);
        let structured = self.family[family] + self.zone[zone];
        let log_effect = match self.model {
            RateModel::Structured | RateModel::BadTraffic => {
                structured + POOL_SD * standard_normal(rng)
            }
            RateModel::Unstructured => UNSTRUCTURED_SD * standard_normal(rng),
            RateModel::Idiosyncratic => structured + IDIOSYNCRATIC_SD * standard_normal(rng),
            RateModel::SizeEffect => {
                structured
                    + self.extra[family][size_index(pool_id)]
                    + POOL_SD * standard_normal(rng)
            }
            RateModel::Interaction => {
                structured + self.extra[family][zone] + POOL_SD * standard_normal(rng)
            }
            RateModel::TwoKinds => {
                let bad = rng.random_bool(TWO_KINDS_BAD_SHARE);
                let (a, b) = if bad { TWO_KINDS_BAD } else { TWO_KINDS_GOOD };
                let p: f64 = rand_distr::Beta::new(a, b)
                    .expect("valid Beta parameters")
                    .sample(rng);
                return p.clamp(BASE_RANGE.0, BASE_RANGE.1);
            }
        };
        (BASE_RATE * log_effect.exp()).clamp(BASE_RANGE.0, BASE_RANGE.1)
    }
}

/// Pool indices, busiest first: the random order already drawn, except under
/// [`RateModel::BadTraffic`], where the k-th busiest is the k-th worst, up to noise of 0.3 on the
/// log rate.
fn traffic_order(model: RateModel, bases: &[f64], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut order: Vec<usize> = (0..bases.len()).collect();
    if model == RateModel::BadTraffic {
        let keys: Vec<f64> = bases
            .iter()
            .map(|b| b.ln() + 0.3 * standard_normal(rng))
            .collect();
        order.sort_by(|&x, &y| keys[y].total_cmp(&keys[x]));
    }
    order
}

/// [`ScenarioKind::RegimeChange`]: a share of the pools change rate once, late; half of them get
/// worse, half better.
fn regime_changes(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    let n = pools.len();
    let changed = share_of(n, REGIME_CHANGE_SHARE);
    for (j, i) in rand::seq::index::sample(rng, n, changed)
        .into_iter()
        .enumerate()
    {
        let hour = late_hour(rng, hours, REGIME_CHANGE_WINDOW);
        let factor = rng.random_range(REGIME_CHANGE_FACTOR.0..REGIME_CHANGE_FACTOR.1);
        let pool = &mut pools[i];
        let base = pool.rate[0].1;
        // Alternate: half of the changed pools get worse, half get better.
        let next = if j % 2 == 0 {
            (base * factor).min(WORSE_CAP)
        } else {
            base / factor
        };
        set_from(pool, hour, next);
    }
}

/// [`ScenarioKind::ColdStart`]: a share of the pools get their first jobs late.
fn cold_starts(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    let n = pools.len();
    let new = share_of(n, COLD_START_SHARE);
    for i in rand::seq::index::sample(rng, n, new) {
        pools[i].first_hour = late_hour(rng, hours, COLD_START_WINDOW);
    }
}

/// [`ScenarioKind::ZoneOutage`]: every pool of one zone gets worse from one late hour on.
fn zone_outage(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    let mut zones: Vec<usize> = pools.iter().map(|p| zone_index(&p.pool_id)).collect();
    zones.sort_unstable();
    zones.dedup();
    if !zones.is_empty() {
        let zone = zones[rng.random_range(0..zones.len())];
        let hour = late_hour(rng, hours, OUTAGE_WINDOW);
        for pool in pools.iter_mut().filter(|p| zone_index(&p.pool_id) == zone) {
            let worse = (pool.rate[0].1 * OUTAGE_FACTOR).min(WORSE_CAP);
            set_from(pool, hour, worse);
        }
    }
}

/// [`ScenarioKind::Outages`]: one region and one family each get worse from their own late hour;
/// a pool in both gets both factors.
fn region_and_family_outages(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    let region = {
        let mut regions: Vec<&str> = pools
            .iter()
            .map(|p| p.pool_id.availability_zone().region())
            .collect();
        regions.sort_unstable();
        regions.dedup();
        regions[rng.random_range(0..regions.len())].to_owned()
    };
    let family = FAMILIES[rng.random_range(0..FAMILIES.len())];
    let region_hour = late_hour(rng, hours, OUTAGE_WINDOW);
    let family_hour = late_hour(rng, hours, OUTAGE_WINDOW);
    for pool in pools.iter_mut() {
        let base = pool.rate[0].1;
        let in_region = pool.pool_id.availability_zone().region() == region;
        let in_family = pool.pool_id.instance_type().family() == family;
        let curve: Vec<f64> = (0..hours)
            .map(|h| {
                let mut f = 1.0;
                if in_region && h >= region_hour {
                    f *= OUTAGE_FACTOR;
                }
                if in_family && h >= family_hour {
                    f *= OUTAGE_FACTOR;
                }
                if f > 1.0 {
                    (base * f).min(WORSE_CAP)
                } else {
                    base
                }
            })
            .collect();
        set_curve(pool, &curve);
    }
}

/// [`ScenarioKind::Spikes`]: each pool has a few short spikes of a higher rate.
fn spikes(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    for pool in pools.iter_mut() {
        let base = pool.rate[0].1;
        let mut curve = vec![base; hours as usize];
        let count = poisson(rng, SPIKES_PER_POOL);
        for _ in 0..count {
            if hours <= 1 {
                break;
            }
            let from = rng.random_range(1..hours);
            let length = rng.random_range(SPIKE_HOURS.0..=SPIKE_HOURS.1);
            let factor = rng.random_range(SPIKE_FACTOR.0..SPIKE_FACTOR.1);
            for h in from..(from + length).min(hours) {
                curve[h as usize] = (base * factor).min(WORSE_CAP);
            }
        }
        set_curve(pool, &curve);
    }
}

/// [`ScenarioKind::Drift`]: each pool's rate drifts, in steps, along its own log-linear slope.
fn drift(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    for pool in pools.iter_mut() {
        let base = pool.rate[0].1;
        let slope = DRIFT_SD * standard_normal(rng);
        let curve: Vec<f64> = (0..hours)
            .map(|h| {
                let step = h - h % DRIFT_STEP_HOURS;
                let x = f64::from(step) / f64::from(hours.max(1)) - 0.5;
                (base * (slope * x).exp()).clamp(BASE_RANGE.0, WORSE_CAP)
            })
            .collect();
        set_curve(pool, &curve);
    }
}

/// [`ScenarioKind::Seasonality`]: the first pools follow a daily cycle, each region peaking at its
/// own hour.
fn seasonality(pools: &mut [WorldPool], hours: u32, rng: &mut ChaCha8Rng) {
    let mut peaks: Vec<(String, f64)> = vec![];
    for pool in pools.iter_mut().take(SEASONAL_POOLS) {
        let region = pool.pool_id.availability_zone().region().to_owned();
        let peak = match peaks.iter().find(|(r, _)| *r == region) {
            Some((_, p)) => *p,
            None => {
                let p = rng.random_range(0.0..24.0);
                peaks.push((region, p));
                p
            }
        };
        let base = pool.rate[0].1;
        let curve: Vec<f64> = (0..hours)
            .map(|h| {
                let phase = 2.0 * std::f64::consts::PI * (f64::from(h % 24) - peak) / 24.0;
                (base * (1.0 + SEASONAL_AMPLITUDE * phase.cos())).clamp(BASE_RANGE.0, WORSE_CAP)
            })
            .collect();
        set_curve(pool, &curve);
    }
}

/// Hourly (jobs, spot terminations) per pool, indexed `[pool][hour]` like `world.pools`:
/// jobs ~ Poisson(jobs_per_hour) (0 before `first_hour`), spot ~ Binomial(jobs, rate_at(hour)).
/// Draws pool by pool, hour by hour, so a seeded `rng` gives the same counts every time.
pub fn sample_counts(world: &World, rng: &mut ChaCha8Rng) -> Vec<Vec<(u32, u32)>> {
    world
        .pools
        .iter()
        .map(|pool| {
            (0..world.hours)
                .map(|hour| {
                    let jobs = if hour < pool.first_hour {
                        0
                    } else {
                        poisson(rng, pool.jobs_per_hour)
                    };
                    (jobs, binomial(rng, jobs, pool.rate_at(hour)))
                })
                .collect()
        })
        .collect()
}

/// A standard normal draw.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(StandardNormal)
}

/// A Poisson draw with the given mean (0 for a mean that is not a positive finite number).
pub fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> u32 {
    match Poisson::new(mean) {
        // Draws are whole numbers; `as` saturates the (astronomically unlikely) huge ones.
        Ok(d) => d.sample(rng) as u32,
        _ => 0,
    }
}

/// A Binomial(`n`, `p`) draw, `p` clamped into `[0, 1]`.
fn binomial(rng: &mut ChaCha8Rng, n: u32, p: f64) -> u32 {
    if n == 0 || p.is_nan() || p <= 0.0 {
        return 0;
    }
    let d = Binomial::new(u64::from(n), p.min(1.0)).expect("p is in (0, 1]");
    d.sample(rng) as u32
}

/// `round(n · share)`, at most `n`.
fn share_of(n: usize, share: f64) -> usize {
    ((n as f64 * share).round() as usize).min(n)
}

/// An hour in the last `window` hours, never hour 0 (unless the world is a single hour).
fn late_hour(rng: &mut ChaCha8Rng, hours: u32, window: u32) -> u32 {
    if hours <= 1 {
        return 0;
    }
    let lo = hours.saturating_sub(window).max(1);
    rng.random_range(lo..hours)
}

/// The pool's rate is `probability` from `hour` on (its only rate if `hour` is 0).
fn set_from(pool: &mut WorldPool, hour: u32, probability: f64) {
    pool.rate.retain(|(from, _)| *from < hour);
    pool.rate.push((hour, probability));
}

/// The pool's rate hour by hour (`curve[h]` in hour `h`), stored as segments of equal rates.
fn set_curve(pool: &mut WorldPool, curve: &[f64]) {
    let mut rate: Vec<(u32, f64)> = vec![];
    for (h, &p) in curve.iter().enumerate() {
        if rate.last().is_none_or(|&(_, last)| last != p) {
            rate.push((h as u32, p));
        }
    }
    if !rate.is_empty() {
        pool.rate = rate;
    }
}

fn family_index(pool: &PoolId) -> usize {
    let family = pool.instance_type().family();
    FAMILIES
        .iter()
        .position(|f| *f == family)
        .expect("world pools come from the catalogue")
}

fn size_index(pool: &PoolId) -> usize {
    let size = pool.instance_type().size();
    SIZES
        .iter()
        .position(|s| *s == size)
        .expect("world pools come from the catalogue")
}

fn zone_index(pool: &PoolId) -> usize {
    let zone = pool.availability_zone().as_str();
    ZONES
        .iter()
        .position(|z| *z == zone)
        .expect("world pools come from the catalogue")
}

/// Jobs and their outcomes, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub jobs: u64,
    pub spot_terminations: u64,
    /// Failures for other reasons (TIMED_OUT, SPARK_EXECUTION_ERROR).
    pub other_failures: u64,
}

impl OutcomeCounts {
    /// Add `other` to these counts.
    pub fn add(&mut self, other: &OutcomeCounts) {
        self.jobs += other.jobs;
        self.spot_terminations += other.spot_terminations;
        self.other_failures += other.other_failures;
    }
}

/// One constant-rate stretch of a pool's history in a [`ScenarioTruth`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthSegment {
    /// When the segment starts (it ends where the next one starts, or at the world's end).
    pub from: DateTime<Utc>,
    /// The same as an hour index from the world's start.
    pub from_hour: u32,
    /// Termination probability during the segment.
    pub probability: f64,
    /// Jobs generated during the segment.
    #[serde(flatten)]
    pub counts: OutcomeCounts,
}

/// One pool in a [`ScenarioTruth`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioTruthPool {
    pub pool_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    pub jobs_per_hour: f64,
    pub first_hour: u32,
    /// The pool's rate over time, oldest segment first.
    pub rate: Vec<TruthSegment>,
    /// Jobs generated in the pool over the whole run.
    #[serde(flatten)]
    pub counts: OutcomeCounts,
}

/// The truth file of a scenario run (`--scenario … --truth FILE`): the world and what was generated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioTruth {
    pub scenario: ScenarioKind,
    /// How the base rates were drawn (`structured` for files written before rate models existed).
    #[serde(default)]
    pub rate_model: RateModel,
    pub seed: u64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub hours: u32,
    /// Chance that a job not lost to a spot termination fails for another reason.
    pub other_failure_probability: f64,
    /// Jobs generated in all pools.
    pub events: u64,
    /// Pools in the world's order (busiest first).
    pub pools: Vec<ScenarioTruthPool>,
}

impl ScenarioTruth {
    /// The truth for `world`, given the counts generated per pool and rate segment
    /// (`segments[pool][segment]`, aligned with `world.pools[pool].rate`).
    pub fn new(
        scenario: ScenarioKind,
        rate_model: RateModel,
        seed: u64,
        world: &World,
        other_failure_probability: f64,
        segments: &[Vec<OutcomeCounts>],
    ) -> Self {
        let pools: Vec<ScenarioTruthPool> = world
            .pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut total = OutcomeCounts::default();
                let rate = p
                    .rate
                    .iter()
                    .enumerate()
                    .map(|(s, &(from_hour, probability))| {
                        let counts = segments
                            .get(i)
                            .and_then(|c| c.get(s))
                            .copied()
                            .unwrap_or_default();
                        total.add(&counts);
                        TruthSegment {
                            from: world.hour_start(from_hour),
                            from_hour,
                            probability,
                            counts,
                        }
                    })
                    .collect();
                ScenarioTruthPool {
                    pool_id: p.pool_id.to_string(),
                    instance_type: p.pool_id.instance_type().to_string(),
                    availability_zone: p.pool_id.availability_zone().to_string(),
                    jobs_per_hour: p.jobs_per_hour,
                    first_hour: p.first_hour,
                    rate,
                    counts: total,
                }
            })
            .collect();
        ScenarioTruth {
            scenario,
            rate_model,
            seed,
            start: world.start,
            end: world.end(),
            hours: world.hours,
            other_failure_probability,
            events: pools.iter().map(|p| p.counts.jobs).sum(),
            pools,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn start() -> DateTime<Utc> {
        "2026-11-08T00:00:00Z".parse().unwrap()
    }

    fn build(kind: ScenarioKind, seed: u64) -> World {
        world(kind, seed, start(), DEFAULT_HOURS)
    }

    #[test]
    fn names_round_trip() {
        for kind in ScenarioKind::ALL {
            assert_eq!(kind.as_str().parse::<ScenarioKind>().unwrap(), kind);
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(
            " Zone-Outage ".parse::<ScenarioKind>(),
            Ok(ScenarioKind::ZoneOutage)
        );
        assert!("zone_outage".parse::<ScenarioKind>().is_err());
    }

    #[test]
    fn worlds_are_deterministic_per_seed_and_well_formed() {
        for kind in ScenarioKind::ALL {
            let a = build(kind, 7);
            assert_eq!(a, build(kind, 7), "{kind}");
            assert_ne!(a, build(kind, 8), "{kind}");
            let expected = if kind == ScenarioKind::LongTail {
                catalogue().len()
            } else {
                STANDARD_POOLS
            };
            assert_eq!(a.pools.len(), expected, "{kind}");
            let ids: BTreeSet<_> = a.pools.iter().map(|p| p.pool_id.clone()).collect();
            assert_eq!(ids.len(), a.pools.len(), "{kind}: distinct pools");
            for w in a.pools.windows(2) {
                assert!(
                    w[0].jobs_per_hour > w[1].jobs_per_hour,
                    "{kind}: busiest first"
                );
            }
            for p in &a.pools {
                assert!(!p.rate.is_empty() && p.rate[0].0 == 0, "{kind}: {p:?}");
                assert!(p.rate.windows(2).all(|w| w[0].0 < w[1].0), "{p:?}");
                assert!(
                    p.rate
                        .iter()
                        .all(|(h, r)| *h < a.hours && *r > 0.0 && *r <= 0.6)
                );
                assert!(p.first_hour < a.hours);
                assert!(p.jobs_per_hour > 0.0);
            }
        }
    }

    #[test]
    fn traffic_and_rates_are_plausible() {
        let s = build(ScenarioKind::Stationary, 3);
        assert!((s.pools[0].jobs_per_hour - 40.0).abs() < 1e-9);
        let thinnest = s.pools.last().unwrap().jobs_per_hour;
        assert!((0.5..=1.5).contains(&thinnest), "{thinnest}");
        let mut rates: Vec<f64> = s.pools.iter().map(|p| p.rate[0].1).collect();
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        assert!((0.015..=0.1).contains(&median), "{median}");
        assert!(rates.iter().all(|r| (0.002..=0.5).contains(r)));

        let lt = build(ScenarioKind::LongTail, 3);
        let totals: Vec<f64> = lt
            .pools
            .iter()
            .map(|p| p.jobs_per_hour * f64::from(lt.hours))
            .collect();
        let thin = totals.iter().filter(|t| (2.0..=30.0).contains(*t)).count();
        assert!(
            thin > lt.pools.len() * 3 / 4,
            "{thin} of {}",
            lt.pools.len()
        );
        assert!((lt.pools[0].jobs_per_hour - 20.0).abs() < 1e-9);
    }

    #[test]
    fn family_and_zone_structure_shows_in_the_rates() {
        // Pools sharing a family and a zone differ only by the pool noise (sd 0.25 in log space),
        // pools in general by much more.
        let lt = build(ScenarioKind::LongTail, 11);
        let log = |p: &WorldPool| p.rate[0].1.ln();
        let mut within = Vec::new();
        let mut across = Vec::new();
        for (i, a) in lt.pools.iter().enumerate() {
            for b in &lt.pools[i + 1..] {
                let d = (log(a) - log(b)).powi(2);
                let same = a.pool_id.instance_type().family() == b.pool_id.instance_type().family()
                    && a.pool_id.availability_zone() == b.pool_id.availability_zone();
                if same { &mut within } else { &mut across }.push(d);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&within) * 4.0 < mean(&across),
            "{} vs {}",
            mean(&within),
            mean(&across)
        );
    }

    #[test]
    fn stationary_and_long_tail_rates_are_constant() {
        for kind in [ScenarioKind::Stationary, ScenarioKind::LongTail] {
            let w = build(kind, 5);
            assert!(
                w.pools
                    .iter()
                    .all(|p| p.rate.len() == 1 && p.first_hour == 0)
            );
        }
    }

    #[test]
    fn regime_changes_happen_only_in_the_last_three_days() {
        for seed in 0..5 {
            let w = build(ScenarioKind::RegimeChange, seed);
            let changed: Vec<&WorldPool> = w.pools.iter().filter(|p| p.rate.len() > 1).collect();
            assert!(
                (30..=45).contains(&changed.len()),
                "about a quarter of 150: {}",
                changed.len()
            );
            let (mut up, mut down) = (0u32, 0u32);
            for p in &w.pools {
                assert_eq!(p.first_hour, 0);
                let last = p.rate.last().unwrap();
                if p.rate.len() == 1 {
                    continue;
                }
                assert_eq!(p.rate.len(), 2, "{p:?}");
                assert!(last.0 >= w.hours - 72 && last.0 < w.hours, "{p:?}");
                for h in 0..last.0 {
                    assert_eq!(p.rate_at(h), p.rate[0].1);
                }
                assert_eq!(p.rate_at(w.hours - 1), last.1);
                let ratio = last.1 / p.rate[0].1;
                if ratio > 1.0 {
                    up += 1;
                    assert!(
                        last.1 == 0.6 || (3.0 - 1e-9..=8.0 + 1e-9).contains(&ratio),
                        "{p:?}"
                    );
                } else {
                    down += 1;
                    assert!((0.125 - 1e-9..=1.0 / 3.0 + 1e-9).contains(&ratio), "{p:?}");
                }
            }
            assert!(up.abs_diff(down) <= 1, "{up} up, {down} down");
        }
    }

    #[test]
    fn cold_start_pools_appear_in_the_last_two_days_and_have_no_jobs_before() {
        let w = build(ScenarioKind::ColdStart, 9);
        let new: Vec<&WorldPool> = w.pools.iter().filter(|p| p.first_hour > 0).collect();
        assert_eq!(new.len(), 45, "30 % of 150");
        assert!(new.iter().all(|p| p.first_hour >= w.hours - 48));
        assert!(w.pools.iter().all(|p| p.rate.len() == 1));
        let counts = sample_counts(&w, &mut ChaCha8Rng::seed_from_u64(1));
        for (p, hours) in w.pools.iter().zip(&counts) {
            assert_eq!(hours.len(), w.hours as usize);
            for (h, (jobs, spot)) in hours.iter().enumerate() {
                if (h as u32) < p.first_hour {
                    assert_eq!((*jobs, *spot), (0, 0), "{p:?} hour {h}");
                }
                assert!(spot <= jobs);
            }
        }
        // The busy new pools do get jobs once they exist.
        let busy_new = new.iter().filter(|p| p.jobs_per_hour > 10.0).count();
        let with_jobs = w
            .pools
            .iter()
            .zip(&counts)
            .filter(|(p, c)| {
                p.first_hour > 0 && p.jobs_per_hour > 10.0 && c.iter().any(|x| x.0 > 0)
            })
            .count();
        assert_eq!(busy_new, with_jobs);
    }

    #[test]
    fn a_zone_outage_worsens_exactly_one_zones_pools() {
        for seed in 0..5 {
            let w = build(ScenarioKind::ZoneOutage, seed);
            let worse: Vec<&WorldPool> = w
                .pools
                .iter()
                .filter(|p| p.rate_at(w.hours - 1) > p.rate_at(0))
                .collect();
            let zones: BTreeSet<&str> = worse
                .iter()
                .map(|p| p.pool_id.availability_zone().as_str())
                .collect();
            assert_eq!(zones.len(), 1, "{zones:?}");
            let zone = *zones.first().unwrap();
            let in_zone = w
                .pools
                .iter()
                .filter(|p| p.pool_id.availability_zone().as_str() == zone)
                .count();
            assert_eq!(worse.len(), in_zone, "every pool of {zone}");
            let from = worse[0].rate[1].0;
            assert!(from >= w.hours - 24 && from < w.hours);
            for p in &w.pools {
                if p.pool_id.availability_zone().as_str() == zone {
                    assert_eq!(p.rate.len(), 2);
                    assert_eq!(p.rate[1].0, from, "one outage hour for the zone");
                    let expected = (p.rate[0].1 * 5.0).min(0.6);
                    assert!((p.rate[1].1 - expected).abs() < 1e-12);
                } else {
                    assert_eq!(p.rate.len(), 1);
                }
            }
        }
    }

    #[test]
    fn short_worlds_still_change_after_hour_zero() {
        for hours in [1, 2, 5, 48] {
            for kind in ScenarioKind::ALL {
                let w = world(kind, 4, start(), hours);
                for p in &w.pools {
                    assert!(p.rate[0].0 == 0 && p.rate.iter().all(|(h, _)| *h < hours));
                    if hours > 1 {
                        assert!(p.rate.len() == 1 || p.rate[1].0 >= 1);
                    }
                }
            }
        }
    }

    #[test]
    fn rate_at_picks_the_segment() {
        let p = WorldPool {
            pool_id: catalogue()[0].clone(),
            jobs_per_hour: 1.0,
            first_hour: 0,
            rate: vec![(0, 0.1), (5, 0.3), (9, 0.05)],
        };
        let got: Vec<f64> = (0..12).map(|h| p.rate_at(h)).collect();
        assert_eq!(
            got,
            [
                0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.3, 0.3, 0.3, 0.05, 0.05, 0.05
            ]
        );
        let empty = WorldPool { rate: vec![], ..p };
        assert_eq!(empty.rate_at(3), 0.0);
    }

    #[test]
    fn samplers_handle_the_edges() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        assert_eq!(poisson(&mut rng, 0.0), 0);
        assert_eq!(poisson(&mut rng, -1.0), 0);
        assert_eq!(poisson(&mut rng, f64::NAN), 0);
        assert_eq!(binomial(&mut rng, 7, 1.0), 7);
        assert_eq!(binomial(&mut rng, 7, 3.0), 7);
        assert_eq!(binomial(&mut rng, 7, 0.0), 0);
        assert_eq!(binomial(&mut rng, 0, 0.5), 0);
        let n = 100_000;
        let mean = (0..n)
            .map(|_| f64::from(poisson(&mut rng, 3.0)))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 3.0).abs() < 0.03, "{mean}");
        let mean = (0..n)
            .map(|_| f64::from(binomial(&mut rng, 40, 0.2)))
            .sum::<f64>()
            / n as f64;
        assert!((mean - 8.0).abs() < 0.06, "{mean}");
    }

    #[test]
    fn sample_counts_match_the_expected_jobs_and_terminations() {
        let w = world(ScenarioKind::RegimeChange, 2, start(), 96);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let a = sample_counts(&w, &mut rng);
        assert_eq!(a, sample_counts(&w, &mut ChaCha8Rng::seed_from_u64(2)));
        // Averaged over many draws, each pool's jobs and terminations per segment approach their
        // expectations.
        let draws = 200;
        let mut jobs = vec![0.0; w.pools.len()];
        let mut spot = vec![0.0; w.pools.len()];
        for _ in 0..draws {
            for (i, hours) in sample_counts(&w, &mut rng).iter().enumerate() {
                for (j, s) in hours {
                    jobs[i] += f64::from(*j);
                    spot[i] += f64::from(*s);
                }
            }
        }
        for (i, p) in w.pools.iter().enumerate() {
            let expected_jobs: f64 =
                (0..w.hours).map(|h| p.expected_jobs_at(h)).sum::<f64>() * draws as f64;
            let expected_spot: f64 = (0..w.hours)
                .map(|h| p.expected_jobs_at(h) * p.rate_at(h))
                .sum::<f64>()
                * draws as f64;
            // Poisson totals: sd = sqrt(mean); terminations are Poisson too (thinned).
            assert!(
                (jobs[i] - expected_jobs).abs() < 5.0 * expected_jobs.sqrt() + 1.0,
                "{p:?}: {} jobs vs {expected_jobs}",
                jobs[i]
            );
            assert!(
                (spot[i] - expected_spot).abs() < 5.0 * expected_spot.sqrt() + 2.0,
                "{p:?}: {} terminations vs {expected_spot}",
                spot[i]
            );
        }
    }

    #[test]
    fn truth_sums_the_segments() {
        let w = world(ScenarioKind::ZoneOutage, 1, start(), 48);
        let segments: Vec<Vec<OutcomeCounts>> = w
            .pools
            .iter()
            .map(|p| {
                p.rate
                    .iter()
                    .map(|_| OutcomeCounts {
                        jobs: 10,
                        spot_terminations: 2,
                        other_failures: 1,
                    })
                    .collect()
            })
            .collect();
        let t = ScenarioTruth::new(
            ScenarioKind::ZoneOutage,
            RateModel::Structured,
            1,
            &w,
            0.02,
            &segments,
        );
        assert_eq!(t.end, start() + chrono::Duration::hours(48));
        for (tp, p) in t.pools.iter().zip(&w.pools) {
            assert_eq!(tp.counts.jobs, 10 * p.rate.len() as u64);
            assert_eq!(tp.rate[0].from, start());
        }
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(json["scenario"], "zone-outage");
        assert_eq!(json["rate_model"], "structured");
        assert_eq!(json["pools"][0]["rate"][0]["jobs"], 10);
        assert_eq!(json["pools"][0]["rate"][0]["from"], "2026-11-08T00:00:00Z");
        let back: ScenarioTruth = serde_json::from_value(json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn rate_models_draw_the_structure_they_name() {
        let log = |p: &WorldPool| p.rate[0].1.ln();
        // Share of the log-rate variance explained by family and zone (a crude two-way R²).
        let explained = |w: &World| -> f64 {
            let all: Vec<f64> = w.pools.iter().map(log).collect();
            let mean = all.iter().sum::<f64>() / all.len() as f64;
            let total: f64 = all.iter().map(|x| (x - mean).powi(2)).sum();
            let group_mean = |key: &dyn Fn(&WorldPool) -> String, p: &WorldPool| {
                let same: Vec<f64> = w
                    .pools
                    .iter()
                    .filter(|q| key(q) == key(p))
                    .map(log)
                    .collect();
                same.iter().sum::<f64>() / same.len() as f64
            };
            let fam = |p: &WorldPool| p.pool_id.instance_type().family().to_owned();
            let zone = |p: &WorldPool| p.pool_id.availability_zone().to_string();
            let residual: f64 = w
                .pools
                .iter()
                .map(|p| (log(p) - group_mean(&fam, p) - group_mean(&zone, p) + mean).powi(2))
                .sum();
            1.0 - residual / total
        };
        let at = |m: RateModel| world_with(ScenarioKind::LongTail, m, 5, start(), 24);
        assert!(explained(&at(RateModel::Structured)) > 0.6);
        assert!(explained(&at(RateModel::Unstructured)) < 0.2);
        assert!(explained(&at(RateModel::Idiosyncratic)) < explained(&at(RateModel::Structured)));
        // Two kinds: about 15 % of the pools above 12 %.
        let two = at(RateModel::TwoKinds);
        let bad = two.pools.iter().filter(|p| p.rate[0].1 > 0.12).count();
        assert!((30..=110).contains(&bad), "{bad} of 432");
        // Bad traffic: the busiest 20 are far worse than the thinnest 20.
        let bt = world_with(
            ScenarioKind::Stationary,
            RateModel::BadTraffic,
            5,
            start(),
            24,
        );
        let mean_of =
            |ps: &[WorldPool]| ps.iter().map(|p| p.rate[0].1).sum::<f64>() / ps.len() as f64;
        assert!(mean_of(&bt.pools[..20]) > 3.0 * mean_of(&bt.pools[130..]));
        // Same structured worlds as before rate models existed.
        assert_eq!(
            at(RateModel::Structured),
            world(ScenarioKind::LongTail, 5, start(), 24)
        );
        for m in RateModel::ALL {
            assert_eq!(m.as_str().parse::<RateModel>().unwrap(), m);
            assert_eq!(at(m), at(m), "{m}");
        }
    }

    #[test]
    fn outages_worsen_one_region_and_one_family_in_the_last_day() {
        let w = build(ScenarioKind::Outages, 3);
        let worse: Vec<&WorldPool> = w
            .pools
            .iter()
            .filter(|p| p.rate_at(w.hours - 1) > p.rate_at(0))
            .collect();
        assert!(!worse.is_empty());
        for p in &worse {
            let first_change = p.rate[1].0;
            assert!(first_change >= w.hours - 24, "{p:?}");
        }
        let regions: BTreeSet<&str> = worse
            .iter()
            .map(|p| p.pool_id.availability_zone().region())
            .collect();
        let families: BTreeSet<&str> = worse
            .iter()
            .map(|p| p.pool_id.instance_type().family())
            .collect();
        // Every worse pool is in the region or the family.
        assert!(
            regions.len() + families.len() >= 2,
            "{regions:?} {families:?}"
        );
    }

    #[test]
    fn spikes_end_drift_moves_and_seasons_repeat() {
        let w = build(ScenarioKind::Spikes, 4);
        let spiky = w.pools.iter().filter(|p| p.rate.len() > 1).count();
        assert!(spiky > 75, "{spiky} of 150 pools with a spike");
        for p in &w.pools {
            // Between spikes the rate is the base rate again.
            assert!(p.rate.iter().any(|r| r.1 == p.rate[0].1));
        }
        let d = build(ScenarioKind::Drift, 4);
        for p in &d.pools {
            let rates: Vec<f64> = p.rate.iter().map(|r| r.1).collect();
            let up = rates.windows(2).all(|x| x[1] >= x[0]);
            let down = rates.windows(2).all(|x| x[1] <= x[0]);
            assert!(up || down, "{p:?}");
            assert!(p.rate.iter().all(|r| r.0 % DRIFT_STEP_HOURS == 0));
        }
        let s = build(ScenarioKind::Seasonality, 4);
        for (i, p) in s.pools.iter().enumerate() {
            if i < SEASONAL_POOLS {
                for h in 0..(s.hours - 24) {
                    assert_eq!(p.rate_at(h), p.rate_at(h + 24));
                }
                assert!(p.rate.len() > 24);
            } else {
                assert_eq!(p.rate.len(), 1);
            }
        }
    }
}
