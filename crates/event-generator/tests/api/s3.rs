//! The generator writing to a real S3 server (`TEST_S3_ENDPOINT`, started by scripts/test-services.sh).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::helpers::{END, generate, parse_object, read_tree};
use clap::Parser;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

/// Run with S3 settings from the test server, the way a user would pass them (flags/env of StorageArgs).
async fn generate_to_s3(bucket: &str, prefix: &str, extra: &[&str]) -> event_generator::Summary {
    let s3 = testkit::s3_args(bucket, prefix);
    let sink = format!("s3://{bucket}/{prefix}");
    let endpoint = s3.aws_endpoint_url.clone().unwrap();
    let mut args = vec![
        "--sink",
        &sink,
        "--aws-endpoint-url",
        &endpoint,
        "--aws-access-key-id",
        "test",
        "--aws-secret-access-key",
        "test",
    ];
    args.extend_from_slice(extra);
    generate(&args).await
}

#[tokio::test]
async fn writes_partitioned_objects_to_s3_that_read_back_as_events() {
    let bucket = testkit::new_bucket("generator").await;
    let summary = generate_to_s3(
        &bucket,
        "events/",
        &[
            "--events", "20000", "--hours", "12", "--end", END, "--seed", "77",
        ],
    )
    .await;
    assert_eq!(summary.events, 20_000);
    assert!(summary.sink.starts_with("s3://"));

    let storage = testkit::s3_args(&bucket, "events/").open().unwrap();
    let metas: Vec<_> = storage
        .store
        .list(Some(&Path::from("events")))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(metas.len() as u64, summary.objects);
    assert_eq!(metas.len(), 12, "one object per hour for a small backfill");
    let mut total = 0;
    let mut bytes_total = 0;
    let mut s3_tree = std::collections::BTreeMap::new();
    for meta in metas {
        let key = meta.location.to_string();
        assert!(key.starts_with("events/dt="), "{key}");
        let bytes = storage
            .store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        total += parse_object(&key, &bytes).len();
        bytes_total += bytes.len() as u64;
        s3_tree.insert(key.trim_start_matches("events/").to_owned(), bytes.to_vec());
    }
    assert_eq!(total, 20_000);
    assert_eq!(bytes_total, summary.bytes);

    // The same seed into a folder gives exactly the same keys and bytes.
    let dir = tempfile::tempdir().unwrap();
    generate(&[
        "--sink",
        dir.path().to_str().unwrap(),
        "--events",
        "20000",
        "--hours",
        "12",
        "--end",
        END,
        "--seed",
        "77",
    ])
    .await;
    assert_eq!(read_tree(dir.path()), s3_tree);
}

#[tokio::test]
async fn a_missing_bucket_is_a_clear_error() {
    let endpoint = testkit::s3_endpoint();
    let args = event_generator::Args::try_parse_from([
        "event-generator",
        "--sink",
        "s3://no-such-bucket-for-the-generator/x/",
        "--aws-endpoint-url",
        &endpoint,
        "--aws-access-key-id",
        "test",
        "--aws-secret-access-key",
        "test",
        "--events",
        "10",
    ])
    .unwrap();
    let plan = args.plan(chrono::Utc::now()).unwrap();
    let err = event_generator::run(plan, Arc::new(AtomicBool::new(false)))
        .await
        .expect_err("the bucket does not exist");
    let text = format!("{err:#}");
    assert!(text.contains("no-such-bucket-for-the-generator"), "{text}");
}
