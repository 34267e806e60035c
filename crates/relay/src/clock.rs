//! What "now" is for the relay's cache decisions: whether an entry is fresh, stale or expired, its
//! `Age`, and how long an in-process copy is kept.
//!
//! Time is wall-clock milliseconds since the Unix epoch, because entries are shared between replicas
//! through Redis and each replica must agree on how old an entry is. The clock is chosen once, when
//! the relay is built: [`SystemClock`] in production ([`crate::Application::build`]); a
//! [`ManualClock`] in tests ([`crate::Application::build_with_clock`]), so a test moves past a TTL at
//! once instead of sleeping through it and never depends on how fast the machine is.
//!
//! Redis's own key expiry (`SET … PX`) stays on the server's time: it only reclaims memory after an
//! entry's whole life. Whether an entry found in Redis may be served is decided here, from the time it
//! was stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time, shared by every part of one relay.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The clock a relay is built with.
pub type SharedClock = Arc<dyn Clock>;

/// The system's wall clock, in milliseconds since the Unix epoch (0 for a clock set before 1970).
pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The real time: the production clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }
}

/// A clock that stands still until told to move, for tests: entries expire when the test says so,
/// however slow or loaded the machine is.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicU64,
}

impl ManualClock {
    /// A clock standing at `now_ms` (milliseconds since the Unix epoch).
    pub fn at(now_ms: u64) -> Self {
        Self {
            now_ms: AtomicU64::new(now_ms),
        }
    }

    /// A clock standing at the system's current time, so the entries it stamps look like any other
    /// replica's.
    pub fn starting_now() -> Self {
        Self::at(system_now_ms())
    }

    /// Move the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now_ms
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = ManualClock::at(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.now_ms(), 1_000);
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now_ms(), 2_500);
        let shared: SharedClock = Arc::new(clock);
        assert_eq!(shared.now_ms(), 2_500);
    }

    #[test]
    fn the_system_clock_is_epoch_milliseconds() {
        // 2020-01-01T00:00:00Z in ms: any machine running this is past it.
        assert!(SystemClock.now_ms() > 1_577_836_800_000);
    }
}
