//! `scale`: the monitor's desired worker scale, read from a real monitor polling the test RabbitMQ.

use std::time::Duration;

use crate::helpers::{poolctl, run};

#[tokio::test]
async fn scale_shows_each_workloads_desired_scale() {
    let amqp = testkit::queues::test_amqp("poolctl-scale");
    testkit::queues::declare_topology(&amqp).await;
    let mut settings = monitor::Settings::defaults();
    settings.source.rabbitmq_management_url = testkit::servers::rabbitmq_management_url();
    settings.source.poll_interval = Duration::from_millis(250);
    settings.source.source_timeout = Duration::from_secs(5);
    settings.workload.workload_name = "ingest-worker".into();
    settings.workload.queue = amqp.queue.clone();
    let app = monitor::Application::build(settings)
        .await
        .expect("the monitor builds");
    let app = testkit::TestApp::start(app.port(), app.run_until_stopped());
    testkit::eventually(
        "the monitor's first poll",
        Duration::from_secs(60),
        || async { (app.get("/ready").await.0 == 200).then_some(()) },
    )
    .await;

    let mut cmd = poolctl();
    cmd.env("MONITOR_URL", &app.base).arg("scale");
    let stdout = run(cmd).await.expect(0).stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("WORKLOAD"), "{stdout}");
    assert!(
        lines[1].starts_with(&format!("ingest-worker  {}", amqp.queue)),
        "{stdout}"
    );

    let mut cmd = poolctl();
    cmd.env("MONITOR_URL", &app.base)
        .args(["scale", "-o", "json", "--workload", "ingest-worker"]);
    let report = run(cmd).await.expect(0).json();
    assert_eq!(report["workload"], "ingest-worker");
    assert_eq!(report["queue"], amqp.queue.as_str());
    assert!(
        report["desired-worker-scale"].as_u64().unwrap() >= 1,
        "{report}"
    );

    // An unknown workload is "no data", with the monitor's message.
    let mut cmd = poolctl();
    cmd.env("MONITOR_URL", &app.base)
        .args(["scale", "--workload", "nope"]);
    let out = run(cmd).await.expect(1);
    assert!(
        out.stderr().contains("no such workload"),
        "{}",
        out.stderr()
    );
    testkit::queues::delete_topology(&amqp).await;
}
