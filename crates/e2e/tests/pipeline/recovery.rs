//! Nothing accepted is lost, nothing is counted twice, seen from the ranking: events stored twice (what
//! a crash between a write and its acknowledgement leaves behind) and a broker restart mid-stream.
//! The worker's own recovery (SIGKILL mid-batch, SIGTERM) is tested in ingest-worker's tests.

use std::sync::Arc;
use std::time::Duration;

use pool_amqp::Publisher;
use testkit::broker::PrivateBroker;
use tokio::sync::{oneshot, watch};

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redelivered_events_stored_twice_are_counted_once() {
    // What a crash between the write and the acknowledgement leaves behind: the same events in two
    // objects. Publishing the same events twice makes the worker store them twice for sure.
    let amqp = test_amqp("dups");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let worker = spawn_worker(amqp.clone(), storage_args.clone()).await;
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    let sent = events("dups", 1_500, 2);
    publisher.publish_confirmed(&sent).await.unwrap();
    wait_stored(&storage, 1_500, Duration::from_secs(60)).await;
    publisher.publish_confirmed(&sent[..600]).await.unwrap();
    wait_stored_lines(&storage, 2_100, Duration::from_secs(60)).await;

    let selector = spawn_selector(storage_args).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(
        ranked.values().sum::<u64>(),
        1_500,
        "each event counted once (redelivered copies dropped)"
    );
    assert_eq!(ranked, jobs_per_pool(&sent));
    worker.stop().await.unwrap();
    publisher.close().await;
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    let mut broker = PrivateBroker::start().await;
    let amqp = amqp_on(&broker.url(), "restart");
    let bucket = testkit::new_bucket("restart").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();
    let worker = spawn_worker(amqp.clone(), storage_args.clone()).await;
    testkit::eventually("the worker consuming", Duration::from_secs(60), || async {
        (worker.metric("ingest_worker_consuming", &[]).await == 1.0).then_some(())
    })
    .await;

    // A producer of 40 chunks of 250 events: the first 10 while the broker is up, the other 30 from
    // the moment it is stopped, so they are published through the restart (each retried until the
    // broker confirms it).
    let sent = events("restart", 10_000, 3);
    let publisher = Arc::new(Publisher::connect(&amqp, "test").await.unwrap());
    let (progress, mut confirmed) = watch::channel(0usize);
    let (go_on, broker_stopped) = oneshot::channel::<()>();
    let producer = {
        let publisher = publisher.clone();
        let sent = sent.clone();
        tokio::spawn(async move {
            let mut broker_stopped = Some(broker_stopped);
            for (i, chunk) in sent.chunks(250).enumerate() {
                if i == 10 {
                    let stopped = broker_stopped.take().expect("one pause");
                    stopped.await.expect("the test stops the broker");
                }
                publisher
                    .publish_reliably(chunk, Some(Duration::from_secs(300)))
                    .await
                    .expect("published once the broker is back");
                let _ = progress.send(i + 1);
            }
        })
    };
    confirmed
        .wait_for(|n| *n >= 10)
        .await
        .expect("the producer is running");
    broker.stop().await;
    go_on.send(()).expect("the producer waits for the stop");
    broker.restart().await;
    producer.await.expect("the producer finished");
    assert_eq!(*confirmed.borrow(), 40, "all 40 chunks confirmed");
    assert!(
        publisher.connections_opened() >= 2,
        "the producer reconnected"
    );

    let ids = wait_stored(&storage, 10_000, Duration::from_secs(180)).await;
    assert_eq!(ids.len(), 10_000);
    testkit::eventually(
        "the worker reconnected",
        Duration::from_secs(60),
        || async {
            (worker.metric("ingest_worker_reconnects_total", &[]).await >= 1.0).then_some(())
        },
    )
    .await;

    let selector = spawn_selector(storage_args).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(ranked, jobs_per_pool(&sent));
    worker.stop().await.unwrap();
    publisher.close().await;
    delete_topology(&amqp).await;
}
