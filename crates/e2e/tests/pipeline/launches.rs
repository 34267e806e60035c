//! The closed loop: a launch runs a real Spark job (`spark-submit --master local[*]`) on the pool the
//! ranking picks, its outcome goes back through the intake, RabbitMQ and the ingest-worker into
//! storage, and the next ranking counts it.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::TestApp;
use testkit::events::{fleet_events, write_partitioned};

use crate::helpers::*;

/// The caller the test launches as (`LAUNCHER_TOKENS` e2e:<this>).
const LAUNCHER_TOKEN: &str = "e2e-launcher-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_spark_job_is_counted_in_the_ranking() {
    let amqp = test_amqp("launch");
    let bucket = testkit::new_bucket("launch").await;
    let storage_args = testkit::s3_args(&bucket, "events/");
    let storage = storage_args.open().unwrap();
    // What the ranking knew before: c6a.xlarge in us-east-1a is the best pool.
    let age = chrono::Duration::minutes(30);
    let before = fleet_events(&[
        ("pool-c6a.xlarge-us-east-1a", 100, 0, age),
        ("pool-c6a.xlarge-us-east-1b", 100, 20, age),
    ]);
    write_partitioned(&storage, "seed", &before).await;
    let worker = spawn_worker(amqp.clone(), storage_args.clone()).await;
    let intake = spawn_intake(amqp.clone(), 1 << 20).await;
    let selector = spawn_selector(storage_args).await;

    let runs = tempfile::tempdir().unwrap();
    let templates =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/launch-templates");
    let mut settings = launcher::Settings::for_tests(templates, &selector.app.base, &intake.base);
    settings.intake_token = Some(INTAKE_TOKEN.into());
    settings.launcher_tokens = vec![format!("e2e:{LAUNCHER_TOKEN}")];
    settings.local.spark_submit = testkit::servers::spark_submit();
    settings.local.spark_work_dir = runs.path().to_owned();
    settings.poll_interval = Duration::from_millis(200);
    let app = launcher::Application::build(settings)
        .await
        .expect("the launcher builds");
    let mut launcher = TestApp::start(app.port(), app.run_until_stopped());
    // Every launch route needs a caller's token.
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {LAUNCHER_TOKEN}").parse().unwrap(),
    );
    launcher.client = reqwest::Client::builder()
        .default_headers(auth)
        .build()
        .unwrap();

    let res = launcher
        .client
        .post(launcher.url("/launch"))
        .json(&json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "arguments": ["--craft", "ISS"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let launched: Value = res.json().await.unwrap();
    assert_eq!(launched["pool_id"], "pool-c6a.xlarge-us-east-1a");
    let id = launched["launch_id"].as_str().unwrap();

    let done = testkit::eventually(
        "the Spark job to finish",
        Duration::from_secs(300),
        || async {
            let (_, l) = launcher.get(&format!("/launches/{id}")).await;
            (l["state"] == "COMPLETED" && l["attempts"][0]["outcome_published"] == true)
                .then_some(l)
        },
    )
    .await;
    let job_id = done["attempts"][0]["job_id"].as_str().unwrap().to_owned();

    // In storage, then in the ranking: one more job for the pool it ran on.
    let stored = wait_stored(&storage, before.len() + 1, Duration::from_secs(90)).await;
    assert!(stored.contains(&job_id), "the launch's job id is stored");
    let mut want = jobs_per_pool(&before);
    *want.get_mut("pool-c6a.xlarge-us-east-1a").unwrap() += 1;
    assert_eq!(selector.counted(&storage).await, want);
    worker.stop().await.unwrap();
    delete_topology(&amqp).await;
}
