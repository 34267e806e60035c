//! pool-selector: ranks EC2 spot pools by how likely they are to lose a Spark job to a spot termination.
//!
//! * `pool_history` (its own crate): the history, raw NDJSON and rollups → per-pool tallies.
//! * `pool_ranking` (its own crate): the statistics: shared priors, change tests, strategies,
//!   probability of being best, alternatives, backtest. [`ranking`] turns tallies into its evidence.
//! * [`api`]: HTTP handlers and the OpenAPI document; [`backtest`]: `/backtest` and its chart
//!   ([`chart`]); [`app`]: the server.
//! * `intake`: `POST /events`, validated and published to RabbitMQ with publisher confirms.

pub mod api;
pub mod app;
pub mod backtest;
pub mod chart;
mod intake;
pub mod metrics;
pub mod ranking;
pub mod runtime;
pub mod scans;
pub mod settings;

pub use app::Application;
pub use settings::Settings;
