//! pool-selector: ranks EC2 spot pools by how likely they are to lose a Spark job to a spot termination.
//!
//! * `pool_history` (its own crate): the live view of the history (raw NDJSON and rollups read once
//!   into per-minute, per-hour and per-day tallies in memory).
//! * `pool_ranking` (its own crate): the statistics: shared priors, change tests, strategies,
//!   probability of being best, alternatives, backtest. [`ranking`] turns tallies into its evidence.
//! * [`inputs`]: the AZ-ID map and the outside signals, read at startup.
//! * [`routes`]: HTTP handlers and the OpenAPI document; [`backtest`]: `/backtest` and its chart
//!   ([`chart`]); [`state`]: what the handlers share; [`fits`]: the model fitted once per view
//!   version and window; [`startup`]: the server and the view's refresh loop.
//!
//! Events reach the history through the `intake` service (`POST /events` → RabbitMQ →
//! ingest-worker); this service only reads.

pub mod backtest;
pub mod chart;
pub mod fits;
pub mod inputs;
pub mod metrics;
pub mod ranking;
pub mod routes;
pub mod runtime;
pub mod settings;
pub mod startup;
pub mod state;

pub use settings::Settings;
pub use startup::Application;
