//! pool-selector: ranks EC2 spot pools by how likely they are to lose a Spark job to a spot termination.
//!
//! * `pool_history` (its own crate): the history, raw NDJSON and rollups → per-pool tallies.
//! * `pool_ranking` (its own crate): the statistics: shared priors, change tests, strategies,
//!   probability of being best, alternatives, backtest. [`ranking`] turns tallies into its evidence.
//! * [`routes`]: HTTP handlers and the OpenAPI document; [`backtest`]: `/backtest` and its chart
//!   ([`chart`]); [`state`]: what the handlers share; [`scans`]: the bound on scans;
//!   [`startup`]: the server.
//!
//! Events reach the history through the `intake` service (`POST /events` → RabbitMQ →
//! ingest-worker); this service only reads.

pub mod backtest;
pub mod chart;
pub mod metrics;
pub mod ranking;
pub mod routes;
pub mod runtime;
pub mod scans;
pub mod settings;
pub mod startup;
pub mod state;

pub use settings::Settings;
pub use startup::Application;
