//! The ranking request grammar: the query string of `/get-pool` and `/pools`, parsed once into values.
//!
//! pool-selector and the relay both call [`RankingRequest::from_query`], so they accept and refuse
//! exactly the same queries with the same messages, and the relay's cache key is the
//! [`canonical`](RankingRequest::canonical) form of the *parsed* values: `window=0`, `window=00` and
//! `window=0s` are one key, as are `confidence=0.95` and `confidence=0.950`, and a scan can no longer
//! be multiplied by respelling its question.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::event::{AvailabilityZone, EventError, InstanceType};
use crate::http::ApiError;
use crate::window::{MAX_WINDOW, Window, parse_duration};

/// Most values accepted in one list parameter: more is a mistake, and keeps filters small.
pub const MAX_LIST_VALUES: usize = 200;

/// Largest `limit` a client may ask `/pools` for.
pub const MAX_POOLS_LIMIT: usize = 10_000;

/// How pools are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Upper bound of the Wilson score interval of the termination rate (default).
    Wilson,
    /// Upper quantile of the Beta posterior of the termination rate under a Jeffreys prior.
    Bayes,
    /// The seed's formula: terminations / jobs, ascending. Small lucky pools win.
    Naive,
}

impl Strategy {
    pub const ALL: [&'static str; 3] = ["wilson", "bayes", "naive"];
    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::Wilson => "wilson",
            Strategy::Bayes => "bayes",
            Strategy::Naive => "naive",
        }
    }
}

impl FromStr for Strategy {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "wilson" => Ok(Strategy::Wilson),
            "bayes" | "beta" => Ok(Strategy::Bayes),
            "naive" | "seed" => Ok(Strategy::Naive),
            _ => Err(EventError::new(
                "strategy",
                format!(
                    "unknown strategy {s:?}; use one of {}",
                    Strategy::ALL.join(", ")
                ),
            )),
        }
    }
}

/// Query parameters of `/get-pool` and `/pools`, as written. All optional; unknown names are refused so
/// a typo (`instance_type=`) does not silently rank every pool.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RankingParams {
    /// Comma-separated instance types, `family.size` (e.g. `c6a.xlarge,m6a.xlarge`). Default: all.
    pub instance_types: Option<String>,
    /// Comma-separated availability zones (e.g. `us-east-1a,us-east-1b`). Default: all.
    pub availability_zones: Option<String>,
    /// Look-back window: seconds, or `30m`, `24h`, `7d`; `0` = all history. Default: EVENT_FILTER_WINDOW.
    pub window: Option<String>,
    /// `wilson` (default), `bayes`, or `naive` (the seed's raw rate).
    pub strategy: Option<String>,
    /// Recency weighting: a job this old (e.g. `12h`) counts half. `0` = off. Default: RANKING_HALF_LIFE.
    pub half_life: Option<String>,
    /// Confidence level of the interval, 0.5–0.9999. Default: RANKING_CONFIDENCE (0.95).
    pub confidence: Option<String>,
    /// Ignore pools with fewer jobs than this in the window. Default 1.
    pub min_jobs: Option<String>,
    /// `/pools` only: return at most this many pools (1–10000). Default: POOLS_DEFAULT_LIMIT (100).
    pub limit: Option<String>,
}

/// A ranking request with every parameter parsed. `None` means "not given": the server's default
/// applies, which the relay does not know, so it stays distinct from any explicit value.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingRequest {
    /// Sorted, without duplicates.
    pub instance_types: Vec<InstanceType>,
    /// Sorted, without duplicates.
    pub zones: Vec<AvailabilityZone>,
    pub window: Option<Window>,
    pub strategy: Option<Strategy>,
    /// `Some(None)`: recency weighting explicitly off (`half_life=0`).
    pub half_life: Option<Option<Duration>>,
    pub confidence: Option<f64>,
    pub min_jobs: Option<u64>,
    pub limit: Option<usize>,
}

fn list<T: FromStr<Err = EventError>>(
    field: &'static str,
    raw: &Option<String>,
) -> Result<Vec<T>, ApiError> {
    let Some(raw) = raw else { return Ok(vec![]) };
    let mut values: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    values.sort();
    values.dedup();
    if values.len() > MAX_LIST_VALUES {
        return Err(ApiError::bad_parameter(
            field,
            format!(
                "{field}: at most {MAX_LIST_VALUES} values, got {}",
                values.len()
            ),
        ));
    }
    values
        .iter()
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| ApiError::bad_parameter(field, format!("{field}: {}", e.message)))
        })
        .collect()
}

/// A parameter's value, `None` when absent or blank (forms send unset fields as `name=`).
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.trim().is_empty())
}

fn number<T: FromStr + PartialOrd + fmt::Display>(
    field: &'static str,
    raw: Option<&str>,
    min: T,
    max: T,
) -> Result<Option<T>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(Some(v)),
        _ => Err(ApiError::bad_parameter(
            field,
            format!("{field}: {raw:?} is not a number between {min} and {max}"),
        )),
    }
}

impl RankingParams {
    /// Parse every parameter; the error names the first one at fault. A parameter given empty
    /// (`strategy=`) counts as not given, as forms send unset fields.
    pub fn parse(&self) -> Result<RankingRequest, ApiError> {
        let window = given(&self.window)
            .map(|w| Window::parse("window", w))
            .transpose()?;
        let strategy = given(&self.strategy)
            .map(str::parse::<Strategy>)
            .transpose()?;
        let half_life = match given(&self.half_life) {
            Some(h) => Some(match parse_duration(h) {
                Ok(d) if d.is_zero() => None,
                Ok(d) if d <= MAX_WINDOW => Some(d),
                _ => {
                    return Err(ApiError::bad_parameter(
                        "half_life",
                        format!("half_life: {h:?} is not a duration such as 12h or 3600 (0 = off)"),
                    ));
                }
            }),
            None => None,
        };
        Ok(RankingRequest {
            instance_types: list("instance_types", &self.instance_types)?,
            zones: list("availability_zones", &self.availability_zones)?,
            window,
            strategy,
            half_life,
            confidence: number("confidence", given(&self.confidence), 0.5, 0.9999)?,
            min_jobs: number("min_jobs", given(&self.min_jobs), 0u64, 1_000_000_000)?,
            limit: number("limit", given(&self.limit), 1usize, MAX_POOLS_LIMIT)?,
        })
    }
}

impl RankingRequest {
    /// Parse a raw query string (without `?`) as pool-selector's query extractor does: a repeated,
    /// unknown or malformed parameter is a 400 naming it.
    pub fn from_query(query: &str) -> Result<Self, ApiError> {
        let params: RankingParams = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::bad_request(format!("malformed query string: {e}")))?;
        params.parse()
    }

    /// The canonical query string (without `?`): every given parameter in its parsed form, in a fixed
    /// order. Two requests have the same canonical form exactly when they ask the same question.
    /// `with_limit` is false for `/get-pool`, where `limit` does not change the answer.
    pub fn canonical(&self, with_limit: bool) -> String {
        let mut s = form_urlencoded_serializer();
        let join = |v: Vec<&str>| v.join(",");
        if !self.instance_types.is_empty() {
            s.append_pair(
                "instance_types",
                &join(self.instance_types.iter().map(|t| t.as_str()).collect()),
            );
        }
        if !self.zones.is_empty() {
            s.append_pair(
                "availability_zones",
                &join(self.zones.iter().map(|z| z.as_str()).collect()),
            );
        }
        if let Some(w) = self.window {
            s.append_pair("window", &w.as_secs().to_string());
        }
        if let Some(st) = self.strategy {
            s.append_pair("strategy", st.as_str());
        }
        if let Some(h) = self.half_life {
            s.append_pair("half_life", &h.map_or(0, |d| d.as_secs()).to_string());
        }
        if let Some(c) = self.confidence {
            s.append_pair("confidence", &c.to_string());
        }
        if let Some(m) = self.min_jobs {
            s.append_pair("min_jobs", &m.to_string());
        }
        if let (true, Some(l)) = (with_limit, self.limit) {
            s.append_pair("limit", &l.to_string());
        }
        s.finish()
    }
}

fn form_urlencoded_serializer() -> url::form_urlencoded::Serializer<'static, String> {
    url::form_urlencoded::Serializer::new(String::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(q: &str) -> String {
        RankingRequest::from_query(q).unwrap().canonical(true)
    }

    #[test]
    fn every_spelling_of_one_question_is_one_canonical_form() {
        let zero = canon("window=0");
        for same in [
            "window=00",
            "window=0s",
            "window=0m",
            "window=%200",
            "window=0d",
        ] {
            assert_eq!(canon(same), zero, "{same}");
        }
        assert_eq!(canon("window=24h"), canon("window=86400"));
        assert_eq!(canon("window=1d"), "window=86400");
        assert_eq!(canon("confidence=0.95"), canon("confidence=0.950"));
        assert_eq!(canon("confidence=0.95"), "confidence=0.95");
        assert_eq!(canon("strategy=Beta"), "strategy=bayes");
        assert_eq!(canon("half_life=0s"), "half_life=0");
        assert_eq!(canon("half_life=12h"), canon("half_life=43200"));
        assert_eq!(canon("min_jobs=007"), "min_jobs=7");
        assert_eq!(
            canon("instance_types=M6A.xlarge,%20c6a.xlarge,,c6a.xlarge"),
            canon("instance_types=c6a.xlarge,m6a.xlarge")
        );
        assert_eq!(
            canon("availability_zones=us-east-1b,us-east-1a&instance_types=c6a.xlarge&window=1h"),
            canon("window=3600&instance_types=c6a.xlarge&availability_zones=US-EAST-1A,us-east-1b")
        );
        assert_eq!(canon(""), "");
        assert_eq!(canon("strategy=&window=&limit=%20"), "");
    }

    #[test]
    fn explicit_and_absent_values_stay_distinct() {
        // The server's defaults are its own: an absent window is not `window=0`.
        assert_ne!(canon(""), canon("window=0"));
        assert_ne!(canon(""), canon("half_life=0"));
        assert_ne!(canon("window=1h"), canon("window=2h"));
    }

    #[test]
    fn limit_only_counts_where_it_changes_the_answer() {
        let r = RankingRequest::from_query("limit=5&window=1h").unwrap();
        assert_eq!(r.canonical(true), "window=3600&limit=5");
        assert_eq!(r.canonical(false), "window=3600");
    }

    #[test]
    fn bad_queries_name_the_parameter() {
        for (q, field) in [
            ("window=forever", Some("window")),
            ("confidence=1.5", Some("confidence")),
            ("strategy=magic", Some("strategy")),
            ("half_life=-1", Some("half_life")),
            ("min_jobs=x", Some("min_jobs")),
            ("limit=0", Some("limit")),
            ("instance_types=notatype", Some("instance_types")),
            ("availability_zones=mars", Some("availability_zones")),
            ("instance_type=c6a.xlarge", None),
            ("window=1h&window=2h", None),
        ] {
            let e = RankingRequest::from_query(q).unwrap_err();
            assert_eq!(e.status.as_u16(), 400, "{q}");
            assert_eq!(e.body.field.as_deref(), field, "{q}: {}", e.body.message);
        }
        let many: Vec<String> = (0..=MAX_LIST_VALUES)
            .map(|i| format!("m{i}.large"))
            .collect();
        let e =
            RankingRequest::from_query(&format!("instance_types={}", many.join(","))).unwrap_err();
        assert!(e.body.message.contains("at most"), "{}", e.body.message);
    }
}
