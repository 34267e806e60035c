//! pool-selector against a real S3-compatible server (started by scripts/test-services.sh).

use chrono::Duration;
use object_store::ObjectStoreExt;
use pool_storage::StorageArgs;
use testkit::{new_bucket, pool_events, s3_args, s3_endpoint, write_partitioned};

use crate::helpers::{App, spawn_app_on, spawn_unready};

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
    assert_eq!(body["view"]["rows"], 600);
    let objects = body["view"]["objects"].as_u64().unwrap();
    let (_, body) = app.get("/pools").await;
    assert_eq!(body["view"]["rows"], 900);
    assert_eq!(body["pools"][0]["pool_id"], "pool-r6a.xlarge-us-east-1a");
    // Answers come from memory: asking again reads nothing.
    assert_eq!(body["view"]["objects"], objects, "{body}");
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
async fn a_missing_bucket_is_not_ready_and_rankings_say_the_view_is_loading() {
    let args = s3_args("no-such-bucket-for-pool-selector", "events/");
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = args;
    let app = spawn_unready(settings).await;
    // Wait for a first load attempt to have failed, then look.
    testkit::eventually(
        "a failed refresh",
        std::time::Duration::from_secs(30),
        || async { (metric(&app, "view_refresh_errors_total").await >= 1).then_some(()) },
    )
    .await;
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "loading");
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

/// Storage that never answers: requests are answered at once (503 while the view loads), never
/// held behind a listing.
#[tokio::test]
async fn requests_never_wait_on_storage_that_hangs() {
    let mut args = s3_args("hanging-bucket", "events/");
    args.aws_endpoint_url = Some(testkit::silent_server().await.0);
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = args;
    let app = spawn_unready(settings).await;
    for query in ["/get-pool", "/pools?window=1h", "/backtest", "/ready"] {
        let (status, body) =
            tokio::time::timeout(std::time::Duration::from_secs(30), app.get(query))
                .await
                .unwrap_or_else(|_| panic!("{query} waited on storage"));
        assert_eq!(status, 503, "{query}: {body}");
    }
    let (status, body) = app.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
}

/// The bucket goes away under a loaded pool-selector: rankings keep coming from its view, `/ready`
/// stays 200 and says storage is unreachable, and the answers' view age grows.
#[tokio::test]
async fn answers_keep_coming_from_the_view_when_storage_goes_away() {
    let bucket = new_bucket("goes-away").await;
    let args = s3_args(&bucket, "events/");
    let storage = args.open().unwrap();
    write_partitioned(
        &storage,
        "part-1",
        &pool_events("pool-c6a.xlarge-us-east-1a", 50, 1, Duration::minutes(10)),
    )
    .await;
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = args;
    settings.stale_after = std::time::Duration::from_secs(1);
    let app = crate::helpers::spawn_app_with(settings).await;
    let (status, before) = app.get("/get-pool").await;
    assert_eq!(status, 200, "{before}");

    testkit::delete_bucket(&bucket).await;

    let ready = testkit::eventually(
        "/ready to say storage is unreachable",
        std::time::Duration::from_secs(30),
        || async {
            let (status, body) = app.get("/ready").await;
            (status == 200 && body["storage"] == "unreachable").then_some(body)
        },
    )
    .await;
    assert_eq!(ready["view"], "loaded");
    let (status, after) = app.get("/get-pool").await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["pool_id"], before["pool_id"]);
    assert_eq!(after["jobs"], 50);
    // Stale once the view is older than STALE_AFTER (1 s here).
    let stale = testkit::eventually(
        "a stale answer",
        std::time::Duration::from_secs(30),
        || async {
            let (_, body) = app.get("/get-pool").await;
            (body["stale"] == true).then_some(body)
        },
    )
    .await;
    assert!(stale["view_age_seconds"].as_u64().unwrap() >= 1, "{stale}");
    assert!(metric(&app, "view_refresh_errors_total").await >= 1);
}
