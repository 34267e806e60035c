//! Black-box tests of `poolctl`: the real binary (assert_cmd) against the real services started in
//! this process (pool-selector over S3, the relay with Redis, the intake with RabbitMQ, the monitor,
//! the launcher),
//! checking what people and scripts rely on: tables, JSON, exit codes, and errors that say what to do.

mod dlq;
mod events;
mod failures;
mod helpers;
mod import;
mod launch;
mod ranking;
mod scale;
