//! `pool-core`: the domain every Pool Selector crate shares, and nothing that needs a server.
//!
//! * [`event`]: the Spark job event, parsed once at the edge into types that cannot be invalid, its
//!   hourly [`event::Partition`]s, and its NDJSON body format ([`event::ndjson`]).
//! * [`window`]: look-back windows; [`duration`]: the one duration grammar of settings and queries.
//! * [`request`]: the ranking query grammar shared by pool-selector and the relay (its cache key).
//! * [`config`]: clap argument groups with environment fallbacks, flattened into each binary.
//! * [`telemetry`]: `tracing` set-up driven by `LOG_LEVEL` and `LOG_FORMAT` (every binary logs).
//! * [`redact`]: the one way a URL that may hold a secret is shown.
//! * [`tls`]: the crypto provider and the `TLS_CA_FILE` bundle for amqps, rediss and https clients.
//! * [`shutdown`]: one future that resolves on SIGTERM or Ctrl-C.
//!
//! Storage (`pool-storage`), RabbitMQ (`pool-amqp`) and HTTP plumbing (`pool-http`) are crates of their
//! own, so a service compiles only the clients it uses.

pub mod config;
pub mod duration;
pub mod event;
pub mod redact;
pub mod request;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
pub mod view;
pub mod window;

pub use event::{Event, EventError, InstanceType, Outcome, PoolId};
