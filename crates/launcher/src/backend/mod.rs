//! Where attempts run. Both backends answer the same three questions (start this run, how is it, stop
//! it), so the reconciler, the API and their tests do not know which one they drive.
//!
//! * [`local`]: `spark-submit --master local[*]` on this machine, with spot reclaims simulated from the
//!   generator's truth file (the embedded default).
//! * [`kubernetes`]: `SparkApplication` objects for the Spark Operator, through kube-rs; spot reclaims
//!   are read from the pods' status ([`classify`]).
//! * [`fake`]: runs in memory that record every call, for tests of what the launcher asks a backend
//!   (races between submissions, cancels and restarts) without a cluster.

pub mod classify;
pub mod fake;
pub mod kubernetes;
pub mod local;

use std::time::Duration;

use async_trait::async_trait;

use pool_core::event::Outcome;

use crate::launch::{Attempt, Launch};
use crate::template::Template;

/// One attempt to run, with what it was made from.
#[derive(Clone, Copy)]
pub struct Run<'a> {
    pub launch: &'a Launch,
    pub attempt: &'a Attempt,
    pub template: &'a Template,
}

/// What the backend knows of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// The backend has no such run (never submitted, or removed behind our back).
    NotFound,
    /// Submitted, not started yet.
    Pending,
    Running,
    Finished(Outcome),
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The run cannot be submitted as asked (a missing job file, a refused manifest): retrying is useless.
    #[error("{0}")]
    Refused(String),
    /// The backend cannot be reached now; the reconciler tries again.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait Backend: Send + Sync {
    /// Start the run. Idempotent: a run of this attempt that already exists is adopted, left alone.
    async fn submit(&self, run: Run<'_>) -> Result<(), BackendError>;
    async fn poll(&self, run: Run<'_>) -> Result<RunStatus, BackendError>;
    /// Stop the run (gone already is fine).
    async fn cancel(&self, run: Run<'_>) -> Result<(), BackendError>;
    /// Whether the backend can be reached (for `/ready`).
    async fn ready(&self) -> Result<(), BackendError>;
    fn name(&self) -> &'static str;
    /// How soon after its submission the backend may remove a run on its own (a SparkApplication's
    /// `timeToLiveSeconds`); `None`: never. A run missing younger than this was never created; older,
    /// it may have run and been removed, so it is never submitted again
    /// ([`crate::launch::missing_run`]).
    fn removal_horizon(&self, _run: Run<'_>) -> Option<Duration> {
        None
    }
}
