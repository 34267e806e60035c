//! Test support shared by the services' black-box tests.
//!
//! Tests use real servers started by `scripts/test-services.sh` (S3, RabbitMQ, Redis). A test that needs
//! one calls [`require_env`], which fails the test loudly, naming the variable and the script, when the
//! server was not started: nothing is skipped in silence.

use std::future::Future;
use std::time::{Duration, Instant};

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

/// A fresh, uniquely named bucket on the test S3 server.
pub async fn new_bucket(tag: &str) -> String {
    let endpoint = s3_endpoint();
    let bucket = format!(
        "{}-{}",
        tag.to_ascii_lowercase().replace('_', "-"),
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
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

/// Storage settings for `s3://bucket/key_or_prefix` on the test S3 server.
pub fn s3_args(bucket: &str, key_or_prefix: &str) -> StorageArgs {
    let mut args = StorageArgs::for_url(format!("s3://{bucket}/{key_or_prefix}"));
    args.aws_endpoint_url = Some(s3_endpoint());
    args.aws_access_key_id = Some("test".into());
    args.aws_secret_access_key = Some("test".into());
    args
}

/// Poll `check` every 50 ms until it returns `Some`, or panic after `timeout` with `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Read one sample of a Prometheus metric from a text exposition: the sum over every series of `name`
/// whose labels contain all of `labels` (`key="value"` pairs).
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_part) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_part.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

/// Build a valid event: `outcome` is `"ok"`, `"spot"` or any other failure reason.
pub fn event(
    finished_at: chrono::DateTime<chrono::Utc>,
    job_id: &str,
    pool_id: &str,
    outcome: &str,
) -> pool_core::Event {
    let (status, reason) = match outcome {
        "ok" => ("SUCCEEDED", ""),
        "spot" => ("FAILED", pool_core::event::SPOT_INSTANCE_TERMINATION),
        other => ("FAILED", other),
    };
    pool_core::Event::new(
        finished_at,
        job_id.parse().expect("valid job id"),
        pool_id.parse().expect("valid pool id"),
        pool_core::Outcome::from_parts(status, reason).expect("consistent outcome"),
    )
}

/// `jobs` events for one pool, `spot` of them spot terminations, finishing `age` ago (spread over the
/// following minute so they stay in one hourly partition most of the time).
pub fn pool_events(
    pool_id: &str,
    jobs: usize,
    spot: usize,
    age: chrono::Duration,
) -> Vec<pool_core::Event> {
    let base = chrono::Utc::now() - age;
    (0..jobs)
        .map(|i| {
            event(
                base + chrono::Duration::milliseconds(i as i64 % 60_000),
                &format!("{pool_id}-{}-{i}", base.timestamp_millis()),
                pool_id,
                if i < spot { "spot" } else { "ok" },
            )
        })
        .collect()
}

/// [`pool_events`] for several pools at once: `(pool_id, jobs, spot, age)` each.
pub fn fleet_events(pools: &[(&str, usize, usize, chrono::Duration)]) -> Vec<pool_core::Event> {
    pools
        .iter()
        .flat_map(|&(pool, jobs, spot, age)| pool_events(pool, jobs, spot, age))
        .collect()
}

/// Write events as hive-partitioned NDJSON objects named `<name>.json`, one per hourly partition.
pub async fn write_partitioned(
    storage: &pool_storage::Storage,
    name: &str,
    events: &[pool_core::Event],
) {
    let mut by_partition: std::collections::BTreeMap<_, String> = Default::default();
    for e in events {
        let buf = by_partition.entry(e.partition()).or_default();
        buf.push_str(&e.to_json());
        buf.push('\n');
    }
    for (partition, body) in by_partition {
        storage
            .put(
                &storage.object_path(&partition, name),
                body.into_bytes().into(),
            )
            .await
            .expect("writing test events");
    }
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

/// Serialize events as NDJSON.
pub fn ndjson(events: &[pool_core::Event]) -> String {
    events.iter().map(|e| e.to_json() + "\n").collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_value_sums_matching_series() {
        let text = "# HELP x y\nx_total{route=\"/a\",status=\"200\"} 3\nx_total{route=\"/a\",status=\"404\"} 2\nx_total{route=\"/b\",status=\"200\"} 7\n";
        assert_eq!(
            super::metric_value(text, "x_total", &[("route", "/a")]),
            5.0
        );
        assert_eq!(
            super::metric_value(text, "x_total", &[("status", "200")]),
            10.0
        );
        assert_eq!(super::metric_value(text, "x_total", &[]), 12.0);
    }
}
