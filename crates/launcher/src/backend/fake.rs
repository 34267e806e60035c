//! A backend in memory that records every call: what the launcher's tests (and the kubernetes
//! backend's own, through its [`super::kubernetes::Cluster`] seam) use to check what is asked of a
//! backend when requests, cancels, reconcilers and restarts race, with no cluster and no Spark.
//!
//! Runs live in a map by run name, shared by every launcher built with the same `FakeBackend` (two
//! replicas see one "cluster"). A test can hold submissions at a gate (to cancel or restart in the
//! middle of one), make the next submission fail, set a run's status, or remove a run behind the
//! launcher's back (a TTL).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Backend, BackendError, Run, RunStatus};

/// One call the launcher made, with the run's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `submit` began (it may wait at the gate).
    SubmitStarted(String),
    /// `submit` created the run.
    Created(String),
    /// `submit` found the run there already (adopted, nothing created).
    Adopted(String),
    Poll(String),
    Cancel(String),
}

#[derive(Default)]
struct State {
    runs: HashMap<String, RunStatus>,
    calls: Vec<Call>,
    failures: VecDeque<BackendError>,
}

pub struct FakeBackend {
    state: Mutex<State>,
    /// What a newly created run reports.
    on_create: Mutex<RunStatus>,
    /// Submissions wait while this is `false`.
    gate: watch::Sender<bool>,
    horizon: Option<Duration>,
}

impl FakeBackend {
    /// Runs that report `on_create` once created (e.g. `Running` for runs that stay running).
    pub fn new(on_create: RunStatus) -> Self {
        Self {
            state: Mutex::new(State::default()),
            on_create: Mutex::new(on_create),
            gate: watch::Sender::new(true),
            horizon: None,
        }
    }

    /// Runs removed by the backend `horizon` after their submission at the earliest (a TTL).
    pub fn with_removal_horizon(mut self, horizon: Duration) -> Self {
        self.horizon = Some(horizon);
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Submissions wait (after `SubmitStarted`) until [`release`](Self::release).
    pub fn hold_submissions(&self) {
        self.gate.send_replace(false);
    }

    pub fn release(&self) {
        self.gate.send_replace(true);
    }

    /// The next submission fails with `e` (after the gate), creating nothing.
    pub fn fail_next_submit(&self, e: BackendError) {
        self.lock().failures.push_back(e);
    }

    /// What runs created from now on report.
    pub fn on_create(&self, status: RunStatus) {
        *self.on_create.lock().unwrap_or_else(|e| e.into_inner()) = status;
    }

    /// Set (or create) a run's status, as the cluster would report it.
    pub fn set(&self, run_name: &str, status: RunStatus) {
        self.lock().runs.insert(run_name.to_owned(), status);
    }

    /// Set every existing run's status.
    pub fn set_all(&self, status: RunStatus) {
        for s in self.lock().runs.values_mut() {
            *s = status.clone();
        }
    }

    /// Remove a run behind the launcher's back (a TTL, a `kubectl delete`).
    pub fn remove(&self, run_name: &str) {
        self.lock().runs.remove(run_name);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many times `run_name` was created.
    pub fn created(&self, run_name: &str) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| matches!(c, Call::Created(n) if n == run_name))
            .count()
    }

    /// Every creation, in order.
    pub fn creations(&self) -> Vec<String> {
        self.lock()
            .calls
            .iter()
            .filter_map(|c| match c {
                Call::Created(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many submissions have begun.
    pub fn submits_started(&self) -> usize {
        self.lock()
            .calls
            .iter()
            .filter(|c| matches!(c, Call::SubmitStarted(_)))
            .count()
    }

    /// The runs that exist now (not cancelled, not removed), by name.
    pub fn live(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().runs.keys().cloned().collect();
        names.sort();
        names
    }

    pub fn status(&self, run_name: &str) -> Option<RunStatus> {
        self.lock().runs.get(run_name).cloned()
    }
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self::new(RunStatus::Running)
    }
}

#[async_trait]
impl Backend for FakeBackend {
    async fn submit(&self, run: Run<'_>) -> Result<(), BackendError> {
        let name = run.attempt.run_name.clone();
        self.lock().calls.push(Call::SubmitStarted(name.clone()));
        let mut gate = self.gate.subscribe();
        // The sender lives as long as `self`: waiting cannot fail.
        let _ = gate.wait_for(|open| *open).await;
        let on_create = self
            .on_create
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut s = self.lock();
        if let Some(e) = s.failures.pop_front() {
            return Err(e);
        }
        if s.runs.contains_key(&name) {
            s.calls.push(Call::Adopted(name));
        } else {
            s.runs.insert(name.clone(), on_create);
            s.calls.push(Call::Created(name));
        }
        Ok(())
    }

    async fn poll(&self, run: Run<'_>) -> Result<RunStatus, BackendError> {
        let name = &run.attempt.run_name;
        let mut s = self.lock();
        s.calls.push(Call::Poll(name.clone()));
        Ok(s.runs.get(name).cloned().unwrap_or(RunStatus::NotFound))
    }

    async fn cancel(&self, run: Run<'_>) -> Result<(), BackendError> {
        let name = run.attempt.run_name.clone();
        let mut s = self.lock();
        s.runs.remove(&name);
        s.calls.push(Call::Cancel(name));
        Ok(())
    }

    async fn ready(&self) -> Result<(), BackendError> {
        Ok(())
    }

    fn name(&self) -> &'static str {
        "fake"
    }

    fn removal_horizon(&self, _run: Run<'_>) -> Option<Duration> {
        self.horizon
    }
}
