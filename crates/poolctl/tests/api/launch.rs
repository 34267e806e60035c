//! `launch`, `launches` and `cancel` against a real launcher (in process, simulating each run from a
//! truth file instead of running spark-submit), which asks a real relay for the pool and reports each
//! outcome to a real intake.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{LAUNCHER_TOKEN, TOKEN, poolctl, run, spawn_app, spawn_intake};

/// Every pool of the fixture, with no chance of a spot termination: every run completes at once.
fn truth(dir: &std::path::Path) -> std::path::PathBuf {
    let pools: Vec<_> = [
        "pool-c6a.xlarge-us-east-1a",
        "pool-m6a.xlarge-us-east-1b",
        "pool-r6a.xlarge-us-east-1c",
    ]
    .iter()
    .map(|p| json!({"pool_id": p, "termination_probability": 0.0}))
    .collect();
    let path = dir.join("truth.json");
    std::fs::write(&path, json!({"seed": 1, "pools": pools}).to_string()).unwrap();
    path
}

#[tokio::test]
async fn launch_waits_for_the_run_and_launches_lists_it() {
    let ranking = spawn_app().await;
    let (intake, amqp) = spawn_intake().await;
    let dir = tempfile::tempdir().unwrap();
    let templates =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/launch-templates");
    let mut settings = launcher::Settings::for_tests(templates, &ranking.relay.base, &intake.base);
    settings.intake_token = Some(TOKEN.into());
    settings.launcher_tokens = vec![format!("ci:{LAUNCHER_TOKEN}")];
    settings.local.simulate_truth = Some(truth(dir.path()));
    settings.local.simulate_only = true;
    settings.local.spark_work_dir = dir.path().join("runs");
    settings.poll_interval = Duration::from_millis(100);
    let app = launcher::Application::build(settings)
        .await
        .expect("the launcher builds");
    let app = testkit::TestApp::start(app.port(), app.run_until_stopped());
    // poolctl against this launcher, as its caller.
    let poolctl = || {
        let mut cmd = poolctl();
        cmd.env("LAUNCHER_TOKEN", LAUNCHER_TOKEN);
        cmd
    };

    // Without the caller's token: refused, and the message says which setting to fix.
    let mut cmd = crate::helpers::poolctl();
    cmd.env("LAUNCHER_URL", &app.base)
        .env("LAUNCHER_TOKEN", "made-up")
        .args(["launches"]);
    let out = run(cmd).await.expect(3);
    assert!(out.stderr().contains("LAUNCHER_TOKEN"), "{}", out.stderr());

    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base).args([
        "launch",
        "astronauts",
        "-t",
        "c6a.xlarge,m6a.xlarge,r6a.xlarge",
        "--size",
        "small",
        "--wait",
        "-o",
        "json",
    ]);
    let record = run(cmd).await.expect(0).json();
    assert_eq!(record["state"], "COMPLETED", "{record}");
    assert_eq!(record["pool_id"], "pool-r6a.xlarge-us-east-1c", "{record}");
    let id = record["launch_id"].as_str().unwrap().to_owned();

    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base).arg("launches");
    let stdout = run(cmd).await.expect(0).stdout();
    assert!(stdout.starts_with("LAUNCH"), "{stdout}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .expect("the launch is listed");
    assert!(row.contains("astronauts"), "{row}");
    assert!(row.contains("COMPLETED"), "{row}");
    assert!(row.contains("pool-r6a.xlarge-us-east-1c"), "{row}");

    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base).args(["launches", &id]);
    let stdout = run(cmd).await.expect(0).stdout();
    assert!(
        stdout.starts_with(&format!("launch {id}  astronauts  COMPLETED")),
        "{stdout}"
    );
    assert!(stdout.contains("SUCCEEDED"), "{stdout}");

    // No launch in that state: exit 1, and the reason on stderr.
    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base)
        .args(["launches", "--state", "RUNNING"]);
    let out = run(cmd).await.expect(1);
    assert_eq!(out.stderr().trim(), "no launches in state RUNNING");

    // A finished launch cannot be cancelled: the launcher's 409, a usage error.
    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base).args(["cancel", &id]);
    run(cmd).await.expect(2);

    // An unknown application is the launcher's 400; no pool for the request its 422, "no data".
    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base)
        .args(["launch", "no-such-app", "-t", "c6a.xlarge"]);
    run(cmd).await.expect(2);
    let mut cmd = poolctl();
    cmd.env("LAUNCHER_URL", &app.base)
        .args(["launch", "astronauts", "-t", "x2idn.large"]);
    run(cmd).await.expect(1);

    // A retry with the same --idempotency-key is the same launch; the key with another request, a
    // usage error.
    let launch_with_key = |types: &'static str| {
        let mut cmd = poolctl();
        cmd.env("LAUNCHER_URL", &app.base).args([
            "launch",
            "astronauts",
            "-t",
            types,
            "--idempotency-key",
            "poolctl-retry-1",
            "-o",
            "json",
        ]);
        cmd
    };
    let first = run(launch_with_key("c6a.xlarge")).await.expect(0).json();
    let again = run(launch_with_key("c6a.xlarge")).await.expect(0).json();
    assert_eq!(first["launch_id"], again["launch_id"]);
    run(launch_with_key("m6a.xlarge")).await.expect(2);
    testkit::queues::delete_topology(&amqp).await;
}
