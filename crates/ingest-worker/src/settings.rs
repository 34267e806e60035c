//! Configuration: flags with environment fallbacks.

use std::time::Duration;

use clap::{Args, Parser};
use pool_amqp::AmqpArgs;
use pool_core::duration::parse_arg as parse_duration_flag;
use pool_service::config::TelemetryArgs;
use pool_storage::StorageArgs;

/// Default port of the `/metrics` and `/health` endpoints.
pub const DEFAULT_METRICS_PORT: u16 = 9091;
/// Default `MAX_MESSAGE_BYTES` (512 KiB): twice producers' default `AMQP_MESSAGE_MAX_BYTES` (256 KiB),
/// so that a producer's message, which may exceed that size by one event, is always accepted.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 512 * 1024;
/// Default `MAX_INFLIGHT_BYTES` (256 MiB).
pub const DEFAULT_MAX_INFLIGHT_BYTES: usize = 256 * 1024 * 1024;
/// Default `WRITE_MAX_ATTEMPTS`.
pub const DEFAULT_WRITE_MAX_ATTEMPTS: u32 = 5;
/// Default `DEAD_LETTER_MAX_ATTEMPTS`.
pub const DEFAULT_DEAD_LETTER_MAX_ATTEMPTS: u32 = 5;
/// Default `WRITE_CREDENTIALS_RETRY_FOR`.
pub const DEFAULT_WRITE_CREDENTIALS_RETRY_FOR: Duration = Duration::from_secs(15 * 60);

/// Seconds as the seed wrote them (`2`, `0.5`), or a duration (`500ms`, `2s`).
fn seconds_or_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return t
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("{s:?} is not a number of seconds"));
    }
    parse_duration_flag(s)
}

/// A byte count of at least 1.
fn positive_bytes(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1 byte".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number of bytes")),
    }
}

/// When a batch is written.
#[derive(Args, Debug, Clone)]
pub struct BatchArgs {
    /// Write the batch once it holds this many events.
    #[arg(long, env = "BATCH_MAX_EVENTS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_max_events: u32,
    /// Write the batch once the bytes it holds reach this many (default 8 MiB): the NDJSON of its
    /// events plus the bodies of the messages it will dead-letter.
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

/// Bounds on memory and on retries: what keeps one bad message, or a store that refuses every write,
/// from exhausting the worker or stalling the queue.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Largest message body accepted, in bytes (default 512 KiB; keep it at least producers'
    /// `AMQP_MESSAGE_MAX_BYTES`, 256 KiB by default). A larger message is dead-lettered, unparsed, with
    /// a reason naming this setting.
    ///
    /// Set RabbitMQ's own `max_message_size` (rabbitmq.conf) to the same value: the broker then refuses
    /// larger messages at publish time, before anyone buffers them, and the worker's check becomes a
    /// second line of defence.
    #[arg(long, env = "MAX_MESSAGE_BYTES", default_value_t = DEFAULT_MAX_MESSAGE_BYTES,
          value_parser = positive_bytes)]
    pub max_message_bytes: usize,
    /// Bytes of messages the worker may hold unacknowledged (default 256 MiB). The prefetch is lowered
    /// to `MAX_INFLIGHT_BYTES / MAX_MESSAGE_BYTES` when that is smaller than `PREFETCH` (see
    /// [`Settings::effective_prefetch`]).
    #[arg(long, env = "MAX_INFLIGHT_BYTES", default_value_t = DEFAULT_MAX_INFLIGHT_BYTES,
          value_parser = positive_bytes)]
    pub max_inflight_bytes: usize,
    /// Attempts at writing an object that fail with a permanent storage error (no such bucket, any
    /// other 4xx but 401, 403, 408, 409 and 429) before the write is given up: its events are then
    /// published to the dead-letter exchange (with the error in `x-rejection-reason` and the hourly
    /// partition in `x-partition`) and the messages acknowledged. Transient errors (5xx, timeouts,
    /// connection errors) are retried for as long as it takes.
    #[arg(long, env = "WRITE_MAX_ATTEMPTS", default_value_t = DEFAULT_WRITE_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub write_max_attempts: u32,
    /// First delay between attempts at writing an object (doubling, with jitter).
    #[arg(long, env = "WRITE_RETRY_MIN_DELAY", default_value = "100ms", value_parser = parse_duration_flag)]
    pub write_retry_min_delay: Duration,
    /// Longest delay between attempts at writing an object.
    #[arg(long, env = "WRITE_RETRY_MAX_DELAY", default_value = "10s", value_parser = parse_duration_flag)]
    pub write_retry_max_delay: Duration,
    /// How long a write is retried while the store refuses its credentials or clock (any 401/403,
    /// `RequestTimeTooSkewed`, `ExpiredToken`, `InvalidAccessKeyId`, …: credentials being renewed, a
    /// clock resynchronising, a policy propagating) before its events are dead-lettered.
    #[arg(long, env = "WRITE_CREDENTIALS_RETRY_FOR", default_value = "15m", value_parser = parse_duration_flag)]
    pub write_credentials_retry_for: Duration,
    /// Failed attempts at dead-lettering one message (the dead-letter exchange is missing, routes it
    /// nowhere, refuses it, or does not confirm it), counted across redeliveries, before the worker
    /// gives up: it then rejects the message without requeueing it, so the broker's own dead-lettering
    /// of the ingest queue (`x-dead-letter-exchange`) takes it — or drops it, if that cannot route it
    /// either — and the queue moves on.
    #[arg(long, env = "DEAD_LETTER_MAX_ATTEMPTS", default_value_t = DEFAULT_DEAD_LETTER_MAX_ATTEMPTS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub dead_letter_max_attempts: u32,
}

impl Default for LimitArgs {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            write_max_attempts: DEFAULT_WRITE_MAX_ATTEMPTS,
            write_retry_min_delay: Duration::from_millis(100),
            write_retry_max_delay: Duration::from_secs(10),
            write_credentials_retry_for: DEFAULT_WRITE_CREDENTIALS_RETRY_FOR,
            dead_letter_max_attempts: DEFAULT_DEAD_LETTER_MAX_ATTEMPTS,
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
    /// Unacknowledged messages the broker may push ahead (basic.qos), at most: the prefetch actually
    /// used is [`Settings::effective_prefetch`], which also bounds the bytes in flight. A batch is also
    /// written when it holds half the effective prefetch in messages, so the broker keeps delivering
    /// while a batch is being written.
    #[arg(long, env = "PREFETCH", default_value_t = 1000,
          value_parser = clap::value_parser!(u16).range(2..))]
    pub prefetch: u16,
    #[command(flatten)]
    pub limits: LimitArgs,
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
    /// Simulated work per message, for load tests and `make scale-demo` (seed 003's variable; off by
    /// default): each message is held, unacknowledged, this long before it is stored and acknowledged
    /// on its own, so a backlog builds up and the monitor's desired scale rises. Seconds (`2`, `0.5`)
    /// or a duration (`500ms`); 0 = off.
    #[arg(long = "simulate-workload", env = "SIMULATE_WORKLOAD_DURATION_IN_SEC",
          default_value = "0", value_parser = seconds_or_duration)]
    pub simulate_workload: Duration,
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
            limits: LimitArgs::default(),
            write_concurrency: 8,
            metrics_host: "127.0.0.1".into(),
            metrics_port: 0,
            shutdown_grace: Duration::from_secs(25),
            simulate_workload: Duration::ZERO,
        }
    }

    /// The basic.qos prefetch actually used: `min(PREFETCH, MAX_INFLIGHT_BYTES / MAX_MESSAGE_BYTES)`,
    /// at least 2. Since no accepted message is larger than `MAX_MESSAGE_BYTES`, the broker can never
    /// push more than `MAX_INFLIGHT_BYTES` of them ahead (unless that is less than two messages).
    pub fn effective_prefetch(&self) -> u16 {
        let by_bytes = self.limits.max_inflight_bytes / self.limits.max_message_bytes.max(1);
        by_bytes.clamp(2, self.prefetch.max(2) as usize) as u16
    }

    /// Messages in a batch that make it full: half the effective prefetch window (see
    /// [`Settings::prefetch`]).
    pub fn batch_max_messages(&self) -> usize {
        (self.effective_prefetch() as usize / 2).max(1)
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
        assert_eq!(s.limits.max_message_bytes, 512 * 1024);
        assert_eq!(s.limits.max_inflight_bytes, 256 * 1024 * 1024);
        assert_eq!(s.limits.write_max_attempts, 5);
        assert_eq!(s.limits.dead_letter_max_attempts, 5);
        assert_eq!(s.limits.write_retry_min_delay, Duration::from_millis(100));
        assert_eq!(s.limits.write_retry_max_delay, Duration::from_secs(10));
        // 256 MiB / 512 KiB = 512 messages of the largest accepted size, fewer than PREFETCH (1000).
        assert_eq!(s.effective_prefetch(), 512);
        assert_eq!(s.batch_max_messages(), 256);
        // Producers' default messages are accepted.
        assert!(s.limits.max_message_bytes >= s.amqp.message_max_bytes);
        assert!(s.limits.max_message_bytes >= pool_amqp::AmqpArgs::default().message_max_bytes);
        let d = Settings::new(s.amqp.clone(), s.storage.clone());
        assert_eq!(d.limits.max_message_bytes, s.limits.max_message_bytes);
        assert_eq!(d.limits.max_inflight_bytes, s.limits.max_inflight_bytes);
        assert_eq!(d.effective_prefetch(), s.effective_prefetch());
        let s = Settings::try_parse_from(["ingest-worker", "--batch-max-age", "250ms"]).unwrap();
        assert_eq!(s.batch.batch_max_age, Duration::from_millis(250));
        assert!(Settings::try_parse_from(["ingest-worker", "--batch-max-events", "0"]).is_err());
        assert!(Settings::try_parse_from(["ingest-worker", "--max-message-bytes", "0"]).is_err());
        assert!(Settings::try_parse_from(["ingest-worker", "--write-max-attempts", "0"]).is_err());
    }

    #[test]
    fn the_simulated_workload_is_off_by_default_and_takes_the_seeds_seconds() {
        let parse = |v: &str| {
            Settings::try_parse_from(["ingest-worker", "--simulate-workload", v])
                .map(|s| s.simulate_workload)
        };
        assert_eq!(
            Settings::try_parse_from(["ingest-worker"])
                .unwrap()
                .simulate_workload,
            Duration::ZERO
        );
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("0.5").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        for bad in ["-1", "soon", "1.2.3", ""] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_prefetch_is_bounded_by_bytes() {
        let parse = |args: &[&str]| {
            let mut all = vec!["ingest-worker"];
            all.extend_from_slice(args);
            Settings::try_parse_from(all).unwrap()
        };
        // The byte bound is smaller: 64 KiB / 4 KiB = 16.
        let s = parse(&[
            "--max-message-bytes",
            "4096",
            "--max-inflight-bytes",
            "65536",
        ]);
        assert_eq!(s.effective_prefetch(), 16);
        assert_eq!(s.batch_max_messages(), 8);
        // PREFETCH is smaller.
        let s = parse(&["--prefetch", "10", "--max-message-bytes", "4096"]);
        assert_eq!(s.effective_prefetch(), 10);
        // Never below 2, even when not even one message of the largest size fits.
        let s = parse(&["--max-message-bytes", "4096", "--max-inflight-bytes", "100"]);
        assert_eq!(s.effective_prefetch(), 2);
        assert_eq!(s.batch_max_messages(), 1);
        // Far more than u16 by bytes: PREFETCH wins.
        let s = parse(&[
            "--max-message-bytes",
            "1",
            "--max-inflight-bytes",
            "1000000000",
        ]);
        assert_eq!(s.effective_prefetch(), 1000);
    }
}
