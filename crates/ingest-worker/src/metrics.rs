//! What the worker counts, exposed on `/metrics` with the `ingest_worker_` prefix.

use prometheus::{Counter, Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

use pool_http::metrics::{LATENCY_BUCKETS, counter, counter_f64, counter_vec, gauge, histogram};

/// The worker's Prometheus metrics. Clones share the same series.
#[derive(Clone)]
pub struct WorkerMetrics {
    /// Messages received from the broker (including redeliveries and poison messages).
    pub messages_consumed: IntCounter,
    /// Valid events received.
    pub events_consumed: IntCounter,
    /// Events written to storage (acknowledged or about to be).
    pub events_written: IntCounter,
    /// Objects written to storage.
    pub objects_written: IntCounter,
    /// NDJSON bytes written to storage.
    pub bytes_written: IntCounter,
    /// Batches written and acknowledged.
    pub batches: IntCounter,
    /// Messages republished to the dead-letter exchange (poison and oversized messages, and the events
    /// of writes given up).
    pub dead_lettered: IntCounter,
    /// Messages larger than `MAX_MESSAGE_BYTES`, dead-lettered without being parsed.
    pub oversized: IntCounter,
    /// Objects whose write was given up after `WRITE_MAX_ATTEMPTS` permanent storage errors (their
    /// events go to the dead-letter exchange). Alert on any increase.
    pub write_given_up: IntCounter,
    /// Messages the worker could not dead-letter `DEAD_LETTER_MAX_ATTEMPTS` times and rejected without
    /// requeueing (to the queue's own dead-lettering). Alert on any increase.
    pub dead_letter_given_up: IntCounter,
    /// Errors by kind: `storage` (a write attempt failed transiently; it is retried),
    /// `storage_permanent` (a write attempt was refused for good; retried up to `WRITE_MAX_ATTEMPTS`),
    /// `broker` (connection or channel lost), `dead_letter` (a dead-letter publish was not confirmed).
    pub errors: IntCounterVec,
    /// Broker connections opened after the first one.
    pub reconnects: IntCounter,
    /// 1 while a consumer is registered with the broker.
    pub consuming: IntGauge,
    /// The basic.qos prefetch in use: `min(PREFETCH, MAX_INFLIGHT_BYTES / MAX_MESSAGE_BYTES)`, at
    /// least 2.
    pub effective_prefetch: IntGauge,
    /// Time from the first message of a batch to its acknowledgement.
    pub batch_latency: Histogram,
    /// Time to write all objects of a batch (including retries).
    pub write_latency: Histogram,
    /// Seconds of simulated work done (`SIMULATE_WORKLOAD_DURATION_IN_SEC` per message).
    pub simulated_work_seconds: Counter,
    /// 1 while a message is held for its simulated work.
    pub simulating: IntGauge,
}

impl WorkerMetrics {
    pub fn register(registry: &Registry) -> Self {
        let errors = counter_vec(
            registry,
            "errors_total",
            "Errors by kind (storage, storage_credentials, storage_permanent, broker, dead_letter).",
            &["kind"],
        );
        for kind in [
            "storage",
            "storage_credentials",
            "storage_permanent",
            "broker",
            "dead_letter",
        ] {
            errors.with_label_values(&[kind]);
        }
        Self {
            messages_consumed: counter(
                registry,
                "messages_consumed_total",
                "Messages received from RabbitMQ, redeliveries included.",
            ),
            events_consumed: counter(registry, "events_consumed_total", "Valid events received."),
            events_written: counter(
                registry,
                "events_written_total",
                "Events written to storage.",
            ),
            objects_written: counter(
                registry,
                "objects_written_total",
                "NDJSON objects written to storage.",
            ),
            bytes_written: counter(
                registry,
                "bytes_written_total",
                "NDJSON bytes written to storage.",
            ),
            batches: counter(
                registry,
                "batches_total",
                "Batches written and acknowledged.",
            ),
            dead_lettered: counter(
                registry,
                "dead_lettered_total",
                "Messages republished to the dead-letter exchange.",
            ),
            oversized: counter(
                registry,
                "messages_oversized_total",
                "Messages larger than MAX_MESSAGE_BYTES, dead-lettered without being parsed.",
            ),
            write_given_up: counter(
                registry,
                "write_given_up_total",
                "Objects whose write was refused WRITE_MAX_ATTEMPTS times; their events were dead-lettered.",
            ),
            dead_letter_given_up: counter(
                registry,
                "dead_letter_given_up_total",
                "Messages that could not be dead-lettered DEAD_LETTER_MAX_ATTEMPTS times; rejected without requeue.",
            ),
            errors,
            reconnects: counter(
                registry,
                "reconnects_total",
                "Broker connections opened after the first one.",
            ),
            consuming: gauge(
                registry,
                "consuming",
                "1 while a consumer is registered with RabbitMQ.",
            ),
            effective_prefetch: gauge(
                registry,
                "effective_prefetch",
                "The basic.qos prefetch in use: min(PREFETCH, MAX_INFLIGHT_BYTES / MAX_MESSAGE_BYTES), at least 2.",
            ),
            batch_latency: histogram(
                registry,
                "batch_latency_seconds",
                "Time from the first message of a batch to its acknowledgement.",
                LATENCY_BUCKETS,
            ),
            write_latency: histogram(
                registry,
                "write_duration_seconds",
                "Time to write all objects of a batch, retries included.",
                LATENCY_BUCKETS,
            ),
            simulated_work_seconds: counter_f64(
                registry,
                "simulated_work_seconds_total",
                "Seconds of simulated work done (SIMULATE_WORKLOAD_DURATION_IN_SEC per message).",
            ),
            simulating: gauge(
                registry,
                "simulating",
                "1 while a message is held for its simulated work (SIMULATE_WORKLOAD_DURATION_IN_SEC).",
            ),
        }
    }
}
