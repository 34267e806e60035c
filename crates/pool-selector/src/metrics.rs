//! pool-selector's own Prometheus metrics (HTTP metrics come from `pool_core`).

use prometheus::{Histogram, HistogramOpts, IntCounter, Registry};

use pool_http::metrics::{LATENCY_BUCKETS, register};

use pool_history::{ScanObserver, ScanReport};

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
    pub rollup_hours: IntCounter,
    pub raw_hours: IntCounter,
    pub future_events: IntCounter,
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
            rollup_hours: counter(
                registry,
                "scan_rollup_hours_total",
                "Hours of scanned windows answered from rollups.",
            ),
            raw_hours: counter(
                registry,
                "scan_raw_hours_total",
                "Hours of scanned windows read from raw events (open, not yet compacted, changed since, or where the window starts).",
            ),
            future_events: counter(
                registry,
                "scan_future_events_total",
                "Events ignored because they are stamped further in the future than MAX_CLOCK_SKEW.",
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
}

impl ScanObserver for SelectorMetrics {
    fn quarantined(&self, bad_lines: u64) {
        self.bad_lines.inc_by(bad_lines);
        self.quarantined_objects.inc();
    }

    fn scanned(&self, r: &ScanReport) {
        self.scans.inc();
        self.rows.inc_by(r.rows);
        self.bytes.inc_by(r.bytes);
        self.objects.inc_by(r.objects);
        self.duplicates.inc_by(r.duplicates);
        self.invalid_rows.inc_by(r.invalid_rows);
        self.scan_seconds.observe(r.elapsed_ms / 1000.0);
        self.rollup_hours.inc_by(r.rollup_hours);
        self.raw_hours.inc_by(r.raw_hours);
        self.future_events.inc_by(r.future_events);
    }
}
