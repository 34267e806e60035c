//! `events send`: NDJSON or JSON from a file or stdin to a real intake, published to RabbitMQ.

use std::collections::HashSet;

use chrono::Duration as Age;
use testkit::events::job_ids;
use testkit::{ndjson, pool_events};

use crate::helpers::{TOKEN, poolctl, run, spawn_intake};

#[tokio::test]
async fn events_from_a_file_and_from_stdin_are_accepted_and_published() {
    let (intake, amqp) = spawn_intake().await;
    let from_file = pool_events("pool-c6a.xlarge-us-east-1a", 5, 1, Age::minutes(5));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, ndjson(&from_file)).unwrap();

    let mut cmd = poolctl();
    cmd.env("INTAKE_URL", &intake.base)
        .env("INTAKE_TOKEN", TOKEN)
        .args(["events", "send"])
        .arg(&file);
    let out = run(cmd).await.expect(0);
    assert_eq!(
        out.stdout(),
        format!("5 events accepted by the intake at {}\n", intake.base)
    );

    // A JSON array on stdin, JSON output.
    let from_stdin = pool_events("pool-m6a.xlarge-us-east-1b", 3, 0, Age::minutes(5));
    let array = format!("[{}]", ndjson(&from_stdin).trim_end().replace('\n', ","));
    let mut cmd = poolctl();
    cmd.env("INTAKE_URL", &intake.base)
        .args(["--intake-token", TOKEN, "-o", "json", "events", "send", "-"])
        .write_stdin(array);
    assert_eq!(run(cmd).await.expect(0).json()["accepted"], 3);

    testkit::eventually(
        "the 8 events to be in the queue",
        std::time::Duration::from_secs(60),
        || async {
            let n = testkit::queues::ready_messages(&amqp, &amqp.queue).await;
            (n >= 2).then_some(())
        },
    )
    .await;
    let got: HashSet<String> = job_ids(&testkit::queues::drain_events(&amqp).await);
    let sent: HashSet<String> = job_ids(&from_file)
        .into_iter()
        .chain(job_ids(&from_stdin))
        .collect();
    assert_eq!(got, sent);
    testkit::queues::delete_topology(&amqp).await;
}

#[tokio::test]
async fn a_bad_event_is_refused_here_with_its_line_and_nothing_is_sent() {
    let (intake, amqp) = spawn_intake().await;
    let good = ndjson(&pool_events(
        "pool-c6a.xlarge-us-east-1a",
        2,
        0,
        Age::minutes(5),
    ));
    let body = format!(
        "{good}{{\"finished_at\":\"2026-01-01T00:00:00\",\"job_id\":\"x\",\"pool_id\":\"nope\",\"status\":\"SUCCEEDED\",\"reason\":\"\"}}\n"
    );
    let mut cmd = poolctl();
    cmd.env("INTAKE_URL", &intake.base)
        .env("INTAKE_TOKEN", TOKEN)
        .args(["events", "send", "-"])
        .write_stdin(body);
    let out = run(cmd).await.expect(2);
    assert!(out.stderr().contains("line 3"), "{}", out.stderr());
    assert!(
        out.stderr().contains("nothing was sent"),
        "{}",
        out.stderr()
    );
    assert_eq!(
        intake.metric("intake_events_accepted_total", &[]).await,
        0.0
    );
    assert_eq!(
        intake
            .metric("intake_http_requests_total", &[("route", "/events")])
            .await,
        0.0
    );
    testkit::queues::delete_topology(&amqp).await;
}

#[tokio::test]
async fn a_wrong_token_exits_3_and_names_the_setting() {
    let (intake, amqp) = spawn_intake().await;
    let mut cmd = poolctl();
    cmd.env("INTAKE_URL", &intake.base)
        .env("INTAKE_TOKEN", "not-the-token")
        .args(["events", "send", "-"])
        .write_stdin(ndjson(&pool_events(
            "pool-c6a.xlarge-us-east-1a",
            1,
            0,
            Age::minutes(5),
        )));
    let out = run(cmd).await.expect(3);
    assert!(
        out.stderr().contains("refused the token"),
        "{}",
        out.stderr()
    );
    assert!(out.stderr().contains("INTAKE_TOKEN"), "{}", out.stderr());
    testkit::queues::delete_topology(&amqp).await;
}
