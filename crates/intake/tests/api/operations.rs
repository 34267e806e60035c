//! The operations endpoints: `/health` whatever the broker does, `/ready` following the broker,
//! `/metrics`, the OpenAPI document and its UI, and JSON 404s.

use crate::helpers::{dead_amqp, delete_topology, settings, spawn_app, test_amqp};

#[tokio::test]
async fn ready_when_the_broker_is_reachable() {
    let amqp = test_amqp();
    let app = spawn_app(settings(amqp.clone(), |_| {})).await;
    let r = app.get("/ready").await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, serde_json::json!({"status": "ready"}));
    // Still ready once connected (the probe reuses the connection).
    assert_eq!(app.get("/ready").await.status, 200);
    assert_eq!(app.get("/health").await.status, 200);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn starts_alive_but_not_ready_while_the_broker_is_down() {
    let app = spawn_app(settings(dead_amqp(), |_| {})).await;
    let r = app.get("/health").await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    for _ in 0..2 {
        let r = app.get("/ready").await;
        assert_eq!(r.status, 503, "{r:?}");
        assert_eq!(r.body["error"], "broker_unavailable");
        // Where the broker is and what it said stay in the log.
        let text = r.body.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("guest"),
            "{text}"
        );
    }
    assert_eq!(app.get("/health").await.status, 200);
}

#[tokio::test]
async fn metrics_docs_and_unknown_routes() {
    let app = spawn_app(settings(dead_amqp(), |_| {})).await;
    app.post(None, "application/json", "{}").await;
    let (accepted, refused) = (
        app.metric("intake_events_accepted_total", &[]).await,
        app.metric("intake_events_refused_total", &[("reason", "unauthorized")])
            .await,
    );
    assert_eq!((accepted, refused), (0.0, 1.0));
    let metrics = app.metrics().await;
    let unauthorized = [("route", "/events"), ("method", "POST"), ("status", "401")];
    assert_eq!(
        testkit::metric_value(&metrics, "intake_http_requests_total", &unauthorized),
        1.0
    );
    assert!(metrics.contains("intake_http_request_duration_seconds_bucket"));

    let spec = app.get("/openapi.json").await;
    assert_eq!(spec.status, 200);
    for (path, method) in [
        ("/events", "post"),
        ("/health", "get"),
        ("/ready", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            spec.body["paths"][path][method].is_object(),
            "{method} {path} missing from the spec"
        );
    }
    assert_eq!(
        spec.body["paths"]["/events"]["post"]["security"],
        serde_json::json!([{"bearer": []}])
    );
    assert_eq!(
        spec.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = no_redirects.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 308);
    assert_eq!(res.headers()["location"], "/docs/");
    let docs = app.get("/docs/").await;
    assert_eq!(docs.status, 200);
    assert!(
        docs.body
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("swagger")
    );

    let r = app.get("/no/such/route").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"], "not_found");
    // GET /events is not a route: only POST is.
    assert_eq!(app.get("/events").await.status, 404);
}
