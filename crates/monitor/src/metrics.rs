//! The monitor's Prometheus metrics. Every name carries the `pool_monitor_` namespace; the ones an
//! HPA reads through the Prometheus adapter are `pool_monitor_desired_replicas` (the answer) and the
//! queue gauges (for a plain queue-length HPA or a dashboard).
//!
//! | metric | labels | meaning |
//! | --- | --- | --- |
//! | `pool_monitor_desired_replicas` | workload, queue | replica count to run (after clamping, activation, stabilisation, fallback) |
//! | `pool_monitor_recommended_replicas` | workload, queue | this poll's recommendation before scale-down stabilisation |
//! | `pool_monitor_rule_replicas` | workload, queue, rule | each rule's value (`backlog`, `throughput`, `drain_time`); absent when it cannot be computed |
//! | `pool_monitor_worker_capacity_messages_per_second` | workload, queue | per-worker capacity the rules used |
//! | `pool_monitor_fallback` | workload, queue | 1 while the fallback replica count is in force |
//! | `pool_monitor_active` | workload, queue | 1 once the activation threshold was crossed (until the queue idles) |
//! | `pool_monitor_min_replicas`, `pool_monitor_max_replicas` | workload, queue | configured limits |
//! | `pool_monitor_source_up` | vhost, queue | 1 when the last read of the queue succeeded |
//! | `pool_monitor_queue_messages_ready` | vhost, queue | ready messages (absent while the source is down) |
//! | `pool_monitor_queue_messages_unacknowledged` | vhost, queue | delivered, not yet acknowledged |
//! | `pool_monitor_queue_consumers` | vhost, queue | consumers attached |
//! | `pool_monitor_queue_publish_rate` | vhost, queue | messages published per second |
//! | `pool_monitor_queue_ack_rate` | vhost, queue | messages acknowledged per second |
//! | `pool_monitor_queue_deliver_get_rate` | vhost, queue | messages delivered or fetched per second |
//! | `pool_monitor_source_polls_total` | vhost, queue, result | reads of the management API (`ok`, `error`) |
//! | `pool_monitor_source_poll_duration_seconds` | vhost, queue | latency of one read |
//! | `pool_monitor_source_last_success_timestamp_seconds` | vhost, queue | Unix time of the last successful read |

use pool_http::metrics::{counter_vec, gauge_vec, histogram_vec, int_gauge_vec};
use prometheus::{GaugeVec, HistogramVec, IntCounterVec, IntGaugeVec, Registry};

use crate::decision::{Decision, Policy, QueueStats};

/// Registry namespace: every metric name starts with `pool_monitor_`.
pub const NAMESPACE: &str = "pool_monitor";

const Q: &[&str] = &["vhost", "queue"];
const W: &[&str] = &["workload", "queue"];

/// Every gauge and counter the monitor exports besides the shared HTTP and process metrics.
#[derive(Clone)]
pub struct MonitorMetrics {
    desired: IntGaugeVec,
    recommended: IntGaugeVec,
    rule: IntGaugeVec,
    capacity: GaugeVec,
    fallback: IntGaugeVec,
    active: IntGaugeVec,
    min: IntGaugeVec,
    max: IntGaugeVec,
    source_up: IntGaugeVec,
    ready: IntGaugeVec,
    unacked: IntGaugeVec,
    consumers: IntGaugeVec,
    publish_rate: GaugeVec,
    ack_rate: GaugeVec,
    deliver_get_rate: GaugeVec,
    polls: IntCounterVec,
    poll_duration: HistogramVec,
    last_success: GaugeVec,
}

impl MonitorMetrics {
    pub fn register(r: &Registry) -> Self {
        Self {
            desired: int_gauge_vec(
                r,
                "desired_replicas",
                "Replica count the workload should run: feed this to the HPA (External metric, target AverageValue 1).",
                W,
            ),
            recommended: int_gauge_vec(
                r,
                "recommended_replicas",
                "This poll's recommendation before scale-down stabilisation.",
                W,
            ),
            rule: int_gauge_vec(
                r,
                "rule_replicas",
                "Replica count each rule asks for before clamping (backlog, throughput, drain_time).",
                &["workload", "queue", "rule"],
            ),
            capacity: gauge_vec(
                r,
                "worker_capacity_messages_per_second",
                "Per-worker capacity used by the throughput and drain-time rules.",
                W,
            ),
            fallback: int_gauge_vec(
                r,
                "fallback",
                "1 while the queue cannot be read and the fallback replica count is published.",
                W,
            ),
            active: int_gauge_vec(
                r,
                "active",
                "1 once the backlog crossed the activation threshold (until the queue goes idle).",
                W,
            ),
            min: int_gauge_vec(r, "min_replicas", "Configured minimum replica count.", W),
            max: int_gauge_vec(r, "max_replicas", "Configured maximum replica count.", W),
            source_up: int_gauge_vec(
                r,
                "source_up",
                "1 when the last read of the queue from the RabbitMQ management API succeeded.",
                Q,
            ),
            ready: int_gauge_vec(r, "queue_messages_ready", "Messages ready for delivery.", Q),
            unacked: int_gauge_vec(
                r,
                "queue_messages_unacknowledged",
                "Messages delivered and not yet acknowledged.",
                Q,
            ),
            consumers: int_gauge_vec(r, "queue_consumers", "Consumers attached to the queue.", Q),
            publish_rate: gauge_vec(
                r,
                "queue_publish_rate",
                "Messages published into the queue per second.",
                Q,
            ),
            ack_rate: gauge_vec(r, "queue_ack_rate", "Messages acknowledged per second.", Q),
            deliver_get_rate: gauge_vec(
                r,
                "queue_deliver_get_rate",
                "Messages delivered or fetched per second.",
                Q,
            ),
            polls: counter_vec(
                r,
                "source_polls_total",
                "Reads of the RabbitMQ management API by result (ok, error).",
                &["vhost", "queue", "result"],
            ),
            poll_duration: histogram_vec(
                r,
                "source_poll_duration_seconds",
                "Latency of one read of the RabbitMQ management API.",
                Q,
            ),
            last_success: gauge_vec(
                r,
                "source_last_success_timestamp_seconds",
                "Unix time of the last successful read of the queue.",
                Q,
            ),
        }
    }

    /// Record one read of a queue. On failure the depth and rate series are removed rather than
    /// left at their last values: a stale "0 ready" would read as "idle" to anyone graphing it.
    pub fn observe_source(
        &self,
        vhost: &str,
        queue: &str,
        stats: Option<&QueueStats>,
        seconds: f64,
    ) {
        let l = &[vhost, queue];
        self.poll_duration.with_label_values(l).observe(seconds);
        match stats {
            Some(s) => {
                self.polls.with_label_values(&[vhost, queue, "ok"]).inc();
                self.source_up.with_label_values(l).set(1);
                self.ready
                    .with_label_values(l)
                    .set(clamp_i64(s.messages_ready));
                self.unacked
                    .with_label_values(l)
                    .set(clamp_i64(s.messages_unacknowledged));
                self.consumers
                    .with_label_values(l)
                    .set(clamp_i64(s.consumers));
                self.publish_rate.with_label_values(l).set(s.publish_rate);
                self.ack_rate.with_label_values(l).set(s.ack_rate);
                self.deliver_get_rate
                    .with_label_values(l)
                    .set(s.deliver_get_rate);
                self.last_success.with_label_values(l).set(unix_now());
            }
            None => {
                self.polls.with_label_values(&[vhost, queue, "error"]).inc();
                self.source_up.with_label_values(l).set(0);
                let _ = self.ready.remove_label_values(l);
                let _ = self.unacked.remove_label_values(l);
                let _ = self.consumers.remove_label_values(l);
                let _ = self.publish_rate.remove_label_values(l);
                let _ = self.ack_rate.remove_label_values(l);
                let _ = self.deliver_get_rate.remove_label_values(l);
            }
        }
    }

    /// Publish one workload's decision.
    pub fn observe_decision(&self, workload: &str, queue: &str, policy: &Policy, d: &Decision) {
        let l = &[workload, queue];
        self.desired.with_label_values(l).set(i64::from(d.desired));
        self.recommended
            .with_label_values(l)
            .set(i64::from(d.recommendation));
        self.fallback
            .with_label_values(l)
            .set(i64::from(d.fallback));
        self.active.with_label_values(l).set(i64::from(d.active));
        self.min
            .with_label_values(l)
            .set(i64::from(policy.min_replicas));
        self.max
            .with_label_values(l)
            .set(i64::from(policy.max_replicas));
        match d.capacity_per_worker {
            Some(c) => self.capacity.with_label_values(l).set(c),
            None => {
                let _ = self.capacity.remove_label_values(l);
            }
        }
        for (name, value) in [
            ("backlog", d.rules.backlog),
            ("throughput", d.rules.throughput),
            ("drain_time", d.rules.drain_time),
        ] {
            let labels = &[workload, queue, name];
            match value {
                Some(v) => self.rule.with_label_values(labels).set(i64::from(v)),
                None => {
                    let _ = self.rule.remove_label_values(labels);
                }
            }
        }
    }
}

fn clamp_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
