//! Launches and their attempts: the records kept in the store, the request that creates them, and the
//! pure decisions about what happens next (no I/O, the time passed in).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use pool_core::event::{AvailabilityZone, InstanceType, Outcome, PoolId};
use pool_core::request::{MAX_LIST_VALUES, Strategy};
use pool_core::window::Window;

use crate::settings::MAX_ATTEMPTS_LIMIT;
use crate::size::Size;

/// Most arguments a launch may pass to its job, and the longest one.
pub const MAX_ARGUMENTS: usize = 64;
pub const MAX_ARGUMENT_LEN: usize = 4096;

/// Where a launch (or one attempt) stands. The Spark Operator's own words, plus `CANCELLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum State {
    Submitted,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl State {
    pub const ALL: [State; 5] = [
        State::Submitted,
        State::Running,
        State::Completed,
        State::Failed,
        State::Cancelled,
    ];
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Completed | State::Failed | State::Cancelled)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            State::Submitted => "SUBMITTED",
            State::Running => "RUNNING",
            State::Completed => "COMPLETED",
            State::Failed => "FAILED",
            State::Cancelled => "CANCELLED",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// `POST /launch`, as written by the user. Parsed into a [`LaunchSpec`] before anything happens.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    /// Name of a template (`GET /applications`).
    pub application: Option<String>,
    /// Arguments passed to the job.
    #[serde(default)]
    pub arguments: Vec<String>,
    /// Instance types the executors may run on, e.g. `["c6a.xlarge", "m6a.xlarge"]`.
    pub instance_types: Option<Vec<String>>,
    /// Availability zones allowed (default: any zone the ranking knows).
    #[serde(default)]
    pub availability_zones: Vec<String>,
    /// `small`, `medium` or `large` (seed 004's sizing rules). Default `small`.
    pub size: Option<String>,
    /// Attempts before giving up after spot terminations, 1–10. Default `DEFAULT_MAX_ATTEMPTS`.
    pub max_attempts: Option<u32>,
    /// Ranking strategy asked of the relay (default: the relay's).
    pub strategy: Option<String>,
    /// Ranking window asked of the relay, e.g. `24h` (default: the relay's).
    pub window: Option<String>,
}

/// A launch request with every field checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaunchSpec {
    pub application: String,
    pub arguments: Vec<String>,
    pub instance_types: Vec<InstanceType>,
    pub availability_zones: Vec<AvailabilityZone>,
    pub size: Size,
    pub max_attempts: u32,
    pub strategy: Option<Strategy>,
    pub window: Option<String>,
}

/// What is wrong with a request: the field and a sentence saying how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    pub field: &'static str,
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> SpecError {
    SpecError {
        field,
        message: message.into(),
    }
}

fn parse_list<T: std::str::FromStr<Err = pool_core::event::EventError> + Ord>(
    field: &'static str,
    values: &[String],
) -> Result<Vec<T>, SpecError> {
    if values.len() > MAX_LIST_VALUES {
        return Err(bad(
            field,
            format!(
                "{field}: at most {MAX_LIST_VALUES} values, got {}",
                values.len()
            ),
        ));
    }
    let mut out = BTreeSet::new();
    for v in values {
        let parsed = v
            .trim()
            .to_ascii_lowercase()
            .parse::<T>()
            .map_err(|e| bad(field, format!("{field}: {}", e.message)))?;
        out.insert(parsed);
    }
    Ok(out.into_iter().collect())
}

impl LaunchRequest {
    /// Check every field. `known` says whether a template exists.
    pub fn parse(
        &self,
        known: impl Fn(&str) -> bool,
        default_max_attempts: u32,
    ) -> Result<LaunchSpec, SpecError> {
        let application = self
            .application
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                bad(
                    "application",
                    "application is required: the name of a template (GET /applications)",
                )
            })?;
        if !known(application) {
            return Err(bad(
                "application",
                format!(
                    "unknown application {application:?}: GET /applications lists the templates"
                ),
            ));
        }
        let instance_types: Vec<InstanceType> = parse_list(
            "instance_types",
            self.instance_types.as_deref().unwrap_or_default(),
        )?;
        if instance_types.is_empty() {
            return Err(bad(
                "instance_types",
                "instance_types is required: at least one instance type, e.g. [\"c6a.xlarge\"]",
            ));
        }
        let availability_zones = parse_list("availability_zones", &self.availability_zones)?;
        if self.arguments.len() > MAX_ARGUMENTS {
            return Err(bad(
                "arguments",
                format!(
                    "arguments: at most {MAX_ARGUMENTS}, got {}",
                    self.arguments.len()
                ),
            ));
        }
        if let Some(i) = self
            .arguments
            .iter()
            .position(|a| a.len() > MAX_ARGUMENT_LEN || a.chars().any(|c| c.is_control()))
        {
            return Err(bad(
                "arguments",
                format!("arguments[{i}]: at most {MAX_ARGUMENT_LEN} bytes of printable characters"),
            ));
        }
        let size = match self.size.as_deref() {
            None => Size::Small,
            Some(s) => s.parse().map_err(|e: String| bad("size", e))?,
        };
        let max_attempts = self.max_attempts.unwrap_or(default_max_attempts);
        if !(1..=MAX_ATTEMPTS_LIMIT).contains(&max_attempts) {
            return Err(bad(
                "max_attempts",
                format!("max_attempts: {max_attempts} is not between 1 and {MAX_ATTEMPTS_LIMIT}"),
            ));
        }
        let strategy = self
            .strategy
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(str::parse::<Strategy>)
            .transpose()
            .map_err(|e| bad("strategy", e.message))?;
        let window = match self.window.as_deref().filter(|w| !w.trim().is_empty()) {
            None => None,
            Some(w) => {
                Window::parse("window", w)
                    .map_err(|e| bad("window", format!("window: {}", e.message)))?;
                Some(w.trim().to_owned())
            }
        };
        Ok(LaunchSpec {
            application: application.to_owned(),
            arguments: self.arguments.clone(),
            instance_types,
            availability_zones,
            size,
            max_attempts,
            strategy,
            window,
        })
    }
}

/// One run of a launch on one pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attempt {
    /// 1 for the first run.
    pub attempt: u32,
    /// The job id of the outcome event this attempt publishes.
    pub job_id: String,
    #[schema(value_type = String)]
    pub pool_id: PoolId,
    /// The backend's name for the run (the SparkApplication's name).
    pub run_name: String,
    pub state: State,
    pub submitted_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `SUCCEEDED` or `FAILED` once finished (not for a cancelled attempt).
    pub status: Option<String>,
    /// Why a failed attempt failed (`SPOT_INSTANCE_TERMINATION`, …); empty otherwise.
    #[serde(default)]
    pub reason: String,
    /// The outcome event was accepted by the intake.
    #[serde(default)]
    pub outcome_published: bool,
}

/// Why a submission never ran: not the pool's doing, so no outcome event is published for it.
pub const SUBMISSION_FAILED: &str = "SUBMISSION_FAILED";

impl Attempt {
    /// Whether the outcome goes to the intake: every finished run, not a cancelled attempt nor a
    /// submission that never ran.
    pub fn publishes(&self) -> bool {
        self.status.is_some() && self.state != State::Cancelled && self.reason != SUBMISSION_FAILED
    }

    pub fn outcome(&self) -> Option<Outcome> {
        let status = self.status.as_deref()?;
        Outcome::from_parts(status, &self.reason).ok()
    }
}

/// A launch: what was asked, and every attempt so far (the last one is the current one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Launch {
    pub launch_id: String,
    pub application: String,
    pub arguments: Vec<String>,
    #[schema(value_type = Vec<String>)]
    pub instance_types: Vec<InstanceType>,
    #[schema(value_type = Vec<String>)]
    pub availability_zones: Vec<AvailabilityZone>,
    #[schema(value_type = String)]
    pub size: Size,
    pub max_attempts: u32,
    #[schema(value_type = Option<String>)]
    pub strategy: Option<Strategy>,
    pub window: Option<String>,
    pub state: State,
    /// The current (last) attempt's pool.
    #[schema(value_type = String)]
    pub pool_id: PoolId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A `DELETE` asked for the launch to stop; the reconciler stops its run.
    #[serde(default)]
    pub cancel_requested: bool,
    pub attempts: Vec<Attempt>,
    /// Optimistic concurrency: bumped by every write, compared by the store.
    #[serde(default)]
    pub version: u64,
}

/// A run's name: lowercase letters, digits and dashes (a Kubernetes object name), unique per attempt.
pub fn run_name(application: &str, launch_id: &str, attempt: u32) -> String {
    let app: String = application
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    let short: String = launch_id
        .chars()
        .filter(|c| *c != '-')
        .rev()
        .take(12)
        .collect::<String>();
    let short: String = short.chars().rev().collect();
    format!("{}-{short}-{attempt}", app.trim_matches('-'))
}

fn new_attempt(
    launch_id: &str,
    application: &str,
    n: u32,
    pool: PoolId,
    now: DateTime<Utc>,
) -> Attempt {
    Attempt {
        attempt: n,
        job_id: Uuid::new_v4().to_string(),
        pool_id: pool,
        run_name: run_name(application, launch_id, n),
        state: State::Submitted,
        submitted_at: now,
        finished_at: None,
        status: None,
        reason: String::new(),
        outcome_published: false,
    }
}

impl Launch {
    /// Whether the reconciler still has something to do: not finished, or an outcome not yet published.
    pub fn needs_work(&self) -> bool {
        !self.state.is_terminal()
            || self
                .attempts
                .iter()
                .any(|a| a.publishes() && !a.outcome_published)
    }

    /// A new launch whose first attempt goes to `pool`.
    pub fn new(spec: LaunchSpec, pool: PoolId, now: DateTime<Utc>) -> Self {
        let launch_id = Uuid::now_v7().to_string();
        let first = new_attempt(&launch_id, &spec.application, 1, pool.clone(), now);
        Launch {
            launch_id,
            application: spec.application,
            arguments: spec.arguments,
            instance_types: spec.instance_types,
            availability_zones: spec.availability_zones,
            size: spec.size,
            max_attempts: spec.max_attempts,
            strategy: spec.strategy,
            window: spec.window,
            state: State::Submitted,
            pool_id: pool,
            created_at: now,
            updated_at: now,
            cancel_requested: false,
            attempts: vec![first],
            version: 0,
        }
    }

    pub fn spec(&self) -> LaunchSpec {
        LaunchSpec {
            application: self.application.clone(),
            arguments: self.arguments.clone(),
            instance_types: self.instance_types.clone(),
            availability_zones: self.availability_zones.clone(),
            size: self.size,
            max_attempts: self.max_attempts,
            strategy: self.strategy,
            window: self.window.clone(),
        }
    }

    pub fn current(&self) -> &Attempt {
        self.attempts
            .last()
            .expect("a launch has at least one attempt")
    }

    pub fn current_mut(&mut self) -> &mut Attempt {
        self.attempts
            .last_mut()
            .expect("a launch has at least one attempt")
    }

    /// Every pool tried so far: the next attempt goes elsewhere.
    pub fn tried_pools(&self) -> Vec<PoolId> {
        let set: BTreeSet<PoolId> = self.attempts.iter().map(|a| a.pool_id.clone()).collect();
        set.into_iter().collect()
    }

    /// The backend says the current attempt runs.
    pub fn mark_running(&mut self, now: DateTime<Utc>) -> bool {
        let a = self.current_mut();
        if a.state != State::Submitted {
            return false;
        }
        a.state = State::Running;
        self.state = State::Running;
        self.updated_at = now;
        true
    }

    /// The current attempt ended with `outcome`. The launch's state follows from [`next_step`].
    pub fn finish_attempt(&mut self, outcome: &Outcome, now: DateTime<Utc>) {
        let a = self.current_mut();
        a.state = if matches!(outcome, Outcome::Succeeded) {
            State::Completed
        } else {
            State::Failed
        };
        a.finished_at = Some(now);
        a.status = Some(outcome.status().to_owned());
        a.reason = outcome.reason().to_owned();
        self.updated_at = now;
    }

    /// The current attempt was stopped on request: no outcome, the launch ends.
    pub fn cancel_attempt(&mut self, now: DateTime<Utc>) {
        let a = self.current_mut();
        if !a.state.is_terminal() {
            a.state = State::Cancelled;
            a.finished_at = Some(now);
        }
        self.state = State::Cancelled;
        self.updated_at = now;
    }

    /// Start the next attempt on `pool`.
    pub fn relaunch(&mut self, pool: PoolId, now: DateTime<Utc>) {
        let n = self.attempts.len() as u32 + 1;
        let attempt = new_attempt(&self.launch_id, &self.application, n, pool.clone(), now);
        self.attempts.push(attempt);
        self.pool_id = pool;
        self.state = State::Submitted;
        self.updated_at = now;
    }

    pub fn end(&mut self, state: State, now: DateTime<Utc>) {
        self.state = state;
        self.updated_at = now;
    }
}

/// What follows a finished attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Lost to a spot termination with attempts left: run again on another pool.
    Relaunch,
    /// The launch is over, in this state.
    End(State),
}

/// The decision after an attempt ended with `outcome`: only a spot termination is retried (on another
/// pool), and only while attempts remain; a job that failed on its own would fail anywhere.
pub fn next_step(
    outcome: &Outcome,
    attempts_so_far: u32,
    max_attempts: u32,
    cancel_requested: bool,
) -> Next {
    match outcome {
        Outcome::Succeeded => Next::End(State::Completed),
        _ if cancel_requested => Next::End(State::Cancelled),
        Outcome::SpotTermination if attempts_so_far < max_attempts => Next::Relaunch,
        _ => Next::End(State::Failed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: serde_json::Value) -> Result<LaunchSpec, SpecError> {
        serde_json::from_value::<LaunchRequest>(json)
            .unwrap()
            .parse(|a| a == "astronauts", 3)
    }

    #[test]
    fn a_full_request_parses() {
        let spec = req(serde_json::json!({
            "application": "astronauts", "arguments": ["--craft", "ISS"],
            "instance_types": ["M6A.xlarge", "c6a.xlarge", "c6a.xlarge"],
            "availability_zones": ["us-east-1b"], "size": "medium", "max_attempts": 5,
            "strategy": "naive", "window": "24h"
        }))
        .unwrap();
        assert_eq!(
            spec.instance_types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>(),
            ["c6a.xlarge", "m6a.xlarge"]
        );
        assert_eq!(spec.size, Size::Medium);
        assert_eq!(spec.max_attempts, 5);
        assert_eq!(spec.strategy, Some(Strategy::Naive));
        assert_eq!(spec.window.as_deref(), Some("24h"));
    }

    #[test]
    fn defaults_apply() {
        let spec =
            req(serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"]}))
                .unwrap();
        assert_eq!(spec.size, Size::Small);
        assert_eq!(spec.max_attempts, 3);
        assert!(spec.availability_zones.is_empty() && spec.arguments.is_empty());
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                serde_json::json!({"instance_types": ["c6a.xlarge"]}),
                "application",
            ),
            (
                serde_json::json!({"application": "nope", "instance_types": ["c6a.xlarge"]}),
                "application",
            ),
            (
                serde_json::json!({"application": "astronauts"}),
                "instance_types",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": []}),
                "instance_types",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a"]}),
                "instance_types",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "availability_zones": ["mars"]}),
                "availability_zones",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "size": "huge"}),
                "size",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "max_attempts": 0}),
                "max_attempts",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "max_attempts": 11}),
                "max_attempts",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "strategy": "best"}),
                "strategy",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "window": "soon"}),
                "window",
            ),
            (
                serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "arguments": ["a\u{0}b"]}),
                "arguments",
            ),
        ];
        for (json, field) in cases {
            let e = req(json.clone()).expect_err(&json.to_string());
            assert_eq!(e.field, field, "{json}: {}", e.message);
            assert!(e.message.contains(field), "{json}: {}", e.message);
        }
        let many: Vec<String> = (0..=MAX_ARGUMENTS).map(|i| i.to_string()).collect();
        let e = req(serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "arguments": many})).unwrap_err();
        assert_eq!(e.field, "arguments");
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(
            serde_json::from_value::<LaunchRequest>(serde_json::json!({"aplication": "x"}))
                .is_err()
        );
    }

    #[test]
    fn next_step_covers_every_case() {
        let other = Outcome::OtherFailure("TIMED_OUT".into());
        for max in 1..=MAX_ATTEMPTS_LIMIT {
            for n in 1..=max {
                for cancel in [false, true] {
                    assert_eq!(
                        next_step(&Outcome::Succeeded, n, max, cancel),
                        Next::End(State::Completed)
                    );
                    let want_other = if cancel {
                        State::Cancelled
                    } else {
                        State::Failed
                    };
                    assert_eq!(next_step(&other, n, max, cancel), Next::End(want_other));
                    let spot = next_step(&Outcome::SpotTermination, n, max, cancel);
                    let want = match (cancel, n < max) {
                        (true, _) => Next::End(State::Cancelled),
                        (false, true) => Next::Relaunch,
                        (false, false) => Next::End(State::Failed),
                    };
                    assert_eq!(spot, want, "n={n} max={max} cancel={cancel}");
                }
            }
        }
    }

    #[test]
    fn attempts_move_through_their_states() {
        let spec =
            req(serde_json::json!({"application": "astronauts", "instance_types": ["c6a.xlarge"]}))
                .unwrap();
        let p1: PoolId = "pool-c6a.xlarge-us-east-1a".parse().unwrap();
        let p2: PoolId = "pool-c6a.xlarge-us-east-1b".parse().unwrap();
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let mut l = Launch::new(spec, p1.clone(), t0);
        assert_eq!(l.state, State::Submitted);
        assert!(l.mark_running(t0));
        assert!(!l.mark_running(t0), "running twice is no change");
        l.finish_attempt(&Outcome::SpotTermination, t0);
        assert_eq!(l.current().status.as_deref(), Some("FAILED"));
        assert_eq!(l.current().reason, "SPOT_INSTANCE_TERMINATION");
        assert_eq!(l.current().outcome(), Some(Outcome::SpotTermination));
        l.relaunch(p2.clone(), t0);
        assert_eq!(l.attempts.len(), 2);
        assert_eq!(l.pool_id, p2);
        assert_eq!(l.tried_pools(), vec![p1, p2]);
        assert_ne!(l.attempts[0].job_id, l.attempts[1].job_id);
        assert!(l.attempts[1].run_name.ends_with("-2"));
        l.cancel_attempt(t0);
        assert_eq!(l.state, State::Cancelled);
        assert_eq!(l.current().state, State::Cancelled);
        assert_eq!(l.current().outcome(), None);
    }

    #[test]
    fn run_names_are_kubernetes_names() {
        let n = run_name("My_App.v2", "0193a0a2-7b3c-7def-8123-456789abcdef", 3);
        assert_eq!(n, "my-app-v2-456789abcdef-3");
        assert!(n.len() <= 63);
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }

    #[test]
    fn states_parse_case_insensitively() {
        for s in State::ALL {
            assert_eq!(State::parse(&s.as_str().to_lowercase()), Some(s));
        }
        assert_eq!(State::parse("DONE"), None);
    }
}
