//! `pool-core`: the domain every Pool Selector crate shares, and nothing that needs a server.
//!
//! * [`event`]: the Spark job event, parsed once at the edge into types that cannot be invalid, its
//!   hourly [`event::Partition`]s, and its NDJSON body format ([`event::ndjson`]).
//! * [`clock`]: the one clock trait of services that decide by time, with a manual clock for tests.
//! * [`window`]: look-back windows; [`duration`]: the one duration grammar of settings and queries.
//! * [`request`]: the ranking query grammar shared by pool-selector and the relay (its cache key).
//! * [`view`]: what clients (the relay's page, `poolctl`) read of the ranking answers, and how its numbers are shown.
//!
//! Service set-up (clap groups, telemetry, TLS, redaction, signals) is `pool-service`; storage
//! (`pool-storage`), RabbitMQ (`pool-amqp`), Redis (`pool-redis`) and HTTP plumbing (`pool-http`) are
//! crates of their own, so a crate compiles only what it uses: this one needs serde and chrono.

pub mod clock;
pub mod duration;
pub mod event;
pub mod request;
pub mod view;
pub mod window;

pub use event::{Event, EventError, InstanceType, Outcome, PoolId};
