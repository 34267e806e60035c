//! The worker against the real test broker (`TEST_AMQP_URL`) and the S3 test server
//! (`TEST_S3_ENDPOINT`) or a local folder: batching and partitioning, dead letters, graceful stop.

use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::BasicPublishOptions;
use lapin::types::AMQPValue;
use pool_amqp::{Publisher, REJECTION_REASON_HEADER};
use pool_storage::StorageArgs;
use testkit::process::free_port;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_partitioned_by_hour_and_stored_in_s3() {
    let amqp = test_amqp("s3");
    let bucket = testkit::new_bucket("ingest").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();

    let mut publish_args = amqp.clone();
    publish_args.message_max_events = 100;
    let publisher = Publisher::connect(&publish_args, "test").await.unwrap();
    let sent = events("s3", 2500, 3);
    assert_eq!(publisher.publish_confirmed(&sent).await.unwrap(), 2500);

    let worker = spawn_app(worker_settings(amqp.clone(), storage_args)).await;
    let ids = wait_stored(&storage, 2500, Duration::from_secs(60)).await;
    assert_eq!(ids.len(), 2500);

    let stored = stored(&storage).await;
    assert_eq!(stored.len(), 2500, "no event stored twice without a crash");
    for (key, event) in &stored {
        let expected = format!("events/{}/", event.partition().path());
        assert!(
            key.starts_with(&expected) && key.ends_with(".json"),
            "{key} should be under {expected}"
        );
    }
    let objects: std::collections::HashSet<_> = stored.iter().map(|(k, _)| k.clone()).collect();
    assert!(
        objects.len() >= 3,
        "three hours make at least three objects, got {objects:?}"
    );

    wait_drained(&amqp, &amqp.queue).await;
    testkit::eventually("the metrics to add up", Duration::from_secs(10), || async {
        (worker
            .metric("ingest_worker_events_written_total", &[])
            .await
            == 2500.0)
            .then_some(())
    })
    .await;
    assert_eq!(
        worker
            .metric("ingest_worker_messages_consumed_total", &[])
            .await,
        25.0
    );
    assert_eq!(
        worker
            .metric("ingest_worker_objects_written_total", &[])
            .await,
        objects.len() as f64
    );
    assert_eq!(worker.metric("ingest_worker_consuming", &[]).await, 1.0);
    assert!(
        worker
            .metric("ingest_worker_batch_latency_seconds_count", &[])
            .await
            >= 1.0
    );
    let health = reqwest::get(worker.app.url("/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let missing = reqwest::get(worker.app.url("/nope")).await.unwrap();
    assert_eq!(missing.status(), 404);
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_folders_get_the_same_layout() {
    let amqp = test_amqp("local");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().join("events").to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let worker = spawn_app(worker_settings(amqp.clone(), storage_args)).await;

    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    publisher
        .publish_confirmed(&events("local", 300, 2))
        .await
        .unwrap();
    wait_stored(&storage, 300, Duration::from_secs(30)).await;
    let hours: Vec<_> = std::fs::read_dir(dir.path().join("events/dt=2026-11-22"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(hours.len(), 2, "{hours:?}");
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dead_letter_queue_with_the_reason() {
    let amqp = test_amqp("poison");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    // Declares the topology.
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();

    // Raw messages, as a foreign producer might send them.
    let conn = pool_amqp::connect(&amqp, "test-raw").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    let good = events("poison", 3, 1);
    let bad_pool = good[1]
        .to_json()
        .replace(good[1].pool_id.as_str(), "not-a-pool");
    let bodies: Vec<(String, Vec<u8>)> = vec![
        ("not json".into(), b"this is not JSON".to_vec()),
        (
            "bad pool".into(),
            format!("{}\n{bad_pool}\n", good[0].to_json()).into_bytes(),
        ),
        (
            "good array".into(),
            format!("[{}]", good[2].to_json()).into_bytes(),
        ),
        ("empty".into(), Vec::new()),
    ];
    for (name, body) in &bodies {
        channel
            .basic_publish(
                amqp.exchange.as_str().into(),
                "".into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_message_id(name.as_str().into()),
            )
            .await
            .unwrap();
    }
    let worker = spawn_app(worker_settings(amqp.clone(), storage_args)).await;

    let dead = testkit::eventually("3 dead letters", Duration::from_secs(30), || async {
        let n = ready_messages(&amqp, &amqp.dead_letter_queue).await;
        (n >= 3).then_some(n)
    })
    .await;
    assert_eq!(dead, 3);
    let ids = wait_stored(&storage, 1, Duration::from_secs(10)).await;
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        vec![good[2].job_id.as_str().to_owned()],
        "only the valid message is stored: a message is stored or rejected whole"
    );

    let letters = drain(&amqp, &amqp.dead_letter_queue).await;
    assert_eq!(letters.len(), 3);
    let reason = |h: &lapin::types::FieldTable| match h.inner().get(REJECTION_REASON_HEADER) {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("no {REJECTION_REASON_HEADER} header: {other:?} in {h:?}"),
    };
    let by_body = |needle: &[u8]| {
        letters
            .iter()
            .find(|(_, body)| body == needle)
            .unwrap_or_else(|| {
                panic!(
                    "no dead letter with body {:?}",
                    String::from_utf8_lossy(needle)
                )
            })
    };
    let (h, _) = by_body(&bodies[0].1);
    assert!(reason(h).contains("line 1"), "{}", reason(h));
    let (h, _) = by_body(&bodies[1].1);
    let why = reason(h);
    assert!(why.contains("line 2") && why.contains("pool_id"), "{why}");
    assert!(
        matches!(h.inner().get("x-original-exchange"), Some(AMQPValue::LongString(s)) if s.to_string() == amqp.exchange)
    );
    let (h, _) = by_body(&bodies[3].1);
    assert!(reason(h).contains("no events"), "{}", reason(h));

    testkit::eventually("metrics", Duration::from_secs(10), || async {
        (worker
            .metric("ingest_worker_dead_lettered_total", &[])
            .await
            == 3.0)
            .then_some(())
    })
    .await;
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 0);
    worker.stop().await.unwrap();
    publisher.close().await;
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_writes_and_acknowledges_the_open_batch() {
    let amqp = test_amqp("stop");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let mut settings = worker_settings(amqp.clone(), storage_args);
    // Nothing would be written for an hour: only the stop can write this batch.
    settings.batch.batch_max_age = Duration::from_secs(3600);
    let worker = spawn_app(settings).await;
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    publisher
        .publish_confirmed(&events("stop", 700, 2))
        .await
        .unwrap();
    testkit::eventually("700 events consumed", Duration::from_secs(30), || async {
        (worker
            .metric("ingest_worker_events_consumed_total", &[])
            .await
            == 700.0)
            .then_some(())
    })
    .await;
    assert!(
        stored_job_ids(&storage).await.is_empty(),
        "nothing written yet"
    );

    worker.stop().await.expect("a clean stop");
    assert_eq!(stored_job_ids(&storage).await.len(), 700);
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        0,
        "everything acknowledged: nothing went back to the queue"
    );
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_waits_for_the_broker_and_a_dead_broker_is_an_error_for_publishers() {
    // Nothing listens on this port.
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let amqp = amqp_on(&url, "down");
    let err = Publisher::connect(&amqp, "test").await.unwrap_err();
    assert_eq!(err.code(), "broker_unavailable", "{err}");
    let publisher = Publisher::new(&amqp, "test");
    let err = publisher
        .publish_confirmed(&events("down", 1, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "broker_unavailable");

    let dir = tempfile::tempdir().unwrap();
    let worker = spawn_app(worker_settings(
        amqp,
        StorageArgs::for_url(dir.path().to_str().unwrap()),
    ))
    .await;
    testkit::eventually("broker errors counted", Duration::from_secs(10), || async {
        (worker.metric("ingest_worker_errors_total", &[]).await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(worker.metric("ingest_worker_consuming", &[]).await, 0.0);
    worker
        .stop()
        .await
        .expect("stops cleanly while reconnecting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_topology_is_idempotent_and_a_refused_quorum_queue_is_an_error_at_start() {
    use lapin::options::QueueDeclareOptions;
    use lapin::types::FieldTable;
    use pool_amqp::AmqpError;

    let amqp = test_amqp("topology");
    let conn = pool_amqp::connect(&amqp, "test").await.unwrap();
    let topology = amqp.topology();
    topology.declare(&conn).await.unwrap();
    topology
        .declare(&conn)
        .await
        .expect("declaring again changes nothing");
    delete_topology(&amqp).await;

    // A classic queue of that name already exists (declared by an older deployment): the broker
    // answers PRECONDITION_FAILED to the quorum declaration. That is an error naming the queue, never
    // a silent classic queue with weaker guarantees.
    let amqp = test_amqp("classic");
    let channel = conn.create_channel().await.unwrap();
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(amqp.dead_letter_exchange.as_str().into()),
    );
    channel
        .queue_declare(
            amqp.queue.as_str().into(),
            QueueDeclareOptions {
                durable: true,
                ..Default::default()
            },
            args,
        )
        .await
        .unwrap();
    let err = amqp.topology().declare(&conn).await.unwrap_err();
    assert!(
        matches!(&err, AmqpError::QueueTypeRefused { queue, .. } if *queue == amqp.queue),
        "{err}"
    );
    assert!(err.is_fatal());

    // A worker told to declare it stops at start with that error instead of consuming from it.
    let dir = tempfile::tempdir().unwrap();
    let app = ingest_worker::Application::build(worker_settings(
        amqp.clone(),
        StorageArgs::for_url(dir.path().to_str().unwrap()),
    ))
    .await
    .unwrap();
    let ended = tokio::time::timeout(
        Duration::from_secs(60),
        app.run_until_stopped(std::future::pending()),
    )
    .await
    .expect("the worker stops by itself");
    let err = ended.expect_err("a refused quorum queue is an error");
    assert!(format!("{err:#}").contains("quorum"), "{err:#}");
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_as_its_least_privileged_user() {
    use pool_amqp::access::Role;
    use testkit::users::TestUser;

    // The admin declares the topology; the worker's user may only read its queue and publish dead
    // letters (no configure right), which is all it needs.
    let amqp = test_amqp("least-privilege");
    testkit::queues::declare_topology(&amqp).await;
    let user = TestUser::create(Role::Worker, &amqp).await;
    assert!(!user.amqp.declare_topology);
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let worker = spawn_app(worker_settings(user.amqp.clone(), storage_args)).await;

    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    publisher
        .publish_confirmed(&events("least", 20, 1))
        .await
        .unwrap();
    let conn = pool_amqp::connect(&amqp, "test-raw").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .basic_publish(
            amqp.exchange.as_str().into(),
            "".into(),
            BasicPublishOptions::default(),
            b"not an event",
            BasicProperties::default(),
        )
        .await
        .unwrap();
    wait_stored(&storage, 20, Duration::from_secs(60)).await;
    testkit::eventually(
        "the poison message dead-lettered",
        Duration::from_secs(60),
        || async { (ready_messages(&amqp, &amqp.dead_letter_queue).await == 1).then_some(()) },
    )
    .await;
    assert_eq!(worker.metric("ingest_worker_consuming", &[]).await, 1.0);
    worker.stop().await.expect("a clean stop");
    publisher.close().await;
    let _ = conn.close(200, "bye".into()).await;
    delete_topology(&amqp).await;
}
