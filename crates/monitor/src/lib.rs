//! `monitor`: reads RabbitMQ queue statistics from the management API and publishes the replica count
//! each scaled workload should run, for the Kubernetes HPA (through the Prometheus adapter) and for
//! anything that reads the seed's `GET /desired-worker-scale`.
//!
//! * [`source`]: the management API client (credentials out of the URL, into a header).
//! * [`decision`]: the pure scaling decision — rules, clamping, activation, stabilisation, fallback.
//! * [`poller`]: the poll loop and the latest report per workload.
//! * [`metrics`]: the `pool_monitor_*` gauges the HPA and dashboards read.
//! * [`settings`], [`routes`], [`startup`]: configuration, HTTP handlers, `Application`.

pub mod decision;
pub mod metrics;
pub mod poller;
pub mod routes;
pub mod settings;
pub mod source;
pub mod startup;

pub use settings::Settings;
pub use startup::{Application, StartupError};
