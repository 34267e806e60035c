//! ingest-worker's black-box tests, one binary: the worker in-process (`helpers::spawn_app`) or as its
//! binary (`helpers::WorkerProcess`), against the real test broker and S3 server
//! (`scripts/test-services.sh`) and local folders.
//!
//! * `worker`: batching and hourly partitioning, dead letters, the graceful stop, broker outages, the
//!   topology.
//! * `bounds`: bytes in flight, a store that refuses every write, dead letters the broker will not
//!   take.
//! * `recovery`: SIGKILL mid-batch and a restart, SIGTERM with an open batch.
//! * `simulate`: `SIMULATE_WORKLOAD_DURATION_IN_SEC` holds each message unacknowledged for its work.
//!
//! Tests that need other services (event-generator, intake, pool-selector) live in `crates/e2e`.

mod bounds;
mod helpers;
mod recovery;
mod simulate;
mod worker;
