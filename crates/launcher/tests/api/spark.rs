//! Real `spark-submit --master local[*]` runs of the repository's astronaut template, and a launcher
//! restarted (killed) while one runs.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use testkit::process::{ChildProcess, free_port, wait_port};

use crate::helpers::*;

#[tokio::test]
async fn a_real_spark_job_runs_and_its_outcome_is_published() {
    let world = World::start().await;
    let mut s = world.settings(&repo_templates());
    s.local.spark_submit = testkit::servers::spark_submit();
    let app = spawn_launcher(s).await;

    let (status, launched) = post_launch(
        &app,
        &json!({"application": "astronauts", "instance_types": ["c6a.xlarge"], "arguments": ["--craft", "ISS"]}),
    )
    .await;
    assert_eq!(status, 202, "{launched}");
    let done = wait_finished(
        &app,
        launched["launch_id"].as_str().unwrap(),
        Duration::from_secs(300),
    )
    .await;
    let run = done["attempts"][0]["run_name"].as_str().unwrap();
    let log = std::fs::read_to_string(world.dir.path().join("runs").join(run).join("log"))
        .unwrap_or_default();
    assert_eq!(done["state"], "COMPLETED", "{done}\n{log}");
    assert_eq!(done["attempts"][0]["pool_id"], POOL_A);
    assert!(log.contains("ISS"), "the job printed its roster: {log}");
    let events = wait_outcomes(&world, 1).await;
    assert_eq!(
        events[0].job_id.as_str(),
        done["attempts"][0]["job_id"].as_str().unwrap()
    );
    assert_eq!(events[0].outcome.status(), "SUCCEEDED");
}

/// The launcher binary, configured through its environment as in production.
fn launcher_process(world: &World, prefix: &str, port: u16) -> ChildProcess {
    let s = world.settings(&repo_templates());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_launcher"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("LAUNCH_TEMPLATES", repo_templates())
        .env("RELAY_URL", &world.selector.base)
        .env("INTAKE_URL", &world.intake.base)
        .env("INTAKE_TOKEN", TOKEN)
        .env("LAUNCHER_TOKENS", format!("{CALLER}:{CALLER_TOKEN}"))
        .env("REDIS_URL", testkit::servers::redis_url())
        .env("REDIS_KEY_PREFIX", prefix)
        .env("SPARK_SUBMIT", testkit::servers::spark_submit())
        .env("SPARK_WORK_DIR", s.local.spark_work_dir)
        .env("POLL_INTERVAL", "200ms")
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Ok(java) = std::env::var("JAVA_HOME") {
        cmd.env("JAVA_HOME", java);
    }
    ChildProcess::spawn("launcher", cmd)
}

#[tokio::test]
async fn a_launcher_killed_mid_run_picks_the_run_up_and_publishes_once() {
    let world = World::start().await;
    let prefix = format!("{}:", testkit::servers::unique("launcher-restart"));
    let port = free_port();
    let mut first = launcher_process(&world, &prefix, port);
    wait_port(&mut first, port, Duration::from_secs(60)).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = client_for(CALLER_TOKEN);
    let launched: serde_json::Value = client
        .post(format!("{base}/launch"))
        .json(&json!({"application": "astronauts", "instance_types": ["c6a.xlarge"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = launched["launch_id"]
        .as_str()
        .expect("a launch id")
        .to_owned();
    testkit::eventually("the launch to run", Duration::from_secs(60), || async {
        let l: serde_json::Value = client
            .get(format!("{base}/launches/{id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (l["state"] == "RUNNING").then_some(())
    })
    .await;
    // Killed outright, with its process group: the Spark run, in a group of its own, goes on.
    first.kill();

    let mut second = launcher_process(&world, &prefix, port);
    wait_port(&mut second, port, Duration::from_secs(60)).await;
    let done = testkit::eventually(
        "the launch to finish after the restart",
        Duration::from_secs(300),
        || async {
            let l: serde_json::Value = client
                .get(format!("{base}/launches/{id}"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (l["state"] == "COMPLETED" && l["attempts"][0]["outcome_published"] == true)
                .then_some(l)
        },
    )
    .await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), 1, "{done}");
    let events = wait_outcomes(&world, 1).await;
    assert_eq!(events.len(), 1, "one event for the one attempt: {events:?}");
    assert_eq!(
        events[0].job_id.as_str(),
        done["attempts"][0]["job_id"].as_str().unwrap()
    );
    second.terminate(Duration::from_secs(10)).await;
}
