//! Where the poll loop reads the time. [`crate::decision::decide`] takes `now` as an argument; the
//! poller asks a [`Clock`] for it, so the scale-down stabilisation window (and anything else measured
//! in time) follows whatever clock the application was built with: the real one in production, a
//! clock the test advances by hand in the integration tests, which can then walk a five-minute window
//! forward without waiting for it.

use std::time::Instant;

use chrono::{DateTime, Utc};

/// A source of time for the poller.
pub trait Clock: Send + Sync {
    /// Monotonic time, for the decision's windows (stabilisation).
    fn now(&self) -> Instant;
    /// Wall-clock time, for a report's `observed_at`.
    fn utc(&self) -> DateTime<Utc>;
}

/// The machine's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
