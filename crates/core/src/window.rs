//! Time windows as people write them: `86400` (seconds, the seed's `EVENT_FILTER_WINDOW`), `90s`, `30m`,
//! `24h`, `7d`, `2w` ([`crate::duration`]). Zero means "all history".

use std::time::Duration;

use crate::event::EventError;

/// Longest window accepted (ten years): anything longer is a typo, not a question.
pub const MAX_WINDOW: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// A look-back window. `None` inside means the whole history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(Option<Duration>);

impl Window {
    pub const ALL: Window = Window(None);

    pub fn from_secs(secs: u64) -> Self {
        if secs == 0 {
            Self::ALL
        } else {
            Window(Some(Duration::from_secs(secs)))
        }
    }

    pub fn duration(&self) -> Option<Duration> {
        self.0
    }

    /// Seconds, 0 for the whole history (the seed's convention).
    pub fn as_secs(&self) -> u64 {
        self.0.map(|d| d.as_secs()).unwrap_or(0)
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
        Ok(Window(if d.is_zero() { None } else { Some(d) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn bad_windows_name_the_field() {
        for bad in ["", "-1", "h", "99999999999999999999", "1000000w", "1y"] {
            let err = Window::parse("window", bad).unwrap_err();
            assert_eq!(err.field, "window", "{bad}");
        }
    }
}
