//! The real servers of the test suite, started by `scripts/test-services.sh` and found through its
//! `TEST_*` variables.

use pool_storage::StorageArgs;

/// The value of a `TEST_*` variable exported by `scripts/test-services.sh`; panics when it is missing.
pub fn require_env(name: &str) -> String {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v,
        _ => panic!(
            "{name} is not set: this test needs a real server. Run the suite with `make test` \
             (it starts the servers through scripts/test-services.sh), or start them yourself with \
             `eval \"$(scripts/test-services.sh start)\"`."
        ),
    }
}

/// The S3 endpoint of the test server (`TEST_S3_ENDPOINT`).
pub fn s3_endpoint() -> String {
    require_env("TEST_S3_ENDPOINT")
}

/// The test RabbitMQ's AMQP URL (`TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    require_env("TEST_AMQP_URL")
}

/// The test RabbitMQ's management API, with credentials (`TEST_RABBITMQ_MANAGEMENT_URL`).
pub fn rabbitmq_management_url() -> String {
    require_env("TEST_RABBITMQ_MANAGEMENT_URL")
}

/// The test Redis (`TEST_REDIS_URL`).
pub fn redis_url() -> String {
    require_env("TEST_REDIS_URL")
}

/// A name unique to this test run, `<tag>-<10 hex digits>`, for buckets, queues and key prefixes.
pub fn unique(tag: &str) -> String {
    format!(
        "{}-{}",
        tag.to_ascii_lowercase().replace('_', "-"),
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A fresh, uniquely named bucket on the test S3 server.
pub async fn new_bucket(tag: &str) -> String {
    let endpoint = s3_endpoint();
    let bucket = unique(tag);
    let res = reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint.trim_end_matches('/')))
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 test server at {endpoint} unreachable: {e}"));
    assert!(
        res.status().is_success(),
        "creating bucket {bucket} failed: {}",
        res.status()
    );
    bucket
}

/// Delete `bucket` and everything in it from the test S3 server: storage that goes away under a
/// running service.
pub async fn delete_bucket(bucket: &str) {
    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    let storage = s3_args(bucket, "").open().expect("test S3 settings");
    let objects: Vec<_> = storage
        .store
        .list(None)
        .try_collect()
        .await
        .expect("list the bucket");
    for o in objects {
        storage
            .store
            .delete(&o.location)
            .await
            .expect("delete an object");
    }
    let endpoint = s3_endpoint();
    let res = reqwest::Client::new()
        .delete(format!("{}/{bucket}", endpoint.trim_end_matches('/')))
        .send()
        .await
        .unwrap_or_else(|e| panic!("S3 test server at {endpoint} unreachable: {e}"));
    assert!(
        res.status().is_success(),
        "deleting bucket {bucket} failed: {}",
        res.status()
    );
}

/// Storage settings for `s3://bucket/key_or_prefix` on the test S3 server.
pub fn s3_args(bucket: &str, key_or_prefix: &str) -> StorageArgs {
    let mut args = StorageArgs::for_url(format!("s3://{bucket}/{key_or_prefix}"));
    args.aws_endpoint_url = Some(s3_endpoint());
    args.aws_access_key_id = Some("test".into());
    args.aws_secret_access_key = Some("test".into());
    args
}

/// A TCP server that accepts connections and never answers: an upstream or a storage too slow for any
/// timeout. Returns its `http://` base URL and the number of connections it has accepted so far.
pub async fn silent_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a local port");
    let port = listener.local_addr().expect("bound").port();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (format!("http://127.0.0.1:{port}"), accepted)
}

/// PySpark's `spark-submit` (`TEST_SPARK_SUBMIT`, the repo venv's, installed by `scripts/install-deps.sh`).
pub fn spark_submit() -> String {
    require_env("TEST_SPARK_SUBMIT")
}
