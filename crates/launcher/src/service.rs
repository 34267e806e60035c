//! The launcher itself: starting launches, cancelling them, the reconciler that follows every
//! unfinished launch, and the outbox that publishes outcomes.
//!
//! Every change to a launch is a compare-and-set in the store, so the API and the reconciler (of this
//! replica or another) never lose each other's writes; a writer that loses gives up the effect it
//! meant to have. Effects happen in an order a crash can resume:
//!
//! * **One run per attempt.** An attempt is saved with a [`Claim`] before its run is submitted, and only
//!   the claim's holder submits it: the request that created the launch, or the reconciler that saved a
//!   relaunch (a relaunch whose save lost the race is never submitted) or took over an expired claim.
//!   Once the backend accepted the run the attempt is marked `submitted`. A run the backend does not
//!   know is submitted again only when it cannot have existed ([`missing_run`]); one it has is adopted.
//! * **A cancel wins.** A cancel is saved first (the launch ends, its slot is free), then the run is
//!   stopped by whoever can: the canceller when no submission is in flight, else the submitter when it
//!   finds the cancel on saving `submitted`, else the reconciler once the claim expired
//!   (`stop_pending` keeps the launch in its work until the stop is confirmed).
//! * **Never stuck.** An attempt past `MAX_ATTEMPT_DURATION` is stopped and ends `TIMED_OUT`; a launch
//!   frees its slot when it ends. Its outcomes were queued in the outbox by the same write that ended
//!   each attempt, and the outbox is published with backoff, independently: a refused or missing intake
//!   token delays the ranking's learning (`launcher_outbox_depth`, a log line saying why), never the
//!   launches. Outcomes are sent at least once, always the same event with the attempt's job id (the
//!   ranking counts it once).
//! * **Idempotent launches.** A request with an `Idempotency-Key` already used by its caller returns
//!   that launch (the same request) or is refused (a different one); the key is checked again in the
//!   atomic save, so two racing requests with one key make one launch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use pool_core::event::Outcome;

use crate::auth::Caller;
use crate::backend::{Backend, BackendError, Run, RunStatus};
use crate::clients::{Intake, PickError, Picker, PublishFailure, check_pick};
use crate::launch::{
    Attempt, Claim, Defaults, Launch, LaunchRequest, LaunchSpec, Missing, Next, RUN_LOST,
    SUBMISSION_FAILED, SpecError, State, TIMED_OUT, missing_run, next_step,
};
use crate::metrics::LauncherMetrics;
use crate::store::{Created, IdempotencyKey, IdempotentHit, OutboxEntry, Store, StoreError};
use crate::template::Templates;
use pool_core::clock::SharedClock;

/// Most outbox entries one reconcile pass tries to publish.
const OUTBOX_BATCH: usize = 100;
/// First and longest wait before an unpublished outcome is tried again.
pub const OUTBOX_BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const OUTBOX_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// How often finished launches past their retention are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Compare-and-set retries of one change before giving up (the reconciler redoes it next pass).
const CAS_TRIES: usize = 5;

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
    #[error("{0}")]
    BadPick(String),
    #[error(
        "{active} launches are running (MAX_ACTIVE_LAUNCHES); try again when some have finished"
    )]
    Busy { active: usize },
    #[error("the run could not be submitted: {0}")]
    Submission(String),
    #[error("the backend cannot be reached: {0}")]
    Backend(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("no launch {0}")]
    NotFound(String),
    #[error("launch {0} already finished ({1})")]
    Finished(String, &'static str),
    #[error("launch {0} changed too often while being updated; try again")]
    Contended(String),
    #[error(
        "Idempotency-Key {0:?} was used for a different request (launch {1}); use a new key for a new launch"
    )]
    KeyReused(String, String),
}

impl From<PickError> for LaunchError {
    fn from(e: PickError) -> Self {
        match e {
            PickError::NoPool(m) => LaunchError::NoPool(m),
            PickError::Refused(m) => LaunchError::RelayRefused(m),
            PickError::Unavailable(m) => LaunchError::RelayUnavailable(m),
            PickError::Mismatch(m) => LaunchError::BadPick(m),
        }
    }
}

/// The bounds a launcher keeps.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `MAX_ACTIVE_LAUNCHES`.
    pub max_active: usize,
    /// `MAX_ATTEMPT_DURATION`.
    pub max_attempt_duration: Duration,
    /// `LAUNCH_RETENTION`: also how long an unpublished outcome is retried.
    pub retention: Duration,
    /// How long a submission claim holds; one submission may take half of it.
    pub claim_ttl: Duration,
}

/// What a launcher is made of.
pub struct Parts {
    pub store: Arc<dyn Store>,
    pub backend: Arc<dyn Backend>,
    pub templates: Templates,
    pub picker: Arc<dyn Picker>,
    pub intake: Intake,
    pub clock: SharedClock,
    pub limits: Limits,
    pub defaults: Defaults,
    pub metrics: LauncherMetrics,
}

pub struct Launcher {
    pub store: Arc<dyn Store>,
    pub backend: Arc<dyn Backend>,
    pub templates: Templates,
    pub picker: Arc<dyn Picker>,
    pub intake: Intake,
    pub clock: SharedClock,
    pub limits: Limits,
    pub defaults: Defaults,
    pub metrics: LauncherMetrics,
    /// Who holds the reconciler lease (this replica).
    pub holder: String,
    last_prune: Mutex<Option<DateTime<Utc>>>,
}

/// A launch `POST /launch` answers with: new, or the one its `Idempotency-Key` made before.
#[derive(Debug, Clone)]
pub struct Launched {
    pub launch: Launch,
    pub replayed: bool,
}

/// What checking an open attempt against its run leaves for the rest of [`Launcher::step`].
enum Checked {
    /// Nothing more this pass: another replica is submitting the run, or the launch has ended and
    /// been saved already.
    Done,
    /// The launch as updated, not saved yet; `submit`: this pass claimed the run, to submit it once
    /// the claim is saved.
    Updated { submit: bool },
}

/// The wait before the `tries`-th retry of an unpublished outcome: 1 s, doubling, at most 5 min.
pub fn backoff(tries: u32) -> Duration {
    let doublings = tries.saturating_sub(1).min(20);
    OUTBOX_BACKOFF_MIN
        .saturating_mul(1u32 << doublings)
        .min(OUTBOX_BACKOFF_MAX)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Launcher {
    pub fn new(parts: Parts) -> Self {
        Self {
            store: parts.store,
            backend: parts.backend,
            templates: parts.templates,
            picker: parts.picker,
            intake: parts.intake,
            clock: parts.clock,
            limits: parts.limits,
            defaults: parts.defaults,
            metrics: parts.metrics,
            holder: uuid::Uuid::new_v4().to_string(),
            last_prune: Mutex::new(None),
        }
    }

    fn run_of<'a>(&'a self, launch: &'a Launch, attempt: &'a Attempt) -> Option<Run<'a>> {
        Some(Run {
            launch,
            attempt,
            template: self.templates.get(&launch.application)?,
        })
    }

    fn run<'a>(&'a self, launch: &'a Launch) -> Option<Run<'a>> {
        self.run_of(launch, launch.current())
    }

    fn claim(&self) -> Claim {
        Claim::new(self.clock.utc(), self.limits.claim_ttl)
    }

    // -----------------------------------------------------------------------------------------------
    // The API

    /// `POST /launch`: check the request, pick the pool (checked against the request), save the launch
    /// within the bound, submit its first run.
    pub async fn launch(
        &self,
        caller: &Caller,
        req: &LaunchRequest,
        key: Option<&str>,
    ) -> Result<Launched, LaunchError> {
        let spec = req.parse(|a| self.templates.get(a).is_some(), &self.defaults)?;
        let fingerprint = spec.fingerprint();
        if let Some(k) = key
            && let Some(hit) = self.store.idempotent(&caller.name, k).await?
        {
            return self.replay(k, hit, &fingerprint).await;
        }
        // A cheap early answer; the bound itself is enforced by the atomic save below.
        let active = self.store.slots().await?;
        if active >= self.limits.max_active {
            return Err(LaunchError::Busy { active });
        }
        let pool = self.pick(&spec, &[]).await?;
        let now = self.clock.utc();
        let mut launch = Launch::new(&caller.name, spec, pool, now, self.claim());
        let idem = key.map(|k| IdempotencyKey {
            caller: &caller.name,
            key: k,
            fingerprint: &fingerprint,
        });
        match self
            .store
            .create(&mut launch, self.limits.max_active, idem)
            .await?
        {
            Created::Created => {}
            Created::Busy { active } => return Err(LaunchError::Busy { active }),
            Created::Duplicate(hit) => {
                return self
                    .replay(key.unwrap_or_default(), hit, &fingerprint)
                    .await;
            }
        }
        tracing::info!(launch = %launch.launch_id, caller = %caller.name, pool = %launch.pool_id, application = %launch.application, "launch saved; submitting its run");
        let (launch, refused) = self.submit_claimed(launch).await?;
        if let Some(m) = refused {
            return Err(LaunchError::Submission(m));
        }
        Ok(Launched {
            launch,
            replayed: false,
        })
    }

    async fn replay(
        &self,
        key: &str,
        hit: IdempotentHit,
        fingerprint: &str,
    ) -> Result<Launched, LaunchError> {
        if hit.fingerprint != fingerprint {
            return Err(LaunchError::KeyReused(key.to_owned(), hit.launch_id));
        }
        let launch = self
            .store
            .get(&hit.launch_id)
            .await?
            .ok_or(LaunchError::NotFound(hit.launch_id))?;
        Ok(Launched {
            launch,
            replayed: true,
        })
    }

    /// The relay's pick for `spec`, checked against it.
    async fn pick(
        &self,
        spec: &LaunchSpec,
        exclude: &[pool_core::event::PoolId],
    ) -> Result<pool_core::event::PoolId, PickError> {
        let pool = self.picker.pick(spec, exclude).await?;
        check_pick(&pool, spec, exclude)
            .inspect_err(|e| tracing::warn!(error = %e, "refusing the relay's pick"))?;
        Ok(pool)
    }

    /// A launch `caller` may see.
    pub async fn visible(&self, caller: &Caller, id: &str) -> Result<Launch, LaunchError> {
        match self.store.get(id).await? {
            // Another caller's launch is answered as unknown: its existence is not theirs to learn.
            Some(l) if caller.may_access(&l.caller) => Ok(l),
            _ => Err(LaunchError::NotFound(id.to_owned())),
        }
    }

    /// `GET /launches`: the caller's own launches (every launch for `admin`).
    pub async fn list(
        &self,
        caller: &Caller,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Launch>, LaunchError> {
        let owner = (!caller.is_admin()).then_some(caller.name.as_str());
        Ok(self.store.list(owner, state, limit).await?)
    }

    /// `DELETE /launches/{id}`: the launch ends CANCELLED at once (its slot is free, nothing is
    /// published for the stopped attempt), and its run is stopped.
    pub async fn cancel(&self, caller: &Caller, id: &str) -> Result<Launch, LaunchError> {
        for _ in 0..CAS_TRIES {
            let mut launch = self.visible(caller, id).await?;
            if launch.state.is_terminal() {
                return Err(LaunchError::Finished(id.to_owned(), launch.state.as_str()));
            }
            let before = launch.clone();
            launch.cancel_attempt(self.clock.utc());
            if !self.save(&mut launch, &before).await? {
                continue;
            }
            tracing::info!(launch = id, caller = %caller.name, "launch cancelled");
            return Ok(self.stop_pending_runs(launch).await);
        }
        Err(LaunchError::Contended(id.to_owned()))
    }

    // -----------------------------------------------------------------------------------------------
    // Submitting, stopping

    /// Submit the current attempt's run, which this caller has just claimed and saved. Returns the
    /// launch as it is now, and the backend's refusal when the run cannot be submitted at all.
    async fn submit_claimed(
        &self,
        launch: Launch,
    ) -> Result<(Launch, Option<String>), LaunchError> {
        let result = match self.run(&launch) {
            None => Err(BackendError::Refused(format!(
                "template {:?} is gone",
                launch.application
            ))),
            Some(run) => {
                // Bounded well inside the claim: once it has expired, nobody may still be creating.
                match tokio::time::timeout(self.limits.claim_ttl / 2, self.backend.submit(run))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(BackendError::Unavailable(format!(
                        "no answer within {:?}",
                        self.limits.claim_ttl / 2
                    ))),
                }
            }
        };
        match result {
            Ok(()) => Ok((self.confirm_submitted(launch).await?, None)),
            Err(BackendError::Refused(m)) => {
                tracing::warn!(launch = %launch.launch_id, error = %m, "submission refused");
                Ok((self.fail_submission(launch).await?, Some(m)))
            }
            Err(BackendError::Unavailable(m)) => {
                // The reconciler submits it again (or adopts it, should it have been created after all).
                tracing::warn!(launch = %launch.launch_id, error = %m, "submission failed; the reconciler retries");
                Ok((self.release_claim(launch).await?, None))
            }
        }
    }

    /// Save that the backend has the current attempt's run, unless a cancel came first: then stop it.
    async fn confirm_submitted(&self, mut launch: Launch) -> Result<Launch, LaunchError> {
        let job = launch.current().job_id.clone();
        for _ in 0..CAS_TRIES {
            let Some(attempt) = launch.attempts.iter().find(|a| a.job_id == job) else {
                return Ok(launch);
            };
            if attempt.state == State::Cancelled || launch.cancel_requested {
                tracing::info!(launch = %launch.launch_id, run = %attempt.run_name, "cancelled while it was submitted: stopping the run");
                let job = job.clone();
                return Ok(self.stop_attempt_run(launch, &job).await);
            }
            if attempt.submitted || attempt.state.is_terminal() {
                return Ok(launch);
            }
            let before = launch.clone();
            launch.mark_submitted(self.clock.utc());
            if self.save(&mut launch, &before).await? {
                return Ok(launch);
            }
            launch = self.reread(&launch.launch_id).await?;
        }
        // Still contended: the reconciler finds the run and adopts it.
        Ok(launch)
    }

    /// The current attempt could not even start: the launch fails without an outcome event.
    async fn fail_submission(&self, mut launch: Launch) -> Result<Launch, LaunchError> {
        let job = launch.current().job_id.clone();
        for _ in 0..CAS_TRIES {
            if launch.state.is_terminal() || launch.current().job_id != job {
                return Ok(launch);
            }
            let before = launch.clone();
            let now = self.clock.utc();
            launch.finish_attempt(&Outcome::OtherFailure(SUBMISSION_FAILED.into()), now);
            launch.end(State::Failed, now);
            if self.save(&mut launch, &before).await? {
                return Ok(launch);
            }
            launch = self.reread(&launch.launch_id).await?;
        }
        Ok(launch)
    }

    /// Give the claim up at once (the submission failed): the reconciler may take the attempt over
    /// now rather than when the claim would have expired.
    async fn release_claim(&self, mut launch: Launch) -> Result<Launch, LaunchError> {
        let before = launch.clone();
        let now = self.clock.utc();
        if let Some(c) = launch.current_mut().claim.as_mut() {
            c.until = now;
        }
        if !self.save(&mut launch, &before).await? {
            return self.reread(&launch.launch_id).await;
        }
        Ok(launch)
    }

    async fn reread(&self, id: &str) -> Result<Launch, LaunchError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| LaunchError::NotFound(id.to_owned()))
    }

    /// Stop the run of the attempt `job` and save that it is stopped.
    async fn stop_attempt_run(&self, launch: Launch, job: &str) -> Launch {
        let Some(attempt) = launch.attempts.iter().find(|a| a.job_id == job) else {
            return launch;
        };
        if let Some(run) = self.run_of(&launch, attempt)
            && let Err(e) = self.backend.cancel(run).await
        {
            tracing::warn!(launch = %launch.launch_id, run = %attempt.run_name, error = %e, "stopping the run failed; the reconciler retries");
            return launch;
        }
        self.clear_stop_pending(launch, &[job.to_owned()]).await
    }

    /// Stop every run a cancel (or the deadline) asked to stop whose submission cannot be in flight
    /// any more (accepted, or its claim expired: nobody can still be creating it). Returns the launch
    /// as saved.
    async fn stop_pending_runs(&self, launch: Launch) -> Launch {
        let now = self.clock.utc();
        let mut stopped = Vec::new();
        for a in launch.attempts.iter().filter(|a| a.stop_pending) {
            if !a.submitted && a.claimed(now) {
                continue;
            }
            let Some(run) = self.run_of(&launch, a) else {
                stopped.push(a.job_id.clone());
                continue;
            };
            match self.backend.cancel(run).await {
                Ok(()) => stopped.push(a.job_id.clone()),
                Err(e) => {
                    tracing::warn!(launch = %launch.launch_id, run = %a.run_name, error = %e, "stopping the run failed; retried next pass")
                }
            }
        }
        if stopped.is_empty() {
            return launch;
        }
        self.clear_stop_pending(launch, &stopped).await
    }

    async fn clear_stop_pending(&self, mut launch: Launch, jobs: &[String]) -> Launch {
        for _ in 0..CAS_TRIES {
            let before = launch.clone();
            let mut changed = false;
            for a in launch.attempts.iter_mut() {
                if a.stop_pending && jobs.contains(&a.job_id) {
                    a.stop_pending = false;
                    changed = true;
                }
            }
            if !changed {
                return launch;
            }
            match self.save(&mut launch, &before).await {
                Ok(true) => return launch,
                Ok(false) => match self.store.get(&launch.launch_id).await {
                    Ok(Some(l)) => launch = l,
                    _ => return before,
                },
                Err(_) => return before,
            }
        }
        launch
    }

    // -----------------------------------------------------------------------------------------------
    // Saving

    /// Write `launch` (read as `before`) with the outcome events of the attempts it ends queued in the
    /// same step, and count what ended. `false`: someone else wrote first; nothing happened.
    async fn save(&self, launch: &mut Launch, before: &Launch) -> Result<bool, StoreError> {
        if *launch == *before {
            return Ok(true);
        }
        let now = self.clock.utc();
        let ended = |i: usize, a: &Attempt| {
            a.state.is_terminal()
                && before
                    .attempts
                    .get(i)
                    .is_none_or(|w| !w.state.is_terminal())
        };
        let outbox: Vec<OutboxEntry> = launch
            .attempts
            .iter()
            .enumerate()
            .filter(|(i, a)| ended(*i, a) && a.publishes())
            .filter_map(|(_, a)| {
                let event = Intake::event(a).or_else(|| {
                    tracing::warn!(launch = %launch.launch_id, job_id = %a.job_id, "the attempt's outcome is no valid event; not published");
                    None
                })?;
                Some(OutboxEntry {
                    job_id: a.job_id.clone(),
                    launch_id: launch.launch_id.clone(),
                    attempt: a.attempt,
                    event: event.to_json(),
                    enqueued_at: now,
                    due_at: now,
                    tries: 0,
                    last_error: None,
                })
            })
            .collect();
        if !self.store.put(launch, &outbox).await? {
            return Ok(false);
        }
        for (i, a) in launch.attempts.iter().enumerate() {
            if ended(i, a)
                && let Some(label) = a.outcome_label()
            {
                self.metrics.attempt_ended(label, a.duration_seconds());
            }
        }
        if launch.state.is_terminal() && !before.state.is_terminal() {
            self.metrics
                .launches
                .with_label_values(&[launch.state.as_str()])
                .inc();
            tracing::info!(launch = %launch.launch_id, state = launch.state.as_str(), attempts = launch.attempts.len(), "launch finished");
        }
        Ok(true)
    }

    // -----------------------------------------------------------------------------------------------
    // The reconciler

    /// One pass, if this replica holds the lease: every launch with work, then the outbox, then (now
    /// and then) the retention.
    pub async fn reconcile_once(&self, lease: Duration) -> Result<(), StoreError> {
        if !self.store.lead(&self.holder, lease).await? {
            return Ok(());
        }
        for id in self.store.work().await? {
            if let Err(e) = self.step(&id).await {
                tracing::warn!(launch = %id, error = %e, "reconcile step failed; retried next pass");
            }
        }
        self.drain_outbox().await?;
        self.prune_now_and_then().await?;
        self.metrics.active.set(self.store.slots().await? as i64);
        self.metrics
            .outbox_depth
            .set(self.store.outbox_depth().await? as i64);
        Ok(())
    }

    async fn prune_now_and_then(&self) -> Result<(), StoreError> {
        let now = self.clock.utc();
        {
            let mut last = self.last_prune.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now - t < to_chrono(PRUNE_EVERY)) {
                return Ok(());
            }
            *last = Some(now);
        }
        let gone = self.store.prune(now).await?;
        if gone > 0 {
            tracing::debug!(gone, "pruned launches past LAUNCH_RETENTION");
        }
        Ok(())
    }

    /// Move one launch forward as far as it can go now. Saved with compare-and-set; a lost race is
    /// redone on the next pass, and nothing it meant to submit is submitted.
    pub async fn step(&self, id: &str) -> Result<(), LaunchError> {
        let Some(mut launch) = self.store.get(id).await? else {
            return Ok(());
        };
        if launch.state.is_terminal() {
            self.stop_pending_runs(launch).await;
            return Ok(());
        }
        let before = launch.clone();
        let now = self.clock.utc();
        let mut submit_after_save = false;

        if !launch.current().state.is_terminal() {
            match self.check_attempt(&mut launch, &before, now).await? {
                Checked::Done => return Ok(()),
                Checked::Updated { submit } => submit_after_save = submit,
            }
        }
        if !launch.state.is_terminal() && launch.current().state.is_terminal() {
            submit_after_save |= self.after_attempt(&mut launch, now).await;
        }

        if !self.save(&mut launch, &before).await? {
            // Someone else changed the launch first: what this pass meant to submit was not saved, so
            // it is not submitted. The next pass starts from their version.
            return Ok(());
        }
        if submit_after_save {
            self.submit_claimed(launch).await?;
        }
        Ok(())
    }

    /// The current attempt, still open, checked against its run in the backend: the attempt records
    /// what the backend says (adopted, running, finished, lost, timed out), or this pass takes over
    /// submitting it. Kept apart from [`Self::after_attempt`] because only the backend's answer may
    /// end an attempt; what follows an ended attempt is the same whoever ended it.
    async fn check_attempt(
        &self,
        launch: &mut Launch,
        before: &Launch,
        now: DateTime<Utc>,
    ) -> Result<Checked, LaunchError> {
        let current = launch.current().clone();
        // The run as read (`before`): `launch` changes below.
        let Some(run) = self.run(before) else {
            launch.finish_attempt(&Outcome::OtherFailure(SUBMISSION_FAILED.into()), now);
            launch.end(State::Failed, now);
            self.save(launch, before).await?;
            return Ok(Checked::Done);
        };
        if current.claimed(now) {
            // Its holder is submitting it right now.
            return Ok(Checked::Done);
        }
        let status = self
            .backend
            .poll(run)
            .await
            .map_err(|e| LaunchError::Backend(e.to_string()))?;
        let horizon = self.backend.removal_horizon(run);
        let submit = match status {
            RunStatus::NotFound => self.on_run_missing(launch, &current, now, horizon),
            found => {
                self.on_run_found(launch, &current, run, found, now).await?;
                false
            }
        };
        Ok(Checked::Updated { submit })
    }

    /// The backend does not know the current attempt's run. A run it once had (or may have had) is
    /// not blindly submitted again: the attempt ends `RUN_LOST`. One never created is taken over by
    /// this pass (claimed here, submitted once the claim is saved: returns true) unless it is past
    /// `MAX_ATTEMPT_DURATION`.
    fn on_run_missing(
        &self,
        launch: &mut Launch,
        current: &Attempt,
        now: DateTime<Utc>,
        horizon: Option<Duration>,
    ) -> bool {
        let id = launch.launch_id.as_str();
        let max = self.limits.max_attempt_duration;
        if current.submitted {
            tracing::warn!(launch = id, run = %current.run_name, "the run is gone (removed behind the launcher's back): RUN_LOST, not submitted again");
            launch.finish_attempt(&Outcome::OtherFailure(RUN_LOST.into()), now);
            return false;
        }
        match missing_run(current, now, horizon) {
            Missing::Lost => {
                tracing::warn!(launch = id, run = %current.run_name, "the run was never confirmed and is old enough to have run and been removed: RUN_LOST, not submitted again");
                launch.finish_attempt(&Outcome::OtherFailure(RUN_LOST.into()), now);
                false
            }
            Missing::Submit if current.past_deadline(now, max) => {
                tracing::warn!(launch = id, run = %current.run_name, "the run could not be submitted within MAX_ATTEMPT_DURATION");
                launch.finish_attempt(&Outcome::OtherFailure(SUBMISSION_FAILED.into()), now);
                false
            }
            Missing::Submit => {
                // Saved but never created (its submitter died or failed): this pass takes it over.
                launch.current_mut().claim = Some(self.claim());
                true
            }
        }
    }

    /// The backend knows the current attempt's run: the attempt follows it (adopted if its submission
    /// was never confirmed, then running or finished). A run still going past `MAX_ATTEMPT_DURATION`
    /// is stopped, and the attempt ends `TIMED_OUT`.
    async fn on_run_found(
        &self,
        launch: &mut Launch,
        current: &Attempt,
        run: Run<'_>,
        status: RunStatus,
        now: DateTime<Utc>,
    ) -> Result<(), LaunchError> {
        let max = self.limits.max_attempt_duration;
        if !current.submitted {
            tracing::info!(launch = launch.launch_id.as_str(), run = %current.run_name, "the run exists: adopted");
            launch.mark_submitted(now);
        }
        match status {
            RunStatus::Running => {
                launch.mark_running(now);
            }
            RunStatus::Finished(outcome) => {
                launch.mark_running(now);
                launch.finish_attempt(&outcome, now);
            }
            _ => {}
        }
        if !launch.current().state.is_terminal() && current.past_deadline(now, max) {
            // Stopped before the attempt is saved as ended: a failed save redoes both.
            self.backend
                .cancel(run)
                .await
                .map_err(|e| LaunchError::Backend(e.to_string()))?;
            tracing::warn!(launch = launch.launch_id.as_str(), run = %current.run_name, max = ?max, "the attempt passed MAX_ATTEMPT_DURATION: its run was stopped (TIMED_OUT)");
            launch.finish_attempt(&Outcome::OtherFailure(TIMED_OUT.into()), now);
        }
        Ok(())
    }

    /// The current attempt has ended and the launch has not: the launch ends, or (after a spot
    /// termination with attempts left) relaunches on another pool the relay picks, claimed here and
    /// submitted once saved (returns true). A relay that is down leaves the launch as it is, for the
    /// next pass.
    async fn after_attempt(&self, launch: &mut Launch, now: DateTime<Utc>) -> bool {
        let current = launch.current().clone();
        let outcome = current
            .outcome()
            .unwrap_or(Outcome::OtherFailure(SUBMISSION_FAILED.into()));
        let next = if current.reason == SUBMISSION_FAILED || current.reason == RUN_LOST {
            Next::End(State::Failed)
        } else {
            next_step(
                &outcome,
                launch.attempts.len() as u32,
                launch.max_attempts,
                launch.cancel_requested,
            )
        };
        let id = launch.launch_id.as_str();
        match next {
            Next::End(state) => launch.end(state, now),
            Next::Relaunch => match self.pick(&launch.spec(), &launch.tried_pools()).await {
                Ok(pool) => {
                    tracing::info!(launch = id, from = %current.pool_id, to = %pool, "spot termination: relaunching on another pool");
                    launch.relaunch(pool, now, self.claim());
                    return true;
                }
                Err(PickError::NoPool(m) | PickError::Refused(m) | PickError::Mismatch(m)) => {
                    tracing::warn!(launch = id, reason = %m, "no other pool to relaunch on");
                    launch.end(State::Failed, now);
                }
                // The relay is down: try again next pass.
                Err(PickError::Unavailable(m)) => {
                    tracing::warn!(launch = id, error = %m, "relaunch waits for the relay")
                }
            },
        }
        false
    }

    // -----------------------------------------------------------------------------------------------
    // The outbox

    /// Publish the outcomes that are due; a failure is retried with backoff, and given up (counted and
    /// logged) once older than `LAUNCH_RETENTION`.
    async fn drain_outbox(&self) -> Result<(), StoreError> {
        let now = self.clock.utc();
        for mut entry in self.store.outbox_due(now, OUTBOX_BATCH).await? {
            if now - entry.enqueued_at >= to_chrono(self.limits.retention) {
                self.store.outbox_remove(&entry.job_id).await?;
                self.metrics.outbox_dropped.inc();
                tracing::error!(launch = %entry.launch_id, job_id = %entry.job_id, tries = entry.tries, last_error = entry.last_error.as_deref().unwrap_or(""), "outcome given up: not published within LAUNCH_RETENTION");
                continue;
            }
            match self.intake.publish_line(&entry.event).await {
                Ok(()) => {
                    self.store.outbox_remove(&entry.job_id).await?;
                    self.metrics.published.inc();
                    tracing::debug!(launch = %entry.launch_id, job_id = %entry.job_id, "outcome published");
                    self.mark_published(&entry).await;
                }
                Err(e) => {
                    let reason = e.kind.label();
                    self.metrics
                        .publish_failures
                        .with_label_values(&[reason])
                        .inc();
                    entry.tries += 1;
                    entry.last_error = Some(reason.to_owned());
                    let wait = backoff(entry.tries);
                    entry.due_at = now + to_chrono(wait);
                    let why = match e.kind {
                        PublishFailure::NoToken => "no INTAKE_TOKEN is set",
                        PublishFailure::Unauthorized => {
                            "the intake refused INTAKE_TOKEN (not one of its INTAKE_TOKENS)"
                        }
                        PublishFailure::Refused => "the intake refused the event",
                        PublishFailure::RateLimited => "the intake rate-limits INTAKE_TOKEN",
                        PublishFailure::Unavailable => "the intake cannot be reached",
                    };
                    tracing::warn!(launch = %entry.launch_id, job_id = %entry.job_id, reason, tries = entry.tries, retry_in = ?wait, error = %e.message, "outcome not published: {why}; kept in the outbox");
                    self.store.outbox_reschedule(&entry).await?;
                    if e.kind != PublishFailure::Refused {
                        // The next ones would fail alike: they wait for the next pass.
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    /// Show on the launch that an attempt's outcome is published (best effort: the outbox is what
    /// counts, and a launch past its retention is gone).
    async fn mark_published(&self, entry: &OutboxEntry) {
        for _ in 0..CAS_TRIES {
            let Ok(Some(mut launch)) = self.store.get(&entry.launch_id).await else {
                return;
            };
            match launch.attempt_mut(&entry.job_id) {
                Some(a) if !a.outcome_published => a.outcome_published = true,
                _ => return,
            }
            if let Ok(true) = self.store.put(&mut launch, &[]).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
