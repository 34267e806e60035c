//! Exactly one run per launch, raced over HTTP against real Redis: parallel launches across two
//! replicas against the bound, retries with one `Idempotency-Key`, a cancel during a submission, a
//! replica that dies between saving a launch and submitting its run, two replicas sharing the work,
//! and an intake that refuses the launcher's token. Runs are a [`FakeBackend`] shared by the replicas
//! (one "cluster"), which records every call.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use launcher::backend::RunStatus;
use launcher::backend::fake::{Call, FakeBackend};
use launcher::startup::Overrides;
use pool_core::clock::ManualClock;
use pool_core::event::Outcome;
use serde_json::{Value, json};
use testkit::TestApp;

use crate::helpers::*;

fn with(backend: &Arc<FakeBackend>) -> Overrides {
    Overrides {
        backend: Some(backend.clone()),
        ..Overrides::default()
    }
}

/// Two launchers on one Redis prefix and one cluster.
async fn replicas(
    world: &World,
    cluster: &Arc<FakeBackend>,
    max_active: usize,
) -> (TestApp, TestApp) {
    let mut s = world.settings(&repo_templates());
    s.max_active_launches = max_active;
    let a = spawn_launcher_with(s.clone(), with(cluster)).await;
    let b = spawn_launcher_with(s, with(cluster)).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_launches_across_replicas_never_pass_the_bound() {
    let world = World::start().await;
    // Runs that stay running: every accepted launch holds its slot.
    let cluster = Arc::new(FakeBackend::new(RunStatus::Running));
    let (a, b) = replicas(&world, &cluster, 3).await;
    let empty = json!({});
    let answers = futures::future::join_all(
        (0..20).map(|i| post_launch(if i % 2 == 0 { &a } else { &b }, &empty)),
    )
    .await;
    let accepted = answers.iter().filter(|(s, _)| *s == 202).count();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 429)
        .map(|(_, v)| v)
        .collect();
    assert_eq!((accepted, refused.len()), (3, 17), "{answers:?}");
    assert!(refused.iter().all(|v| v["error"] == "too_many_launches"));
    assert_eq!(cluster.creations().len(), 3, "one run per accepted launch");

    // A run that ends frees its slot.
    cluster.set_all(RunStatus::Finished(Outcome::Succeeded));
    testkit::eventually(
        "a slot to be free again",
        Duration::from_secs(30),
        || async { (post_launch(&b, &json!({})).await.0 == 202).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_with_one_key_make_one_launch() {
    let world = World::start().await;
    let cluster = Arc::new(FakeBackend::new(RunStatus::Running));
    let (a, b) = replicas(&world, &cluster, 100).await;
    let post = |app: &TestApp, key: &str, body: Value| {
        let req = app
            .client
            .post(app.url("/launch"))
            .header("Idempotency-Key", key)
            .json(&body);
        async move {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let replayed = res.headers().get("idempotent-replayed").is_some();
            (status, replayed, res.json::<Value>().await.unwrap())
        }
    };
    let body = json!({"instance_types": ["c6a.xlarge"]});
    let answers = futures::future::join_all(
        (0..10).map(|i| post(if i % 2 == 0 { &a } else { &b }, "retry-1", body.clone())),
    )
    .await;
    let ids: BTreeSet<&str> = answers
        .iter()
        .map(|(_, _, v)| v["launch_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(s, r, _)| *s == 202 && !r).count(),
        1,
        "one new launch: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|(s, r, _)| *s == 202 || (*s == 200 && *r)),
        "{answers:?}"
    );
    assert_eq!(cluster.creations().len(), 1, "one run");

    // The same key with another request: refused, nothing launched.
    let (status, _, answer) = post(&a, "retry-1", json!({"instance_types": ["m6a.xlarge"]})).await;
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"], "idempotency_key_reused");
    assert_eq!(answer["field"], "Idempotency-Key");
    // Another caller's key of the same name is theirs.
    let bob = client_for(OTHER_TOKEN);
    let res = bob
        .post(a.url("/launch"))
        .header("Idempotency-Key", "retry-1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(cluster.creations().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_submit_wins() {
    let world = World::start().await;
    let cluster = Arc::new(FakeBackend::new(RunStatus::Running));
    let app = spawn_launcher_with(world.settings(&repo_templates()), with(&cluster)).await;
    cluster.hold_submissions();
    let request = app.client.post(app.url("/launch")).send();
    let pending = tokio::spawn(async move {
        let res = request.await.unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    });
    testkit::eventually(
        "the submission to start",
        Duration::from_secs(30),
        || async { (cluster.submits_started() == 1).then_some(()) },
    )
    .await;
    // Saved before its run is submitted: listed already, and cancelled while the submission waits.
    let (_, list) = app.get("/launches").await;
    let id = list["launches"][0]["launch_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, cancelled) = cancel(&app, &id).await;
    assert_eq!(status, 202, "{cancelled}");
    assert_eq!(cancelled["state"], "CANCELLED");

    cluster.release();
    let (status, answer) = pending.await.unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["state"], "CANCELLED", "{answer}");
    let run = answer["attempts"][0]["run_name"]
        .as_str()
        .unwrap()
        .to_owned();
    testkit::eventually(
        "the late run to be stopped",
        Duration::from_secs(30),
        || async { cluster.live().is_empty().then_some(()) },
    )
    .await;
    let calls = cluster.calls();
    let created = calls.iter().position(|c| *c == Call::Created(run.clone()));
    let stopped = calls.iter().rposition(|c| *c == Call::Cancel(run.clone()));
    assert!(created.is_some() && stopped > created, "{calls:?}");
    let (_, after) = app.get(&format!("/launches/{id}")).await;
    assert_eq!(after["attempts"][0]["stop_pending"], false, "{after}");
    assert!(
        world.outcomes().await.is_empty(),
        "a cancelled launch publishes nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_dies_between_save_and_submit_leaves_exactly_one_run() {
    let world = World::start().await;
    let clock = Arc::new(ManualClock::starting_now());
    let cluster = Arc::new(FakeBackend::new(RunStatus::Running));
    // The dying replica's submission never completes: it is stopped in the middle of it.
    let stuck = Arc::new(FakeBackend::new(RunStatus::Running));
    stuck.hold_submissions();
    let s = world.settings(&repo_templates());
    let survivor = spawn_launcher_with(
        s.clone(),
        Overrides {
            backend: Some(cluster.clone()),
            clock: Some(clock.clone()),
            no_reconciler: false,
        },
    )
    .await;
    let mut dying = spawn_launcher_with(
        s,
        Overrides {
            backend: Some(stuck.clone()),
            clock: Some(clock.clone()),
            no_reconciler: true,
        },
    )
    .await;
    let request = tokio::spawn(dying.client.post(dying.url("/launch")).send());
    testkit::eventually(
        "the submission to start",
        Duration::from_secs(30),
        || async { (stuck.submits_started() == 1).then_some(()) },
    )
    .await;
    request.abort();
    dying.stop();

    let (_, list) = survivor.get("/launches").await;
    let launch = &list["launches"][0];
    let id = launch["launch_id"].as_str().unwrap().to_owned();
    let run = launch["attempts"][0]["run_name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(launch["attempts"][0]["submitted"], false, "{launch}");
    assert!(launch["attempts"][0]["claim"].is_object(), "{launch}");
    // The dead replica's claim still holds: nobody else submits.
    assert!(cluster.creations().is_empty());
    clock.advance(launcher::startup::CLAIM_TTL + Duration::from_secs(1));
    let after = testkit::eventually(
        "the survivor to take the attempt over",
        Duration::from_secs(30),
        || async {
            let (_, l) = survivor.get(&format!("/launches/{id}")).await;
            (l["attempts"][0]["submitted"] == true && l["state"] == "RUNNING").then_some(l)
        },
    )
    .await;
    assert_eq!(after["attempts"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(cluster.creations(), [run], "exactly one run");
    assert!(stuck.creations().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_the_work_and_publish_each_outcome_once() {
    let world = World::start().await;
    // Runs that end as soon as they are created.
    let cluster = Arc::new(FakeBackend::new(RunStatus::Finished(Outcome::Succeeded)));
    let (a, b) = replicas(&world, &cluster, 100).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let (status, l) = post_launch(if i % 2 == 0 { &a } else { &b }, &json!({})).await;
        assert_eq!(status, 202, "{l}");
        ids.push(l["launch_id"].as_str().unwrap().to_owned());
    }
    let mut jobs = BTreeSet::new();
    for id in &ids {
        let done = wait_finished(&a, id, Duration::from_secs(60)).await;
        assert_eq!(done["state"], "COMPLETED", "{done}");
        jobs.insert(done["attempts"][0]["job_id"].as_str().unwrap().to_owned());
    }
    let events = wait_outcomes(&world, 6).await;
    let published: BTreeSet<String> = events
        .iter()
        .map(|e| e.job_id.as_str().to_owned())
        .collect();
    assert_eq!(events.len(), 6, "each outcome once: {events:?}");
    assert_eq!(published, jobs);
    let created = cluster.creations();
    assert_eq!(created.len(), 6);
    assert_eq!(created.iter().collect::<BTreeSet<_>>().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intake_that_refuses_the_token_never_locks_the_launcher() {
    let world = World::start().await;
    let mut s = world.settings(&repo_templates());
    s.intake_token = Some("rotated-away".into());
    s.max_active_launches = 2;
    s.local.simulate_truth = Some(world.truth(&[(POOL_A, 0.0)]));
    s.local.simulate_only = true;
    let app = spawn_launcher(s).await;
    // Three rounds of two launches at a bound of two: each round's slots free up when its runs end,
    // though none of their outcomes can be published.
    for _ in 0..3 {
        let mut ids = Vec::new();
        for _ in 0..2 {
            let (status, l) = post_launch(&app, &json!({})).await;
            assert_eq!(status, 202, "{l}");
            ids.push(l["launch_id"].as_str().unwrap().to_owned());
        }
        for id in &ids {
            let l = wait_ended(&app, id, Duration::from_secs(60)).await;
            assert_eq!(l["state"], "COMPLETED", "{l}");
            assert_eq!(l["attempts"][0]["outcome_published"], false);
        }
    }
    testkit::eventually("the outbox to show", Duration::from_secs(30), || async {
        let depth = app.metric("launcher_outbox_depth", &[]).await;
        let refused = app
            .metric(
                "launcher_publish_failures_total",
                &[("reason", "unauthorized")],
            )
            .await;
        (depth >= 1.0 && refused >= 1.0).then_some(())
    })
    .await;
    assert!(world.outcomes().await.is_empty());
}
