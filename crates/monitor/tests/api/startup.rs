//! Start-up and failure behaviour that needs no broker: configuration errors (library and binary),
//! the fallback when nothing answers, readiness, credentials kept out of every output, and the HTTP
//! surface (`/docs`, `/openapi.json`, JSON errors).

use std::process::{Command, Stdio};
use std::time::Duration;

use monitor::{Application, Settings, StartupError};
use testkit::metric_value;
use testkit::process::{ChildProcess, Sig, free_port};

use crate::helpers::*;

/// How long the binary may take to exit once it should: a deadline, never a measurement.
const EXIT_WAIT: Duration = Duration::from_secs(30);

async fn build_error(s: Settings) -> String {
    match Application::build(s).await {
        Err(e @ StartupError::Config(_)) => e.to_string(),
        Err(e) => panic!("expected a configuration error, got {e}"),
        Ok(_) => panic!("expected a configuration error, the application started"),
    }
}

#[tokio::test]
async fn bad_configuration_is_refused_before_binding() {
    let mut s = Settings::defaults();
    s.workload.min_replicas = 4;
    s.workload.max_replicas = 2;
    assert_eq!(
        build_error(s).await,
        "configuration error: MIN_REPLICAS: 4 is greater than MAX_REPLICAS 2"
    );

    let mut s = Settings::defaults();
    s.workload.target_backlog_per_worker = 0;
    assert!(
        build_error(s)
            .await
            .contains("TARGET_BACKLOG_PER_WORKER: must be at least 1")
    );

    let mut s = Settings::defaults();
    s.workload.worker_capacity_per_second = Some(0.0);
    assert!(build_error(s).await.contains("WORKER_CAPACITY_PER_SECOND"));

    let mut s = Settings::defaults();
    s.source.rabbitmq_management_url = "rabbit-host:15672".into();
    let e = build_error(s).await;
    assert!(e.contains("RABBITMQ_MANAGEMENT_URL"), "{e}");

    let mut s = Settings::defaults();
    s.workloads = Some("{not json".into());
    assert!(build_error(s).await.contains("WORKLOADS: not a JSON array"));
}

/// Run the binary with `env` and expect it to exit non-zero; its stderr.
async fn run_binary_expecting_failure(env: &[(&str, &str)]) -> String {
    // A file rather than a pipe: the child is owned by `ChildProcess`, and a file needs no reader
    // while it runs.
    let stderr = tempfile::NamedTempFile::new().expect("a temporary file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor"));
    cmd.env_clear()
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(stderr.reopen().expect("the temporary file reopens"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildProcess::spawn(
        &format!("monitor with {env:?} (it should have refused the configuration)"),
        cmd,
    );
    let status = child.wait_exit(EXIT_WAIT).await;
    let stderr = std::fs::read_to_string(stderr.path()).expect("stderr readable");
    assert!(
        !status.success(),
        "exit status {status} for {env:?}: {stderr}"
    );
    stderr
}

#[tokio::test]
async fn the_binary_exits_non_zero_with_a_clear_message() {
    let e = run_binary_expecting_failure(&[("MIN_REPLICAS", "5"), ("MAX_REPLICAS", "2")]).await;
    assert!(
        e.contains("MIN_REPLICAS: 5 is greater than MAX_REPLICAS 2"),
        "{e}"
    );

    let e = run_binary_expecting_failure(&[("TARGET_BACKLOG_PER_WORKER", "0")]).await;
    assert!(
        e.contains("TARGET_BACKLOG_PER_WORKER: must be at least 1"),
        "{e}"
    );

    let e = run_binary_expecting_failure(&[("TARGET_DRAIN_SECONDS", "0")]).await;
    assert!(e.contains("TARGET_DRAIN_SECONDS: must be positive"), "{e}");

    let e = run_binary_expecting_failure(&[(
        "RABBITMQ_MANAGEMENT_URL",
        "ftp://admin:hunter2@rabbit:15671",
    )])
    .await;
    assert!(e.contains("use http:// or https://"), "{e}");
    assert!(!e.contains("hunter2"), "the password leaked: {e}");

    let e = run_binary_expecting_failure(&[("POLL_INTERVAL", "soon")]).await;
    assert!(
        e.contains("POLL_INTERVAL") || e.contains("poll-interval"),
        "{e}"
    );
    assert!(e.contains("not a duration"), "{e}");

    let e = run_binary_expecting_failure(&[("MAX_REPLICAS", "-3")]).await;
    assert!(
        e.contains("max-replicas") || e.contains("MAX_REPLICAS"),
        "{e}"
    );
}

#[tokio::test]
async fn unreachable_broker_publishes_the_fallback_flagged_without_credentials() {
    let url = format!("http://opsuser:Sup3rSecret@127.0.0.1:{}", free_port());
    let mut s = test_settings(&url, "events.ingest");
    s.workload.min_replicas = 0;
    s.workload.fallback_replicas = Some(3);
    let app = spawn_app(s).await;

    let app = &app;
    let (status, ready) = testkit::eventually("ready", Duration::from_secs(30), || async move {
        let (status, body) = app.get_json("/ready").await;
        (status == 200).then_some((status, body))
    })
    .await;
    assert_eq!(status, 200, "fallback in force counts as ready: {ready}");

    let r = app.report(None).await;
    assert_eq!(r["desired-worker-scale"], 3, "{r}");
    assert_eq!(r["fallback"], true);
    assert_eq!(r["decided_by"], "fallback");
    assert_eq!(r["source_up"], false);
    assert_eq!(r["inputs"], serde_json::Value::Null);
    let error = r["error"].as_str().unwrap();
    assert!(error.contains("unreachable"), "{error}");
    assert!(error.contains("127.0.0.1"), "the error says where: {error}");

    let m = app.metrics().await;
    let w = [("workload", "ingest-worker"), ("queue", "events.ingest")];
    assert_eq!(metric_value(&m, "pool_monitor_desired_replicas", &w), 3.0);
    assert_eq!(metric_value(&m, "pool_monitor_fallback", &w), 1.0);
    assert_eq!(
        metric_value(&m, "pool_monitor_source_up", &[("queue", "events.ingest")]),
        0.0
    );
    for body in [
        m,
        r.to_string(),
        app.get_json("/workloads").await.1.to_string(),
    ] {
        assert!(!body.contains("Sup3rSecret"), "password leaked: {body}");
        assert!(!body.contains("opsuser"), "user leaked: {body}");
    }
}

#[tokio::test]
async fn not_ready_until_the_first_poll_finishes() {
    // Accepts connections (the kernel completes the handshake) but never answers: the first poll
    // waits for SOURCE_TIMEOUT.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", silent.local_addr().unwrap().port());
    let mut s = test_settings(&url, "events.ingest");
    // Long enough that the two requests below surely come before it, on any machine.
    s.source.source_timeout = Duration::from_secs(10);
    let app = spawn_app(s).await;

    let (status, body) = app.get_json("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "starting");
    let (status, body) = app.get_json("/desired-worker-scale").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "not_ready");

    let r = app.report(None).await;
    assert_eq!(r["fallback"], true);
    assert!(r["error"].as_str().unwrap().contains("timed out"), "{r}");
    assert_eq!(app.get_json("/ready").await.0, 200);
    drop(silent);
}

#[tokio::test]
async fn http_surface() {
    let app = spawn_app(test_settings(
        &format!("http://127.0.0.1:{}", free_port()),
        "events.ingest",
    ))
    .await;
    let (status, body) = app.get_json("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));

    let (status, doc) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/desired-worker-scale",
        "/workloads",
        "/ready",
        "/health",
        "/metrics",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(doc["components"]["schemas"]["ScaleReport"].is_object());

    for path in ["/docs/", "/docs"] {
        let docs = app.get(path).await;
        assert_eq!(docs.status().as_u16(), 200, "{path}");
        assert!(docs.text().await.unwrap().contains("swagger"), "{path}");
    }

    let (status, body) = app.get_json("/nope").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = app.get_json("/desired-worker-scale?workload=").await;
    assert_eq!((status, body["field"].as_str()), (400, Some("workload")));

    let m = app.metrics().await;
    assert!(m.contains("pool_monitor_http_requests_total"), "{m}");
}

#[tokio::test]
async fn sigterm_stops_the_binary_cleanly() {
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_monitor"));
    cmd.env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env(
            "RABBITMQ_MANAGEMENT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        )
        .env("LOG_LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = ChildProcess::spawn("monitor", cmd);
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health = format!("http://127.0.0.1:{port}/health");
    testkit::eventually("the binary to serve", Duration::from_secs(30), || {
        let (client, health) = (&client, &health);
        async move {
            let r = client.get(health).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    child.signal(Sig::SIGTERM);
    let status = child.wait_exit(EXIT_WAIT).await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
