//! pool-selector's own Prometheus metrics (HTTP metrics come from `pool_core`).

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};

use pool_core::metrics::{LATENCY_BUCKETS, register};

use crate::query::ScanReport;

#[derive(Clone)]
pub struct SelectorMetrics {
    pub scans: IntCounter,
    pub rows: IntCounter,
    pub bytes: IntCounter,
    pub objects: IntCounter,
    pub duplicates: IntCounter,
    pub invalid_rows: IntCounter,
    pub bad_lines: IntCounter,
    pub quarantined_objects: IntCounter,
    pub scan_seconds: Histogram,
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect("valid metric"))
}

impl SelectorMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            scans: counter(registry, "scans_total", "Scans of the event history."),
            rows: counter(registry, "scan_rows_total", "Event rows tallied by scans."),
            bytes: counter(
                registry,
                "scan_bytes_total",
                "Bytes read from event storage by scans.",
            ),
            objects: counter(registry, "scan_objects_total", "Objects opened by scans."),
            duplicates: counter(
                registry,
                "scan_duplicate_events_total",
                "Rows skipped because their job_id was already counted (at-least-once delivery).",
            ),
            invalid_rows: counter(
                registry,
                "scan_invalid_rows_total",
                "Rows that decoded but are not valid events (bad pool id, status/reason mismatch).",
            ),
            bad_lines: counter(
                registry,
                "bad_lines_total",
                "Malformed lines found in event objects (each counted once, when its object is quarantined).",
            ),
            quarantined_objects: counter(
                registry,
                "quarantined_objects_total",
                "Event objects found to hold malformed lines; their valid lines are still used.",
            ),
            scan_seconds: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new("scan_duration_seconds", "Wall time of one history scan.")
                        .buckets(LATENCY_BUCKETS.to_vec()),
                )
                .expect("valid metric"),
            ),
        }
    }

    pub fn observe_scan(&self, r: &ScanReport) {
        self.scans.inc();
        self.rows.inc_by(r.rows);
        self.bytes.inc_by(r.bytes);
        self.objects.inc_by(r.objects);
        self.duplicates.inc_by(r.duplicates);
        self.invalid_rows.inc_by(r.invalid_rows);
        self.scan_seconds.observe(r.elapsed_ms / 1000.0);
    }
}
