//! From each producer to the ranking: event-generator and the intake's `POST /events` → RabbitMQ →
//! ingest-worker → S3 → pool-selector's `GET /pools`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};
use testkit::process::free_port;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_to_ranking_through_rabbitmq_and_s3() {
    let amqp = test_amqp("gen");
    let bucket = testkit::new_bucket("gen").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();
    let worker = spawn_worker(amqp.clone(), storage_args.clone()).await;

    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.json");
    let args = event_generator::Args::try_parse_from([
        "event-generator",
        "--sink",
        &amqp.url,
        "--events",
        "20000",
        "--hours",
        "6",
        "--pools",
        "12",
        "--seed",
        "42",
        "--truth",
        truth_path.to_str().unwrap(),
    ])
    .unwrap();
    let mut plan = args.plan(chrono::Utc::now()).unwrap();
    plan.settings.amqp = Some(amqp.clone());
    let summary = event_generator::run(plan, Arc::new(AtomicBool::new(false)))
        .await
        .expect("the generator publishes");
    assert_eq!(summary.events, 20_000);
    assert!(summary.objects >= 20, "messages of at most 1,000 events");

    let ids = wait_stored(&storage, 20_000, Duration::from_secs(120)).await;
    assert_eq!(ids.len(), 20_000);

    let truth: Value = serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();
    let expected: BTreeMap<String, u64> = truth["pools"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["jobs"].as_u64().unwrap() > 0)
        .map(|p| {
            (
                p["pool_id"].as_str().unwrap().to_owned(),
                p["jobs"].as_u64().unwrap(),
            )
        })
        .collect();
    let selector = spawn_selector(storage_args).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(
        ranked, expected,
        "GET /pools counts what the generator sent"
    );
    assert_eq!(ranked.values().sum::<u64>(), 20_000);
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_events_reaches_the_ranking() {
    let amqp = test_amqp("post");
    let bucket = testkit::new_bucket("post").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();
    let worker = spawn_worker(amqp.clone(), storage_args.clone()).await;
    let intake = spawn_intake(amqp.clone(), 1 << 20).await;
    let selector = spawn_selector(storage_args).await;

    let sent = events("post", 1_504, 3);
    let ndjson = testkit::ndjson(&sent[..1_500]);
    let (status, body) = post_events(&intake, "application/x-ndjson", ndjson).await;
    assert_eq!((status, &body), (202, &json!({"accepted": 1500})));
    let array = format!(
        "[{},{},{}]",
        sent[1_500].to_json(),
        sent[1_501].to_json(),
        sent[1_502].to_json()
    );
    let (status, body) = post_events(&intake, "application/json", array).await;
    assert_eq!((status, &body), (202, &json!({"accepted": 3})));
    let one = serde_json::to_string_pretty(&sent[1_503]).unwrap();
    let (status, body) = post_events(&intake, "application/json; charset=utf-8", one).await;
    assert_eq!((status, &body), (202, &json!({"accepted": 1})));

    wait_stored(&storage, 1_504, Duration::from_secs(90)).await;
    let ranked = selector.counted(&storage).await;
    assert_eq!(ranked, jobs_per_pool(&sent));

    // Sending the same events again (a client retrying after a 503) stores them again but they are
    // counted once.
    let again = testkit::ndjson(&sent[..100]);
    assert_eq!(
        post_events(&intake, "application/x-ndjson", again).await.0,
        202
    );
    wait_stored_lines(&storage, 1_604, Duration::from_secs(60)).await;
    assert_eq!(selector.counted(&storage).await, jobs_per_pool(&sent));

    assert_eq!(
        intake.metric("intake_events_accepted_total", &[]).await,
        1_604.0
    );
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rankings_are_still_served_while_the_broker_is_down() {
    // Nothing listens on this port: the pipeline's broker is down.
    let dead = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let dir = tempfile::tempdir().unwrap();
    let storage_args = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    // One stored event so the ranking has something to answer with.
    testkit::write_partitioned(&storage, "seed", &events("down", 1, 1)).await;
    let intake = spawn_intake(amqp_on(&dead, "down"), 1 << 20).await;
    let selector = spawn_selector(storage_args).await;

    // Producers are turned away (the intake's own tests check that answer in detail)...
    let (status, body) = post_events(
        &intake,
        "application/x-ndjson",
        testkit::ndjson(&events("down", 5, 1)),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "broker_unavailable");

    // ...while the ranking goes on answering from what is stored.
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(ranked.values().sum::<u64>(), 1);
}
