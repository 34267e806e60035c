//! Which requests the relay forwards, and the cache key of each.
//!
//! The relay is not an open proxy (seed 002 relayed any path): only the read routes in
//! [`RELAYED_ROUTES`] are forwarded. Each request's query is parsed by the same function pool-selector
//! uses ([`pool_core::request::RankingRequest::from_query`] for the rankings,
//! [`pool_core::request::BacktestRequest::from_query`] for the backtests); a query it would refuse is
//! refused here with the same 400, before any upstream work, and an accepted one is turned into its
//! canonical form, which is both the cache key and what is sent upstream. Every spelling of one question
//! (`window=0`, `window=00`, `window=0s`, sets in any order or case) is therefore one key and at most one
//! scan.
//!
//! One kind of question has no answer to share: an unseeded `strategy=thompson` ranking is one random
//! posterior draw per request, and two callers must get independent draws (that spreads their load over
//! the pools). Its key is marked [`CacheKey::cacheable`] `false`: the relay forwards it on its own.

use std::fmt;

use pool_core::request::{BacktestRequest, RankingRequest, Strategy};
use pool_http::ApiError;

/// The pool-selector read routes the relay forwards. A later route is one more line here (and one
/// more arm in [`CacheKey::new`] when its query grammar is not the ranking one).
pub const RELAYED_ROUTES: &[&str] = &["/get-pool", "/pools", "/backtest", "/backtest.svg"];

/// Longest query string relayed. A longer one would only bloat Redis keys; no real filter needs it.
pub const MAX_QUERY_LEN: usize = 4096;

/// [`CacheKey::uncacheable_reason`] of an unseeded `strategy=thompson` ranking.
pub const UNSEEDED_THOMPSON: &str = "unseeded_thompson";

/// Why a request cannot be relayed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KeyError {
    #[error("the query string is {0} bytes long; the relay accepts at most {MAX_QUERY_LEN}")]
    QueryTooLong(usize),
    /// pool-selector would refuse it: the same 400.
    #[error("{0}")]
    Invalid(ApiError),
}

/// One relayed request in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    route: &'static str,
    query: String,
    /// Why answers to this question must not be shared (`None`: they may be cached).
    uncacheable: Option<&'static str>,
}

impl CacheKey {
    /// The canonical form of `route` (one of [`RELAYED_ROUTES`]) with the raw `query` string: the
    /// parsed parameters written back in one fixed order and spelling (see
    /// [`RankingRequest::canonical`], [`BacktestRequest::canonical`]); `limit` only counts on
    /// `/pools`, `k` only on `/get-pool`.
    pub fn new(route: &'static str, query: &str) -> Result<Self, KeyError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(KeyError::QueryTooLong(query.len()));
        }
        let (query, uncacheable) = match route {
            "/backtest" | "/backtest.svg" => {
                // A backtest's thompson draws are seeded (default 0): every answer is reproducible.
                let request =
                    BacktestRequest::from_query(query).map_err(|e| KeyError::Invalid(e.into()))?;
                (request.canonical(), None)
            }
            _ => {
                let request =
                    RankingRequest::from_query(query).map_err(|e| KeyError::Invalid(e.into()))?;
                let random = request.strategy == Some(Strategy::Thompson) && request.seed.is_none();
                (
                    request.canonical(route == "/pools"),
                    random.then_some(UNSEEDED_THOMPSON),
                )
            }
        };
        Ok(Self {
            route,
            query,
            uncacheable,
        })
    }

    /// Whether answers to this question may be shared: `false` for an unseeded `strategy=thompson`
    /// ranking, whose answer is a fresh random draw on every request (never cached, never coalesced).
    pub fn cacheable(&self) -> bool {
        self.uncacheable.is_none()
    }

    /// Why answers must not be shared, a metrics label (e.g. [`UNSEEDED_THOMPSON`]); `None` when
    /// [`cacheable`](Self::cacheable).
    pub fn uncacheable_reason(&self) -> Option<&'static str> {
        self.uncacheable
    }

    /// The route pattern, e.g. `/get-pool` (a metrics label: the set is small and fixed).
    pub fn route(&self) -> &'static str {
        self.route
    }

    /// The canonical query string, without `?` (empty when there is none).
    pub fn query(&self) -> &str {
        &self.query
    }

    /// Path and canonical query as sent upstream, e.g. `/get-pool?instance_types=c6a.xlarge`.
    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.route.to_owned()
        } else {
            format!("{}?{}", self.route, self.query)
        }
    }
}

impl fmt::Display for CacheKey {
    /// `GET /get-pool?…`: the string stored in Redis (behind a prefix) and in the in-process cache.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GET {}", self.path_and_query())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: &str) -> String {
        CacheKey::new("/get-pool", q).unwrap().to_string()
    }

    #[test]
    fn order_case_and_duplicates_in_sets_do_not_matter() {
        let canonical = key("instance_types=c6a.xlarge,m6a.xlarge");
        assert_eq!(
            canonical,
            "GET /get-pool?instance_types=c6a.xlarge%2Cm6a.xlarge"
        );
        for same in [
            "instance_types=m6a.xlarge,c6a.xlarge",
            "instance_types=M6A.xlarge,c6a.XLARGE,c6a.xlarge",
            "instance_types=%20c6a.xlarge%20,,m6a.xlarge",
            "instance_types=c6a.xlarge%2Cm6a.xlarge",
        ] {
            assert_eq!(key(same), canonical, "{same}");
        }
        assert_ne!(key("instance_types=c6a.xlarge"), canonical);
    }

    #[test]
    fn every_spelling_of_a_window_or_a_number_is_one_key() {
        let zero = key("window=0");
        for same in ["window=00", "window=0s", "window=0h", "window=%200"] {
            assert_eq!(key(same), zero, "{same}");
        }
        assert_eq!(key("confidence=0.95"), key("confidence=0.950"));
        assert_eq!(
            key("window=24h&strategy=Wilson"),
            key("strategy=wilson&window=86400")
        );
        assert_eq!(
            key("instance_types=c6a.xlarge&availability_zones=us-east-1b,us-east-1a&window=24h"),
            "GET /get-pool?instance_types=c6a.xlarge&availability_zones=us-east-1a%2Cus-east-1b&window=86400"
        );
    }

    #[test]
    fn limit_is_part_of_the_key_only_where_it_matters() {
        assert_eq!(key("limit=5"), key(""));
        let pools = |q| CacheKey::new("/pools", q).unwrap().to_string();
        assert_ne!(pools("limit=5"), pools(""));
        assert_eq!(pools("limit=05"), pools("limit=5"));
    }

    #[test]
    fn what_pool_selector_refuses_is_refused_here_with_its_answer() {
        for q in [
            "bogus=1",
            "window=24H1",
            "instance_types=a&instance_types=b",
            "instance_types=c6a.xlarge'%20OR%201=1",
            "confidence=2",
        ] {
            match CacheKey::new("/get-pool", q) {
                Err(KeyError::Invalid(e)) => assert_eq!(e.status.as_u16(), 400, "{q}"),
                other => panic!("{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn backtests_are_keyed_by_their_own_grammar() {
        let bt = |route, q| CacheKey::new(route, q).unwrap().to_string();
        assert_eq!(
            bt("/backtest", "window=14d&strategies=naive,Pooled"),
            bt("/backtest", "strategies=naive,pooled,naive&window=336h")
        );
        assert_eq!(
            bt("/backtest", "window=14d&strategies=naive,pooled"),
            "GET /backtest?strategies=naive%2Cpooled&window=1209600"
        );
        // The order of the strategies is the order of the answer's series: it is part of the key.
        assert_ne!(
            bt("/backtest", "strategies=naive,pooled"),
            bt("/backtest", "strategies=pooled,naive")
        );
        // The chart and the table are different answers to one question.
        assert_eq!(
            bt("/backtest.svg", "step=1h"),
            "GET /backtest.svg?step=3600"
        );
        assert!(
            CacheKey::new("/backtest", "strategies=thompson")
                .unwrap()
                .cacheable()
        );
        // Ranking parameters are not backtest parameters, and the other way round.
        for (route, q, field) in [
            ("/backtest", "step=0", Some("step")),
            ("/backtest.svg", "window=90m", Some("window")),
            ("/backtest", "limit=5", None),
            ("/get-pool", "step=1h", None),
        ] {
            match CacheKey::new(route, q) {
                Err(KeyError::Invalid(e)) => {
                    assert_eq!(e.status.as_u16(), 400, "{route}?{q}");
                    assert_eq!(e.body.field.as_deref(), field, "{route}?{q}");
                }
                other => panic!("{route}?{q}: {other:?}"),
            }
        }
    }

    #[test]
    fn only_unseeded_thompson_rankings_are_uncacheable() {
        for (route, q) in [
            ("/get-pool", "strategy=thompson"),
            ("/pools", "strategy=Thompson&k=2"),
        ] {
            let k = CacheKey::new(route, q).unwrap();
            assert!(!k.cacheable(), "{route}?{q}");
            assert_eq!(k.uncacheable_reason(), Some(UNSEEDED_THOMPSON));
        }
        for (route, q) in [
            ("/get-pool", "strategy=thompson&seed=3"),
            ("/pools", "strategy=thompson&seed=0"),
            ("/get-pool", ""),
            ("/get-pool", "strategy=pooled"),
        ] {
            assert!(CacheKey::new(route, q).unwrap().cacheable(), "{route}?{q}");
        }
        assert_eq!(
            key("seed=03&strategy=thompson"),
            "GET /get-pool?strategy=thompson&seed=3"
        );
        assert_ne!(
            key("strategy=thompson&seed=3"),
            key("strategy=thompson&seed=4")
        );
    }

    #[test]
    fn empty_queries() {
        assert_eq!(key(""), "GET /get-pool");
        assert_eq!(key("&&"), "GET /get-pool");
        assert_eq!(key("instance_types="), "GET /get-pool");
        let k = CacheKey::new("/pools", "").unwrap();
        assert_eq!(k.path_and_query(), "/pools");
        assert_eq!(k.route(), "/pools");
    }

    #[test]
    fn overlong_queries_are_refused() {
        let q = format!("instance_types={}", "a".repeat(MAX_QUERY_LEN));
        assert!(matches!(
            CacheKey::new("/get-pool", &q),
            Err(KeyError::QueryTooLong(n)) if n == q.len()
        ));
    }
}
