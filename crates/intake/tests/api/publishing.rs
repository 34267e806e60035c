//! What `POST /events` publishes: accepted events are in the queue, refused requests publish
//! nothing, and a broker that cannot be reached is a 503 that reports nothing as accepted.

use crate::helpers::{
    TOKEN, dead_amqp, declare_topology, delete_topology, drain_events, events, ndjson,
    ready_messages, settings, spawn_app, test_amqp,
};

#[tokio::test]
async fn events_accepted_with_202_are_in_the_queue() {
    let amqp = test_amqp();
    declare_topology(&amqp).await;
    let app = spawn_app(settings(amqp.clone(), |_| {})).await;
    let sent = events("accepted", 1_504);

    // NDJSON, a JSON array, and one pretty-printed object with a charset parameter.
    let r = app
        .post(Some(TOKEN), "application/x-ndjson", ndjson(&sent[..1_500]))
        .await;
    assert_eq!(
        (r.status, &r.body),
        (202, &serde_json::json!({"accepted": 1500}))
    );
    let array = format!(
        "[{},{},{}]",
        sent[1_500].to_json(),
        sent[1_501].to_json(),
        sent[1_502].to_json()
    );
    let r = app.post_json(array).await;
    assert_eq!(
        (r.status, &r.body),
        (202, &serde_json::json!({"accepted": 3}))
    );
    let one = serde_json::to_string_pretty(&sent[1_503]).unwrap();
    let r = app
        .post(Some(TOKEN), "application/json; charset=utf-8", one)
        .await;
    assert_eq!(
        (r.status, &r.body),
        (202, &serde_json::json!({"accepted": 1}))
    );

    // Confirmed before the 202: every event is in the queue already, in order.
    assert_eq!(drain_events(&amqp).await, sent);
    assert_eq!(
        app.metric("intake_events_accepted_total", &[]).await,
        1_504.0
    );
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn post_events_refuses_bad_bodies_and_publishes_nothing() {
    let amqp = test_amqp();
    declare_topology(&amqp).await;
    let app = spawn_app(settings(amqp.clone(), |s| s.max_body_bytes = 4096)).await;
    let good = events("bad", 3);

    // One valid event first, so something is known to be in the queue.
    assert_eq!(app.post_json(good[0].to_json()).await.status, 202);
    assert_eq!(ready_messages(&amqp, &amqp.queue).await, 1);

    let body = format!(
        "{}\n{{\"finished_at\":\"yesterday\",\"job_id\":\"x\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\"}}\n\n{}\nnot json\n",
        good[1].to_json(),
        good[2]
            .to_json()
            .replace("FAILED", "RUNNING")
            .replace("SUCCEEDED", "RUNNING"),
    );
    let r = app.post(Some(TOKEN), "application/x-ndjson", body).await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"], "invalid_events");
    assert_eq!(r.body["details"]["invalid_count"], 3);
    let invalid = r.body["details"]["invalid"].as_array().unwrap();
    assert_eq!(invalid[0]["line"], 2);
    assert_eq!(invalid[0]["field"], "finished_at");
    assert_eq!(invalid[1]["line"], 4);
    assert_eq!(invalid[1]["field"], "status");
    assert_eq!(invalid[2]["line"], 5);
    assert_eq!(invalid[2]["field"], "event");

    let r = app
        .post_json(format!(r#"[{}, {{"job_id": 5}}]"#, good[1].to_json()))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["details"]["invalid"][0]["index"], 1);

    for (ct, payload, want, code) in [
        ("application/json", String::new(), 400, "invalid_events"),
        ("application/json", "{".to_owned(), 400, "invalid_events"),
        ("text/csv", good[1].to_json(), 415, "unsupported_media_type"),
        (
            "application/x-ndjson",
            (good[1].to_json() + "\n").repeat(100),
            413,
            "payload_too_large",
        ),
    ] {
        let r = app.post(Some(TOKEN), ct, payload).await;
        assert_eq!(r.status, want, "{ct}: {r:?}");
        assert_eq!(r.body["error"], code, "{r:?}");
    }
    assert_eq!(
        drain_events(&amqp).await,
        good[..1],
        "nothing published by the refused requests"
    );
    for (reason, n) in [
        ("invalid_events", 4.0),
        ("unsupported_media_type", 1.0),
        ("payload_too_large", 1.0),
    ] {
        assert_eq!(
            app.metric("intake_events_refused_total", &[("reason", reason)])
                .await,
            n,
            "{reason}"
        );
    }
    assert_eq!(app.metric("intake_events_accepted_total", &[]).await, 1.0);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn broker_down_is_a_503_and_nothing_is_accepted() {
    let app = spawn_app(settings(dead_amqp(), |_| {})).await;
    let r = app
        .post(
            Some(TOKEN),
            "application/x-ndjson",
            ndjson(&events("down", 5)),
        )
        .await;
    assert_eq!(r.status, 503, "{r:?}");
    assert_eq!(r.body["error"], "broker_unavailable");
    assert!(
        r.body["message"].as_str().unwrap().contains("retry"),
        "{r:?}"
    );
    assert!(
        !r.body.to_string().contains("guest:guest"),
        "no password in errors"
    );
    assert!(r.retry_after.is_some(), "Retry-After");
    assert_eq!(app.metric("intake_events_accepted_total", &[]).await, 0.0);
    assert_eq!(
        app.metric(
            "intake_events_refused_total",
            &[("reason", "broker_unavailable")]
        )
        .await,
        1.0
    );
    // The service itself is up: alive, documented, just not ready.
    assert_eq!(app.get("/health").await.status, 200);
    assert_eq!(app.get("/ready").await.status, 503);
    let doc = app.get("/openapi.json").await.body;
    assert!(
        doc["paths"]["/events"]["post"].is_object(),
        "POST /events is documented"
    );
}

#[tokio::test]
async fn events_are_published_over_amqps_with_the_harness_ca() {
    let url = testkit::require_env("TEST_AMQPS_URL");
    let ca = testkit::require_env("TEST_TLS_CA_FILE");
    let mut amqp = pool_amqp::AmqpArgs::for_url(url).with_suffix(&testkit::servers::unique("tls"));
    amqp.ca_file = Some(ca.into());
    amqp.declare_topology = true;
    let app = spawn_app(settings(amqp.clone(), |_| {})).await;
    let sent = events("tls", 1);
    let r = app.post_json(ndjson(&sent)).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.body["accepted"], 1);
    assert_eq!(drain_events(&amqp).await, sent);
    delete_topology(&amqp).await;
}

#[tokio::test]
async fn the_intake_publishes_as_a_user_that_may_only_write_to_the_exchange() {
    use pool_amqp::access::Role;
    use testkit::users::TestUser;

    // The admin declares the topology; the intake's user has no configure and no read right.
    let amqp = test_amqp();
    declare_topology(&amqp).await;
    let user = TestUser::create(Role::Producer, &amqp).await;
    let app = spawn_app(settings(user.amqp.clone(), |_| {})).await;
    assert_eq!(app.get("/ready").await.status, 200);
    let sent = events("least-privilege", 5);
    let r = app.post_json(ndjson(&sent)).await;
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(drain_events(&amqp).await, sent);
    delete_topology(&amqp).await;
}
