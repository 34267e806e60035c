//! Configuration: flags with environment fallbacks.

use std::time::Duration;

use clap::{Args, Parser};
use pool_core::amqp::{AmqpArgs, parse_duration_flag};
use pool_core::config::{StorageArgs, TelemetryArgs};

/// Default port of the `/metrics` and `/health` endpoints.
pub const DEFAULT_METRICS_PORT: u16 = 9091;

/// When a batch is written.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// Write the batch once it holds this many events.
    #[arg(long, env = "BATCH_MAX_EVENTS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_max_events: u32,
    /// Write the batch once its NDJSON reaches this many bytes (default 8 MiB).
    #[arg(long, env = "BATCH_MAX_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub batch_max_bytes: usize,
    /// Write the batch once its first message is this old (e.g. 2s, 500ms): bounds the time from
    /// publish to visible when traffic is light.
    #[arg(long, env = "BATCH_MAX_AGE", default_value = "2s", value_parser = parse_duration_flag)]
    pub batch_max_age: Duration,
}

impl Default for BatchArgs {
    fn default() -> Self {
        Self {
            batch_max_events: 10_000,
            batch_max_bytes: 8 * 1024 * 1024,
            batch_max_age: Duration::from_secs(2),
        }
    }
}

/// Everything the worker is configured with.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ingest-worker",
    version,
    about = "Consumes job events from RabbitMQ and writes hourly partitioned NDJSON objects to EVENTS_URL."
)]
pub struct Settings {
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub batch: BatchArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Unacknowledged messages the broker may push ahead (basic.qos). A batch is also written when it
    /// holds half this many messages, so the broker keeps delivering while a batch is being written.
    #[arg(long, env = "PREFETCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(2..))]
    pub prefetch: u16,
    /// Objects of one batch written at the same time.
    #[arg(long, env = "WRITE_CONCURRENCY", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub write_concurrency: u16,
    /// Address of the /metrics and /health endpoints.
    #[arg(long, env = "METRICS_HOST", default_value = "0.0.0.0")]
    pub metrics_host: String,
    /// Port of the /metrics and /health endpoints (0 picks a free one).
    #[arg(long, env = "METRICS_PORT", default_value_t = DEFAULT_METRICS_PORT)]
    pub metrics_port: u16,
    /// After SIGTERM: time allowed to stop consuming, write and acknowledge the open batch.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration_flag)]
    pub shutdown_grace: Duration,
}

impl Settings {
    /// Settings for tests and tools: a broker, a storage location, defaults for the rest, metrics on a
    /// free port of 127.0.0.1.
    pub fn new(amqp: AmqpArgs, storage: StorageArgs) -> Self {
        Self {
            amqp,
            storage,
            batch: BatchArgs::default(),
            telemetry: TelemetryArgs::default(),
            prefetch: 1000,
            write_concurrency: 8,
            metrics_host: "127.0.0.1".into(),
            metrics_port: 0,
            shutdown_grace: Duration::from_secs(25),
        }
    }

    /// Messages in a batch that make it full: half the prefetch window (see [`Settings::prefetch`]).
    pub fn batch_max_messages(&self) -> usize {
        (self.prefetch as usize / 2).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults() {
        let s = Settings::try_parse_from(["ingest-worker"]).unwrap();
        assert_eq!(s.batch.batch_max_events, 10_000);
        assert_eq!(s.batch.batch_max_bytes, 8 * 1024 * 1024);
        assert_eq!(s.batch.batch_max_age, Duration::from_secs(2));
        assert_eq!(s.metrics_port, DEFAULT_METRICS_PORT);
        assert_eq!(s.batch_max_messages(), 500);
        let s = Settings::try_parse_from(["ingest-worker", "--batch-max-age", "250ms"]).unwrap();
        assert_eq!(s.batch.batch_max_age, Duration::from_millis(250));
        assert!(Settings::try_parse_from(["ingest-worker", "--batch-max-events", "0"]).is_err());
    }
}
