//! Time windows as people write them: `86400` (seconds, the seed's `EVENT_FILTER_WINDOW`), `90s`, `30m`,
//! `24h`, `7d`, `2w` ([`crate::duration`]). Zero means "all history".
//!
//! A window is exact to its [`Grain`]: its length is rounded up to a whole number of grains when it is
//! parsed, and it starts on a grain boundary ([`Window::start`]), so the rankings are answered from
//! per-minute, per-hour or per-day tallies without reading events, and every spelling of a window that
//! lands on the same grain is one question (one cache entry in the relay).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::event::EventError;

/// Longest window accepted (ten years): anything longer is a typo, not a question.
pub const MAX_WINDOW: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// Windows up to this long are exact to the minute.
pub const MINUTE_GRAIN_UP_TO: Duration = Duration::from_secs(3600);
/// Windows up to this long (and longer than [`MINUTE_GRAIN_UP_TO`]) are exact to the hour; longer
/// ones to the day.
pub const HOUR_GRAIN_UP_TO: Duration = Duration::from_secs(62 * 24 * 3600);

/// The resolution a window is exact to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Minute,
    Hour,
    Day,
}

impl Grain {
    pub const ALL: [Grain; 3] = [Grain::Minute, Grain::Hour, Grain::Day];

    pub const fn seconds(self) -> u64 {
        match self {
            Grain::Minute => 60,
            Grain::Hour => 3600,
            Grain::Day => 86_400,
        }
    }

    pub const fn micros(self) -> i64 {
        self.seconds() as i64 * 1_000_000
    }

    /// The grain of a window of this length.
    pub fn of(d: Duration) -> Grain {
        if d <= MINUTE_GRAIN_UP_TO {
            Grain::Minute
        } else if d <= HOUR_GRAIN_UP_TO {
            Grain::Hour
        } else {
            Grain::Day
        }
    }

    /// The start of the grain `micros` falls in (microseconds since the epoch).
    pub fn floor_micros(self, micros: i64) -> i64 {
        micros.div_euclid(self.micros()) * self.micros()
    }

    /// The first grain boundary at or after `micros`.
    pub fn ceil_micros(self, micros: i64) -> i64 {
        let floor = self.floor_micros(micros);
        if floor == micros {
            floor
        } else {
            floor + self.micros()
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Minute => "minute",
            Grain::Hour => "hour",
            Grain::Day => "day",
        }
    }
}

/// A look-back window. `None` inside means the whole history; otherwise a whole number of its grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window(Option<Duration>);

/// `d` rounded up to a whole number of its grain (a window of 90 s is 2 minutes long).
fn rounded(d: Duration) -> Duration {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    let grain = Grain::of(Duration::from_secs(secs)).seconds();
    let mut r = secs.div_ceil(grain) * grain;
    // Rounding up can carry a window past a threshold (62 days and 1 s is 63 days, a day grain).
    let coarser = Grain::of(Duration::from_secs(r)).seconds();
    if coarser != grain {
        r = r.div_ceil(coarser) * coarser;
    }
    Duration::from_secs(r)
}

impl Window {
    pub const ALL: Window = Window(None);

    /// A window of `secs` seconds, rounded up to its grain; 0 is the whole history.
    pub fn from_secs(secs: u64) -> Self {
        if secs == 0 {
            Self::ALL
        } else {
            Window(Some(rounded(Duration::from_secs(secs))))
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        self.0
    }

    /// Seconds, 0 for the whole history (the seed's convention).
    pub fn as_secs(&self) -> u64 {
        self.0.map(|d| d.as_secs()).unwrap_or(0)
    }

    /// What the window is exact to (`None` for the whole history).
    pub fn grain(&self) -> Option<Grain> {
        self.0.map(Grain::of)
    }

    /// Where the window starts when asked at `now`: its length before the start of `now`'s grain.
    /// `None` for the whole history. Counting from a grain boundary makes a window the sum of whole
    /// per-minute, per-hour or per-day tallies; it then covers its length plus the part of the current
    /// grain that has passed.
    pub fn start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let d = self.0?;
        let grain = Grain::of(d);
        let floor = grain.floor_micros(now.timestamp_micros());
        let start = floor.checked_sub(i64::try_from(d.as_micros()).ok()?)?;
        DateTime::from_timestamp_micros(start)
    }

    /// Parse `field`'s value; the error names the field.
    pub fn parse(field: &'static str, s: &str) -> Result<Self, EventError> {
        let d = crate::duration::parse(s)
            .map_err(|e| EventError::new(field, format!("{e}; 0 = all history")))?;
        if d > MAX_WINDOW {
            return Err(EventError::new(
                field,
                format!("{s:?} is longer than ten years"),
            ));
        }
        Ok(if d.is_zero() {
            Window::ALL
        } else {
            Window(Some(rounded(d)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn units() {
        assert_eq!(Window::parse("window", "86400").unwrap().as_secs(), 86_400);
        assert_eq!(Window::parse("window", "24h").unwrap().as_secs(), 86_400);
        assert_eq!(Window::parse("window", "30m").unwrap().as_secs(), 1_800);
        assert_eq!(Window::parse("window", "7d").unwrap().as_secs(), 604_800);
        assert_eq!(
            Window::parse("window", "24 hours").unwrap().as_secs(),
            86_400
        );
        assert_eq!(Window::parse("window", "0").unwrap(), Window::ALL);
        assert_eq!(Window::from_secs(0), Window::ALL);
    }

    #[test]
    fn windows_round_up_to_their_grain() {
        let w = |s: &str| Window::parse("window", s).unwrap();
        assert_eq!(w("90").as_secs(), 120, "minutes up to an hour");
        assert_eq!(w("1s").as_secs(), 60);
        assert_eq!(w("1h").as_secs(), 3600);
        assert_eq!(w("3601").as_secs(), 7200, "hours beyond an hour");
        assert_eq!(w("25h").grain(), Some(Grain::Hour));
        assert_eq!(w("62d").as_secs(), 62 * 86_400);
        assert_eq!(w("62d").grain(), Some(Grain::Hour));
        assert_eq!(w("1489h").as_secs(), 63 * 86_400, "days beyond 62 days");
        assert_eq!(w("1489h").grain(), Some(Grain::Day));
        assert_eq!(Window::from_secs(62 * 86_400 + 1).as_secs(), 63 * 86_400);
        assert_eq!(w("90"), w("2m"), "one question, one value");
        assert_eq!(Window::ALL.grain(), None);
        for secs in [
            1, 59, 61, 3599, 3600, 3601, 86_399, 5_356_800, 5_356_801, 9_999_999,
        ] {
            let w = Window::from_secs(secs);
            let g = w.grain().unwrap().seconds();
            assert_eq!(w.as_secs() % g, 0, "{secs}");
            assert!(w.as_secs() >= secs, "{secs}");
            assert_eq!(Window::from_secs(w.as_secs()), w, "rounding is idempotent");
        }
    }

    #[test]
    fn a_window_starts_on_its_grain_before_now() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 45).unwrap();
        let start = |s: &str| Window::parse("window", s).unwrap().start(now).unwrap();
        assert_eq!(
            start("30m"),
            Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap()
        );
        assert_eq!(
            start("1h"),
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 30, 0).unwrap()
        );
        assert_eq!(
            start("24h"),
            Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap()
        );
        assert_eq!(
            start("90d"),
            Utc.with_ymd_and_hms(2026, 8, 24, 0, 0, 0).unwrap()
        );
        assert_eq!(Window::ALL.start(now), None);
    }

    #[test]
    fn grains_floor_and_ceil() {
        let g = Grain::Hour;
        assert_eq!(g.floor_micros(-1), -g.micros());
        assert_eq!(g.ceil_micros(1), g.micros());
        assert_eq!(g.ceil_micros(g.micros()), g.micros());
        assert_eq!(Grain::Minute.floor_micros(61_000_000), 60_000_000);
    }

    #[test]
    fn bad_windows_name_the_field() {
        for bad in ["", "-1", "h", "99999999999999999999", "1000000w", "1y"] {
            let err = Window::parse("window", bad).unwrap_err();
            assert_eq!(err.field, "window", "{bad}");
        }
    }
}
