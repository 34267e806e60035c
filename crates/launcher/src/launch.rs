//! Launches and their attempts: the records kept in the store, the request that creates them, and the
//! pure decisions about what happens next (no I/O, the time passed in).
//!
//! An attempt's run is submitted by whoever holds its [`Claim`] (the request that created the launch,
//! or the reconciler that relaunched it or took over an expired claim), and only after the attempt was
//! saved; `submitted` says the backend accepted it (or it was found there: adopted). A run the backend
//! does not know is submitted again only when it cannot have existed ([`missing_run`]): never for an
//! attempt known to be submitted, whose run was removed (a SparkApplication's `timeToLiveSeconds`).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

/// `POST /launch`, as written by the user (every field optional: an empty body launches the default
/// template on the default instance types). Parsed into a [`LaunchSpec`] before anything happens.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    /// Name of a template (`GET /applications`). Default: `DEFAULT_APPLICATION` (`astronauts`).
    pub application: Option<String>,
    /// Arguments passed to the job (default: the template's).
    #[serde(default)]
    pub arguments: Vec<String>,
    /// Instance types the executors may run on, e.g. `["c6a.xlarge", "m6a.xlarge"]`. Default:
    /// `DEFAULT_INSTANCE_TYPES`.
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

impl LaunchSpec {
    /// A digest of everything the launch asked for, in its parsed (canonical) form: a retry with the
    /// same `Idempotency-Key` must ask for the same thing (`["C6A.xlarge"]` and `["c6a.xlarge"]` do).
    pub fn fingerprint(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a spec serialises");
        Sha256::digest(&canonical)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// What a request that leaves fields out gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    /// `DEFAULT_APPLICATION`.
    pub application: String,
    /// `DEFAULT_INSTANCE_TYPES`, parsed.
    pub instance_types: Vec<InstanceType>,
    /// `DEFAULT_MAX_ATTEMPTS`.
    pub max_attempts: u32,
}

impl Defaults {
    /// Parse `DEFAULT_INSTANCE_TYPES`; a bad value stops the start, named.
    pub fn new(
        application: &str,
        instance_types: &[String],
        max_attempts: u32,
    ) -> Result<Self, SpecError> {
        let parsed: Vec<InstanceType> = parse_list("DEFAULT_INSTANCE_TYPES", instance_types)?;
        if parsed.is_empty() {
            return Err(bad(
                "DEFAULT_INSTANCE_TYPES",
                "DEFAULT_INSTANCE_TYPES names no instance type",
            ));
        }
        Ok(Self {
            application: application.trim().to_owned(),
            instance_types: parsed,
            max_attempts,
        })
    }
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
    /// Check every field; missing ones take `defaults`. `known` says whether a template exists.
    pub fn parse(
        &self,
        known: impl Fn(&str) -> bool,
        defaults: &Defaults,
    ) -> Result<LaunchSpec, SpecError> {
        let application = match self.application.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => a,
            _ if !defaults.application.is_empty() && known(&defaults.application) => {
                defaults.application.as_str()
            }
            _ => {
                return Err(bad(
                    "application",
                    "application is required: the name of a template (GET /applications)",
                ));
            }
        };
        if !known(application) {
            return Err(bad(
                "application",
                format!(
                    "unknown application {application:?}: GET /applications lists the templates"
                ),
            ));
        }
        let instance_types: Vec<InstanceType> = match &self.instance_types {
            None => defaults.instance_types.clone(),
            Some(given) => parse_list("instance_types", given)?,
        };
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
        let max_attempts = self.max_attempts.unwrap_or(defaults.max_attempts);
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

/// Who may submit an attempt's run, until when: the request that created the launch, or the
/// reconciler that relaunched it or took an expired claim over. Nobody else submits it while the claim
/// holds; a claim whose holder died expires and the reconciler takes the attempt over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Claim {
    /// Unique per claim (not per replica: a replica's request and its reconciler are two holders).
    pub id: String,
    pub until: DateTime<Utc>,
}

impl Claim {
    pub fn new(now: DateTime<Utc>, ttl: std::time::Duration) -> Self {
        Self {
            id: Uuid::new_v4().to_string(),
            until: now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30)),
        }
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
    /// When the attempt was created (its run submitted right after); `MAX_ATTEMPT_DURATION` counts
    /// from here.
    pub submitted_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `SUCCEEDED` or `FAILED` once finished (not for a cancelled attempt).
    pub status: Option<String>,
    /// Why a failed attempt failed (`SPOT_INSTANCE_TERMINATION`, `TIMED_OUT`, …); empty otherwise.
    #[serde(default)]
    pub reason: String,
    /// The outcome event was accepted by the intake.
    #[serde(default)]
    pub outcome_published: bool,
    /// The backend accepted the run (or it was found there after a restart: adopted).
    #[serde(default)]
    pub submitted: bool,
    /// Who may submit the run now, while it is not `submitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Claim>,
    /// The run was asked to stop (a cancel, the deadline) and that is not confirmed yet: the
    /// reconciler keeps stopping it.
    #[serde(default)]
    pub stop_pending: bool,
}

/// Why a submission never ran: not the pool's doing, so no outcome event is published for it.
pub const SUBMISSION_FAILED: &str = "SUBMISSION_FAILED";
/// The run went away without an outcome (removed by the backend, killed from outside): nothing is
/// known of how it ended, so nothing is published, and it is never submitted again.
pub const RUN_LOST: &str = "RUN_LOST";
/// The attempt passed `MAX_ATTEMPT_DURATION`; its run was stopped. Published: the job ran on the pool
/// and did not finish, which is not a spot termination.
pub const TIMED_OUT: &str = "TIMED_OUT";

impl Attempt {
    /// Whether the outcome goes to the intake: every finished run, not a cancelled attempt, a
    /// submission that never ran, nor a run whose end is unknown.
    pub fn publishes(&self) -> bool {
        self.status.is_some()
            && self.state != State::Cancelled
            && self.reason != SUBMISSION_FAILED
            && self.reason != RUN_LOST
    }

    pub fn outcome(&self) -> Option<Outcome> {
        let status = self.status.as_deref()?;
        Outcome::from_parts(status, &self.reason).ok()
    }

    /// Whether someone holds a claim to submit this attempt's run at `now`.
    pub fn claimed(&self, now: DateTime<Utc>) -> bool {
        self.claim.as_ref().is_some_and(|c| c.until > now)
    }

    /// Whether the attempt has run longer than `max` at `now`.
    pub fn past_deadline(&self, now: DateTime<Utc>, max: std::time::Duration) -> bool {
        (now - self.submitted_at)
            .to_std()
            .is_ok_and(|elapsed| elapsed >= max)
    }

    /// How the attempt ended, as a bounded metric label; `None` while it runs.
    pub fn outcome_label(&self) -> Option<&'static str> {
        Some(match self.state {
            State::Submitted | State::Running => return None,
            State::Cancelled => "cancelled",
            State::Completed => "succeeded",
            State::Failed => match self.reason.as_str() {
                SUBMISSION_FAILED => "submission_failed",
                RUN_LOST => "lost",
                TIMED_OUT => "timed_out",
                r if r == Outcome::SpotTermination.reason() => "spot_termination",
                _ => "other_failure",
            },
        })
    }

    /// Seconds from submission to the end, once ended.
    pub fn duration_seconds(&self) -> Option<f64> {
        let end = self.finished_at?;
        Some(((end - self.submitted_at).num_milliseconds().max(0) as f64) / 1000.0)
    }
}

/// What to do about a run the backend does not know (never blindly submit it again).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// It cannot have existed: submit it (again).
    Submit,
    /// It existed, or may have, and is gone: the attempt ends `RUN_LOST`.
    Lost,
}

/// The decision for an attempt whose run the backend does not know at `now`. `horizon` is how soon
/// after its submission the backend may remove a run on its own (a SparkApplication's
/// `timeToLiveSeconds`; `None`: never). An attempt the backend accepted, or one old enough to have run
/// and been removed, is lost; a younger one whose submission was interrupted is submitted.
pub fn missing_run(
    attempt: &Attempt,
    now: DateTime<Utc>,
    horizon: Option<std::time::Duration>,
) -> Missing {
    if attempt.submitted {
        return Missing::Lost;
    }
    match horizon {
        Some(h) if attempt.past_deadline(now, h) => Missing::Lost,
        _ => Missing::Submit,
    }
}

/// A launch: what was asked, and every attempt so far (the last one is the current one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Launch {
    pub launch_id: String,
    /// Who started it (a caller of `LAUNCHER_TOKENS`): only it or `admin` may see or cancel it.
    #[serde(default)]
    pub caller: String,
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
    /// A `DELETE` asked for the launch to stop.
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
    claim: Claim,
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
        submitted: false,
        claim: Some(claim),
        stop_pending: false,
    }
}

impl Launch {
    /// Whether the reconciler still has something to do: not finished, or a run not yet confirmed
    /// stopped. (Unpublished outcomes are the outbox's, not the launch's.)
    pub fn needs_work(&self) -> bool {
        !self.state.is_terminal() || self.attempts.iter().any(|a| a.stop_pending)
    }

    /// Whether the launch counts against `MAX_ACTIVE_LAUNCHES`: until it ends, whether or not its
    /// outcomes are published yet.
    pub fn holds_slot(&self) -> bool {
        !self.state.is_terminal()
    }

    /// A new launch of `caller` whose first attempt goes to `pool`, claimed by `claim`.
    pub fn new(
        caller: &str,
        spec: LaunchSpec,
        pool: PoolId,
        now: DateTime<Utc>,
        claim: Claim,
    ) -> Self {
        let launch_id = Uuid::now_v7().to_string();
        let first = new_attempt(&launch_id, &spec.application, 1, pool.clone(), now, claim);
        Launch {
            launch_id,
            caller: caller.to_owned(),
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

    /// The attempt with `job_id`.
    pub fn attempt_mut(&mut self, job_id: &str) -> Option<&mut Attempt> {
        self.attempts.iter_mut().find(|a| a.job_id == job_id)
    }

    /// Every pool tried so far: the next attempt goes elsewhere.
    pub fn tried_pools(&self) -> Vec<PoolId> {
        let set: BTreeSet<PoolId> = self.attempts.iter().map(|a| a.pool_id.clone()).collect();
        set.into_iter().collect()
    }

    /// The backend accepted (or holds) the current attempt's run: nobody needs to submit it any more.
    pub fn mark_submitted(&mut self, now: DateTime<Utc>) -> bool {
        let a = self.current_mut();
        if a.submitted && a.claim.is_none() {
            return false;
        }
        a.submitted = true;
        a.claim = None;
        self.updated_at = now;
        true
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
        a.claim = None;
        self.updated_at = now;
    }

    /// Stop on request: the current attempt is cancelled (its run to be stopped, no outcome) and the
    /// launch ends CANCELLED.
    pub fn cancel_attempt(&mut self, now: DateTime<Utc>) {
        self.cancel_requested = true;
        let a = self.current_mut();
        if !a.state.is_terminal() {
            a.state = State::Cancelled;
            a.finished_at = Some(now);
            a.stop_pending = true;
        }
        self.state = State::Cancelled;
        self.updated_at = now;
    }

    /// Start the next attempt on `pool`, claimed by `claim`.
    pub fn relaunch(&mut self, pool: PoolId, now: DateTime<Utc>, claim: Claim) {
        let n = self.attempts.len() as u32 + 1;
        let attempt = new_attempt(
            &self.launch_id,
            &self.application,
            n,
            pool.clone(),
            now,
            claim,
        );
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

    fn defaults() -> Defaults {
        Defaults::new("astronauts", &["m6a.xlarge".into(), "c6a.xlarge".into()], 3).unwrap()
    }

    fn req(json: serde_json::Value) -> Result<LaunchSpec, SpecError> {
        serde_json::from_value::<LaunchRequest>(json)
            .unwrap()
            .parse(|a| a == "astronauts", &defaults())
    }

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn claim() -> Claim {
        Claim::new(t0(), std::time::Duration::from_secs(30))
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
    fn an_empty_request_is_the_default_template_on_the_default_types() {
        for json in [
            serde_json::json!({}),
            serde_json::json!({"application": " "}),
        ] {
            let spec = req(json).unwrap();
            assert_eq!(spec.application, "astronauts");
            let types: Vec<&str> = spec.instance_types.iter().map(|t| t.as_str()).collect();
            assert_eq!(types, ["c6a.xlarge", "m6a.xlarge"]);
        }
        assert_eq!(
            LaunchRequest::default()
                .parse(|a| a == "astronauts", &defaults())
                .unwrap(),
            req(serde_json::json!({})).unwrap()
        );
        // A default application that is no template: the field is required after all.
        let mut d = defaults();
        d.application = "gone".into();
        let e = LaunchRequest::default()
            .parse(|a| a == "astronauts", &d)
            .unwrap_err();
        assert_eq!(e.field, "application");
        assert!(Defaults::new("astronauts", &["c6a".into()], 3).is_err());
        assert!(Defaults::new("astronauts", &[], 3).is_err());
    }

    #[test]
    fn fingerprints_follow_the_parsed_request() {
        let a = req(serde_json::json!({"instance_types": ["C6A.xlarge", "m6a.xlarge"]})).unwrap();
        let b = req(serde_json::json!({"application": "astronauts", "instance_types": ["m6a.xlarge", "c6a.xlarge"]})).unwrap();
        let c = req(serde_json::json!({"instance_types": ["c6a.xlarge"]})).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_ne!(a.fingerprint(), c.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (
                serde_json::json!({"application": "nope", "instance_types": ["c6a.xlarge"]}),
                "application",
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
        let t0 = t0();
        let mut l = Launch::new("alice", spec, p1.clone(), t0, claim());
        assert_eq!((l.state, l.caller.as_str()), (State::Submitted, "alice"));
        assert!(l.holds_slot() && l.needs_work());
        assert!(l.current().claimed(t0) && !l.current().submitted);
        assert!(l.mark_submitted(t0));
        assert!(!l.mark_submitted(t0), "submitted twice is no change");
        assert!(!l.current().claimed(t0));
        assert!(l.mark_running(t0));
        assert!(!l.mark_running(t0), "running twice is no change");
        l.finish_attempt(&Outcome::SpotTermination, t0);
        assert_eq!(l.current().status.as_deref(), Some("FAILED"));
        assert_eq!(l.current().reason, "SPOT_INSTANCE_TERMINATION");
        assert_eq!(l.current().outcome(), Some(Outcome::SpotTermination));
        assert_eq!(l.current().outcome_label(), Some("spot_termination"));
        l.relaunch(p2.clone(), t0, claim());
        assert_eq!(l.attempts.len(), 2);
        assert_eq!(l.pool_id, p2);
        assert_eq!(l.tried_pools(), vec![p1, p2]);
        assert_ne!(l.attempts[0].job_id, l.attempts[1].job_id);
        assert!(l.attempts[1].run_name.ends_with("-2"));
        l.cancel_attempt(t0);
        assert_eq!(l.state, State::Cancelled);
        assert_eq!(l.current().state, State::Cancelled);
        assert_eq!(l.current().outcome(), None);
        assert!(l.current().stop_pending, "the run is still to be stopped");
        assert!(!l.holds_slot(), "a cancelled launch frees its slot at once");
        assert!(l.needs_work(), "the reconciler makes sure its run stops");
        l.current_mut().stop_pending = false;
        assert!(!l.needs_work());
    }

    #[test]
    fn what_is_published_and_how_attempts_are_labelled() {
        let spec = req(serde_json::json!({})).unwrap();
        let pool: PoolId = "pool-c6a.xlarge-us-east-1a".parse().unwrap();
        let t0 = t0();
        for (outcome, label, publishes) in [
            (Outcome::Succeeded, "succeeded", true),
            (Outcome::SpotTermination, "spot_termination", true),
            (
                Outcome::OtherFailure("SPARK_EXECUTION_ERROR".into()),
                "other_failure",
                true,
            ),
            (Outcome::OtherFailure(TIMED_OUT.into()), "timed_out", true),
            (
                Outcome::OtherFailure(SUBMISSION_FAILED.into()),
                "submission_failed",
                false,
            ),
            (Outcome::OtherFailure(RUN_LOST.into()), "lost", false),
        ] {
            let mut l = Launch::new("a", spec.clone(), pool.clone(), t0, claim());
            assert_eq!(l.current().outcome_label(), None);
            l.finish_attempt(&outcome, t0 + chrono::Duration::seconds(90));
            assert_eq!(l.current().outcome_label(), Some(label));
            assert_eq!(l.current().publishes(), publishes, "{label}");
            assert_eq!(l.current().duration_seconds(), Some(90.0));
        }
    }

    #[test]
    fn a_missing_run_is_submitted_only_when_it_cannot_have_existed() {
        let spec = req(serde_json::json!({})).unwrap();
        let pool: PoolId = "pool-c6a.xlarge-us-east-1a".parse().unwrap();
        let t0 = t0();
        let hour = std::time::Duration::from_secs(3600);
        let later = |s: i64| t0 + chrono::Duration::seconds(s);
        let mut l = Launch::new("a", spec, pool, t0, claim());
        // Saved, never confirmed: within the backend's removal horizon it cannot have been removed.
        assert_eq!(
            missing_run(l.current(), later(60), Some(hour)),
            Missing::Submit
        );
        assert_eq!(
            missing_run(l.current(), later(86_400), None),
            Missing::Submit
        );
        // Old enough to have run and been removed by its TTL: never resubmitted.
        assert_eq!(
            missing_run(l.current(), later(3600), Some(hour)),
            Missing::Lost
        );
        // Known to be submitted: gone means removed.
        l.mark_submitted(t0);
        assert_eq!(
            missing_run(l.current(), later(1), Some(hour)),
            Missing::Lost
        );
        assert_eq!(missing_run(l.current(), later(1), None), Missing::Lost);
        assert!(l.current().past_deadline(later(3600), hour));
        assert!(!l.current().past_deadline(later(3599), hour));
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
