//! compactor's Prometheus metrics.

use prometheus::{Gauge, Histogram, IntCounter, IntGauge, Registry};

use pool_history::compact::PassReport;
use pool_http::metrics::{counter, gauge, gauge_f64, histogram};

pub const NAMESPACE: &str = "compactor";

#[derive(Clone)]
pub struct CompactorMetrics {
    pub passes: IntCounter,
    pub hours_compacted: IntCounter,
    pub days_merged: IntCounter,
    pub events: IntCounter,
    pub errors: IntCounter,
    pub pending_hours: IntGauge,
    pub lag_seconds: Gauge,
    pub newest_closed_hour: Gauge,
    pub last_success: Gauge,
    pub pass_seconds: Histogram,
}

impl CompactorMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            passes: counter(registry, "passes_total", "Compaction passes run."),
            hours_compacted: counter(registry, "hours_compacted_total", "Hourly rollups written."),
            days_merged: counter(
                registry,
                "days_merged_total",
                "Day rollups written (each replaces its hourly ones).",
            ),
            events: counter(
                registry,
                "events_total",
                "Raw events read (distinct events and redelivered copies).",
            ),
            errors: counter(
                registry,
                "errors_total",
                "Hours or days whose compaction failed (retried next pass).",
            ),
            pending_hours: gauge(
                registry,
                "pending_hours",
                "Closed hours of this shard still without an up-to-date rollup after the last pass.",
            ),
            lag_seconds: gauge_f64(
                registry,
                "lag_seconds",
                "How long the oldest closed hour still waiting for its rollup has been eligible (0 when caught up).",
            ),
            newest_closed_hour: gauge_f64(
                registry,
                "newest_closed_hour_timestamp_seconds",
                "End of the newest closed hour seen (Unix seconds).",
            ),
            last_success: gauge_f64(
                registry,
                "last_success_timestamp_seconds",
                "When the last pass without errors finished (Unix seconds).",
            ),
            pass_seconds: histogram(
                registry,
                "pass_duration_seconds",
                "Wall time of one pass.",
                &[0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0],
            ),
        }
    }

    pub fn observe(&self, r: &PassReport, seconds: f64, finished_unix: f64) {
        self.passes.inc();
        self.hours_compacted.inc_by(r.hours_compacted);
        self.days_merged.inc_by(r.days_merged);
        self.events.inc_by(r.events);
        self.errors.inc_by(r.errors);
        self.pending_hours.set(r.pending_hours as i64);
        self.lag_seconds.set(r.lag.as_secs_f64());
        if let Some(t) = r.newest_closed {
            self.newest_closed_hour.set(t.timestamp() as f64);
        }
        if r.errors == 0 {
            self.last_success.set(finished_unix);
        }
        self.pass_seconds.observe(seconds);
    }
}
