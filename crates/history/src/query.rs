//! What a scan is asked ([`Query`]) and what it reports ([`ScanReport`]): the vocabulary shared by
//! the scan, the tally, the catalog and the table chooser, in a module of its own so that none of them
//! depends on another for it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use pool_core::event::{AvailabilityZone, InstanceType, Partition, PoolId};
use pool_core::window::Window;

/// What a ranking request asks of the history. Every field is already parsed and validated.
#[derive(Debug, Clone)]
pub struct Query {
    pub instance_types: Vec<InstanceType>,
    pub zones: Vec<AvailabilityZone>,
    pub window: Window,
    /// Recency weighting: a job `half_life` old counts half as much as one finishing now.
    pub half_life: Option<Duration>,
    pub now: DateTime<Utc>,
    /// Events stamped more than this after `now` are ignored and counted (`future_events`): a clock
    /// far ahead, or a forged `9999-12-31`, must not keep full weight forever.
    pub max_clock_skew: Duration,
    /// Start of the hourly series ([`Tally::hourly`](crate::Tally::hourly)): unweighted counts per
    /// pool and hour of the counted events from this instant on. Must be on an hour boundary (a debug
    /// build asserts it; a release build aligns it down to its hour). `None`: no series. Each pool's
    /// series costs 8 bytes per hour from here to its last event, so a start far in the past makes
    /// every tally large.
    pub series_from: Option<DateTime<Utc>>,
}

impl Query {
    /// Every pool, every event, unweighted, as of `now`.
    pub fn everything(now: DateTime<Utc>) -> Self {
        Self {
            instance_types: vec![],
            zones: vec![],
            window: Window::ALL,
            half_life: None,
            now,
            max_clock_skew: pool_core::event::DEFAULT_MAX_CLOCK_SKEW,
            series_from: None,
        }
    }

    /// [`Query::series_from`] in microseconds since the epoch, aligned down to its hour.
    pub fn series_from_micros(&self) -> Option<i64> {
        self.series_from.map(|s| {
            let hour = Partition::of(&s).start_micros();
            debug_assert_eq!(
                hour,
                s.timestamp_micros(),
                "series_from {s} is not on an hour boundary"
            );
            hour
        })
    }

    /// Events that finished after this are in the future (beyond the allowed clock skew) and ignored.
    pub fn horizon_micros(&self) -> i64 {
        let skew = i64::try_from(self.max_clock_skew.as_micros()).unwrap_or(i64::MAX);
        self.now.timestamp_micros().saturating_add(skew)
    }

    /// Events that finished before this are outside the window: the window's start at `now`, on its
    /// grain ([`Window::start`]), for raw scans and the live view alike.
    pub fn cutoff(&self) -> Option<DateTime<Utc>> {
        self.window.start(self.now)
    }

    /// True when the query counts `pool`.
    pub fn wants(&self, pool: &PoolId) -> bool {
        (self.instance_types.is_empty() || self.instance_types.contains(pool.instance_type()))
            && (self.zones.is_empty() || self.zones.contains(pool.availability_zone()))
    }
}

/// What one scan read and skipped.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ScanReport {
    /// Objects opened.
    pub objects: u64,
    /// Bytes read from storage.
    pub bytes: u64,
    /// Event rows that matched the filters (counted from rollups or raw).
    pub rows: u64,
    /// Redelivered copies of an event (at-least-once delivery), counted once.
    pub duplicates: u64,
    /// Rows in the raw hours that decoded but are not valid events (bad pool id, status/reason
    /// mismatch, missing field).
    pub invalid_rows: u64,
    /// Malformed lines skipped (lines that are not valid events in objects that did not decode whole).
    pub skipped_lines: u64,
    /// Objects (or byte ranges of one) that held such lines; their other lines still count.
    pub quarantined_objects: u64,
    /// Hours of the window answered from rollups.
    pub rollup_hours: u64,
    /// Hours of the window read from raw events (the open hour, hours not compacted yet or changed
    /// since, the hour the window starts in).
    pub raw_hours: u64,
    /// Events stamped further in the future than the allowed clock skew (`MAX_CLOCK_SKEW`): ignored.
    pub future_events: u64,
    /// Wall time of the scan in milliseconds.
    pub elapsed_ms: f64,
}
