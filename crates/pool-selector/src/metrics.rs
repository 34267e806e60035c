//! pool-selector's own Prometheus metrics (HTTP metrics come from `pool_http`): what the live view
//! reads and how current it is.

use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus::{Gauge, Histogram, IntCounter, IntGauge, Registry};

use pool_history::QueryError;
use pool_history::live::{RefreshReport, ViewObserver, ViewStatus};
use pool_http::metrics::{LATENCY_BUCKETS, counter, gauge, gauge_f64, histogram};

#[derive(Clone)]
pub struct SelectorMetrics {
    objects: IntCounter,
    bytes: IntCounter,
    events: IntCounter,
    bad_lines: IntCounter,
    quarantined_objects: IntCounter,
    replaced_hours: IntCounter,
    future_events: IntCounter,
    refresh_seconds: Histogram,
    refresh_errors: IntCounter,
    age: Gauge,
    loaded: IntGauge,
    version: IntGauge,
    pools: IntGauge,
    memory: IntGauge,
    dedup_hashes: IntGauge,
}

impl SelectorMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            objects: counter(
                registry,
                "view_objects_read_total",
                "Raw event objects read into the live view (each once, but for hours read again after a change).",
            ),
            bytes: counter(
                registry,
                "view_bytes_read_total",
                "Bytes of raw event objects read into the live view.",
            ),
            events: counter(
                registry,
                "view_events_total",
                "Distinct events added to the live view (from raw objects and rollups).",
            ),
            bad_lines: counter(
                registry,
                "bad_lines_total",
                "Malformed lines found in event objects (skipped; the object's other lines count).",
            ),
            quarantined_objects: counter(
                registry,
                "quarantined_objects_total",
                "Event objects found to hold malformed lines; their valid lines are still used.",
            ),
            replaced_hours: counter(
                registry,
                "view_replaced_hours_total",
                "Hours of the view replaced after a change (a late object, a rewritten rollup).",
            ),
            future_events: counter(
                registry,
                "view_future_events_total",
                "Events stamped further ahead than MAX_CLOCK_SKEW when read: left out of every window until their time comes.",
            ),
            refresh_seconds: histogram(
                registry,
                "view_refresh_duration_seconds",
                "Wall time of one refresh of the live view (listing and reading what is new).",
                LATENCY_BUCKETS,
            ),
            refresh_errors: counter(
                registry,
                "view_refresh_errors_total",
                "Refreshes of the live view that failed (storage unreachable, …); it answers from what it holds.",
            ),
            age: gauge_f64(
                registry,
                "view_age_seconds",
                "Seconds since the live view's last successful refresh.",
            ),
            loaded: gauge(
                registry,
                "view_loaded",
                "1 once the live view's first load finished (rankings are served), else 0.",
            ),
            version: gauge(
                registry,
                "view_version",
                "Changes made to the live view's tallies so far.",
            ),
            pools: gauge(registry, "view_pools", "Pools held by the live view."),
            memory: gauge(
                registry,
                "view_memory_bytes",
                "Bytes held by the live view's tallies and dedup state.",
            ),
            dedup_hashes: gauge(
                registry,
                "view_dedup_hashes",
                "Event hashes held to count redelivered copies once (live hours only).",
            ),
        }
    }
}

impl ViewObserver for SelectorMetrics {
    fn read(&self, objects: u64, bytes: u64) {
        self.objects.inc_by(objects);
        self.bytes.inc_by(bytes);
    }

    fn quarantined(&self, bad_lines: u64) {
        self.bad_lines.inc_by(bad_lines);
        self.quarantined_objects.inc();
    }

    fn refreshed(&self, report: &RefreshReport, took: Duration) {
        self.events.inc_by(report.events);
        self.replaced_hours.inc_by(report.replaced_hours);
        self.future_events.inc_by(report.future_events);
        self.refresh_seconds.observe(took.as_secs_f64());
    }

    fn failed(&self, _error: &QueryError) {
        self.refresh_errors.inc();
    }

    fn status(&self, status: &ViewStatus, now: DateTime<Utc>) {
        self.loaded.set(i64::from(status.loaded));
        self.version.set(status.version as i64);
        self.pools.set(status.pools as i64);
        self.memory.set(status.memory_bytes as i64);
        self.dedup_hashes.set(status.dedup_hashes as i64);
        if let Some(age) = status.age_seconds(now) {
            self.age.set(age);
        }
    }
}
