//! Nothing accepted is lost: the worker process killed with SIGKILL mid-batch and restarted, and
//! SIGTERM with an open batch. Nothing here waits for time to pass: batches are written when they are
//! full or when the worker stops, and every wait is for a condition (metrics, stored job ids, the
//! process's exit) under a deadline.
//!
//! The same guarantees seen from the ranking (events stored twice after a crash are counted once by
//! pool-selector, a broker restart mid-stream) are checked across services in `crates/e2e`.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use pool_amqp::Publisher;
use testkit::process::Sig;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_loses_nothing_and_counts_nothing_twice() {
    let amqp = test_amqp("kill9");
    let bucket = testkit::new_bucket("kill9").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();

    let mut publish_args = amqp.clone();
    publish_args.message_max_events = 100;
    let publisher = Publisher::connect(&publish_args, "test").await.unwrap();
    let sent = events("kill9", 10_000, 4);
    assert_eq!(publisher.publish_confirmed(&sent).await.unwrap(), 10_000);

    // Batches of 3,000 events and no age limit: three batches are written, the last 1,000 events wait in
    // an open batch that only a fourth batch or a stop would write.
    let knobs = [
        ("BATCH_MAX_EVENTS", "3000"),
        ("BATCH_MAX_AGE", "1h"),
        ("PREFETCH", "1000"),
    ];
    let mut first = WorkerProcess::spawn(&amqp, &storage_args, &knobs);
    first.wait_healthy().await;
    testkit::eventually(
        "10,000 consumed and 9,000 written",
        Duration::from_secs(90),
        || async {
            let consumed = first
                .metric("ingest_worker_events_consumed_total", &[])
                .await;
            let written = first
                .metric("ingest_worker_events_written_total", &[])
                .await;
            (consumed == 10_000.0 && written == 9_000.0).then_some(())
        },
    )
    .await;
    first.signal(Sig::SIGKILL);
    let status = first.process.wait_exit(Duration::from_secs(30)).await;
    assert_eq!(
        status.signal(),
        Some(Sig::SIGKILL as i32),
        "killed: {status}"
    );
    let after_crash = stored_job_ids(&storage).await;
    assert_eq!(after_crash.len(), 9_000, "the open batch was never written");

    // The broker gives the unacknowledged events to the next worker: the open batch's 1,000, plus a
    // whole written batch of 3,000 should its acknowledgement have died with the process. Batches of
    // 1,000 events and no age limit write all of them, without waiting for a clock.
    let second = WorkerProcess::spawn(
        &amqp,
        &storage_args,
        &[("BATCH_MAX_EVENTS", "1000"), ("BATCH_MAX_AGE", "1h")],
    );
    second.wait_healthy().await;
    let ids = wait_stored(&storage, 10_000, Duration::from_secs(90)).await;
    assert_eq!(ids, job_ids(&sent), "every published job id is stored");
    wait_drained(&amqp, &amqp.queue).await;

    // Stored copies are the published events, unaltered, whatever was stored twice; counting each event
    // once (as pool-selector does, the whole event being the key) gives exactly what was published,
    // pool by pool.
    let stored = stored(&storage).await;
    let by_id: std::collections::HashMap<&str, &pool_core::event::Event> =
        sent.iter().map(|e| (e.job_id.as_str(), e)).collect();
    for (key, event) in &stored {
        assert_eq!(
            Some(&event),
            by_id.get(event.job_id.as_str()),
            "{key} holds an event that was not published"
        );
    }
    let counted = jobs_per_pool(stored.iter().map(|(_, e)| e));
    assert_eq!(counted, jobs_per_pool(&sent));
    assert_eq!(counted.values().sum::<u64>(), 10_000);
    publisher.close().await;
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_writes_the_open_batch_and_exits_zero() {
    let amqp = test_amqp("sigterm");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let mut worker = WorkerProcess::spawn(
        &amqp,
        &storage_args,
        &[("BATCH_MAX_AGE", "1h"), ("SHUTDOWN_GRACE", "60s")],
    );
    worker.wait_healthy().await;
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    publisher
        .publish_confirmed(&events("sigterm", 1_234, 3))
        .await
        .unwrap();
    testkit::eventually("1,234 consumed", Duration::from_secs(60), || async {
        (worker
            .metric("ingest_worker_events_consumed_total", &[])
            .await
            == 1_234.0)
            .then_some(())
    })
    .await;
    assert!(stored_job_ids(&storage).await.is_empty());
    worker.signal(Sig::SIGTERM);
    let status = worker.process.wait_exit(Duration::from_secs(90)).await;
    assert_eq!(status.code(), Some(0), "a clean exit: {status}");
    assert_eq!(stored_job_ids(&storage).await.len(), 1_234);
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        0,
        "all acknowledged"
    );
    publisher.close().await;
    delete_topology(&amqp).await;
}
