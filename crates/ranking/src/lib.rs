//! `pool-ranking`: the statistics behind the answer "which spot pool?", as pure functions with no I/O,
//! so they are tested exhaustively on their own and the same code serves requests, the backtest and
//! the regret benchmark.
//!
//! * [`evidence`]: what is known per pool (window counts, the last hours one by one).
//! * [`model`]: change tests, the empirical-Bayes prior shared across family and zone, the posterior.
//! * [`rank`]: scores per strategy (`naive`, `wilson`, `bayes`, `pooled`, `thompson`), the
//!   probability that the pick is best, and diverse alternatives.
//! * [`backtest`]: replaying hourly history, every strategy picking with only the past.
//! * [`stats`]: intervals, Beta quantiles and Fisher's exact test.

pub mod backtest;
pub mod evidence;
pub mod model;
pub mod rank;
pub mod stats;

pub use evidence::{Evidence, Hour, RECENT_HOURS};
pub use model::{Change, ChangeScope, Model, ModelConfig, PoolModel, fit};
pub use rank::{Params, Scored, Strategy, alternatives, probability_best, rank};
