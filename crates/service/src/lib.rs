//! `pool-service`: the set-up every Pool Selector binary shares and the domain does not need.
//!
//! * [`config`]: clap argument groups with environment fallbacks, flattened into each binary.
//! * [`telemetry`]: `tracing` set-up driven by `LOG_LEVEL` and `LOG_FORMAT` (every binary logs).
//! * [`redact`]: the one way a URL that may hold a secret is shown.
//! * [`tls`]: the crypto provider and the `TLS_CA_FILE` bundle for amqps, rediss and https clients.
//! * [`shutdown`]: one future that resolves on SIGTERM or Ctrl-C.
//!
//! Kept apart from `pool-core` so the pure crates (the domain, `pool-ranking`, the regret bench) compile
//! no clap, rustls, tokio or subscriber.

pub mod config;
pub mod redact;
pub mod shutdown;
pub mod telemetry;
pub mod tls;
