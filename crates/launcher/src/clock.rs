//! What "now" is for the launcher's decisions: when an attempt started and whether it is past
//! `MAX_ATTEMPT_DURATION`, whether a submission claim has expired, when an unpublished outcome is
//! retried, and when a finished launch leaves the memory store.
//!
//! The clock is chosen once, when the launcher is built: [`SystemClock`] in production; a
//! [`ManualClock`] in tests ([`crate::Application::build_with`]), so a test moves past a deadline or a
//! claim at once instead of sleeping through it, and never depends on how fast the machine is.
//! Replicas that share a Redis in a test share one clock. Redis's own key expiry stays on the server's
//! time: it only reclaims memory after a record's whole life.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time, shared by every part of one launcher.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The clock a launcher is built with.
pub type SharedClock = Arc<dyn Clock>;

/// The real time: the production clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move, for tests.
#[derive(Debug)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    pub fn at(t: DateTime<Utc>) -> Self {
        Self {
            micros: AtomicI64::new(t.timestamp_micros()),
        }
    }

    /// A clock standing at the system's current time (timestamps look like any other launcher's).
    pub fn starting_now() -> Self {
        Self::at(Utc::now())
    }

    /// Move the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.micros
            .fetch_add(by.as_micros() as i64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros.load(Ordering::SeqCst))
            .expect("a manual clock stays within chrono's range")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::at(t0);
        assert_eq!(clock.now(), t0);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), t0 + chrono::Duration::milliseconds(1_500));
        let shared: SharedClock = Arc::new(clock);
        assert_eq!(shared.now(), t0 + chrono::Duration::milliseconds(1_500));
    }
}
