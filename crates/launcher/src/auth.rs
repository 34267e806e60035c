//! Who is calling: `LAUNCHER_TOKENS`, comma-separated `caller:token` pairs (mounted from a Secret), and
//! the [`Caller`] every launch route takes from the request's `Authorization: Bearer <token>`.
//!
//! A launch records its caller; only that caller or [`ADMIN`] may read or cancel it, and
//! `GET /launches` lists the caller's own (every launch for `admin`). Without any token configured the
//! launch routes answer 401: a launcher that starts Spark jobs is never open by accident.
//! `/health`, `/ready`, `/metrics` and the API document stay open.
//!
//! Tokens are compared in constant time: the presented token and every configured one are hashed
//! (SHA-256) and the digests compared with `subtle`, all of them, whatever matched, so neither the
//! position of a match nor a token's length or content shows in the time an answer takes.

use std::future::{Ready, ready};

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use pool_http::ErrorBody;

/// The caller allowed to see and cancel every launch.
pub const ADMIN: &str = "admin";

/// Longest caller name: it is a label in logs, a Redis key part and a field of every launch.
pub const MAX_CALLER_LEN: usize = 64;

/// A `LAUNCHER_TOKENS` entry that cannot be used. Never holds the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("LAUNCHER_TOKENS entry {position}: {problem}")]
pub struct TokensError {
    /// 1 for the first entry.
    pub position: usize,
    pub problem: String,
}

/// Whether `name` can be a caller: 1–64 ASCII letters, digits, `.`, `_` or `-`.
pub fn valid_caller(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_CALLER_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// The configured callers and their tokens (as digests).
#[derive(Clone, Default)]
pub struct Callers {
    entries: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Callers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(c, _)| c.as_str()).collect();
        f.debug_struct("Callers").field("callers", &names).finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Callers {
    /// Parse `caller:token` entries (blank entries are ignored). A caller may have several tokens (to
    /// rotate them); one token may not belong to two callers.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, TokensError> {
        let mut out: Vec<(String, [u8; 32])> = Vec::new();
        for (i, raw) in entries.iter().enumerate() {
            let position = i + 1;
            let bad = |problem: &str| TokensError {
                position,
                problem: problem.to_owned(),
            };
            let raw = raw.as_ref().trim();
            if raw.is_empty() {
                continue;
            }
            let (caller, token) = raw
                .split_once(':')
                .ok_or_else(|| bad("not of the form caller:token"))?;
            let (caller, token) = (caller.trim(), token.trim());
            if !valid_caller(caller) {
                return Err(bad(
                    "the caller must be 1-64 letters, digits, '.', '_' or '-'",
                ));
            }
            if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad(
                    "the token must be non-empty, without spaces or control characters",
                ));
            }
            let d = digest(token);
            if let Some((other, _)) = out.iter().find(|(_, e)| *e == d) {
                if other != caller {
                    return Err(bad("this token is already another caller's"));
                }
                continue;
            }
            out.push((caller.to_owned(), d));
        }
        Ok(Self { entries: out })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The distinct caller names, in the order configured.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for (c, _) in &self.entries {
            if !names.contains(&c.as_str()) {
                names.push(c);
            }
        }
        names
    }

    /// The caller whose token `presented` is, compared in constant time against every entry.
    pub fn identify(&self, presented: &str) -> Option<Caller> {
        let given = digest(presented);
        let mut found: Option<usize> = None;
        for (i, (_, d)) in self.entries.iter().enumerate() {
            if bool::from(d[..].ct_eq(&given[..])) {
                found = Some(i);
            }
        }
        found.map(|i| Caller {
            name: self.entries[i].0.clone(),
        })
    }

    /// The caller of `req`, or the 401 to answer.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<Caller, Unauthorized> {
        if self.is_empty() {
            return Err(Unauthorized(
                "the launcher has no LAUNCHER_TOKENS configured: no request is accepted until caller:token pairs are set",
            ));
        }
        let header = req.headers().get(AUTHORIZATION).ok_or(Unauthorized(
            "this route needs an `Authorization: Bearer <token>` header (a token of LAUNCHER_TOKENS)",
        ))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Unauthorized(
                "the Authorization header is not `Bearer <token>`",
            ))?;
        self.identify(token).ok_or(Unauthorized(
            "the bearer token is not one of LAUNCHER_TOKENS",
        ))
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub name: String,
}

impl Caller {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.name == ADMIN
    }

    /// Whether this caller may see and cancel a launch `owner` started.
    pub fn may_access(&self, owner: &str) -> bool {
        self.is_admin() || self.name == owner
    }
}

/// A request without a valid token: 401 with `WWW-Authenticate: Bearer` and the JSON error body.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("{0}")]
pub struct Unauthorized(pub &'static str);

impl actix_web::ResponseError for Unauthorized {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::Unauthorized()
            .insert_header((WWW_AUTHENTICATE, "Bearer realm=\"launcher\""))
            .json(ErrorBody {
                error: "unauthorized".into(),
                message: self.0.into(),
                field: None,
                details: None,
            })
    }
}

impl FromRequest for Caller {
    type Error = Unauthorized;
    type Future = Ready<Result<Self, Unauthorized>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let result = match req.app_data::<web::Data<Callers>>() {
            Some(callers) => callers.authenticate(req),
            None => Err(Unauthorized("the launcher has no callers configured")),
        };
        if let Err(e) = &result {
            tracing::debug!(
                path = req.path(),
                reason = e.0,
                "request refused: unauthorized"
            );
        }
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn pairs_parse_and_identify_their_caller() {
        let c =
            Callers::parse(&["alice:a-token", " bob : b-token ", "", "alice:a-second"]).unwrap();
        assert_eq!(c.names(), ["alice", "bob"]);
        assert_eq!(c.identify("a-token"), Some(Caller::new("alice")));
        assert_eq!(c.identify("a-second"), Some(Caller::new("alice")));
        assert_eq!(c.identify("b-token"), Some(Caller::new("bob")));
        assert_eq!(c.identify("b-toke"), None);
        assert_eq!(c.identify(""), None);
        assert!(Callers::parse::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_named_by_position_never_echoed() {
        for (entries, position, want) in [
            (vec!["secret-without-caller"], 1, "caller:token"),
            (vec!["ok:t", "bad name:secret"], 2, "letters"),
            (vec![":secret"], 1, "letters"),
            (vec!["alice:"], 1, "non-empty"),
            (vec!["alice:sec ret"], 1, "spaces"),
            (vec!["alice:same", "bob:same"], 2, "another caller"),
        ] {
            let e = Callers::parse(&entries).unwrap_err();
            assert_eq!(e.position, position, "{entries:?}");
            assert!(e.to_string().contains(want), "{e}");
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }

    #[test]
    fn requests_are_authenticated_by_bearer_token() {
        let c = Callers::parse(&["alice:tok", "admin:root-tok"]).unwrap();
        let req = |h: Option<&str>| {
            let mut r = TestRequest::default();
            if let Some(h) = h {
                r = r.insert_header((AUTHORIZATION, h));
            }
            r.to_http_request()
        };
        assert_eq!(
            c.authenticate(&req(Some("Bearer tok"))).unwrap(),
            Caller::new("alice")
        );
        assert!(
            c.authenticate(&req(Some("Bearer root-tok")))
                .unwrap()
                .is_admin()
        );
        for bad in [
            None,
            Some("Bearer nope"),
            Some("Basic dG9r"),
            Some("Bearer "),
        ] {
            assert!(c.authenticate(&req(bad)).is_err(), "{bad:?}");
        }
        let none = Callers::default();
        let e = none.authenticate(&req(Some("Bearer tok"))).unwrap_err();
        assert!(e.0.contains("LAUNCHER_TOKENS"), "{e}");
    }

    #[test]
    fn admin_sees_everything_others_their_own() {
        assert!(Caller::new("admin").may_access("alice"));
        assert!(Caller::new("alice").may_access("alice"));
        assert!(!Caller::new("bob").may_access("alice"));
        assert!(valid_caller("team-a.etl_1") && !valid_caller("a/b") && !valid_caller(""));
    }
}
