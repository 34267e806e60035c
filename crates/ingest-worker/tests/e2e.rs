//! The whole path with real servers: event-generator and `POST /events` → RabbitMQ → ingest-worker →
//! S3 → pool-selector's `GET /pools`.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clap::Parser;
use serde_json::Value;
use support::*;

async fn post(base: &str, content_type: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(format!("{base}/events"))
        .header("content-type", content_type)
        .bearer_auth(INTAKE_TOKEN)
        .body(body)
        .send()
        .await
        .expect("pool-selector answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body, got {text:?}")),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generator_to_ranking_through_rabbitmq_and_s3() {
    let amqp = test_amqp("gen");
    let bucket = testkit::new_bucket("gen").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();
    let worker = InProcessWorker::spawn(worker_settings(amqp.clone(), storage_args.clone())).await;

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

    let ids = wait_stored(&storage, 20_000, Duration::from_secs(90)).await;
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
    let selector = Selector::spawn(storage_args).await;
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
    let worker = InProcessWorker::spawn(worker_settings(amqp.clone(), storage_args.clone())).await;
    let selector = Selector::spawn_with(storage_args, amqp.clone(), 1 << 20).await;

    let sent = events("post", 1_504, 3);
    let ndjson: String = sent[..1_500].iter().map(|e| e.to_json() + "\n").collect();
    let (status, body) = post(&selector.base, "application/x-ndjson", ndjson).await;
    assert_eq!(
        (status, &body),
        (202, &serde_json::json!({"accepted": 1500}))
    );
    let array = format!(
        "[{},{},{}]",
        sent[1_500].to_json(),
        sent[1_501].to_json(),
        sent[1_502].to_json()
    );
    let (status, body) = post(&selector.base, "application/json", array).await;
    assert_eq!((status, &body), (202, &serde_json::json!({"accepted": 3})));
    let one = serde_json::to_string_pretty(&sent[1_503]).unwrap();
    let (status, body) = post(&selector.base, "application/json; charset=utf-8", one).await;
    assert_eq!((status, &body), (202, &serde_json::json!({"accepted": 1})));

    wait_stored(&storage, 1_504, Duration::from_secs(60)).await;
    let ranked = selector.jobs_per_pool().await;
    assert_eq!(ranked, jobs_per_pool(&sent));

    // Sending the same events again (a client retrying after a 503) stores them again but they are
    // counted once.
    let again: String = sent[..100].iter().map(|e| e.to_json() + "\n").collect();
    assert_eq!(
        post(&selector.base, "application/x-ndjson", again).await.0,
        202
    );
    testkit::eventually("1,604 lines stored", Duration::from_secs(30), || async {
        (stored(&storage).await.len() == 1_604).then_some(())
    })
    .await;
    assert_eq!(selector.jobs_per_pool().await, jobs_per_pool(&sent));

    let metrics = reqwest::get(format!("{}/metrics", selector.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        testkit::metric_value(&metrics, "pool_selector_events_accepted_total", &[]),
        1_604.0
    );
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_events_refuses_bad_bodies_and_publishes_nothing() {
    let amqp = test_amqp("bad");
    let dir = tempfile::tempdir().unwrap();
    let storage_args = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap());
    let selector = Selector::spawn_with(storage_args, amqp.clone(), 4096).await;
    let good = events("bad", 3, 1);

    // One valid event first, so the queue exists and can be counted.
    assert_eq!(
        post(&selector.base, "application/json", good[0].to_json())
            .await
            .0,
        202
    );
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 1);

    let ndjson = format!(
        "{}\n{{\"finished_at\":\"yesterday\",\"job_id\":\"x\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\"}}\n\n{}\nnot json\n",
        good[1].to_json(),
        good[2]
            .to_json()
            .replace("FAILED", "RUNNING")
            .replace("SUCCEEDED", "RUNNING"),
    );
    let (status, body) = post(&selector.base, "application/x-ndjson", ndjson).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_events");
    assert_eq!(body["details"]["invalid_count"], 3);
    let invalid = body["details"]["invalid"].as_array().unwrap();
    assert_eq!(invalid[0]["line"], 2);
    assert_eq!(invalid[0]["field"], "finished_at");
    assert_eq!(invalid[1]["line"], 4);
    assert_eq!(invalid[1]["field"], "status");
    assert_eq!(invalid[2]["line"], 5);
    assert_eq!(invalid[2]["field"], "event");

    let (status, body) = post(
        &selector.base,
        "application/json",
        format!(r#"[{}, {{"job_id": 5}}]"#, good[1].to_json()),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["details"]["invalid"][0]["index"], 1);

    for (ct, payload, want, code) in [
        ("application/json", String::new(), 400, "invalid_events"),
        ("application/json", "{".to_owned(), 400, "invalid_events"),
        ("text/csv", good[1].to_json(), 415, "unsupported_media_type"),
        (
            "application/x-ndjson",
            (good[1].to_json() + "\n").repeat(100),
            413,
            "payload_too_large",
        ),
    ] {
        let (status, body) = post(&selector.base, ct, payload).await;
        assert_eq!(status, want, "{ct}: {body}");
        assert_eq!(body["error"], code, "{body}");
    }
    assert_eq!(
        ready_messages(&amqp, &amqp.queue).await,
        1,
        "nothing published by the refused requests"
    );
    delete_topology(&amqp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_a_503_and_rankings_are_still_served() {
    let dead = format!("amqp://guest:guest@127.0.0.1:{}/%2f", free_port());
    let dir = tempfile::tempdir().unwrap();
    let storage_args = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap());
    let storage = storage_args.open().unwrap();
    // One stored event so the ranking has something to answer with.
    storage
        .put(
            &storage.object_path(&events("down", 1, 1)[0].partition(), "seed"),
            bytes::Bytes::from(events("down", 1, 1)[0].to_json() + "\n"),
        )
        .await
        .unwrap();
    let selector = Selector::spawn_with(storage_args, amqp_on(&dead, "down"), 1 << 20).await;

    let (status, body) = post(
        &selector.base,
        "application/x-ndjson",
        events("down", 5, 1)
            .iter()
            .map(|e| e.to_json() + "\n")
            .collect::<String>(),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "broker_unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    assert!(
        !body.to_string().contains("guest:guest"),
        "no password in errors"
    );

    let ranked = selector.jobs_per_pool().await;
    assert_eq!(ranked.values().sum::<u64>(), 1);
    let doc: Value = reqwest::get(format!("{}/openapi.json", selector.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["paths"]["/events"]["post"].is_object(),
        "POST /events is documented"
    );
}
