//! The compactor binary's two modes, end to end over a local folder.

use std::time::Duration;

use chrono::Utc;
use compactor::{Application, Settings};
use pool_storage::StorageArgs;
use testkit::{eventually, metric_value, pool_events, write_partitioned};

async fn history() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().to_str().unwrap().to_owned();
    let storage = StorageArgs::for_url(&url).open().unwrap();
    let mut events = vec![];
    for hours_ago in [3, 4, 30, 50] {
        events.extend(pool_events(
            "pool-c6a.xlarge-us-east-1a",
            20,
            2,
            chrono::Duration::hours(hours_ago),
        ));
    }
    write_partitioned(&storage, "batch", &events).await;
    (dir, url)
}

fn rollup_files(dir: &tempfile::TempDir) -> Vec<String> {
    let mut found = vec![];
    let root = dir.path().join("_rollups");
    for day in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(day.path()).unwrap().flatten() {
            found.push(format!(
                "{}/{}",
                day.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    found.sort();
    found
}

#[tokio::test]
async fn once_compacts_every_closed_hour_and_exits() {
    let (dir, url) = history().await;
    let app = Application::build(Settings::for_events_url(&url))
        .await
        .unwrap();
    assert_eq!(app.port(), None, "--once serves nothing");
    app.run_until_stopped().await.unwrap();
    let files = rollup_files(&dir);
    assert!(
        files.iter().any(|f| f.ends_with("day.parquet")),
        "the day 50 hours ago is closed and merged: {files:?}"
    );
    assert!(!files.is_empty());
}

/// The binary itself: `--once --report json` prints the pass's summary on stdout (what `make run` reads),
/// and the second pass over the same history finds nothing to do.
#[tokio::test]
async fn the_binary_reports_its_pass_on_stdout() {
    let (_dir, url) = history().await;
    let run = |format: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_compactor"))
            .args(["--once", "--report", format])
            .env("EVENTS_URL", &url)
            .env("SETTLE", "0")
            .env("LOG_LEVEL", "warn")
            .output()
            .expect("the compactor binary runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first: serde_json::Value = serde_json::from_str(run("json").trim()).unwrap();
    assert!(first["hours_compacted"].as_u64().unwrap() >= 4, "{first}");
    assert_eq!(first["events"], 4 * 20, "{first}");
    assert_eq!(first["errors"], 0);
    let again = run("text");
    assert!(
        again.starts_with("the rollups are up to date (checked in "),
        "{again}"
    );
}

#[tokio::test]
async fn every_serves_health_and_metrics_while_it_compacts() {
    let (dir, url) = history().await;
    let mut settings = Settings::for_events_url(&url);
    settings.once = false;
    settings.every = Some(Duration::from_secs(3600));
    let app = Application::build(settings).await.unwrap();
    let port = app.port().expect("--every serves /health and /metrics");
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let health = client.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let text = eventually("a pass to be counted", Duration::from_secs(60), || {
        let client = client.clone();
        let base = base.clone();
        async move {
            let text = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (metric_value(&text, "compactor_passes_total", &[]) >= 1.0).then_some(text)
        }
    })
    .await;
    assert!(
        metric_value(&text, "compactor_hours_compacted_total", &[]) >= 3.0,
        "{text}"
    );
    assert!(
        metric_value(&text, "compactor_events_total", &[]) >= 60.0,
        "{text}"
    );
    assert_eq!(metric_value(&text, "compactor_errors_total", &[]), 0.0);
    assert_eq!(metric_value(&text, "compactor_lag_seconds", &[]), 0.0);
    assert!(
        metric_value(&text, "compactor_newest_closed_hour_timestamp_seconds", &[])
            > (Utc::now().timestamp() - 3 * 3600) as f64
    );
    assert!(!rollup_files(&dir).is_empty());
}

#[tokio::test]
async fn a_mode_must_be_chosen() {
    let mut settings = Settings::for_events_url("/nonexistent");
    settings.once = false;
    let err = Application::build(settings)
        .await
        .err()
        .expect("no mode is an error");
    assert!(err.to_string().contains("--once"), "{err}");
    assert!("5/4".parse::<pool_history::compact::Shard>().is_err());
}
