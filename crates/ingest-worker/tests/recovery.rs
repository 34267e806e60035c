//! Nothing accepted is lost, nothing is counted twice: the worker process killed with SIGKILL mid-batch
//! and restarted, the broker restarted mid-stream, SIGTERM. Each check ends at the ranking: the job
//! totals of pool-selector's `GET /pools` over what the worker stored equal what was published.

mod support;

use std::sync::Arc;
use std::time::Duration;

use pool_amqp::Publisher;
use support::*;

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
        Duration::from_secs(60),
        || async {
            let consumed = metric(&first.base, "ingest_worker_events_consumed_total").await;
            let written = metric(&first.base, "ingest_worker_events_written_total").await;
            (consumed == 10_000.0 && written == 9_000.0).then_some(())
        },
    )
    .await;
    first.signal("KILL");
    assert_eq!(
        first.wait_exit(Duration::from_secs(10)).await,
        None,
        "killed by a signal"
    );
    let after_crash = stored_job_ids(&storage).await;
    assert_eq!(after_crash.len(), 9_000, "the open batch was never written");

    // The broker gives the unacknowledged 1,000 events to the next worker.
    let second = WorkerProcess::spawn(&amqp, &storage_args, &[("BATCH_MAX_AGE", "300ms")]);
    second.wait_healthy().await;
    let ids = wait_stored(&storage, 10_000, Duration::from_secs(60)).await;
    let expected: std::collections::HashSet<String> =
        sent.iter().map(|e| e.job_id.as_str().to_owned()).collect();
    assert_eq!(ids, expected, "every published job id is stored");
    testkit::eventually(
        "the queue to be drained",
        Duration::from_secs(20),
        || async { (ready_messages(&amqp, &amqp.queue).await == 0).then_some(()) },
    )
    .await;

    let selector = Selector::spawn(storage_args).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(ranked, jobs_per_pool(&sent));
    assert_eq!(ranked.values().sum::<u64>(), 10_000);
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_stored_twice_are_counted_once() {
    // What a crash between the write and the acknowledgement leaves behind: the same events in two
    // objects. Publishing the same events twice makes the worker store them twice for sure.
    let amqp = test_amqp("dups");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let worker = InProcessWorker::spawn(worker_settings(amqp.clone(), storage_args.clone())).await;
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    let sent = events("dups", 1_500, 2);
    publisher.publish_confirmed(&sent).await.unwrap();
    wait_stored(&storage, 1_500, Duration::from_secs(30)).await;
    publisher.publish_confirmed(&sent[..600]).await.unwrap();
    testkit::eventually("2,100 lines stored", Duration::from_secs(30), || async {
        (stored(&storage).await.len() == 2_100).then_some(())
    })
    .await;

    let selector = Selector::spawn(storage_args).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(
        ranked.values().sum::<u64>(),
        1_500,
        "each job_id counted once"
    );
    assert_eq!(ranked, jobs_per_pool(&sent));
    worker.stop().await.unwrap();
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
        &[("BATCH_MAX_AGE", "1h"), ("SHUTDOWN_GRACE", "20s")],
    );
    worker.wait_healthy().await;
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    publisher
        .publish_confirmed(&events("sigterm", 1_234, 3))
        .await
        .unwrap();
    testkit::eventually("1,234 consumed", Duration::from_secs(30), || async {
        (metric(&worker.base, "ingest_worker_events_consumed_total").await == 1_234.0).then_some(())
    })
    .await;
    assert!(stored_job_ids(&storage).await.is_empty());
    worker.signal("TERM");
    assert_eq!(worker.wait_exit(Duration::from_secs(20)).await, Some(0));
    assert_eq!(stored_job_ids(&storage).await.len(), 1_234);
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        0,
        "all acknowledged"
    );
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let mut broker = PrivateBroker::start().await;
    let amqp = amqp_on(&broker.url(), "restart");
    let bucket = testkit::new_bucket("restart").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();
    let worker = InProcessWorker::spawn(worker_settings(amqp.clone(), storage_args.clone())).await;

    // A producer that keeps publishing through the restart: 40 chunks of 250 events.
    let sent = events("restart", 10_000, 3);
    let publisher = Arc::new(Publisher::connect(&amqp, "test").await.unwrap());
    let (progress, mut confirmed) = tokio::sync::watch::channel(0usize);
    let producer = {
        let publisher = publisher.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            for (i, chunk) in sent.chunks(250).enumerate() {
                publisher
                    .publish_reliably(chunk, Some(Duration::from_secs(120)))
                    .await
                    .expect("published once the broker is back");
                let _ = progress.send(i + 1);
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        })
    };
    confirmed
        .wait_for(|n| *n >= 10)
        .await
        .expect("the producer is running");
    broker.restart().await;
    producer.await.expect("the producer finished");
    assert!(
        *confirmed.borrow() == 40,
        "all 40 chunks confirmed, got {}",
        *confirmed.borrow()
    );
    assert!(
        publisher.connections_opened() >= 2,
        "the producer reconnected"
    );

    let ids = wait_stored(&storage, 10_000, Duration::from_secs(90)).await;
    assert_eq!(ids.len(), 10_000);
    testkit::eventually(
        "the worker reconnected",
        Duration::from_secs(10),
        || async { (worker.metric("ingest_worker_reconnects_total").await >= 1.0).then_some(()) },
    )
    .await;

    let selector = Selector::spawn(storage_args).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(ranked, jobs_per_pool(&sent));
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}
