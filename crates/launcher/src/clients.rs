//! The two services a launch talks to: the relay, which picks the pool, and the intake, which takes
//! the outcome back into the pipeline.
//!
//! The relay's answer is not trusted blindly: a pick outside the request's instance types or zones, or
//! one of the pools to exclude, is refused ([`check_pick`]) before anything is submitted.

use std::time::Duration;

use async_trait::async_trait;
use pool_core::event::{Event, JobId, PoolId};
use pool_core::request::RankingRequest;
use pool_core::window::Window;
use serde::Deserialize;

use crate::launch::{Attempt, LaunchSpec};

/// Why no pool came back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickError {
    /// The ranking knows no pool for the request (no data yet, or every pool excluded).
    #[error("{0}")]
    NoPool(String),
    /// The relay refused the request (a window or strategy it does not accept).
    #[error("{0}")]
    Refused(String),
    /// The relay cannot be reached or failed.
    #[error("{0}")]
    Unavailable(String),
    /// The relay answered a pool the request does not allow.
    #[error("{0}")]
    Mismatch(String),
}

/// Where picks come from: the relay ([`Ranking`]), or a test's fake.
#[async_trait]
pub trait Picker: Send + Sync {
    /// The best pool for `spec`, never one of `exclude`.
    async fn pick(&self, spec: &LaunchSpec, exclude: &[PoolId]) -> Result<PoolId, PickError>;
}

/// Whether `pool` is one the request allows: one of its instance types, in one of its zones (when it
/// names any), not one of the pools to exclude (those tried already).
pub fn check_pick(pool: &PoolId, spec: &LaunchSpec, exclude: &[PoolId]) -> Result<(), PickError> {
    let mismatch = |why: String| {
        Err(PickError::Mismatch(format!(
            "the relay picked {pool}, which the request does not allow: {why}"
        )))
    };
    if !spec.instance_types.contains(pool.instance_type()) {
        let asked: Vec<&str> = spec.instance_types.iter().map(|t| t.as_str()).collect();
        return mismatch(format!(
            "its instance type is not one of {}",
            asked.join(",")
        ));
    }
    if !spec.availability_zones.is_empty()
        && !spec.availability_zones.contains(pool.availability_zone())
    {
        let asked: Vec<&str> = spec.availability_zones.iter().map(|z| z.as_str()).collect();
        return mismatch(format!("its zone is not one of {}", asked.join(",")));
    }
    if exclude.contains(pool) {
        return mismatch("it was excluded (tried already)".to_owned());
    }
    Ok(())
}

/// Asks `GET /get-pool` (the relay's, or pool-selector's: the same contract).
#[derive(Clone)]
pub struct Ranking {
    client: reqwest::Client,
    base: String,
}

#[derive(Deserialize)]
struct Pick {
    pool_id: String,
}

fn message(body: &str) -> String {
    pool_core::view::ErrorBody::describe(body.as_bytes())
}

fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(3)))
        .build()
        .expect("an HTTP client builds")
}

impl Ranking {
    pub fn new(base: &str, timeout: Duration) -> Self {
        Self {
            client: client(timeout),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The query of a pick, in the ranking grammar's canonical form (`pool_core::request`): the same
    /// string the relay would make of it, so it is one cache key there.
    pub fn query(spec: &LaunchSpec, exclude: &[PoolId]) -> String {
        RankingRequest {
            instance_types: spec.instance_types.clone(),
            zones: spec.availability_zones.clone(),
            exclude_pools: exclude.to_vec(),
            strategy: spec.strategy,
            // Checked when the launch was accepted.
            window: spec
                .window
                .as_deref()
                .and_then(|w| Window::parse("window", w).ok()),
            ..RankingRequest::default()
        }
        .normalised()
        .canonical(false)
    }
}

#[async_trait]
impl Picker for Ranking {
    async fn pick(&self, spec: &LaunchSpec, exclude: &[PoolId]) -> Result<PoolId, PickError> {
        let url = format!("{}/get-pool?{}", self.base, Self::query(spec, exclude));
        let unavailable = |e: String| {
            PickError::Unavailable(format!(
                "the relay at {} cannot pick a pool: {e}",
                self.base
            ))
        };
        let resp = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| unavailable(e.to_string()))?;
        match status.as_u16() {
            200 => {
                let pick: Pick = serde_json::from_str(&body)
                    .map_err(|e| unavailable(format!("unreadable answer: {e}")))?;
                pick.pool_id
                    .parse()
                    .map_err(|e: pool_core::event::EventError| unavailable(e.message))
            }
            404 => Err(PickError::NoPool(format!(
                "no pool to run on: {}",
                message(&body)
            ))),
            400 | 422 => Err(PickError::Refused(message(&body))),
            s => Err(unavailable(format!("{s}: {}", message(&body)))),
        }
    }
}

/// Why an outcome was not published: a bounded label for `launcher_publish_failures_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishFailure {
    /// No `INTAKE_TOKEN`: nothing can be published.
    NoToken,
    /// The intake refused the token (401/403), or has no tokens at all (404): rotate `INTAKE_TOKEN`.
    Unauthorized,
    /// The intake refused the event itself (another 4xx): a launcher bug worth a report.
    Refused,
    /// The intake is over this token's rate (429).
    RateLimited,
    /// The intake cannot be reached, timed out, or failed (5xx).
    Unavailable,
}

impl PublishFailure {
    pub const ALL: [PublishFailure; 5] = [
        PublishFailure::NoToken,
        PublishFailure::Unauthorized,
        PublishFailure::Refused,
        PublishFailure::RateLimited,
        PublishFailure::Unavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PublishFailure::NoToken => "no_token",
            PublishFailure::Unauthorized => "unauthorized",
            PublishFailure::Refused => "refused",
            PublishFailure::RateLimited => "rate_limited",
            PublishFailure::Unavailable => "unavailable",
        }
    }
}

/// An outcome the intake did not take, and why (for the log line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PublishError {
    pub kind: PublishFailure,
    pub message: String,
}

/// Sends outcome events to the intake's `POST /events`.
#[derive(Clone)]
pub struct Intake {
    client: reqwest::Client,
    url: String,
    token: Option<String>,
}

impl Intake {
    pub fn new(base: &str, token: Option<String>, timeout: Duration) -> Self {
        Self {
            client: client(timeout),
            url: format!("{}/events", base.trim_end_matches('/')),
            token: token.filter(|t| !t.is_empty()),
        }
    }

    /// Without a token nothing is published (the intake would refuse it); outcomes wait in the outbox.
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }

    /// The event of a finished attempt, in the seed's schema.
    pub fn event(attempt: &Attempt) -> Option<Event> {
        let outcome = attempt.outcome()?;
        let finished_at = attempt.finished_at?;
        let job_id: JobId = attempt.job_id.parse().ok()?;
        Some(Event::new(
            finished_at,
            job_id,
            attempt.pool_id.clone(),
            outcome,
        ))
    }

    /// Publish one event (a JSON line); `Ok` once the intake accepted it (RabbitMQ confirmed it).
    pub async fn publish_line(&self, line: &str) -> Result<(), PublishError> {
        let fail = |kind, message: String| PublishError { kind, message };
        let Some(token) = &self.token else {
            return Err(fail(
                PublishFailure::NoToken,
                "no INTAKE_TOKEN is set: outcomes cannot be published".into(),
            ));
        };
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(format!("{line}\n"))
            .send()
            .await
            .map_err(|e| {
                fail(
                    PublishFailure::Unavailable,
                    format!("the intake at {} cannot be reached: {e}", self.url),
                )
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let body = resp.text().await.unwrap_or_default();
        let kind = match status.as_u16() {
            401 | 403 | 404 => PublishFailure::Unauthorized,
            429 => PublishFailure::RateLimited,
            400..=499 => PublishFailure::Refused,
            _ => PublishFailure::Unavailable,
        };
        Err(fail(
            kind,
            format!("the intake answered {status}: {}", message(&body)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{Defaults, LaunchRequest};

    #[test]
    fn the_pick_query_is_the_canonical_ranking_query() {
        let spec = serde_json::from_value::<LaunchRequest>(serde_json::json!({
            "application": "a", "instance_types": ["m6a.xlarge", "c6a.xlarge"],
            "availability_zones": ["us-east-1a"], "strategy": "naive", "window": "24h"
        }))
        .unwrap()
        .parse(|_| true, &defaults())
        .unwrap();
        let ex: Vec<PoolId> = vec!["pool-c6a.xlarge-us-east-1a".parse().unwrap()];
        let query = Ranking::query(&spec, &ex);
        assert_eq!(
            query,
            "instance_types=c6a.xlarge%2Cm6a.xlarge&availability_zones=us-east-1a&window=86400&strategy=naive&exclude_pools=pool-c6a.xlarge-us-east-1a"
        );
        // What the relay makes of the same request written by hand: one cache key.
        let by_hand = RankingRequest::from_query(
            "window=24h&strategy=naive&instance_types=m6a.xlarge,c6a.xlarge&exclude_pools=pool-c6a.xlarge-us-east-1a&availability_zones=us-east-1a",
        )
        .unwrap();
        assert_eq!(query, by_hand.canonical(false));
    }

    fn defaults() -> Defaults {
        Defaults::new("a", &["c6a.xlarge".into()], 3).unwrap()
    }

    #[test]
    fn a_pick_outside_the_request_is_refused() {
        let spec = serde_json::from_value::<LaunchRequest>(serde_json::json!({
            "instance_types": ["c6a.xlarge", "m6a.xlarge"], "availability_zones": ["us-east-1a", "us-east-1b"]
        }))
        .unwrap()
        .parse(|_| true, &defaults())
        .unwrap();
        let pool = |p: &str| p.parse::<PoolId>().unwrap();
        let tried = [pool("pool-c6a.xlarge-us-east-1a")];
        assert_eq!(
            check_pick(&pool("pool-m6a.xlarge-us-east-1b"), &spec, &tried),
            Ok(())
        );
        for (bad, why) in [
            ("pool-r6a.xlarge-us-east-1a", "instance type"),
            ("pool-c6a.xlarge-us-west-2a", "zone"),
            ("pool-c6a.xlarge-us-east-1a", "excluded"),
        ] {
            match check_pick(&pool(bad), &spec, &tried) {
                Err(PickError::Mismatch(m)) => assert!(m.contains(why) && m.contains(bad), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        // No zones asked: any zone will do.
        let any_zone = serde_json::from_value::<LaunchRequest>(serde_json::json!({}))
            .unwrap()
            .parse(|_| true, &defaults())
            .unwrap();
        assert_eq!(
            check_pick(&pool("pool-c6a.xlarge-eu-west-1c"), &any_zone, &[]),
            Ok(())
        );
    }

    #[test]
    fn error_messages_are_read_from_json_bodies() {
        assert_eq!(
            message(r#"{"error":"not_found","message":"no data"}"#),
            "no data"
        );
        assert_eq!(message(r#"{"error":"busy"}"#), "busy");
        assert_eq!(message("plain"), "plain");
    }
}
