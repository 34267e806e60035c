//! `pool-ranking`: the statistics behind the answer "which spot pool?", as pure functions with no I/O,
//! so they are tested exhaustively on their own and the same code serves requests, the backtest and
//! the regret benchmark.
//!
//! * [`evidence`]: what is known per pool (window counts, the hourly series).
//! * [`hierarchy`]: the shared prior, an estimated hierarchy (region, zone, family, size, type,
//!   family × zone, outside signals) with fitted variance components and leave-one-out priors.
//! * [`changes`]: change points as a posterior, per pool and per zone, region and family.
//! * [`model`]: both together, the per-pool posterior and what the API reports of it.
//! * [`mod@rank`]: scores per strategy (`naive`, `wilson`, `bayes`, `pooled`, `pooled-v1`, `thompson`),
//!   the pick's confidence ([`integrate`]: probability of being best and expected regret) and diverse
//!   alternatives.
//! * [`backtest`]: replaying hourly history, every strategy picking with only the past, scored
//!   without bias.
//! * [`zones`], [`signals`]: AZ IDs, Spot Advisor bands and placement scores, parsed from their JSON.
//! * [`v1`]: the previous model (`pooled-v1`).
//! * [`stats`], [`special`]: intervals, Fisher's test, fast special functions.

pub mod backtest;
pub mod changes;
pub mod evidence;
pub mod hierarchy;
pub mod integrate;
pub mod model;
pub mod rank;
pub mod signals;
pub mod special;
pub mod stats;
pub mod v1;
pub mod zones;

pub use changes::{Change, ChangeConfig, ChangeScope};
pub use evidence::{Evidence, Hour, RECENT_HOURS, SERIES_HOURS};
pub use hierarchy::{LevelFit, LevelKind};
pub use model::{Model, ModelConfig, PoolModel, fit};
pub use rank::{
    Confidence, Params, Scored, Strategy, alternatives, confidence, posteriors, probability_best,
    probe, rank,
};
pub use signals::Signals;
pub use zones::ZoneIds;
