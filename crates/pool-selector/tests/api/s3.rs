//! pool-selector against a real S3-compatible server (started by scripts/test-services.sh).

use chrono::Duration;
use object_store::ObjectStoreExt;
use pool_storage::StorageArgs;
use testkit::{new_bucket, pool_events, s3_args, s3_endpoint, write_partitioned};

use crate::helpers::{App, spawn_app_on, spawn_app_with};

#[tokio::test]
async fn partitioned_layout_in_a_bucket_prefix() {
    let bucket = new_bucket("partitioned").await;
    let args = s3_args(&bucket, "events/");
    let storage = args.open().unwrap();
    let mut events = pool_events("pool-c6a.xlarge-us-east-1a", 300, 30, Duration::minutes(10));
    events.extend(pool_events(
        "pool-m6a.xlarge-us-east-1a",
        300,
        3,
        Duration::minutes(10),
    ));
    events.extend(pool_events(
        "pool-r6a.xlarge-us-east-1a",
        300,
        0,
        Duration::days(4),
    ));
    write_partitioned(&storage, "part-0001", &events).await;

    let app = spawn_app_on(args).await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get("/get-pool?window=24h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pool_id"], "pool-m6a.xlarge-us-east-1a");
    let (_, body) = app.get("/pools?window=24h").await;
    assert_eq!(body["scan"]["rows"], 600);
    // The 4-day-old partition is pruned, not read.
    assert_eq!(body["scan"]["objects"], 1, "{body}");
    let (_, body) = app.get("/pools").await;
    assert_eq!(body["scan"]["rows"], 900);
    assert_eq!(body["pools"][0]["pool_id"], "pool-r6a.xlarge-us-east-1a");
}

#[tokio::test]
async fn the_seeds_single_object_layout_and_environment() {
    let bucket = new_bucket("seed").await;
    let mut events = pool_events("pool-c6a.xlarge-us-east-1a", 100, 10, Duration::minutes(10));
    events.extend(pool_events(
        "pool-m6a.xlarge-us-east-1a",
        100,
        1,
        Duration::minutes(10),
    ));
    let endpoint = url::Url::parse(&s3_endpoint()).unwrap();
    // The seed's variables: bucket + file name, LocalStack URL + port, AWS_KEY_ID / AWS_SECRET.
    let args = StorageArgs {
        s3_bucket_name: Some(bucket.clone()),
        s3_file_name: Some("spark/events.json".into()),
        localstack_url: Some(format!("http://{}", endpoint.host_str().unwrap())),
        localstack_port: Some(endpoint.port().unwrap().to_string()),
        aws_key_id: Some("test".into()),
        aws_secret: Some("test".into()),
        aws_region: "us-east-1".into(),
        ..Default::default()
    };
    let storage = args.open().unwrap();
    assert!(storage.single_object);
    storage
        .store
        .put(&storage.root, testkit::ndjson(&events).into_bytes().into())
        .await
        .unwrap();

    let app = spawn_app_on(args).await;
    let (status, body) = app
        .get("/get-pool?instance_types=c6a.xlarge,m6a.xlarge")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pool_id"], "pool-m6a.xlarge-us-east-1a");
    assert_eq!(body["jobs"], 100);
}

#[tokio::test]
async fn a_missing_bucket_is_not_ready_and_ranking_says_storage_is_unavailable() {
    let args = s3_args("no-such-bucket-for-pool-selector", "events/");
    let app = spawn_app_on(args).await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "storage_unavailable");
    // The client is told what failed, not where the storage is or what it answered.
    for (_, body) in [app.get("/ready").await, app.get("/pools").await] {
        let text = body.to_string();
        assert!(!text.contains("no-such-bucket"), "{text}");
        assert!(!text.contains("127.0.0.1"), "{text}");
    }
}

async fn metric(app: &App, name: &str) -> u64 {
    let (_, text) = app.text("/metrics").await;
    testkit::metric_value(&text, &format!("pool_selector_{name}"), &[]) as u64
}

async fn wait_metric(app: &App, name: &str, want: u64) {
    testkit::eventually(
        &format!("{name} to reach {want}"),
        std::time::Duration::from_secs(20),
        || async { (metric(app, name).await == want).then_some(()) },
    )
    .await;
}

/// Scans that hang (storage that never answers) fill the slots and the queue: a further request is
/// refused at once, an identical one joins the scan in flight, and a scan whose clients hung up is
/// cancelled and frees its slot for the one waiting.
#[tokio::test]
async fn scans_are_bounded_shared_and_cancelled_when_nobody_waits() {
    let mut args = s3_args("hanging-bucket", "events/");
    args.aws_endpoint_url = Some(testkit::silent_server().await.0);
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = args;
    settings.limits.max_concurrent_scans = Some(1);
    settings.limits.max_queued_scans = 1;
    let app = spawn_app_with(settings).await;
    let get = |q: &'static str| {
        let (client, base) = (app.client.clone(), app.base.clone());
        tokio::spawn(async move { client.get(format!("{base}{q}")).send().await })
    };

    let first = get("/pools?window=1h");
    wait_metric(&app, "scans_running", 1).await;
    let queued = get("/pools?window=2h");
    wait_metric(&app, "scans_queued", 1).await;
    // The same question spelled differently joins the running scan instead of queueing.
    let joined = get("/get-pool?window=60m");
    wait_metric(&app, "scans_shared_total", 1).await;

    let res = app
        .client
        .get(format!("{}/pools?window=3h", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    assert!(res.headers().get("retry-after").is_some(), "Retry-After");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    assert_eq!(metric(&app, "scans_rejected_total").await, 1);

    // Both clients of the running scan hang up: it is cancelled, and the queued one takes its slot.
    first.abort();
    joined.abort();
    wait_metric(&app, "scans_cancelled_total", 1).await;
    wait_metric(&app, "scans_queued", 0).await;
    assert_eq!(metric(&app, "scans_running").await, 1);
    queued.abort();
    wait_metric(&app, "scans_cancelled_total", 2).await;
    wait_metric(&app, "scans_running", 0).await;
}
