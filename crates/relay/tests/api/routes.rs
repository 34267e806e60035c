//! The allowlist, the request id, and the operations endpoints.

use crate::helpers::{Upstream, shared_redis, spawn_app};

#[tokio::test]
async fn paths_outside_the_allowlist_are_refused_by_the_relay_and_never_forwarded() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    for path in [
        "/events",
        "/admin",
        "/get-pool/",
        "/GET-POOL",
        "/pools/extra?x=1",
        "/get-pool%20",
        "/relay_anything/get-pool",
    ] {
        let r = relay.get(path).await;
        assert_eq!(r.status, 404, "{path}: {:?}", r.body);
        assert_eq!(r.body["error"], "not_found", "{path}");
        assert_eq!(r.cache, "", "{path} must not go through the cache");
    }
    let post = relay
        .client
        .post(format!("{}/get-pool", relay.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET");
    let body: serde_json::Value = post.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");

    assert_eq!(
        upstream.requests().await,
        0,
        "nothing reached pool-selector"
    );
    // The allowed routes do reach it.
    assert_eq!(relay.get("/pools").await.status, 200);
    assert_eq!(upstream.requests().await, 1);
}

#[tokio::test]
async fn the_request_id_is_kept_or_generated_and_returned() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let r = relay.get_with("/get-pool", Some("job-42-abc")).await;
    assert_eq!(r.request_id, "job-42-abc");
    let hit = relay.get_with("/get-pool", Some("job-43")).await;
    assert_eq!(
        (hit.cache.as_str(), hit.request_id.as_str()),
        ("HIT", "job-43")
    );
    let generated = relay.get("/get-pool").await.request_id;
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    assert_ne!(generated, relay.get("/get-pool").await.request_id);
    // A header that is not a sane id is replaced rather than echoed.
    let long = "x".repeat(500);
    let replaced = relay.get_with("/get-pool", Some(&long)).await.request_id;
    assert_eq!(replaced.len(), 36);
    // Errors carry it too.
    assert_eq!(
        relay.get_with("/nope", Some("err-1")).await.request_id,
        "err-1"
    );
}

#[tokio::test]
async fn an_overlong_query_is_refused_with_414() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let q = format!("/get-pool?instance_types={}", "c6a.xlarge,".repeat(500));
    let r = relay.get(&q).await;
    assert_eq!(r.status, 414, "{:?}", r.body);
    assert_eq!(r.body["error"], "query_too_long");
    assert_eq!(upstream.requests().await, 0);
}

#[tokio::test]
async fn health_ready_metrics_and_docs() {
    let upstream = Upstream::spawn().await;
    let relay = spawn_app(&upstream.base, &shared_redis(), |_| {}).await;
    let health = relay.get("/health").await;
    assert_eq!((health.status, &health.body["status"]), (200, &"ok".into()));
    let ready = relay.get("/ready").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ready", "{:?}", ready.body);
    assert_eq!(ready.body["redis"], "up");
    assert_eq!(ready.body["upstream"], "up");

    relay.get("/get-pool").await;
    // Operations routes are not on the public port.
    for path in ["/metrics", "/docs/", "/openapi.json"] {
        assert_eq!(
            relay.get(path).await.status,
            404,
            "{path} on the public port"
        );
    }
    let text = relay
        .client
        .get(format!("{}/metrics", relay.admin))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in [
        "relay_cache_requests_total",
        "relay_coalesced_waiters_total",
        "relay_upstream_request_duration_seconds_bucket",
        "relay_upstream_requests_total",
        "relay_redis_up",
        "relay_http_requests_total",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    assert_eq!(
        testkit::metric_value(
            &text,
            "relay_http_requests_total",
            &[("route", "/get-pool"), ("status", "200")]
        ),
        1.0
    );

    let doc = relay.get_admin("/openapi.json").await;
    assert_eq!(doc.status, 200);
    for path in [
        "/get-pool",
        "/pools",
        "/backtest",
        "/backtest.svg",
        "/health",
        "/ready",
    ] {
        assert!(
            doc.body["paths"].get(path).is_some(),
            "{path} not documented"
        );
    }
    assert_eq!(
        relay.get_admin("/docs").await.status,
        308,
        "a permanent redirect, as every service answers it (pool_http::operations)"
    );
    let ui = relay.get_admin("/docs/").await;
    assert_eq!(ui.status, 200);
    assert!(
        ui.body.as_str().unwrap().contains("swagger"),
        "Swagger UI page"
    );
}

#[tokio::test]
async fn secrets_in_the_redis_url_never_show_in_help_or_errors() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_relay"))
        .arg("--help")
        .env("REDIS_URL", "redis://:hunter2@cache.internal:6379")
        .output()
        .expect("relay --help runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("REDIS_URL"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");

    let mut settings = relay::Settings::for_upstream("http://127.0.0.1:1", "redis://:hunter2@[::1");
    settings.redis_key_prefix = crate::helpers::unique_prefix();
    let err = match relay::Application::build(settings).await {
        Err(e) => format!("{e:#}"),
        Ok(_) => panic!("a malformed REDIS_URL is refused"),
    };
    assert!(err.contains("REDIS_URL"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}
