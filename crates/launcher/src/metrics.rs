//! The launcher's Prometheus metrics. Every name carries the `launcher_` namespace.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `launcher_launches_total` | state | launches ended, by final state (COMPLETED, FAILED, CANCELLED) |
//! | `launcher_attempts_total` | outcome | attempts ended: succeeded, spot_termination, other_failure, cancelled |
//! | `launcher_outcomes_published_total` | | outcome events accepted by the intake |
//! | `launcher_publish_failures_total` | | outcome events the intake did not accept (retried) |
//! | `launcher_active_launches` | | launches not finished, as of the last reconcile |
//! | `launcher_http_requests_total`, `launcher_http_request_duration_seconds` | route, method, status | HTTP (from `pool_http`) |

use prometheus::{IntCounter, IntCounterVec, IntGauge, Registry};

use pool_http::metrics::{HttpMetrics, counter_vec, new_registry, register};

pub const NAMESPACE: &str = "launcher";

pub struct Metrics {
    pub registry: Registry,
    pub http: HttpMetrics,
    pub launcher: LauncherMetrics,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = new_registry(NAMESPACE);
        Self {
            http: HttpMetrics::register(&registry),
            launcher: LauncherMetrics::register(&registry),
            registry,
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Clone)]
pub struct LauncherMetrics {
    pub launches: IntCounterVec,
    pub attempts: IntCounterVec,
    pub published: IntCounter,
    pub publish_failures: IntCounter,
    pub active: IntGauge,
}

impl LauncherMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            launches: counter_vec(
                registry,
                "launches_total",
                "Launches ended, by final state.",
                &["state"],
            ),
            attempts: counter_vec(
                registry,
                "attempts_total",
                "Attempts ended, by outcome.",
                &["outcome"],
            ),
            published: register(
                registry,
                IntCounter::new(
                    "outcomes_published_total",
                    "Outcome events accepted by the intake.",
                )
                .unwrap(),
            ),
            publish_failures: register(
                registry,
                IntCounter::new(
                    "publish_failures_total",
                    "Outcome events the intake did not accept (they are retried).",
                )
                .unwrap(),
            ),
            active: register(
                registry,
                IntGauge::new(
                    "active_launches",
                    "Launches not finished, as of the last reconcile.",
                )
                .unwrap(),
            ),
        }
    }
}
