//! Seed 003's `SIMULATE_WORKLOAD_DURATION_IN_SEC`: every message is held, unacknowledged, for its
//! simulated work before it is stored and acknowledged. Nothing here measures time: the tests watch the
//! broker's own counts (management API) and the worker's metrics, under deadlines.

use std::time::Duration;

use pool_amqp::Publisher;
use pool_storage::StorageArgs;
use testkit::process::Sig;

use crate::helpers::*;

/// `(messages_ready, messages_unacknowledged)` of `queue`, from the management API (it refreshes them
/// every second on the test broker).
async fn queue_counts(queue: &str) -> Option<(u64, u64)> {
    let mut url = reqwest::Url::parse(&testkit::servers::rabbitmq_management_url())
        .expect("a management URL");
    let user = url.username().to_owned();
    let password = url.password().map(str::to_owned);
    url.set_username("").unwrap();
    url.set_password(None).unwrap();
    url.set_path(&format!("/api/queues/%2F/{queue}"));
    let q: serde_json::Value = reqwest::Client::new()
        .get(url)
        .basic_auth(user, password)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    Some((
        q["messages_ready"].as_u64()?,
        q["messages_unacknowledged"].as_u64()?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_workload_holds_each_message_unacknowledged_until_its_work_is_done() {
    let amqp = test_amqp("simulate");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();

    // Three messages of ten events each.
    let mut publish_args = amqp.clone();
    publish_args.message_max_events = 10;
    let publisher = Publisher::connect(&publish_args, "test").await.unwrap();
    let sent = events("simulate", 30, 2);
    assert_eq!(publisher.publish_confirmed(&sent).await.unwrap(), 30);

    // Work that does not end within the test (an hour a message) and a prefetch of two: the worker
    // holds two messages, unacknowledged, and the third waits in the queue.
    let mut busy = WorkerProcess::spawn(
        &amqp,
        &storage_args,
        &[
            ("SIMULATE_WORKLOAD_DURATION_IN_SEC", "3600"),
            ("PREFETCH", "2"),
            ("SHUTDOWN_GRACE", "60s"),
        ],
    );
    busy.wait_healthy().await;
    testkit::eventually(
        "the broker to count 1 ready and 2 unacknowledged while the worker simulates work",
        Duration::from_secs(60),
        || async {
            let counts = queue_counts(&amqp.queue).await?;
            let simulating = busy.metric("ingest_worker_simulating", &[]).await;
            (counts == (1, 2) && simulating == 1.0).then_some(())
        },
    )
    .await;
    assert_eq!(
        busy.metric("ingest_worker_events_written_total", &[]).await,
        0.0
    );
    assert!(
        stored_job_ids(&storage).await.is_empty(),
        "nothing stored mid-work"
    );

    // SIGTERM interrupts the work: the worker exits cleanly and acknowledges nothing, so the broker
    // has all three messages to give again.
    busy.signal(Sig::SIGTERM);
    let status = busy.process.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(status.code(), Some(0), "a clean exit: {status}");
    testkit::eventually(
        "the held messages back in the queue",
        Duration::from_secs(60),
        || async { (ready_messages(&amqp, &amqp.queue).await == 3).then_some(()) },
    )
    .await;
    assert!(stored_job_ids(&storage).await.is_empty());

    // Short work (the seed's seconds, fractional): each message is worked on, stored and acknowledged
    // on its own; the metric counts the simulated seconds, 0.2 per message.
    let quick = WorkerProcess::spawn(
        &amqp,
        &storage_args,
        &[
            ("SIMULATE_WORKLOAD_DURATION_IN_SEC", "0.2"),
            ("PREFETCH", "2"),
        ],
    );
    quick.wait_healthy().await;
    let ids = wait_stored(&storage, 30, Duration::from_secs(60)).await;
    assert_eq!(ids, job_ids(&sent));
    wait_drained(&amqp, &amqp.queue).await;
    testkit::eventually(
        "three messages worked on and acknowledged one by one",
        Duration::from_secs(30),
        || async {
            let batches = quick.metric("ingest_worker_batches_total", &[]).await;
            let work = quick
                .metric("ingest_worker_simulated_work_seconds_total", &[])
                .await;
            let counts = queue_counts(&amqp.queue).await?;
            (batches == 3.0 && (work - 0.6).abs() < 1e-9 && counts == (0, 0)).then_some(())
        },
    )
    .await;
    publisher.close().await;
    delete_topology(&amqp).await;
}
