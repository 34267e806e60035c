//! `pool-core`: the pieces every Pool Selector service shares.
//!
//! * [`event`]: the Spark job event, parsed once at the edge into types that cannot be invalid.
//! * [`window`]: human time windows (`86400`, `24h`, `30m`, `7d`).
//! * [`storage`]: where events live (`EVENTS_URL` and the seed's S3 variables) and how objects are keyed.
//! * [`config`]: clap argument groups with environment fallbacks, flattened into each binary.
//! * [`telemetry`]: `tracing` set-up driven by `LOG_LEVEL` and `LOG_FORMAT`.
//! * [`metrics`] and [`http`]: Prometheus registry, request metrics middleware, `/health`, `/metrics`,
//!   and the JSON error body every service answers with.
//! * [`amqp`]: RabbitMQ topology (exchange, ingest queue, dead letters), the message format and a
//!   publisher with confirms and reconnects, shared by every producer and the ingest worker.
//! * [`request`]: the ranking query grammar shared by pool-selector and the relay (its cache key).
//! * [`redact`]: the one way a URL that may hold a secret is shown.
//! * [`tls`]: the crypto provider and the `TLS_CA_FILE` bundle for amqps, rediss and https clients.
//! * [`shutdown`]: one future that resolves on SIGTERM or Ctrl-C.

pub mod amqp;
pub mod config;
pub mod event;
pub mod http;
pub mod metrics;
pub mod redact;
pub mod request;
pub mod shutdown;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod window;

pub use event::{Event, EventError, InstanceType, Outcome, PoolId};
