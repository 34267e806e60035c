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

use crate::duration;
use crate::event::{AvailabilityZone, EventError, InstanceType, PoolId};
use crate::window::{MAX_WINDOW, Window};

/// A query that cannot be answered: one parameter at fault (a 400 naming it), or a query string that
/// does not decode at all. HTTP services turn it into their JSON error body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Parameter(#[from] EventError),
    #[error("{0}")]
    Malformed(String),
}

impl QueryError {
    /// The parameter at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            QueryError::Parameter(e) => Some(e.field),
            QueryError::Malformed(_) => None,
        }
    }

    fn parameter(field: &'static str, message: impl Into<String>) -> Self {
        QueryError::Parameter(EventError::new(field, message))
    }
}

/// Most values accepted in one list parameter: more is a mistake, and keeps filters small.
pub const MAX_LIST_VALUES: usize = 200;

/// Largest `limit` a client may ask `/pools` for.
pub const MAX_POOLS_LIMIT: usize = 10_000;

/// Most pools one `/get-pool` answer names (`k`: the pick and its alternatives).
pub const MAX_K: usize = 20;

/// Longest span a backtest replays, and longest window each of its decisions may use.
pub const MAX_BACKTEST_SPAN: Duration = Duration::from_secs(31 * 24 * 3600);

/// How pools are ordered. Default: `pooled` (pool-selector's `RANKING_STRATEGY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Upper bound of the Wilson score interval of the termination rate (with `min_jobs`, a cautious
    /// pick that needs no model).
    Wilson,
    /// Upper quantile of the Beta posterior of the termination rate under a Jeffreys prior.
    Bayes,
    /// The seed's formula: terminations / jobs, ascending. Small lucky pools win.
    Naive,
    /// Posterior mean of the rate now: an estimated hierarchy (region, zone, family, size, type) as the
    /// shared prior, and the change-point posterior of the pool and its zone, region and family (or a
    /// posterior quantile with `risk`).
    Pooled,
    /// The previous `pooled`: a family × zone prior and change tests that cut the history short. Kept
    /// for comparison.
    #[serde(rename = "pooled-v1")]
    PooledV1,
    /// One draw from each pool's `pooled` posterior per request: traffic spreads over pools in
    /// proportion to their chance of being best (exploration, no herding).
    Thompson,
}

impl Strategy {
    pub const ALL: [&'static str; 6] = [
        "pooled",
        "thompson",
        "wilson",
        "bayes",
        "naive",
        "pooled-v1",
    ];
    pub fn as_str(&self) -> &'static str {
        match self {
            Strategy::Wilson => "wilson",
            Strategy::Bayes => "bayes",
            Strategy::Naive => "naive",
            Strategy::Pooled => "pooled",
            Strategy::PooledV1 => "pooled-v1",
            Strategy::Thompson => "thompson",
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
            "pooled" => Ok(Strategy::Pooled),
            "pooled-v1" => Ok(Strategy::PooledV1),
            "thompson" => Ok(Strategy::Thompson),
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
    /// `pooled` (default: empirical-Bayes posterior mean with adaptive recency), `thompson` (one
    /// posterior draw per pool: spreads traffic, explores), `wilson`, `bayes`, `naive` (the seed's
    /// raw rate), or `pooled-v1` (the previous pooled). Default: RANKING_STRATEGY.
    pub strategy: Option<String>,
    /// Recency weighting: a job this old (e.g. `12h`) counts half. `0` = off. Default: RANKING_HALF_LIFE.
    pub half_life: Option<String>,
    /// Confidence level of the interval, 0.5–0.9999. Default: RANKING_CONFIDENCE (0.95).
    pub confidence: Option<String>,
    /// Ignore pools with fewer jobs than this in the window. Default 1.
    pub min_jobs: Option<String>,
    /// `/pools` only: return at most this many pools (1–10000). Default: POOLS_DEFAULT_LIMIT (100).
    pub limit: Option<String>,
    /// `strategy=pooled` only: rank by this posterior quantile (0.5–0.9999) instead of the posterior
    /// mean; 0.9 prefers pools we are surer about.
    pub risk: Option<String>,
    /// `strategy=thompson` only: seed of the draws (0–2^64−1), for a reproducible answer.
    pub seed: Option<String>,
    /// Comma-separated pool ids never to pick (a retry after a termination goes elsewhere).
    pub exclude_pools: Option<String>,
    /// `/get-pool` only: answer with the pick and up to k − 1 `alternatives` chosen for diversity
    /// (other zones, then other instance types), 1–20. Default 1.
    pub k: Option<String>,
}

/// A ranking request with every parameter parsed. `None` means "not given": the server's default
/// applies, which the relay does not know, so it stays distinct from any explicit value. A client that
/// builds one (the launcher) starts from `Default` and calls [`RankingRequest::normalised`].
#[derive(Debug, Clone, PartialEq, Default)]
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
    pub risk: Option<f64>,
    pub seed: Option<u64>,
    /// Sorted, without duplicates.
    pub exclude_pools: Vec<PoolId>,
    pub k: Option<usize>,
}

fn list<T: FromStr<Err = EventError>>(
    field: &'static str,
    raw: &Option<String>,
) -> Result<Vec<T>, QueryError> {
    let Some(raw) = raw else { return Ok(vec![]) };
    let mut values: Vec<String> = raw
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    values.sort();
    values.dedup();
    if values.len() > MAX_LIST_VALUES {
        return Err(QueryError::parameter(
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
                .map_err(|e| QueryError::parameter(field, format!("{field}: {}", e.message)))
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
) -> Result<Option<T>, QueryError> {
    let Some(raw) = raw else { return Ok(None) };
    match raw.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(Some(v)),
        _ => Err(QueryError::parameter(
            field,
            format!("{field}: {raw:?} is not a number between {min} and {max}"),
        )),
    }
}

impl RankingParams {
    /// Parse every parameter; the error names the first one at fault. A parameter given empty
    /// (`strategy=`) counts as not given, as forms send unset fields.
    pub fn parse(&self) -> Result<RankingRequest, QueryError> {
        let window = given(&self.window)
            .map(|w| Window::parse("window", w))
            .transpose()?;
        let strategy = given(&self.strategy)
            .map(str::parse::<Strategy>)
            .transpose()?;
        let half_life = half_life(&self.half_life)?;
        let risk = number("risk", given(&self.risk), 0.5, 0.9999)?;
        let seed = number("seed", given(&self.seed), 0u64, u64::MAX)?;
        only_with(strategy, risk.is_some(), "risk", Strategy::Pooled)?;
        only_with(strategy, seed.is_some(), "seed", Strategy::Thompson)?;
        Ok(RankingRequest {
            instance_types: list("instance_types", &self.instance_types)?,
            zones: list("availability_zones", &self.availability_zones)?,
            window,
            strategy,
            half_life,
            confidence: number("confidence", given(&self.confidence), 0.5, 0.9999)?,
            min_jobs: number("min_jobs", given(&self.min_jobs), 0u64, 1_000_000_000)?,
            limit: number("limit", given(&self.limit), 1usize, MAX_POOLS_LIMIT)?,
            risk,
            seed,
            exclude_pools: list("exclude_pools", &self.exclude_pools)?,
            k: number("k", given(&self.k), 1usize, MAX_K)?,
        })
    }
}

/// A parameter that only one strategy reads is refused with another explicit strategy (a server
/// whose default is another strategy refuses it too, see pool-selector).
pub fn only_with(
    strategy: Option<Strategy>,
    given: bool,
    field: &'static str,
    with: Strategy,
) -> Result<(), QueryError> {
    match strategy {
        Some(s) if given && s != with => Err(QueryError::parameter(
            field,
            format!(
                "{field} applies to strategy={}, not strategy={}",
                with.as_str(),
                s.as_str()
            ),
        )),
        _ => Ok(()),
    }
}

/// Shortest recency half-life: rankings sum per-hour tallies, whose weights are exact for half-lives
/// of an hour or more (and a shorter one would weigh little but the last minutes).
pub const MIN_HALF_LIFE: Duration = Duration::from_secs(3600);

/// A half-life from its text: at least [`MIN_HALF_LIFE`], at most ten years.
pub fn parse_half_life(h: &str) -> Result<Duration, String> {
    match duration::parse(h) {
        Ok(d) if d >= MIN_HALF_LIFE && d <= MAX_WINDOW => Ok(d),
        Ok(d) if !d.is_zero() && d < MIN_HALF_LIFE => Err(format!(
            "{h:?} is shorter than an hour, the shortest half-life (per-hour tallies weigh jobs exactly from 1h on)"
        )),
        _ => Err(format!("{h:?} is not a duration such as 12h or 3600")),
    }
}

/// `half_life`: a duration of at least an hour, `0` = explicitly off.
fn half_life(raw: &Option<String>) -> Result<Option<Option<Duration>>, QueryError> {
    Ok(match given(raw) {
        Some(h) if duration::parse(h).is_ok_and(|d| d.is_zero()) => Some(None),
        Some(h) => Some(Some(parse_half_life(h).map_err(|e| {
            QueryError::parameter("half_life", format!("half_life: {e} (0 = off)"))
        })?)),
        None => None,
    })
}

impl RankingRequest {
    /// Parse a raw query string (without `?`) as pool-selector's query extractor does: a repeated,
    /// unknown or malformed parameter is a 400 naming it.
    pub fn from_query(query: &str) -> Result<Self, QueryError> {
        decode_query::<RankingParams>(query)?.parse()
    }

    /// The lists sorted and without duplicates, as parsing makes them, so a request built in code has
    /// the same canonical form as the same request parsed from a query string.
    pub fn normalised(mut self) -> Self {
        fn tidy<T: AsRef<str>>(v: &mut Vec<T>) {
            v.sort_by(|a, b| a.as_ref().cmp(b.as_ref()));
            v.dedup_by(|a, b| a.as_ref() == b.as_ref());
        }
        tidy(&mut self.instance_types);
        tidy(&mut self.zones);
        tidy(&mut self.exclude_pools);
        self
    }

    /// The canonical query string (without `?`): every given parameter in its parsed form, in a fixed
    /// order. Two requests have the same canonical form exactly when they ask the same question.
    /// `with_limit` is true for `/pools`, where `limit` changes the answer and `k` does not, and false
    /// for `/get-pool`, where it is the other way round.
    pub fn canonical(&self, with_limit: bool) -> String {
        let mut s = form_urlencoded_serializer();
        append_list(
            &mut s,
            "instance_types",
            self.instance_types.iter().map(|t| t.as_str()),
        );
        append_list(
            &mut s,
            "availability_zones",
            self.zones.iter().map(|z| z.as_str()),
        );
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
        if let Some(r) = self.risk {
            s.append_pair("risk", &r.to_string());
        }
        if let Some(seed) = self.seed {
            s.append_pair("seed", &seed.to_string());
        }
        append_list(
            &mut s,
            "exclude_pools",
            self.exclude_pools.iter().map(|p| p.as_str()),
        );
        if let (false, Some(k)) = (with_limit, self.k) {
            s.append_pair("k", &k.to_string());
        }
        s.finish()
    }
}

/// Query parameters of `/backtest` and `/backtest.svg`, as written.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BacktestParams {
    /// Comma-separated strategies to replay. Default: all six: pooled, thompson, wilson, bayes, naive, pooled-v1.
    pub strategies: Option<String>,
    /// Comma-separated instance types the picks choose among (`family.size`). Default: all.
    pub instance_types: Option<String>,
    /// Comma-separated availability zones the picks choose among. Default: all.
    pub availability_zones: Option<String>,
    /// Span replayed, ending at the last full hour: `14d`, `48h`, seconds; whole hours, 1h–31d.
    /// Default 14d.
    pub window: Option<String>,
    /// Time between decisions, whole hours, 1h–24h. Default 1h.
    pub step: Option<String>,
    /// History each decision may use (its look-back window), whole hours, 1h–31d. Default:
    /// EVENT_FILTER_WINDOW when that is 31 days or less, else 7d.
    pub train_window: Option<String>,
    /// Recency weighting of each decision's window (`0` = off). Default: RANKING_HALF_LIFE.
    pub half_life: Option<String>,
    /// Confidence level of the intervals `wilson` and `bayes` rank by, 0.5–0.9999.
    pub confidence: Option<String>,
    /// `pooled`'s posterior quantile, 0.5–0.9999 (default: the posterior mean).
    pub risk: Option<String>,
    /// Seed of `thompson`'s draws. Default 0.
    pub seed: Option<String>,
    /// The best pool in hindsight must have run at least this many jobs in the span. Default 30.
    pub min_jobs: Option<String>,
}

/// A backtest request with every parameter parsed (`None`: the server's default).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BacktestRequest {
    /// In the order given, without duplicates.
    pub strategies: Vec<Strategy>,
    pub instance_types: Vec<InstanceType>,
    pub zones: Vec<AvailabilityZone>,
    pub window: Option<Duration>,
    pub step: Option<Duration>,
    pub train_window: Option<Duration>,
    pub half_life: Option<Option<Duration>>,
    pub confidence: Option<f64>,
    pub risk: Option<f64>,
    pub seed: Option<u64>,
    pub min_jobs: Option<u64>,
}

/// A whole number of hours between `min` and `max`.
fn hours(
    field: &'static str,
    raw: Option<&str>,
    min: Duration,
    max: Duration,
) -> Result<Option<Duration>, QueryError> {
    let Some(raw) = raw else { return Ok(None) };
    match duration::parse(raw) {
        Ok(d) if d >= min && d <= max && d.as_secs() % 3600 == 0 => Ok(Some(d)),
        _ => Err(QueryError::parameter(
            field,
            format!(
                "{field}: {raw:?} is not a whole number of hours between {}h and {}h (e.g. 24h, 14d)",
                min.as_secs() / 3600,
                max.as_secs() / 3600
            ),
        )),
    }
}

impl BacktestParams {
    pub fn parse(&self) -> Result<BacktestRequest, QueryError> {
        let mut strategies: Vec<Strategy> = vec![];
        if let Some(raw) = given(&self.strategies) {
            for name in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let s = name.parse::<Strategy>().map_err(|e| {
                    QueryError::parameter("strategies", format!("strategies: {}", e.message))
                })?;
                if !strategies.contains(&s) {
                    strategies.push(s);
                }
            }
        }
        let hour = Duration::from_secs(3600);
        Ok(BacktestRequest {
            strategies,
            instance_types: list("instance_types", &self.instance_types)?,
            zones: list("availability_zones", &self.availability_zones)?,
            window: hours("window", given(&self.window), hour, MAX_BACKTEST_SPAN)?,
            step: hours(
                "step",
                given(&self.step),
                hour,
                Duration::from_secs(24 * 3600),
            )?,
            train_window: hours(
                "train_window",
                given(&self.train_window),
                hour,
                MAX_BACKTEST_SPAN,
            )?,
            half_life: half_life(&self.half_life)?,
            confidence: number("confidence", given(&self.confidence), 0.5, 0.9999)?,
            risk: number("risk", given(&self.risk), 0.5, 0.9999)?,
            seed: number("seed", given(&self.seed), 0u64, u64::MAX)?,
            min_jobs: number("min_jobs", given(&self.min_jobs), 1u64, 1_000_000_000)?,
        })
    }
}

impl BacktestRequest {
    /// A replay of the candidates `ranking` chooses among (its instance types and zones), every other
    /// parameter the server's default: the chart beside a ranking.
    pub fn candidates_of(ranking: &RankingRequest) -> Self {
        Self {
            instance_types: ranking.instance_types.clone(),
            zones: ranking.zones.clone(),
            ..Self::default()
        }
    }

    /// Parse a raw query string as pool-selector's extractor does.
    pub fn from_query(query: &str) -> Result<Self, QueryError> {
        decode_query::<BacktestParams>(query)?.parse()
    }

    /// The canonical query string (the relay's cache key), as [`RankingRequest::canonical`].
    pub fn canonical(&self) -> String {
        let mut s = form_urlencoded_serializer();
        append_list(
            &mut s,
            "strategies",
            self.strategies.iter().map(|t| t.as_str()),
        );
        append_list(
            &mut s,
            "instance_types",
            self.instance_types.iter().map(|t| t.as_str()),
        );
        append_list(
            &mut s,
            "availability_zones",
            self.zones.iter().map(|z| z.as_str()),
        );
        for (name, d) in [
            ("window", self.window),
            ("step", self.step),
            ("train_window", self.train_window),
        ] {
            if let Some(d) = d {
                s.append_pair(name, &d.as_secs().to_string());
            }
        }
        if let Some(h) = self.half_life {
            s.append_pair("half_life", &h.map_or(0, |d| d.as_secs()).to_string());
        }
        if let Some(c) = self.confidence {
            s.append_pair("confidence", &c.to_string());
        }
        if let Some(r) = self.risk {
            s.append_pair("risk", &r.to_string());
        }
        if let Some(seed) = self.seed {
            s.append_pair("seed", &seed.to_string());
        }
        if let Some(m) = self.min_jobs {
            s.append_pair("min_jobs", &m.to_string());
        }
        s.finish()
    }
}

/// A raw query string as actix-web's `Query` extractor reads it: a repeated or unknown parameter is a 400.
fn decode_query<P: serde::de::DeserializeOwned>(query: &str) -> Result<P, QueryError> {
    serde_urlencoded::from_str(query)
        .map_err(|e| QueryError::Malformed(format!("malformed query string: {e}")))
}

/// `name=a,b,c`, unless the list is empty.
fn append_list<'a>(
    s: &mut url::form_urlencoded::Serializer<'static, String>,
    name: &str,
    values: impl Iterator<Item = &'a str>,
) {
    let joined = values.collect::<Vec<_>>().join(",");
    if !joined.is_empty() {
        s.append_pair(name, &joined);
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
        assert_eq!(canon("strategy=Pooled-V1"), "strategy=pooled-v1");
        for name in Strategy::ALL {
            let s: Strategy = name.parse().unwrap();
            assert_eq!(s.as_str(), name);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{name}\""));
        }
        assert_eq!(canon("half_life=0s"), "half_life=0");
        assert_eq!(canon("half_life=12h"), canon("half_life=43200"));
        // Windows are one question per grain: minutes up to an hour, hours up to 62 days, days beyond.
        assert_eq!(canon("window=90"), "window=120");
        assert_eq!(canon("window=90s"), canon("window=2m"));
        assert_eq!(canon("window=3601"), "window=7200");
        assert_eq!(canon("window=25h"), canon("window=90000"));
        assert_eq!(canon("window=62d 1s"), canon("window=63d"));
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
    fn new_parameters_have_one_canonical_form() {
        assert_eq!(
            canon("exclude_pools=POOL-m6a.large-us-east-1b,pool-c6a.large-us-east-1a&k=03"),
            "exclude_pools=pool-c6a.large-us-east-1a%2Cpool-m6a.large-us-east-1b"
        );
        let r = RankingRequest::from_query("k=3&strategy=thompson&seed=0042").unwrap();
        assert_eq!(r.canonical(false), "strategy=thompson&seed=42&k=3");
        assert_eq!(
            canon("strategy=pooled&risk=0.90"),
            "strategy=pooled&risk=0.9"
        );
        // Without an explicit strategy the server's default decides (pool-selector checks it).
        assert!(RankingRequest::from_query("risk=0.9").is_ok());
    }

    #[test]
    fn backtest_requests_parse_and_canonicalise() {
        let b = BacktestRequest::from_query(
            "strategies=naive,Pooled,naive&window=14d&step=1h&instance_types=m6a.large,c6a.large",
        )
        .unwrap();
        assert_eq!(b.strategies, [Strategy::Naive, Strategy::Pooled]);
        assert_eq!(
            b.canonical(),
            "strategies=naive%2Cpooled&instance_types=c6a.large%2Cm6a.large&window=1209600&step=3600"
        );
        assert_eq!(
            BacktestRequest::from_query("window=336h")
                .unwrap()
                .canonical(),
            BacktestRequest::from_query("window=14d")
                .unwrap()
                .canonical()
        );
        for (q, field) in [
            ("strategies=best", Some("strategies")),
            ("window=90m", Some("window")),
            ("window=32d", Some("window")),
            ("step=0", Some("step")),
            ("step=2d", Some("step")),
            ("train_window=forever", Some("train_window")),
            ("min_jobs=0", Some("min_jobs")),
            ("limit=5", None),
        ] {
            let e = BacktestRequest::from_query(q).unwrap_err();
            assert_eq!(e.field(), field, "{q}: {e}");
        }
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
            ("half_life=30m", Some("half_life")),
            ("min_jobs=x", Some("min_jobs")),
            ("limit=0", Some("limit")),
            ("risk=1", Some("risk")),
            ("risk=0.9&strategy=wilson", Some("risk")),
            ("seed=-1", Some("seed")),
            ("seed=5&strategy=pooled", Some("seed")),
            ("k=0", Some("k")),
            ("k=21", Some("k")),
            ("exclude_pools=c6a.xlarge", Some("exclude_pools")),
            ("instance_types=notatype", Some("instance_types")),
            ("availability_zones=mars", Some("availability_zones")),
            ("instance_type=c6a.xlarge", None),
            ("window=1h&window=2h", None),
        ] {
            let e = RankingRequest::from_query(q).unwrap_err();
            assert_eq!(e.field(), field, "{q}: {e}");
        }
        let many: Vec<String> = (0..=MAX_LIST_VALUES)
            .map(|i| format!("m{i}.large"))
            .collect();
        let e =
            RankingRequest::from_query(&format!("instance_types={}", many.join(","))).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
    }
}
