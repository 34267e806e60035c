//! The intake's Prometheus metrics. Every name carries the `intake_` namespace.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `intake_events_accepted_total` | | events accepted by `POST /events` (confirmed by RabbitMQ) |
//! | `intake_events_refused_total` | reason | requests refused by `POST /events`, by error code |
//! | `intake_http_requests_total` | route, method, status | HTTP requests (from `pool_http`) |
//! | `intake_http_request_duration_seconds` | route, method | HTTP latency (from `pool_http`) |
//!
//! plus the process collector's `intake_process_*`.

use prometheus::{IntCounter, IntCounterVec, Registry};

use pool_http::metrics::{HttpMetrics, counter, counter_vec, new_registry};

/// Registry namespace: every metric name starts with `intake_`.
pub const NAMESPACE: &str = "intake";

/// The intake's registry and what is recorded in it.
pub struct Metrics {
    pub registry: Registry,
    pub http: HttpMetrics,
    pub intake: IntakeMetrics,
}

impl Metrics {
    /// A fresh registry (with the process collector) and every metric registered in it.
    pub fn new() -> Self {
        let registry = new_registry(NAMESPACE);
        Self {
            http: HttpMetrics::register(&registry),
            intake: IntakeMetrics::register(&registry),
            registry,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// What `POST /events` counts.
#[derive(Clone)]
pub struct IntakeMetrics {
    /// Events confirmed by the broker.
    pub accepted: IntCounter,
    /// Refused requests by reason (the error code of the answer).
    pub refused: IntCounterVec,
}

impl IntakeMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            accepted: counter(
                registry,
                "events_accepted_total",
                "Events accepted by POST /events (confirmed by RabbitMQ).",
            ),
            refused: counter_vec(
                registry,
                "events_refused_total",
                "Requests refused by POST /events, by reason (invalid_events, payload_too_large, unauthorized, rate_limited, busy, broker_*).",
                &["reason"],
            ),
        }
    }
}
