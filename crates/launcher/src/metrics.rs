//! The launcher's Prometheus metrics. Every name carries the `launcher_` namespace; every label has a
//! fixed, small set of values.
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `launcher_launches_total` | state | launches ended, by final state (COMPLETED, FAILED, CANCELLED) |
//! | `launcher_attempts_total` | outcome | attempts ended: succeeded, spot_termination, other_failure, timed_out, lost, submission_failed, cancelled |
//! | `launcher_attempt_duration_seconds` | outcome | an attempt's wall time, submission to end (histogram) |
//! | `launcher_outcomes_published_total` | | outcome events accepted by the intake |
//! | `launcher_publish_failures_total` | reason | outcome events the intake did not take: no_token, unauthorized, refused, rate_limited, unavailable (retried with backoff) |
//! | `launcher_outbox_depth` | | outcome events waiting in the outbox, as of the last reconcile |
//! | `launcher_outbox_dropped_total` | | outcome events given up after `LAUNCH_RETENTION` unpublished |
//! | `launcher_active_launches` | | launches holding a slot (`MAX_ACTIVE_LAUNCHES` counts them), as of the last reconcile |
//! | `launcher_http_requests_total`, `launcher_http_request_duration_seconds` | route, method, status | HTTP (from `pool_http`) |

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};

use pool_http::metrics::{
    HttpMetrics, counter, counter_vec, gauge, histogram_vec_with_buckets, new_registry,
};

use crate::clients::PublishFailure;

pub const NAMESPACE: &str = "launcher";

/// Attempt outcomes, the values of the `outcome` label ([`crate::launch::Attempt::outcome_label`]).
pub const OUTCOMES: [&str; 7] = [
    "succeeded",
    "spot_termination",
    "other_failure",
    "timed_out",
    "lost",
    "submission_failed",
    "cancelled",
];

/// From a second (a simulated run) to a day (`MAX_ATTEMPT_DURATION` can be long).
pub const ATTEMPT_BUCKETS: &[f64] = &[
    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
    28800.0, 86400.0,
];

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
    pub attempt_duration: HistogramVec,
    pub published: IntCounter,
    pub publish_failures: IntCounterVec,
    pub outbox_depth: IntGauge,
    pub outbox_dropped: IntCounter,
    pub active: IntGauge,
}

impl LauncherMetrics {
    pub fn register(registry: &Registry) -> Self {
        let m = Self {
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
            attempt_duration: histogram_vec_with_buckets(
                registry,
                "attempt_duration_seconds",
                "Wall time of an attempt, from its submission to its end, by outcome.",
                &["outcome"],
                ATTEMPT_BUCKETS,
            ),
            published: counter(
                registry,
                "outcomes_published_total",
                "Outcome events accepted by the intake.",
            ),
            publish_failures: counter_vec(
                registry,
                "publish_failures_total",
                "Outcome events the intake did not take, by reason (they stay in the outbox and are retried).",
                &["reason"],
            ),
            outbox_depth: gauge(
                registry,
                "outbox_depth",
                "Outcome events waiting to be published, as of the last reconcile.",
            ),
            outbox_dropped: counter(
                registry,
                "outbox_dropped_total",
                "Outcome events given up after LAUNCH_RETENTION without being published.",
            ),
            active: gauge(
                registry,
                "active_launches",
                "Launches holding a slot (not finished), as of the last reconcile.",
            ),
        };
        // Every series exists from the start (at 0), so rates, alerts and dashboards see the first
        // event, and a scrape of an idle launcher already lists every name.
        for r in PublishFailure::ALL {
            m.publish_failures.with_label_values(&[r.label()]);
        }
        for o in OUTCOMES {
            m.attempts.with_label_values(&[o]);
            m.attempt_duration.with_label_values(&[o]);
        }
        for s in ["COMPLETED", "FAILED", "CANCELLED"] {
            m.launches.with_label_values(&[s]);
        }
        m
    }

    /// An attempt ended with `outcome` after `seconds`.
    pub fn attempt_ended(&self, outcome: &str, seconds: Option<f64>) {
        self.attempts.with_label_values(&[outcome]).inc();
        if let Some(s) = seconds {
            self.attempt_duration
                .with_label_values(&[outcome])
                .observe(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_from_the_start() {
        let m = Metrics::new();
        let text = pool_http::metrics::encode(&m.registry);
        for name in [
            "launcher_attempt_duration_seconds_bucket",
            "launcher_attempts_total",
            "launcher_launches_total",
            "launcher_outbox_depth",
            "launcher_outbox_dropped_total",
            "launcher_publish_failures_total",
            "launcher_active_launches",
        ] {
            assert!(text.contains(name), "{name} is exported");
        }
        assert!(text.contains(r#"launcher_publish_failures_total{reason="no_token"} 0"#));
        m.launcher.attempt_ended("timed_out", Some(90.0));
        let text = pool_http::metrics::encode(&m.registry);
        assert!(text.contains(r#"launcher_attempt_duration_seconds_count{outcome="timed_out"} 1"#));
        assert!(text.contains(r#"launcher_attempts_total{outcome="timed_out"} 1"#));
    }
}
