//! intake: accepts job events over HTTP (`POST /events`) and publishes them to RabbitMQ, from where the
//! ingest-worker stores them.
//!
//! * [`settings`]: flags with environment fallbacks (`INTAKE_*`, `MAX_BODY_BYTES`, `MAX_CLOCK_SKEW`,
//!   `AMQP_*`, `PORT`, …).
//! * [`routes`]: `POST /events` with its bounds (bearer tokens, per-token rate, bodies at once, body
//!   timeout, body size, clock skew), `GET /ready`, and the OpenAPI document.
//! * [`metrics`]: the `intake_*` Prometheus metrics.
//! * [`startup`]: the server (`Application::build` → `port` → `run_until_stopped`).
//!
//! The publisher connects lazily, so the intake starts and answers `/health` while RabbitMQ is down;
//! `/ready` says whether the broker can be reached.

pub mod metrics;
pub mod routes;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::Application;
