//! The worker's bounds, against the real test broker (`TEST_AMQP_URL`) and S3 test server
//! (`TEST_S3_ENDPOINT`): bytes in flight (oversized messages, the prefetch bounded by bytes), a store
//! that refuses every write, and dead letters that cannot be delivered.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lapin::BasicProperties;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions};
use lapin::types::{AMQPValue, FieldTable};
use pool_amqp::{AmqpArgs, Publisher, REJECTION_REASON_HEADER};
use pool_core::event::Event;
use pool_storage::StorageArgs;

use crate::helpers::*;

fn header(headers: &FieldTable, name: &str) -> String {
    match headers.inner().get(name) {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        other => panic!("no {name} header: {other:?} in {headers:?}"),
    }
}

/// Publish one raw message to the ingest exchange, as a foreign producer would, and wait for the
/// broker's confirm.
async fn publish_raw(amqp: &AmqpArgs, body: &[u8], message_id: &str) {
    let conn = pool_amqp::connect(amqp, "test-raw").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let confirm = channel
        .basic_publish(
            amqp.exchange.as_str().into(),
            "".into(),
            BasicPublishOptions {
                mandatory: true,
                ..Default::default()
            },
            body,
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(message_id.into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(
        matches!(confirm, lapin::Confirmation::Ack(None)),
        "{confirm:?}"
    );
    let _ = conn.close(200, "bye".into()).await;
}

/// The prefetch RabbitMQ applies to the consumers of `queue`, from the management API.
async fn broker_prefetch(queue: &str) -> Option<u64> {
    let mut url = reqwest::Url::parse(&testkit::servers::rabbitmq_management_url())
        .expect("a management URL");
    let user = url.username().to_owned();
    let password = url.password().map(str::to_owned);
    url.set_username("").unwrap();
    url.set_password(None).unwrap();
    url.set_path("/api/consumers");
    let consumers: serde_json::Value = reqwest::Client::new()
        .get(url)
        .basic_auth(user, password)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    consumers
        .as_array()?
        .iter()
        .find(|c| c["queue"]["name"] == queue)
        .and_then(|c| c["prefetch_count"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_dead_lettered_unparsed_and_the_prefetch_is_bounded_by_bytes() {
    let amqp = test_amqp("oversize");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let mut settings = worker_settings(amqp.clone(), storage_args);
    settings.limits.max_message_bytes = 4096;
    // 64 KiB / 4 KiB = 16 messages of the largest accepted size: fewer than PREFETCH.
    settings.limits.max_inflight_bytes = 64 * 1024;
    assert_eq!(settings.prefetch, 1000);
    assert_eq!(settings.effective_prefetch(), 16);
    let worker = spawn_app(settings).await;
    testkit::eventually("the worker consuming", Duration::from_secs(30), || async {
        (worker.metric("ingest_worker_consuming", &[]).await == 1.0).then_some(())
    })
    .await;
    assert_eq!(
        worker.metric("ingest_worker_effective_prefetch", &[]).await,
        16.0
    );
    let prefetch = testkit::eventually(
        "the broker to report the consumer's prefetch",
        Duration::from_secs(30),
        || broker_prefetch(&amqp.queue),
    )
    .await;
    assert_eq!(prefetch, 16, "basic.qos asked for the bounded prefetch");

    // Valid messages of at most 2 KiB before and after one of valid events but more than 4 KiB.
    let mut publish_args = amqp.clone();
    publish_args.message_max_bytes = 2048;
    let publisher = Publisher::connect(&publish_args, "test").await.unwrap();
    let before = events("before", 100, 2);
    publisher.publish_confirmed(&before).await.unwrap();
    let big_events = events("big", 40, 1);
    let big = testkit::ndjson(&big_events);
    assert!(big.len() > 4096, "{} bytes", big.len());
    publish_raw(&amqp, big.as_bytes(), "oversized").await;
    let after = events("after", 100, 2);
    publisher.publish_confirmed(&after).await.unwrap();

    let ids = wait_stored(&storage, 200, Duration::from_secs(60)).await;
    let expected: HashSet<String> = job_ids(&before).union(&job_ids(&after)).cloned().collect();
    assert_eq!(
        ids, expected,
        "every valid event, none of the oversized message's"
    );

    testkit::eventually("one dead letter", Duration::from_secs(30), || async {
        (ready_messages(&amqp, &amqp.dead_letter_queue).await >= 1).then_some(())
    })
    .await;
    let letters = drain(&amqp, &amqp.dead_letter_queue).await;
    assert_eq!(letters.len(), 1);
    let (headers, body) = &letters[0];
    assert_eq!(body, big.as_bytes(), "the message is dead-lettered whole");
    let reason = header(headers, REJECTION_REASON_HEADER);
    assert!(
        reason.contains("MAX_MESSAGE_BYTES") && reason.contains("4096"),
        "{reason}"
    );
    assert!(reason.contains(&big.len().to_string()), "{reason}");

    testkit::eventually(
        "the metrics to count it",
        Duration::from_secs(10),
        || async {
            (worker
                .metric("ingest_worker_events_written_total", &[])
                .await
                == 200.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        worker
            .metric("ingest_worker_messages_oversized_total", &[])
            .await,
        1.0
    );
    assert_eq!(
        worker
            .metric("ingest_worker_dead_lettered_total", &[])
            .await,
        1.0
    );
    assert_eq!(
        worker
            .metric("ingest_worker_events_consumed_total", &[])
            .await,
        200.0,
        "the oversized message was not parsed"
    );
    worker.stop().await.unwrap();
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        0,
        "everything acknowledged"
    );
    publisher.close().await;
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_store_refuses_are_given_up_and_their_events_dead_lettered() {
    let amqp = test_amqp("refused");
    // A bucket that does not exist on the S3 server: every PUT answers 404 NoSuchBucket.
    let bucket = format!(
        "no-such-bucket-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let storage_args = testkit::s3_args(&bucket, "events/");
    let mut settings = worker_settings(amqp.clone(), storage_args);
    settings.limits.write_max_attempts = 3;
    settings.limits.write_retry_min_delay = Duration::from_millis(10);
    settings.limits.write_retry_max_delay = Duration::from_millis(50);
    let worker = spawn_app(settings).await;

    let mut publish_args = amqp.clone();
    publish_args.message_max_events = 50;
    let publisher = Publisher::connect(&publish_args, "test").await.unwrap();
    let sent = events("refused", 250, 3);
    publisher.publish_confirmed(&sent).await.unwrap();

    // Collect the dead letters as they come (draining takes them off the queue).
    let letters = Arc::new(Mutex::new(Vec::new()));
    testkit::eventually(
        "all 250 events in the dead-letter queue",
        Duration::from_secs(60),
        || {
            let letters = letters.clone();
            let amqp = amqp.clone();
            async move {
                let new = drain(&amqp, &amqp.dead_letter_queue).await;
                let mut all = letters.lock().unwrap();
                all.extend(new);
                let lines: usize = all
                    .iter()
                    .map(|(_, body)| body.iter().filter(|b| **b == b'\n').count())
                    .sum();
                (lines >= 250).then_some(())
            }
        },
    )
    .await;
    let letters = letters.lock().unwrap().clone();
    let mut dead_events = Vec::new();
    for (headers, body) in &letters {
        let reason = header(headers, REJECTION_REASON_HEADER);
        assert!(
            reason.starts_with("storage refused the write: "),
            "{reason}"
        );
        assert!(
            reason.contains("not found") || reason.contains("NoSuchBucket"),
            "{reason}"
        );
        let partition = header(headers, "x-partition");
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let event = Event::from_json(line).expect("dead-lettered events are valid");
            assert_eq!(event.partition().path(), partition);
            dead_events.push(event);
        }
    }
    assert_eq!(dead_events.len(), 250, "each event dead-lettered once");
    assert_eq!(job_ids(&dead_events), job_ids(&sent));

    // The worker counts a dead letter once the broker confirmed it: maybe just after it was drained.
    testkit::eventually(
        "the give-up and the dead letters to be counted",
        Duration::from_secs(10),
        || async {
            let given_up = worker
                .metric("ingest_worker_write_given_up_total", &[])
                .await;
            let dead = worker
                .metric("ingest_worker_dead_lettered_total", &[])
                .await;
            (given_up >= 1.0 && dead == letters.len() as f64).then_some(())
        },
    )
    .await;
    assert!(
        worker
            .metric(
                "ingest_worker_errors_total",
                &[("kind", "storage_permanent")]
            )
            .await
            >= 3.0
    );
    assert_eq!(
        worker
            .metric("ingest_worker_events_written_total", &[])
            .await,
        0.0
    );
    worker.stop().await.unwrap();
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        0,
        "the ingest queue drained: every message acknowledged"
    );
    publisher.close().await;
    delete_topology(&amqp).await;
}

/// How the dead-letter exchange is broken once the worker has declared the topology.
enum Breakage {
    /// The dead-letter queue is unbound: a `mandatory` publish comes back unroutable.
    Unbound,
    /// The exchange is deleted: a publish to it closes the channel (404).
    Deleted,
}

async fn break_dead_letters(amqp: &AmqpArgs, how: Breakage) {
    let conn = pool_amqp::connect(amqp, "test-break").await.unwrap();
    let channel = conn.create_channel().await.unwrap();
    match how {
        Breakage::Unbound => channel
            .queue_unbind(
                amqp.dead_letter_queue.as_str().into(),
                amqp.dead_letter_exchange.as_str().into(),
                "".into(),
                FieldTable::default(),
            )
            .await
            .unwrap(),
        Breakage::Deleted => channel
            .exchange_delete(
                amqp.dead_letter_exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await
            .unwrap(),
    }
    let _ = conn.close(200, "bye".into()).await;
}

async fn an_undeliverable_dead_letter_does_not_block_the_queue(tag: &str, how: Breakage) {
    // The worker's warnings and errors say what happened when this fails.
    pool_service::config::TelemetryArgs {
        log_level: "warn".into(),
        ..Default::default()
    }
    .init();
    let mut amqp = test_amqp(tag);
    amqp.confirm_timeout = Duration::from_secs(5);
    let dir = tempfile::tempdir().unwrap();
    let storage_args = StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    let mut settings = worker_settings(amqp.clone(), storage_args);
    settings.limits.dead_letter_max_attempts = 3;
    let worker = spawn_app(settings).await;
    testkit::eventually(
        "the worker to declare the topology and consume",
        Duration::from_secs(30),
        || async { (worker.metric("ingest_worker_consuming", &[]).await == 1.0).then_some(()) },
    )
    .await;
    // Connecting declares the topology (idempotently): before breaking it, not after.
    let publisher = Publisher::connect(&amqp, "test").await.unwrap();
    break_dead_letters(&amqp, how).await;

    publish_raw(&amqp, b"this is not JSON", "poison").await;
    let good = events(tag, 20, 1);
    publisher.publish_confirmed(&good).await.unwrap();

    let ids = wait_stored(&storage, 20, Duration::from_secs(60)).await;
    assert_eq!(ids, job_ids(&good), "the valid message after it is stored");
    testkit::eventually(
        "the worker to give the poison message up",
        Duration::from_secs(90),
        || async {
            (worker
                .metric("ingest_worker_dead_letter_given_up_total", &[])
                .await
                >= 1.0)
                .then_some(())
        },
    )
    .await;
    assert!(
        worker
            .metric("ingest_worker_errors_total", &[("kind", "dead_letter")])
            .await
            >= 3.0,
        "three failed attempts before giving up"
    );
    assert_eq!(
        worker
            .metric("ingest_worker_dead_lettered_total", &[])
            .await,
        0.0
    );
    assert_eq!(
        worker
            .metric("ingest_worker_dead_letter_given_up_total", &[])
            .await,
        1.0
    );
    worker.stop().await.unwrap();
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        0,
        "the poison message left the ingest queue: it is not retried for ever"
    );
    publisher.close().await;
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_dead_letter_is_given_up_and_the_queue_moves_on() {
    an_undeliverable_dead_letter_does_not_block_the_queue("unroutable", Breakage::Unbound).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_dead_letter_exchange_is_given_up_and_the_queue_moves_on() {
    an_undeliverable_dead_letter_does_not_block_the_queue("nodlx", Breakage::Deleted).await;
}
