//! The launcher itself: starting launches, cancelling them, and the reconciler that follows every
//! unfinished launch until its outcome is published and nothing is left to do.
//!
//! Every change to a launch is a compare-and-set in the store, so the API and the reconciler (of this
//! replica or another) never lose each other's writes. Effects happen in an order a crash can resume:
//! a run is submitted after its attempt is saved (a missing run of a saved attempt is submitted again,
//! idempotently), and an outcome is marked published only after the intake accepted it (so it is sent
//! at least once per attempt, always with the attempt's job id; the ranking counts a job id once).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use pool_core::event::Outcome;

use crate::backend::{Backend, BackendError, Run, RunStatus};
use crate::clients::{Intake, PickError, Ranking};
use crate::launch::{Launch, LaunchRequest, Next, SUBMISSION_FAILED, SpecError, State, next_step};
use crate::metrics::LauncherMetrics;
use crate::store::{Store, StoreError};
use crate::template::Templates;

/// What a request to the launcher can run into.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("{0}")]
    Invalid(#[from] SpecError),
    #[error("{0}")]
    NoPool(String),
    #[error("{0}")]
    RelayRefused(String),
    #[error("{0}")]
    RelayUnavailable(String),
    #[error(
        "{active} launches are running (MAX_ACTIVE_LAUNCHES); try again when some have finished"
    )]
    Busy { active: usize },
    #[error("the run could not be submitted: {0}")]
    Submission(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("no launch {0}")]
    NotFound(String),
    #[error("launch {0} already finished ({1})")]
    Finished(String, &'static str),
    #[error("launch {0} changed too often while being updated; try again")]
    Contended(String),
}

impl From<PickError> for LaunchError {
    fn from(e: PickError) -> Self {
        match e {
            PickError::NoPool(m) => LaunchError::NoPool(m),
            PickError::Refused(m) => LaunchError::RelayRefused(m),
            PickError::Unavailable(m) => LaunchError::RelayUnavailable(m),
        }
    }
}

pub struct Launcher {
    pub store: Arc<dyn Store>,
    pub backend: Arc<dyn Backend>,
    pub templates: Templates,
    pub ranking: Ranking,
    pub intake: Intake,
    pub metrics: LauncherMetrics,
    pub default_max_attempts: u32,
    pub max_active: usize,
    /// Who holds the reconciler lease (this replica).
    pub holder: String,
}

fn attempt_label(o: &Outcome) -> &'static str {
    match o {
        Outcome::Succeeded => "succeeded",
        Outcome::SpotTermination => "spot_termination",
        Outcome::OtherFailure(_) => "other_failure",
    }
}

impl Launcher {
    fn run<'a>(&'a self, launch: &'a Launch) -> Option<Run<'a>> {
        Some(Run {
            launch,
            attempt: launch.current(),
            template: self.templates.get(&launch.application)?,
        })
    }

    /// `POST /launch`: check the request, pick the pool, save the launch, submit its first run.
    pub async fn launch(&self, req: &LaunchRequest) -> Result<Launch, LaunchError> {
        let spec = req.parse(
            |a| self.templates.get(a).is_some(),
            self.default_max_attempts,
        )?;
        let active = self.store.active_count().await?;
        if active >= self.max_active {
            return Err(LaunchError::Busy { active });
        }
        let pool = self.ranking.pick(&spec, &[]).await?;
        let mut launch = Launch::new(spec, pool, Utc::now());
        if !self.store.put(&mut launch).await? {
            return Err(LaunchError::Contended(launch.launch_id));
        }
        tracing::info!(launch = %launch.launch_id, pool = %launch.pool_id, application = %launch.application, "launch submitted");
        if let Err(e) = self.submit(&launch).await {
            if let BackendError::Refused(m) = &e {
                self.fail_submission(&mut launch, m).await?;
                return Err(LaunchError::Submission(m.clone()));
            }
            // Unavailable: the reconciler submits again.
            tracing::warn!(launch = %launch.launch_id, error = %e, "submission failed; the reconciler retries");
        }
        Ok(launch)
    }

    async fn submit(&self, launch: &Launch) -> Result<(), BackendError> {
        let run = self.run(launch).ok_or_else(|| {
            BackendError::Refused(format!("template {:?} is gone", launch.application))
        })?;
        self.backend.submit(run).await
    }

    /// The current attempt could not even start: the launch fails without an outcome event.
    async fn fail_submission(&self, launch: &mut Launch, message: &str) -> Result<(), StoreError> {
        for _ in 0..5 {
            let now = Utc::now();
            launch.finish_attempt(&Outcome::OtherFailure(SUBMISSION_FAILED.into()), now);
            launch.end(State::Failed, now);
            tracing::warn!(launch = %launch.launch_id, error = message, "submission refused");
            if self.store.put(launch).await? {
                self.metrics.launches.with_label_values(&["FAILED"]).inc();
                return Ok(());
            }
            match self.store.get(&launch.launch_id).await? {
                Some(l) if !l.state.is_terminal() => *launch = l,
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    pub async fn get(&self, id: &str) -> Result<Launch, LaunchError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| LaunchError::NotFound(id.to_owned()))
    }

    /// `DELETE /launches/{id}`: stop the current run; the launch ends CANCELLED, publishing nothing for
    /// the stopped attempt.
    pub async fn cancel(&self, id: &str) -> Result<Launch, LaunchError> {
        for _ in 0..5 {
            let mut launch = self.get(id).await?;
            if launch.state.is_terminal() {
                return Err(LaunchError::Finished(id.to_owned(), launch.state.as_str()));
            }
            if let Some(run) = self.run(&launch) {
                self.backend
                    .cancel(run)
                    .await
                    .map_err(|e| LaunchError::Submission(e.to_string()))?;
            }
            launch.cancel_requested = true;
            launch.cancel_attempt(Utc::now());
            if self.store.put(&mut launch).await? {
                self.metrics
                    .launches
                    .with_label_values(&["CANCELLED"])
                    .inc();
                self.metrics
                    .attempts
                    .with_label_values(&["cancelled"])
                    .inc();
                tracing::info!(launch = id, "launch cancelled");
                return Ok(launch);
            }
        }
        Err(LaunchError::Contended(id.to_owned()))
    }

    /// One pass over every unfinished launch, if this replica holds the lease.
    pub async fn reconcile_once(&self, lease: Duration) -> Result<(), StoreError> {
        if !self.store.lead(&self.holder, lease).await? {
            return Ok(());
        }
        let ids = self.store.active().await?;
        self.metrics.active.set(ids.len() as i64);
        for id in ids {
            if let Err(e) = self.step(&id).await {
                tracing::warn!(launch = %id, error = %e, "reconcile step failed; retried next pass");
            }
        }
        Ok(())
    }

    /// Move one launch forward as far as it can go now. Saved with compare-and-set; a lost race is
    /// simply redone on the next pass.
    pub async fn step(&self, id: &str) -> Result<(), LaunchError> {
        let Some(mut launch) = self.store.get(id).await? else {
            return Ok(());
        };
        let before = launch.clone();
        let now = Utc::now();
        let mut submit_after_save = false;

        if !launch.state.is_terminal() && !launch.current().state.is_terminal() {
            let Some(run) = self.run(&launch) else {
                launch.finish_attempt(&Outcome::OtherFailure(SUBMISSION_FAILED.into()), now);
                launch.end(State::Failed, now);
                return self.save(launch, &before).await;
            };
            let status = self.backend.poll(run).await;
            match status {
                Ok(RunStatus::NotFound) if launch.current().state == State::Submitted => {
                    // Saved but never submitted (a crash in between): submit now.
                    match self.submit(&launch).await {
                        Ok(()) => {}
                        Err(BackendError::Refused(m)) => {
                            tracing::warn!(launch = id, error = %m, "submission refused");
                            launch.finish_attempt(
                                &Outcome::OtherFailure(SUBMISSION_FAILED.into()),
                                now,
                            );
                        }
                        Err(e) => return Err(LaunchError::Submission(e.to_string())),
                    }
                }
                Ok(RunStatus::NotFound) => {
                    launch.finish_attempt(&Outcome::OtherFailure("RUN_LOST".into()), now);
                }
                Ok(RunStatus::Pending) => {}
                Ok(RunStatus::Running) => {
                    launch.mark_running(now);
                }
                Ok(RunStatus::Finished(outcome)) => {
                    launch.mark_running(now);
                    launch.finish_attempt(&outcome, now);
                }
                Err(e) => return Err(LaunchError::Submission(e.to_string())),
            }
        }

        // Outcomes not yet published, oldest first (a relaunch does not wait for them).
        if self.intake.enabled() {
            for i in 0..launch.attempts.len() {
                let a = &launch.attempts[i];
                if a.publishes() && !a.outcome_published {
                    match self.intake.publish(a).await {
                        Ok(()) => {
                            launch.attempts[i].outcome_published = true;
                        }
                        Err(e) => {
                            self.metrics.publish_failures.inc();
                            tracing::warn!(launch = id, job_id = %a.job_id, error = %e, "outcome not published yet");
                        }
                    }
                }
            }
        }

        if !launch.state.is_terminal() && launch.current().state.is_terminal() {
            let current = launch.current().clone();
            let outcome = current
                .outcome()
                .unwrap_or(Outcome::OtherFailure(SUBMISSION_FAILED.into()));
            let next = if current.reason == SUBMISSION_FAILED {
                Next::End(State::Failed)
            } else {
                next_step(
                    &outcome,
                    launch.attempts.len() as u32,
                    launch.max_attempts,
                    launch.cancel_requested,
                )
            };
            match next {
                Next::End(state) => launch.end(state, now),
                Next::Relaunch => match self
                    .ranking
                    .pick(&launch.spec(), &launch.tried_pools())
                    .await
                {
                    Ok(pool) => {
                        tracing::info!(launch = id, from = %current.pool_id, to = %pool, "spot termination: relaunching on another pool");
                        launch.relaunch(pool, now);
                        submit_after_save = true;
                    }
                    Err(PickError::NoPool(m)) | Err(PickError::Refused(m)) => {
                        tracing::warn!(launch = id, reason = %m, "no other pool to relaunch on");
                        launch.end(State::Failed, now);
                    }
                    // The relay is down: try again next pass.
                    Err(PickError::Unavailable(m)) => {
                        tracing::warn!(launch = id, error = %m, "relaunch waits for the relay")
                    }
                },
            }
        }

        let saved = launch.clone();
        self.save(launch, &before).await?;
        if submit_after_save && let Err(e) = self.submit(&saved).await {
            // The next pass sees a saved attempt with no run and submits (or fails) it.
            tracing::warn!(launch = id, error = %e, "relaunch submission failed; retried next pass");
        }
        Ok(())
    }

    /// Save `launch` if it changed, and count what ended between `before` and it.
    async fn save(&self, mut launch: Launch, before: &Launch) -> Result<(), LaunchError> {
        if launch == *before {
            return Ok(());
        }
        if !self.store.put(&mut launch).await? {
            return Ok(());
        }
        for (i, a) in launch.attempts.iter().enumerate() {
            let was = before.attempts.get(i);
            if a.state.is_terminal()
                && was.is_none_or(|w| !w.state.is_terminal())
                && let Some(o) = a.outcome()
            {
                self.metrics
                    .attempts
                    .with_label_values(&[attempt_label(&o)])
                    .inc();
            }
            if a.outcome_published && was.is_none_or(|w| !w.outcome_published) {
                self.metrics.published.inc();
            }
        }
        if launch.state.is_terminal() && !before.state.is_terminal() {
            self.metrics
                .launches
                .with_label_values(&[launch.state.as_str()])
                .inc();
            tracing::info!(launch = %launch.launch_id, state = launch.state.as_str(), attempts = launch.attempts.len(), "launch finished");
        }
        Ok(())
    }
}
