//! pool-selector: ranks EC2 spot pools by how likely they are to lose a Spark job to a spot termination.
//!
//! * `pool_history` (its own crate): the history, raw NDJSON and rollups → per-pool tallies.
//! * [`ranking`]: the statistics (Wilson, Beta posterior, the seed's naive rate) and the ordering.
//! * [`api`]: HTTP handlers and the OpenAPI document; [`app`]: the server.
//! * `intake`: `POST /events`, validated and published to RabbitMQ with publisher confirms.

pub mod api;
pub mod app;
mod intake;
pub mod metrics;
pub mod ranking;
pub mod runtime;
pub mod scans;
pub mod settings;

pub use app::Application;
pub use settings::Settings;
