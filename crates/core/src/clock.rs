//! What "now" is, for every service that decides by time: the relay (an entry's age, shared between
//! replicas through Redis, so wall-clock epoch milliseconds), the launcher (deadlines and timestamps of
//! launches) and the monitor (a stabilisation window, so monotonic time, and a report's `observed_at`).
//!
//! A service is built with a [`SharedClock`]: [`SystemClock`] in production, a [`ManualClock`] in tests,
//! so a test moves past a TTL, a deadline or a window at once instead of sleeping through it, and never
//! depends on how fast the machine is. Both readings of a manual clock move together.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// A source of the current time, shared by every part of one service.
pub trait Clock: Send + Sync {
    /// Wall-clock time.
    fn utc(&self) -> DateTime<Utc>;
    /// Monotonic time, for windows that must not jump when the wall clock is set.
    fn instant(&self) -> Instant;
    /// Wall-clock milliseconds since the Unix epoch (0 for a clock set before 1970).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.utc().timestamp_millis()).unwrap_or(0)
    }
}

/// The clock a service is built with.
pub type SharedClock = Arc<dyn Clock>;

/// The real time: the production clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn utc(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that stands still until told to move, for tests.
#[derive(Debug)]
pub struct ManualClock {
    start_utc: DateTime<Utc>,
    start_instant: Instant,
    elapsed_micros: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `t`.
    pub fn at(t: DateTime<Utc>) -> Self {
        Self {
            start_utc: t,
            start_instant: Instant::now(),
            elapsed_micros: AtomicU64::new(0),
        }
    }

    /// A clock standing at `ms` milliseconds since the Unix epoch.
    pub fn at_ms(ms: u64) -> Self {
        Self::at(
            DateTime::from_timestamp_millis(i64::try_from(ms).unwrap_or(i64::MAX))
                .unwrap_or(DateTime::UNIX_EPOCH),
        )
    }

    /// A clock standing at the system's current time, so what it stamps looks like any other replica's.
    pub fn starting_now() -> Self {
        Self::at(Utc::now())
    }

    /// Move both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let micros = u64::try_from(by.as_micros()).unwrap_or(u64::MAX);
        self.elapsed_micros.fetch_add(micros, Ordering::SeqCst);
    }

    fn elapsed(&self) -> Duration {
        Duration::from_micros(self.elapsed_micros.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn utc(&self) -> DateTime<Utc> {
        self.start_utc
            + chrono::Duration::from_std(self.elapsed())
                .expect("a test's clock moves by less than an age")
    }
    fn instant(&self) -> Instant {
        self.start_instant + self.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_both_readings_together() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = ManualClock::at(t0);
        let i0 = clock.instant();
        assert_eq!(clock.utc(), t0);
        assert_eq!(clock.now_ms(), 1_800_000_000_000);
        assert_eq!(clock.instant(), i0);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.utc(), t0 + chrono::Duration::milliseconds(1_500));
        assert_eq!(clock.instant() - i0, Duration::from_millis(1_500));
        let shared: SharedClock = Arc::new(clock);
        assert_eq!(shared.now_ms(), 1_800_000_001_500);
    }

    #[test]
    fn epoch_milliseconds() {
        assert_eq!(ManualClock::at_ms(1_000).now_ms(), 1_000);
        // 2020-01-01: any machine running this is past it.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
