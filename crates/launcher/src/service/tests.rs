//! The launcher's decisions, raced and replayed in process: the memory store (made to lose a
//! compare-and-set on demand), a fake backend that records every call and can hold a submission at a
//! gate, a fake relay, and a manual clock. What the same races do against Redis and HTTP is in
//! `tests/api/races.rs`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use pool_core::event::PoolId;

use super::*;
use crate::backend::fake::{Call, FakeBackend};
use crate::store::MemoryStore;
use pool_core::clock::{Clock, ManualClock};

const POOLS: [&str; 3] = [
    "pool-c6a.xlarge-us-east-1a",
    "pool-c6a.xlarge-us-east-1b",
    "pool-m6a.xlarge-us-east-1a",
];

/// The relay: the first pool of `POOLS` the request allows, or a forced answer.
#[derive(Default)]
struct FakePicker {
    forced: Mutex<Option<PoolId>>,
}

#[async_trait]
impl Picker for FakePicker {
    async fn pick(&self, spec: &LaunchSpec, exclude: &[PoolId]) -> Result<PoolId, PickError> {
        if let Some(p) = self.forced.lock().unwrap().clone() {
            return Ok(p);
        }
        POOLS
            .iter()
            .map(|p| p.parse::<PoolId>().unwrap())
            .find(|p| spec.instance_types.contains(p.instance_type()) && !exclude.contains(p))
            .ok_or_else(|| PickError::NoPool("no pool".into()))
    }
}

/// The memory store, made to lose the next `fail_puts` compare-and-sets.
#[derive(Default)]
struct FlakyStore {
    inner: MemoryStore,
    fail_puts: AtomicUsize,
}

#[async_trait]
impl Store for FlakyStore {
    async fn get(&self, id: &str) -> Result<Option<Launch>, StoreError> {
        self.inner.get(id).await
    }
    async fn create(
        &self,
        launch: &mut Launch,
        limit: usize,
        key: Option<IdempotencyKey<'_>>,
    ) -> Result<Created, StoreError> {
        self.inner.create(launch, limit, key).await
    }
    async fn idempotent(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotentHit>, StoreError> {
        self.inner.idempotent(caller, key).await
    }
    async fn put(&self, launch: &mut Launch, outbox: &[OutboxEntry]) -> Result<bool, StoreError> {
        if self
            .fail_puts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(false);
        }
        self.inner.put(launch, outbox).await
    }
    async fn work(&self) -> Result<Vec<String>, StoreError> {
        self.inner.work().await
    }
    async fn slots(&self) -> Result<usize, StoreError> {
        self.inner.slots().await
    }
    async fn list(
        &self,
        caller: Option<&str>,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Launch>, StoreError> {
        self.inner.list(caller, state, limit).await
    }
    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        self.inner.outbox_due(now, limit).await
    }
    async fn outbox_remove(&self, job_id: &str) -> Result<(), StoreError> {
        self.inner.outbox_remove(job_id).await
    }
    async fn outbox_reschedule(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.inner.outbox_reschedule(entry).await
    }
    async fn outbox_depth(&self) -> Result<usize, StoreError> {
        self.inner.outbox_depth().await
    }
    async fn prune(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.inner.prune(now).await
    }
    async fn lead(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.lead(holder, ttl).await
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

struct World {
    launcher: Arc<Launcher>,
    backend: Arc<FakeBackend>,
    store: Arc<FlakyStore>,
    clock: Arc<ManualClock>,
    picker: Arc<FakePicker>,
    registry: prometheus::Registry,
}

const MAX_ACTIVE: usize = 3;
const DEADLINE: Duration = Duration::from_secs(3600);
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

fn world_with(backend: FakeBackend) -> World {
    let templates = Templates::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/launch-templates"),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::starting_now());
    let backend = Arc::new(backend);
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(RETENTION),
        fail_puts: AtomicUsize::new(0),
    });
    let picker = Arc::new(FakePicker::default());
    let registry = prometheus::Registry::new();
    let launcher = Arc::new(Launcher::new(Parts {
        store: store.clone(),
        backend: backend.clone(),
        templates,
        picker: picker.clone(),
        // No token: every outcome waits in the outbox (this suite never reaches an intake).
        intake: Intake::new("http://127.0.0.1:9", None, Duration::from_secs(1)),
        clock: clock.clone(),
        limits: Limits {
            max_active: MAX_ACTIVE,
            max_attempt_duration: DEADLINE,
            retention: RETENTION,
            claim_ttl: Duration::from_secs(30),
        },
        defaults: Defaults::new("astronauts", &["c6a.xlarge".into()], 3).unwrap(),
        metrics: LauncherMetrics::register(&registry),
    }));
    World {
        launcher,
        backend,
        store,
        clock,
        picker,
        registry,
    }
}

fn world() -> World {
    world_with(FakeBackend::new(RunStatus::Running))
}

fn alice() -> Caller {
    Caller::new("alice")
}

impl World {
    async fn launch(&self) -> Launch {
        self.launcher
            .launch(&alice(), &LaunchRequest::default(), None)
            .await
            .expect("launched")
            .launch
    }
    async fn stored(&self, id: &str) -> Launch {
        self.store.get(id).await.unwrap().expect("stored")
    }
    /// A metric's value (the sum of its series with these labels).
    fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        testkit::metric_value(&pool_http::metrics::encode(&self.registry), name, labels)
    }
}

#[tokio::test]
async fn a_launch_submits_its_first_run_once_and_confirms_it() {
    let w = world();
    let l = w.launch().await;
    assert_eq!(l.caller, "alice");
    assert_eq!(l.pool_id.as_str(), POOLS[0]);
    assert!(l.current().submitted && l.current().claim.is_none());
    assert_eq!(w.backend.creations(), [l.current().run_name.clone()]);
    w.launcher.step(&l.launch_id).await.unwrap();
    assert_eq!(w.stored(&l.launch_id).await.state, State::Running);
    assert_eq!(w.backend.creations().len(), 1);
}

#[tokio::test]
async fn a_relaunch_whose_save_loses_is_never_submitted() {
    let w = world();
    let l = w.launch().await;
    let first = l.current().run_name.clone();
    w.backend
        .set(&first, RunStatus::Finished(Outcome::SpotTermination));
    // Another writer wins the compare-and-set: the relaunch this step chose is dropped, unsubmitted.
    w.store.fail_puts.store(1, Ordering::SeqCst);
    w.launcher.step(&l.launch_id).await.unwrap();
    assert_eq!(w.backend.creations(), std::slice::from_ref(&first));
    assert_eq!(w.stored(&l.launch_id).await.attempts.len(), 1);
    // The next pass relaunches, saved first, then submitted once.
    w.launcher.step(&l.launch_id).await.unwrap();
    let after = w.stored(&l.launch_id).await;
    assert_eq!(after.attempts.len(), 2);
    assert!(after.current().submitted);
    assert_eq!(
        after.pool_id.as_str(),
        POOLS[1],
        "the next pool, the first excluded"
    );
    assert_eq!(
        w.backend.creations(),
        [first, after.current().run_name.clone()]
    );
}

#[tokio::test]
async fn a_cancel_during_submit_wins() {
    let w = world();
    w.backend.hold_submissions();
    let launcher = w.launcher.clone();
    let request = tokio::spawn(async move {
        launcher
            .launch(&alice(), &LaunchRequest::default(), None)
            .await
    });
    testkit::eventually(
        "the submission to start",
        Duration::from_secs(10),
        || async { (w.backend.submits_started() == 1).then_some(()) },
    )
    .await;
    let id = w.store.list(None, None, 1).await.unwrap()[0]
        .launch_id
        .clone();
    let cancelled = w.launcher.cancel(&alice(), &id).await.unwrap();
    assert_eq!(cancelled.state, State::Cancelled);
    assert!(
        cancelled.current().stop_pending,
        "its submitter still holds the claim: the stop is theirs"
    );
    assert_eq!(
        w.store.slots().await.unwrap(),
        0,
        "the slot is free at once"
    );

    w.backend.release();
    let launched = request.await.unwrap().unwrap();
    assert_eq!(launched.launch.state, State::Cancelled);
    let run = launched.launch.current().run_name.clone();
    assert!(
        w.backend.live().is_empty(),
        "the run created late was stopped"
    );
    let calls = w.backend.calls();
    let created = calls.iter().position(|c| *c == Call::Created(run.clone()));
    let stopped = calls.iter().rposition(|c| *c == Call::Cancel(run.clone()));
    assert!(created.is_some() && stopped > created, "{calls:?}");
    let stored = w.stored(&id).await;
    assert!(!stored.current().stop_pending && !stored.needs_work());
    assert!(
        !stored.current().submitted,
        "a cancelled attempt is never marked submitted"
    );
}

#[tokio::test]
async fn a_cancel_of_a_submitter_that_died_is_finished_by_the_reconciler() {
    let w = world();
    // A launch saved by a request that died before submitting (its claim still holds).
    let spec = LaunchRequest::default()
        .parse(|_| true, &w.launcher.defaults)
        .unwrap();
    let now = w.clock.utc();
    let mut l = Launch::new(
        "alice",
        spec,
        POOLS[0].parse().unwrap(),
        now,
        Claim::new(now, Duration::from_secs(30)),
    );
    w.store.create(&mut l, MAX_ACTIVE, None).await.unwrap();
    let cancelled = w.launcher.cancel(&alice(), &l.launch_id).await.unwrap();
    assert!(cancelled.current().stop_pending);
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    assert!(
        w.backend.calls().is_empty(),
        "nothing is stopped while the claim holds"
    );
    w.clock.advance(Duration::from_secs(31));
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        w.backend.calls(),
        [Call::Cancel(l.current().run_name.clone())]
    );
    assert!(!w.stored(&l.launch_id).await.needs_work());
    assert!(
        w.backend.creations().is_empty(),
        "a cancelled attempt is never submitted"
    );
}

#[tokio::test]
async fn a_restart_between_save_and_submit_is_resolved_from_the_backend() {
    let w = world_with(FakeBackend::new(RunStatus::Running).with_removal_horizon(DEADLINE));
    let spec = LaunchRequest::default()
        .parse(|_| true, &w.launcher.defaults)
        .unwrap();
    let saved = |w: &World| {
        let now = w.clock.utc();
        Launch::new(
            "alice",
            spec.clone(),
            POOLS[0].parse().unwrap(),
            now,
            Claim::new(now, Duration::from_secs(30)),
        )
    };

    // 1. Never created: once the claim expired, the reconciler submits it, once.
    let mut a = saved(&w);
    w.store.create(&mut a, MAX_ACTIVE, None).await.unwrap();
    w.launcher.step(&a.launch_id).await.unwrap();
    assert!(w.backend.creations().is_empty(), "its claim still holds");
    w.clock.advance(Duration::from_secs(31));
    w.launcher.step(&a.launch_id).await.unwrap();
    w.launcher.step(&a.launch_id).await.unwrap();
    assert_eq!(w.backend.creations(), [a.current().run_name.clone()]);
    assert!(w.stored(&a.launch_id).await.current().submitted);

    // 2. Created before the crash, never confirmed: adopted, not created again.
    let mut b = saved(&w);
    w.store.create(&mut b, MAX_ACTIVE, None).await.unwrap();
    w.backend.set(&b.current().run_name, RunStatus::Running);
    w.clock.advance(Duration::from_secs(31));
    w.launcher.step(&b.launch_id).await.unwrap();
    let b_now = w.stored(&b.launch_id).await;
    assert!(b_now.current().submitted);
    assert_eq!(b_now.state, State::Running);
    assert_eq!(w.backend.created(&b.current().run_name), 0);

    // 3. Never confirmed and old enough to have run and been removed by its TTL: never resubmitted.
    let mut c = saved(&w);
    w.store.create(&mut c, MAX_ACTIVE, None).await.unwrap();
    w.clock.advance(DEADLINE + Duration::from_secs(1));
    w.launcher.step(&c.launch_id).await.unwrap();
    let c_now = w.stored(&c.launch_id).await;
    assert_eq!(
        (c_now.state, c_now.current().reason.as_str()),
        (State::Failed, RUN_LOST)
    );
    assert_eq!(w.backend.created(&c.current().run_name), 0);

    // 4. Confirmed, then removed behind the launcher's back: RUN_LOST, not submitted again.
    w.backend.remove(&a.current().run_name);
    w.launcher.step(&a.launch_id).await.unwrap();
    let a_now = w.stored(&a.launch_id).await;
    assert_eq!(
        (a_now.state, a_now.current().reason.as_str()),
        (State::Failed, RUN_LOST)
    );
    assert_eq!(w.backend.created(&a.current().run_name), 1);
    assert_eq!(
        w.store.outbox_depth().await.unwrap(),
        0,
        "an unknown end is not published"
    );
}

#[tokio::test]
async fn an_attempt_past_its_deadline_is_stopped_and_frees_its_slot() {
    let w = world_with(FakeBackend::new(RunStatus::Pending));
    let l = w.launch().await;
    w.launcher.step(&l.launch_id).await.unwrap();
    assert_eq!(w.store.slots().await.unwrap(), 1);
    w.clock.advance(DEADLINE);
    w.launcher.step(&l.launch_id).await.unwrap();
    let after = w.stored(&l.launch_id).await;
    assert_eq!(after.state, State::Failed);
    assert_eq!(after.current().reason, TIMED_OUT);
    assert!(w.backend.live().is_empty(), "its run was stopped");
    assert_eq!(w.store.slots().await.unwrap(), 0);
    assert_eq!(
        w.store.outbox_depth().await.unwrap(),
        1,
        "TIMED_OUT is an outcome"
    );
    assert_eq!(w.metric("attempts_total", &[("outcome", "timed_out")]), 1.0);
    assert_eq!(
        w.metric(
            "attempt_duration_seconds_count",
            &[("outcome", "timed_out")]
        ),
        1.0
    );
}

#[tokio::test]
async fn outcomes_wait_in_the_outbox_and_never_hold_a_slot() {
    let w = world();
    for _ in 0..MAX_ACTIVE {
        w.launch().await;
    }
    let busy = w
        .launcher
        .launch(&alice(), &LaunchRequest::default(), None)
        .await;
    assert!(
        matches!(busy, Err(LaunchError::Busy { active: 3 })),
        "{busy:?}"
    );
    w.backend.set_all(RunStatus::Finished(Outcome::Succeeded));
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    // Finished, unpublished (no INTAKE_TOKEN): the slots are free all the same.
    assert_eq!(w.store.slots().await.unwrap(), 0);
    assert_eq!(w.store.outbox_depth().await.unwrap(), 3);
    assert_eq!(
        w.metric("publish_failures_total", &[("reason", "no_token")]),
        1.0
    );
    let fourth = w.launch().await;
    w.launcher
        .cancel(&alice(), &fourth.launch_id)
        .await
        .unwrap();

    // Retried with backoff: the failed entry waits 1 s, then 2 s.
    let tries = || async {
        let mut t: Vec<u32> = w
            .store
            .outbox_due(w.clock.utc() + chrono::Duration::days(1), 10)
            .await
            .unwrap()
            .iter()
            .map(|e| e.tries)
            .collect();
        t.sort();
        t
    };
    assert_eq!(tries().await, [0, 0, 1]);
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(
        tries().await,
        [0, 1, 1],
        "the next entry, not the one backing off"
    );
    w.clock.advance(Duration::from_secs(1));
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(tries().await, [1, 1, 2]);

    // Past the retention they are given up, counted.
    w.clock.advance(RETENTION);
    w.launcher
        .reconcile_once(Duration::from_secs(3))
        .await
        .unwrap();
    assert_eq!(w.store.outbox_depth().await.unwrap(), 0);
    assert_eq!(w.metric("outbox_dropped_total", &[]), 3.0);
}

#[tokio::test]
async fn parallel_launches_never_pass_the_bound() {
    let w = world();
    let all = futures::future::join_all((0..20).map(|_| {
        let launcher = w.launcher.clone();
        async move {
            launcher
                .launch(&alice(), &LaunchRequest::default(), None)
                .await
        }
    }))
    .await;
    let accepted = all.iter().filter(|r| r.is_ok()).count();
    let busy = all
        .iter()
        .filter(|r| matches!(r, Err(LaunchError::Busy { .. })))
        .count();
    assert_eq!((accepted, busy), (MAX_ACTIVE, 20 - MAX_ACTIVE));
    assert_eq!(w.backend.creations().len(), MAX_ACTIVE);
}

#[tokio::test]
async fn one_idempotency_key_makes_one_launch() {
    let w = world();
    let all = futures::future::join_all((0..10).map(|_| {
        let launcher = w.launcher.clone();
        async move {
            launcher
                .launch(&alice(), &LaunchRequest::default(), Some("key-1"))
                .await
                .unwrap()
        }
    }))
    .await;
    let ids: std::collections::BTreeSet<&str> =
        all.iter().map(|l| l.launch.launch_id.as_str()).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(all.iter().filter(|l| !l.replayed).count(), 1);
    assert_eq!(w.backend.creations().len(), 1);

    // The same key with another request: refused; another caller's key of that name is its own.
    let other: LaunchRequest =
        serde_json::from_value(serde_json::json!({"size": "large"})).unwrap();
    let e = w
        .launcher
        .launch(&alice(), &other, Some("key-1"))
        .await
        .unwrap_err();
    assert!(matches!(e, LaunchError::KeyReused(..)), "{e}");
    let bob = w
        .launcher
        .launch(
            &Caller::new("bob"),
            &LaunchRequest::default(),
            Some("key-1"),
        )
        .await
        .unwrap();
    assert!(!bob.replayed);
    assert_eq!(w.backend.creations().len(), 2);
}

#[tokio::test]
async fn a_pick_the_request_does_not_allow_is_refused_before_anything_runs() {
    let w = world();
    *w.picker.forced.lock().unwrap() = Some("pool-r6a.xlarge-us-east-1a".parse().unwrap());
    let e = w
        .launcher
        .launch(&alice(), &LaunchRequest::default(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, LaunchError::BadPick(_)), "{e}");
    assert!(w.backend.calls().is_empty());
    assert!(w.store.list(None, None, 10).await.unwrap().is_empty());

    // On a relaunch, a pick that was tried already ends the launch instead of running there again.
    *w.picker.forced.lock().unwrap() = None;
    let l = w.launch().await;
    *w.picker.forced.lock().unwrap() = Some(l.pool_id.clone());
    w.backend.set(
        &l.current().run_name,
        RunStatus::Finished(Outcome::SpotTermination),
    );
    w.launcher.step(&l.launch_id).await.unwrap();
    let after = w.stored(&l.launch_id).await;
    assert_eq!((after.state, after.attempts.len()), (State::Failed, 1));
    assert_eq!(w.backend.creations().len(), 1);
}

#[tokio::test]
async fn only_the_caller_or_admin_sees_and_cancels_a_launch() {
    let w = world();
    let l = w.launch().await;
    let bob = Caller::new("bob");
    let admin = Caller::new("admin");
    assert!(matches!(
        w.launcher.visible(&bob, &l.launch_id).await,
        Err(LaunchError::NotFound(_))
    ));
    assert!(matches!(
        w.launcher.cancel(&bob, &l.launch_id).await,
        Err(LaunchError::NotFound(_))
    ));
    assert!(w.launcher.list(&bob, None, 10).await.unwrap().is_empty());
    assert_eq!(w.launcher.list(&alice(), None, 10).await.unwrap().len(), 1);
    assert_eq!(w.launcher.list(&admin, None, 10).await.unwrap().len(), 1);
    let cancelled = w.launcher.cancel(&admin, &l.launch_id).await.unwrap();
    assert_eq!(cancelled.state, State::Cancelled);
    assert!(w.backend.live().is_empty());
    assert!(matches!(
        w.launcher.cancel(&alice(), &l.launch_id).await,
        Err(LaunchError::Finished(..))
    ));
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    assert_eq!(backoff(1), Duration::from_secs(1));
    assert_eq!(backoff(2), Duration::from_secs(2));
    assert_eq!(backoff(5), Duration::from_secs(16));
    assert_eq!(backoff(10), OUTBOX_BACKOFF_MAX);
    assert_eq!(backoff(u32::MAX), OUTBOX_BACKOFF_MAX);
}
