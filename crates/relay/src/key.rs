//! Which requests the relay forwards, and the cache key of each.
//!
//! The relay is not an open proxy (seed 002 relayed any path): only the read routes in
//! [`RELAYED_ROUTES`] are forwarded, and each request is turned into one canonical form that is both the
//! cache key and what is sent upstream. Sending the canonical form, not the raw query, guarantees that two
//! requests sharing a key really are the same upstream question.

use std::fmt;

use url::form_urlencoded;

/// The pool-selector read routes the relay forwards. A later route is one more line here.
pub const RELAYED_ROUTES: &[&str] = &["/get-pool", "/pools"];

/// Parameters holding comma-separated sets: order, case, blanks and duplicates inside them carry no
/// meaning, so `C6A.xlarge,m6a.xlarge` and `m6a.xlarge,c6a.xlarge,c6a.xlarge` are one key.
pub const SET_PARAMETERS: &[&str] = &["instance_types", "availability_zones"];

/// Longest query string relayed. A longer one would only bloat Redis keys; no real filter needs it.
pub const MAX_QUERY_LEN: usize = 4096;

/// Why a request cannot be relayed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the query string is {0} bytes long; the relay accepts at most {MAX_QUERY_LEN}")]
    QueryTooLong(usize),
}

/// One relayed request in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    route: &'static str,
    query: String,
}

impl CacheKey {
    /// The canonical form of `route` (one of [`RELAYED_ROUTES`]) with the raw `query` string:
    ///
    /// * parameter names are lowercased and parameters sorted by name (then value), so order and the
    ///   case of names do not matter;
    /// * the values of [`SET_PARAMETERS`] are split on commas, trimmed, lowercased, deduplicated and
    ///   sorted, and repeated occurrences of such a parameter are merged into one set;
    /// * any other parameter, known or not, is kept verbatim (repeats included), so the upstream still
    ///   sees it and answers its own 400 for what it does not accept.
    pub fn new(route: &'static str, query: &str) -> Result<Self, KeyError> {
        if query.len() > MAX_QUERY_LEN {
            return Err(KeyError::QueryTooLong(query.len()));
        }
        let mut sets: Vec<(String, Vec<String>)> = Vec::new();
        let mut others: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let name = name.trim().to_ascii_lowercase();
            if name.is_empty() {
                continue;
            }
            if SET_PARAMETERS.contains(&name.as_str()) {
                let items = value
                    .split(',')
                    .map(|v| v.trim().to_lowercase())
                    .filter(|v| !v.is_empty());
                match sets.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, set)) => set.extend(items),
                    None => sets.push((name, items.collect())),
                }
            } else {
                others.push((name, value.into_owned()));
            }
        }
        let mut params: Vec<(String, String)> = sets
            .into_iter()
            .map(|(name, mut set)| {
                set.sort_unstable();
                set.dedup();
                (name, set.join(","))
            })
            .chain(others)
            .collect();
        params.sort();
        let query = if params.is_empty() {
            String::new()
        } else {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(params)
                .finish()
        };
        Ok(Self { route, query })
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
            "INSTANCE_TYPES=%20c6a.xlarge%20,,m6a.xlarge",
            "instance_types=c6a.xlarge&instance_types=m6a.xlarge",
            "instance_types=m6a.xlarge,c6a.xlarge&instance_types=c6a.xlarge",
            "instance_types=c6a.xlarge%2Cm6a.xlarge",
        ] {
            assert_eq!(key(same), canonical, "{same}");
        }
        assert_ne!(key("instance_types=c6a.xlarge"), canonical);
    }

    #[test]
    fn parameter_order_does_not_matter() {
        let a =
            key("instance_types=c6a.xlarge&availability_zones=us-east-1b,us-east-1a&window=24h");
        let b =
            key("window=24h&availability_zones=US-EAST-1A,us-east-1b&instance_types=c6a.xlarge");
        assert_eq!(a, b);
        assert_eq!(
            a,
            "GET /get-pool?availability_zones=us-east-1a%2Cus-east-1b&instance_types=c6a.xlarge&window=24h"
        );
    }

    #[test]
    fn other_parameters_are_kept_verbatim_so_the_upstream_judges_them() {
        assert_ne!(key("window=24h"), key("window=24H"));
        assert_eq!(key("Strategy=naive"), "GET /get-pool?strategy=naive");
        assert_eq!(key("bogus=1&bogus=2"), "GET /get-pool?bogus=1&bogus=2");
        assert_eq!(key("bogus=2&bogus=1"), key("bogus=1&bogus=2"));
        assert_ne!(key("bogus=1"), key(""));
        // Injection-like values survive encoded, and reach the upstream's validation unchanged.
        let k = CacheKey::new("/get-pool", "instance_types=c6a.xlarge'%20OR%201=1").unwrap();
        assert_eq!(k.query(), "instance_types=c6a.xlarge%27+or+1%3D1");
    }

    #[test]
    fn empty_and_missing_queries() {
        assert_eq!(key(""), "GET /get-pool");
        assert_eq!(key("&&"), "GET /get-pool");
        assert_eq!(key("instance_types="), "GET /get-pool?instance_types=");
        assert_eq!(key("instance_types=,"), "GET /get-pool?instance_types=");
        let k = CacheKey::new("/pools", "").unwrap();
        assert_eq!(k.path_and_query(), "/pools");
        assert_eq!(k.route(), "/pools");
    }

    #[test]
    fn overlong_queries_are_refused() {
        let q = format!("instance_types={}", "a".repeat(MAX_QUERY_LEN));
        assert_eq!(
            CacheKey::new("/get-pool", &q).unwrap_err(),
            KeyError::QueryTooLong(q.len())
        );
    }
}
