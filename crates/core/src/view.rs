//! What clients read of pool-selector's ranking answers (`/get-pool`, `/pools`), and how people are
//! shown its numbers. The relay's ranking page and `poolctl` both render them; the types read only what
//! a view needs and ignore the rest, so a field added to the answer never breaks a client.

use serde::{Deserialize, Serialize};

/// The error body every service answers with: `{"error": "bad_parameter", "message": "…", "field": "…"}`.
/// Servers write it (`pool_http::ApiError`); clients (the launcher, the relay's page, `poolctl`) read it
/// with this same type instead of picking fields out by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `bad_parameter`, `not_found`, `loading`, `busy`.
    pub error: String,
    /// What was wrong and, where it helps, how to fix it.
    #[serde(default)]
    pub message: String,
    /// The parameter or field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Further structured detail (for example every invalid line of a request body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An answer's body read as the error body, if it is one.
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body).ok()
    }

    /// The sentence to show: the message, else the code.
    pub fn text(&self) -> &str {
        if self.message.is_empty() {
            &self.error
        } else {
            &self.message
        }
    }

    /// What a client shows for an error answer's `body`: its message, or the start of a body that is
    /// not the error body (a proxy's page, say), so a log line stays short.
    pub fn describe(body: &[u8]) -> String {
        match Self::parse(body) {
            Some(e) => e.text().to_owned(),
            None => String::from_utf8_lossy(body).chars().take(300).collect(),
        }
    }
}

/// One ranked pool, as `/get-pool` and `/pools` describe it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Pool {
    pub pool_id: String,
    #[serde(default)]
    pub instance_type: String,
    #[serde(default)]
    pub availability_zone: String,
    pub jobs: u64,
    pub spot_terminations: u64,
    pub termination_rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    /// What pools are ordered by (lower is safer).
    pub score: f64,
    #[serde(default)]
    pub degraded: bool,
    #[serde(default)]
    pub last_event_at: String,
}

/// `/get-pool`: the pick, its evidence and its alternatives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Choice {
    #[serde(flatten)]
    pub pool: Pool,
    pub strategy: String,
    pub window_seconds: u64,
    pub candidates: usize,
    pub probability_best: f64,
    #[serde(default)]
    pub margin: Option<f64>,
    #[serde(default)]
    pub data_age_seconds: Option<u64>,
    #[serde(default)]
    pub stale: bool,
    #[serde(default)]
    pub alternatives: Vec<Pool>,
}

/// `/pools`: the ranking, best first.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ranking {
    pub strategy: String,
    pub window_seconds: u64,
    pub total_pools: usize,
    #[serde(default)]
    pub data_age_seconds: Option<u64>,
    #[serde(default)]
    pub stale: bool,
    pub pools: Vec<Pool>,
}

/// A rate as a percentage with a precision that suits its size: `1.23%`, `0.041%`, `0%`.
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    if p == 0.0 {
        "0%".into()
    } else if p.abs() >= 10.0 {
        format!("{p:.1}%")
    } else if p.abs() >= 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.3}%")
    }
}

/// `window_seconds` as people write it: `all history`, `24h`, `7d`, `90m`.
pub fn window_label(secs: u64) -> String {
    match secs {
        0 => "all history".into(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// An age in seconds, short: `45s`, `12m`, `3h`, `2d`.
pub fn age_label(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_read_like_people_write() {
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0123), "1.23%");
        assert_eq!(percent(0.25), "25.0%");
        assert_eq!(percent(0.00041), "0.041%");
        assert_eq!(window_label(0), "all history");
        assert_eq!(window_label(86_400 * 7), "7d");
        assert_eq!(window_label(5_400), "90m");
        assert_eq!(window_label(61), "61s");
        assert_eq!(age_label(45), "45s");
        assert_eq!(age_label(720), "12m");
        assert_eq!(age_label(3 * 3_600), "3h");
        assert_eq!(age_label(2 * 86_400), "2d");
    }

    #[test]
    fn answers_parse_and_ignore_unknown_fields() {
        let r: Ranking = serde_json::from_str(r#"{"strategy":"pooled","window_seconds":86400,"total_pools":1,"new":1,
            "pools":[{"pool_id":"pool-c6a.xlarge-us-east-1a","jobs":10,"spot_terminations":1,"termination_rate":0.1,
            "ci_low":0.01,"ci_high":0.4,"score":0.2,"posterior_mean":0.2}]}"#)
        .unwrap();
        assert_eq!(r.pools[0].jobs, 10);
        assert!(!r.stale && r.data_age_seconds.is_none());
    }

    #[test]
    fn the_error_body_reads_back_what_servers_write_and_short_bodies_too() {
        let full: ErrorBody = serde_json::from_str(
            r#"{"error":"bad_parameter","message":"window: bad","field":"window","extra":1}"#,
        )
        .unwrap();
        assert_eq!(full.text(), "window: bad");
        assert_eq!(full.field.as_deref(), Some("window"));
        assert_eq!(
            serde_json::to_value(&full).unwrap()["error"],
            "bad_parameter"
        );
        assert_eq!(ErrorBody::describe(br#"{"error":"busy"}"#), "busy");
        assert_eq!(ErrorBody::describe(b"plain"), "plain");
        assert_eq!(ErrorBody::describe("x".repeat(400).as_bytes()).len(), 300);
    }
}
