//! The one duration grammar of every setting and query parameter: `humantime` (`500ms`, `30s`, `2m`,
//! `24h`, `7d`, `1h 30m`, `1.5h`) plus bare whole seconds (`86400`), which the seed's `EVENT_FILTER_WINDOW`
//! uses. Months and years are refused: their length is ambiguous, and `30d` says what is meant.

use std::time::Duration;

/// Why a duration did not parse; the message says what is accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is not a duration: {why} (write e.g. 500ms, 30s, 5m, 24h, 7d, or whole seconds)"
)]
pub struct DurationError {
    pub input: String,
    pub why: String,
}

/// Parse `N` (whole seconds) or a `humantime` duration.
pub fn parse(s: &str) -> Result<Duration, DurationError> {
    let t = s.trim();
    let err = |why: &str| DurationError {
        input: s.to_owned(),
        why: why.to_owned(),
    };
    if t.is_empty() {
        return Err(err("it is empty"));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| err("too large"));
    }
    if t.contains(['M', 'y']) || t.contains("month") {
        return Err(err("months and years have no fixed length; use days"));
    }
    humantime::parse_duration(t).map_err(|e| err(&e.to_string()))
}

/// [`parse`] with the error as text, for clap's `value_parser`.
pub fn parse_arg(s: &str) -> Result<Duration, String> {
    parse(s).map_err(|e| e.to_string())
}

/// [`parse_arg`] for settings that must be positive (intervals, ages, timeouts).
pub fn parse_positive_arg(s: &str) -> Result<Duration, String> {
    match parse(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(format!("{s:?} must be longer than zero")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_bare_seconds() {
        let secs = Duration::from_secs;
        assert_eq!(parse("86400").unwrap(), secs(86_400));
        assert_eq!(parse(" 2 ").unwrap(), secs(2));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), secs(30));
        assert_eq!(parse("2m").unwrap(), secs(120));
        assert_eq!(parse("24h").unwrap(), secs(86_400));
        assert_eq!(parse("7d").unwrap(), secs(7 * 86_400));
        assert_eq!(parse("1w").unwrap(), secs(7 * 86_400));
        assert_eq!(parse("1h 30m").unwrap(), secs(5_400));
        assert_eq!(parse("1.5h").unwrap(), secs(5_400));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn refusals_say_what_is_accepted() {
        for bad in [
            "",
            "soon",
            "1,5s",
            "-1",
            "1y",
            "2M",
            "3months",
            "99999999999999999999",
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains("e.g. 500ms"), "{bad}: {e}");
        }
        assert!(parse_positive_arg("0").is_err());
        assert!(parse_positive_arg("0s").is_err());
        assert_eq!(parse_positive_arg("5m").unwrap(), Duration::from_secs(300));
    }
}
