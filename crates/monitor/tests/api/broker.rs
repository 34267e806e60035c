//! The monitor against a real RabbitMQ with the management plugin (`TEST_RABBITMQ_MANAGEMENT_URL`,
//! `TEST_AMQP_URL`, started by scripts/test-services.sh). Each test uses its own queue, so they run in
//! parallel.
//!
//! Timing: the management API serves statistics the broker samples every
//! `collect_statistics_interval`, and message rates need two samples. Every wait below is a generous
//! deadline for a state to be reached, never a measurement of how fast; nothing is paced by sleeping.
//! Rates are checked against the ratio of messages published to messages acknowledged, not against
//! elapsed time, and the stabilisation window runs on a clock the test advances.

use std::time::Duration;

use serde_json::Value;
use testkit::metric_value;

use crate::helpers::*;

fn n(v: &Value, field: &str) -> f64 {
    v[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing in {v}"))
}

fn desired(v: &Value) -> u64 {
    v["desired-worker-scale"]
        .as_u64()
        .expect("desired-worker-scale")
}

#[tokio::test]
async fn a_backlog_of_n_messages_gives_ceil_n_over_target() {
    let broker = Broker::new();
    let queue = unique_queue("backlog");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 2_500).await;

    let mut s = test_settings(&broker.management, &queue);
    s.workload.target_backlog_per_worker = 1_000;
    s.workload.min_replicas = 1;
    s.workload.max_replicas = 10;
    let app = spawn_app(s).await;

    let r = app
        .report_until("2500 ready messages seen", STATS_WAIT, |r| {
            r["inputs"]["messages_ready"] == 2_500
        })
        .await;
    // ceil(2500 / 1000) = 3; nothing arrives, no capacity known: only the backlog rule.
    assert_eq!(desired(&r), 3, "{r}");
    assert_eq!(r["decided_by"], "backlog");
    assert_eq!(r["rules"]["backlog"], 3);
    assert_eq!(r["rules"]["throughput"], Value::Null);
    assert_eq!(r["capacity_source"], "unknown");
    assert_eq!(r["fallback"], false);
    assert_eq!(r["source_up"], true);
    assert_eq!(r["queue"], queue.as_str());
    assert_eq!(r["workload"], "ingest-worker");

    let m = app.metrics().await;
    let w = [("workload", "ingest-worker"), ("queue", queue.as_str())];
    let q = [("vhost", "/"), ("queue", queue.as_str())];
    assert_eq!(
        metric_value(&m, "pool_monitor_desired_replicas", &w),
        3.0,
        "{m}"
    );
    assert_eq!(
        metric_value(&m, "pool_monitor_queue_messages_ready", &q),
        2_500.0
    );
    assert_eq!(metric_value(&m, "pool_monitor_source_up", &q), 1.0);
    assert_eq!(metric_value(&m, "pool_monitor_fallback", &w), 0.0);
    assert_eq!(
        metric_value(
            &m,
            "pool_monitor_rule_replicas",
            &[("queue", queue.as_str()), ("rule", "backlog")]
        ),
        3.0
    );
    let (status, ready) = app.get_json("/ready").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));

    // The same answer by name, and a clear 404 for a name that is not configured.
    let by_name = app.report(Some("ingest-worker")).await;
    assert_eq!(desired(&by_name), 3);
    let (status, body) = app.get_json("/desired-worker-scale?workload=nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    assert_eq!(body["details"]["workloads"][0], "ingest-worker");
    broker.delete(&queue).await;
}

#[tokio::test]
async fn steady_publishing_with_a_draining_consumer_scales_to_the_arrival_rate() {
    let broker = Broker::new();
    let queue = unique_queue("throughput");
    broker.declare(&queue).await;
    let conn = amqp().await;
    // One worker, and four messages arriving for every one it completes: it falls behind, so the
    // broker sees it saturated and its ack rate per consumer is its capacity, and the arrival rate
    // is four times that, whatever either is in messages per second on this machine.
    const FANOUT: usize = 4;
    let worker = amplifying_consumer(&conn, &queue, FANOUT).await;

    let mut s = test_settings(&broker.management, &queue);
    s.workload.target_backlog_per_worker = 10_000_000; // keep the backlog rule out of the way
    s.workload.target_drain_seconds = Duration::from_secs(3_600);
    s.workload.max_replicas = 20;
    let app = spawn_app(s).await;

    // The broker's rates are averages over its last samples: the first reading with both flowing may
    // still mix in the seconds before the worker started. Wait (with a deadline) for one where the
    // rates show the steady 4:1 the worker makes.
    let r = app
        .report_until(
            "a measured capacity with both rates flowing at about 4:1",
            STATS_WAIT,
            |r| {
                let publish = r["inputs"]["publish_rate"].as_f64().unwrap_or(0.0);
                let ack = r["inputs"]["ack_rate"].as_f64().unwrap_or(0.0);
                r["capacity_source"] == "measured"
                    && publish > 0.0
                    && ack > 0.0
                    && (FANOUT as f64 - 1.0..=FANOUT as f64 + 1.0).contains(&(publish / ack))
            },
        )
        .await;
    // Read while the worker still runs, so the metrics show the same queue the report does.
    let m = app.metrics().await;
    worker.abort();

    let inputs = &r["inputs"];
    let publish_rate = n(inputs, "publish_rate");
    let ack_rate = n(inputs, "ack_rate");
    let capacity = n(&r, "capacity_per_worker");
    assert_eq!(inputs["consumers"], 1, "{r}");
    // The broker's rates keep the 4:1 ratio of messages published to messages acknowledged.
    let ratio = publish_rate / ack_rate;
    assert!(
        (FANOUT as f64 - 1.0..=FANOUT as f64 + 1.0).contains(&ratio),
        "publish rate {publish_rate} over ack rate {ack_rate} = {ratio}, expected ~{FANOUT}: {r}"
    );
    // Measured capacity is the ack rate per consumer, as the broker reported it.
    assert_eq!(capacity, ack_rate / n(inputs, "consumers"), "{r}");
    // The rules are exactly the documented formulas applied to the reported inputs.
    let ready = n(inputs, "messages_ready");
    assert!(ready > 0.0, "the worker is behind: {r}");
    let throughput = (publish_rate / capacity - 1e-9).ceil();
    let drain = ((ready / 3_600.0 + publish_rate) / capacity - 1e-9).ceil();
    assert_eq!(n(&r["rules"], "throughput"), throughput, "{r}");
    assert_eq!(n(&r["rules"], "drain_time"), drain, "{r}");
    // Arrivals at four times one worker's capacity: about 4 workers, clearly more than the one running.
    let d = desired(&r);
    assert!((3..=12).contains(&d), "desired {d}: {r}");
    assert_eq!(d as f64, throughput.max(drain).max(1.0), "{r}");
    assert!(
        r["decided_by"] == "throughput" || r["decided_by"] == "drain_time",
        "{r}"
    );
    let q = [("vhost", "/"), ("queue", queue.as_str())];
    assert_eq!(metric_value(&m, "pool_monitor_queue_consumers", &q), 1.0);
    assert!(metric_value(&m, "pool_monitor_queue_publish_rate", &q) > 0.0);
    broker.delete(&queue).await;
}

/// The management API samples in 5 s buckets; asked for a bare rate it reports the last interval's
/// rate only in the poll right after a sample and `0.0` in the polls between (seen on the local
/// stack: four polls in five read no arrivals at a steady 50 messages/s). Every fresh observation
/// while messages keep arriving must show them arriving.
#[tokio::test]
async fn the_arrival_rate_holds_between_the_brokers_samples() {
    let broker = Broker::new();
    let queue = unique_queue("steady-rate");
    broker.declare(&queue).await;
    let conn = amqp().await;
    const FANOUT: usize = 4;
    let worker = amplifying_consumer(&conn, &queue, FANOUT).await;
    let app = spawn_app(test_settings(&broker.management, &queue)).await;

    app.report_until("arrivals seen once", STATS_WAIT, |r| {
        r["inputs"]["publish_rate"].as_f64().unwrap_or(0.0) > 0.0
    })
    .await;
    // The next 24 distinct observations (polls every 250 ms: more than one 5 s bucket boundary).
    let mut seen: Vec<(String, f64)> = Vec::new();
    while seen.len() < 24 {
        let r = app
            .report_until("a fresh observation", STATS_WAIT, |r| {
                seen.last()
                    .is_none_or(|(at, _)| r["observed_at"].as_str() != Some(at.as_str()))
            })
            .await;
        seen.push((
            r["observed_at"].as_str().unwrap().to_owned(),
            n(&r["inputs"], "publish_rate"),
        ));
    }
    worker.abort();
    let zeros: Vec<_> = seen.iter().filter(|(_, rate)| *rate <= 0.0).collect();
    assert!(
        zeros.is_empty(),
        "arrivals never stopped, yet {} of {} observations read a publish rate of 0: {seen:?}",
        zeros.len(),
        seen.len()
    );
    broker.delete(&queue).await;
}

#[tokio::test]
async fn activation_threshold_holds_zero_until_the_backlog_crosses_it() {
    let broker = Broker::new();
    let queue = unique_queue("activation");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 400).await;

    let mut s = test_settings(&broker.management, &queue);
    s.workload.min_replicas = 0;
    s.workload.fallback_replicas = Some(1);
    s.workload.activation_backlog = 500;
    s.workload.target_backlog_per_worker = 100;
    let app = spawn_app(s).await;

    let r = app
        .report_until("400 ready seen", STATS_WAIT, |r| {
            r["inputs"]["messages_ready"] == 400
        })
        .await;
    assert_eq!(desired(&r), 0, "{r}");
    assert_eq!(r["decided_by"], "activation");
    assert_eq!(r["active"], false);
    assert_eq!(
        r["rules"]["backlog"], 4,
        "rules are reported even while inactive"
    );

    publish(&conn, &queue, 200).await;
    let r = app
        .report_until("600 ready seen", STATS_WAIT, |r| {
            r["inputs"]["messages_ready"] == 600
        })
        .await;
    assert_eq!(desired(&r), 6, "{r}");
    assert_eq!(r["decided_by"], "backlog");
    assert_eq!(r["active"], true);
    let m = app.metrics().await;
    assert_eq!(
        metric_value(&m, "pool_monitor_active", &[("queue", queue.as_str())]),
        1.0
    );
    broker.delete(&queue).await;
}

/// The window runs on a clock the test advances: every decision until the first `advance` is taken
/// at the same instant, so the 8 is held exactly as long as the window says, on any machine.
#[tokio::test]
async fn scale_down_waits_for_the_stabilisation_window() {
    let broker = Broker::new();
    let queue = unique_queue("stabilise");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 800).await;

    let window = Duration::from_secs(60);
    let mut s = test_settings(&broker.management, &queue);
    s.workload.target_backlog_per_worker = 100;
    s.workload.scale_down_stabilization = window;
    let clock = manual_clock();
    let app = spawn_app_with_clock(s, clock.clone()).await;

    let r = app
        .report_until("8 desired", STATS_WAIT, |r| desired(r) == 8)
        .await;
    assert_eq!(r["observed_at"], CLOCK_START, "{r}");
    broker.purge(&queue).await;

    // The recommendation drops as soon as the broker reports the empty queue; the published number
    // stays at 8, flagged as stabilisation.
    let r = app
        .report_until("the recommendation dropping", STATS_WAIT, |r| {
            r["recommendation"] == 1
        })
        .await;
    assert_eq!(desired(&r), 8, "{r}");
    assert_eq!(r["decided_by"], "stabilization");
    let m = app.metrics().await;
    let w = [("workload", "ingest-worker"), ("queue", queue.as_str())];
    assert_eq!(metric_value(&m, "pool_monitor_desired_replicas", &w), 8.0);
    assert_eq!(
        metric_value(&m, "pool_monitor_recommended_replicas", &w),
        1.0
    );

    // Held halfway through the window and at its very end (the 8 is exactly `window` old)...
    for step in [window / 2, window / 2] {
        clock.advance(step);
        let r = app.report_at(&clock).await;
        assert_eq!(r["observed_at"], observed_at(&clock).as_str(), "{r}");
        assert_eq!(
            (desired(&r), r["recommendation"].as_u64()),
            (8, Some(1)),
            "held within the window: {r}"
        );
        assert_eq!(r["decided_by"], "stabilization", "{r}");
    }

    // ...and released the moment it has passed: back to the minimum.
    clock.advance(Duration::from_secs(1));
    let r = app.report_at(&clock).await;
    assert_eq!(r["observed_at"], observed_at(&clock).as_str(), "{r}");
    assert_eq!(desired(&r), 1, "{r}");
    assert!(
        r["decided_by"] == "activation" || r["decided_by"] == "min_replicas",
        "empty queue: back to the minimum: {r}"
    );
    let m = app.metrics().await;
    assert_eq!(metric_value(&m, "pool_monitor_desired_replicas", &w), 1.0);
    broker.delete(&queue).await;
}

#[tokio::test]
async fn several_workloads_and_a_missing_queue_falls_back_flagged() {
    let broker = Broker::new();
    let queue = unique_queue("multi");
    let missing = unique_queue("missing");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 300).await;

    let mut s = test_settings(&broker.management, &queue);
    s.workloads = Some(
        serde_json::json!([
            {"name": "ingest-worker", "queue": queue, "target_backlog_per_worker": 100},
            {"name": "replayer", "queue": missing, "min_replicas": 0, "max_replicas": 5,
             "fallback_replicas": 2}
        ])
        .to_string(),
    );
    let app = spawn_app(s).await;

    let r = app
        .report_until("300 ready seen", STATS_WAIT, |r| {
            r["inputs"]["messages_ready"] == 300
        })
        .await;
    assert_eq!(desired(&r), 3);
    let other = app.report(Some("replayer")).await;
    assert_eq!(desired(&other), 2, "{other}");
    assert_eq!(other["fallback"], true);
    assert_eq!(other["decided_by"], "fallback");
    assert_eq!(other["source_up"], false);
    assert!(
        other["error"].as_str().unwrap().contains("not found"),
        "{other}"
    );
    let (status, all) = app.get_json("/workloads").await;
    assert_eq!(status, 200);
    assert_eq!(all.as_array().unwrap().len(), 2);
    let m = app.metrics().await;
    assert_eq!(
        metric_value(
            &m,
            "pool_monitor_desired_replicas",
            &[("workload", "replayer")]
        ),
        2.0
    );
    assert_eq!(
        metric_value(&m, "pool_monitor_source_up", &[("queue", missing.as_str())]),
        0.0
    );
    broker.delete(&queue).await;
}

#[tokio::test]
async fn broker_going_away_publishes_the_fallback_then_recovers() {
    let broker = Broker::new();
    let queue = unique_queue("outage");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 500).await;

    // The monitor reaches the broker through a forwarder the test can cut.
    let mgmt = url::Url::parse(&broker.management).unwrap();
    let mut outage = Outage::start(&host_port(&broker.management)).await;
    let via = format!(
        "http://{}:{}@127.0.0.1:{}",
        mgmt.username(),
        mgmt.password().unwrap_or(""),
        outage.port
    );
    let mut s = test_settings(&via, &queue);
    s.workload.target_backlog_per_worker = 100;
    s.workload.fallback_replicas = Some(4);
    let app = spawn_app(s).await;
    app.report_until("5 desired", STATS_WAIT, |r| desired(r) == 5)
        .await;

    outage.cut().await;
    let r = app
        .report_until("the fallback", Duration::from_secs(30), |r| {
            r["fallback"] == true
        })
        .await;
    assert_eq!(desired(&r), 4, "{r}");
    assert_eq!(r["decided_by"], "fallback");
    assert_eq!(r["source_up"], false);
    assert_eq!(r["inputs"], Value::Null);
    let m = app.metrics().await;
    let q = [("vhost", "/"), ("queue", queue.as_str())];
    assert_eq!(metric_value(&m, "pool_monitor_source_up", &q), 0.0);
    assert_eq!(
        metric_value(&m, "pool_monitor_fallback", &[("queue", queue.as_str())]),
        1.0
    );
    assert!(
        !m.contains(&format!(
            "pool_monitor_queue_messages_ready{{queue=\"{queue}\""
        )),
        "stale depth removed while the source is down"
    );
    assert!(
        metric_value(
            &m,
            "pool_monitor_source_polls_total",
            &[("queue", queue.as_str()), ("result", "error")]
        ) >= 1.0
    );

    outage.restore().await;
    let r = app
        .report_until("recovery", Duration::from_secs(30), |r| {
            r["fallback"] == false
        })
        .await;
    assert_eq!(desired(&r), 5, "{r}");
    assert_eq!(r["source_up"], true);
    broker.delete(&queue).await;
}

/// The management API over https, its certificate signed by the harness's CA: trusted with
/// `TLS_CA_FILE`, refused without it (the monitor then publishes its fallback, flagged).
#[tokio::test]
async fn reads_the_management_api_over_https_with_the_harness_ca() {
    let broker = Broker::new();
    let queue = unique_queue("https");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 1_500).await;
    let https = testkit::require_env("TEST_RABBITMQ_MANAGEMENT_HTTPS_URL");

    let mut s = test_settings(&https, &queue);
    s.source.ca_file = Some(testkit::require_env("TEST_TLS_CA_FILE").into());
    s.workload.target_backlog_per_worker = 1_000;
    let app = spawn_app(s).await;
    let r = app
        .report_until("1500 ready messages seen over https", STATS_WAIT, |r| {
            r["inputs"]["messages_ready"] == 1_500
        })
        .await;
    assert_eq!(desired(&r), 2, "{r}");
    assert_eq!(r["source_up"], true);

    let untrusted = spawn_app(test_settings(&https, &queue)).await;
    let r = untrusted
        .report_until(
            "the untrusted source to be reported down",
            STATS_WAIT,
            |r| r["source_up"] == false,
        )
        .await;
    assert_eq!(r["fallback"], true, "{r}");
    broker.delete(&queue).await;
}

#[tokio::test]
async fn the_monitor_needs_only_a_monitoring_user_with_no_rights() {
    // Its user, as in production: the `monitoring` tag, permission on nothing (it cannot publish,
    // consume, declare or purge; testkit's TestUser, pool_amqp::access).
    let user = testkit::users::TestUser::monitoring().await;
    let broker = Broker::new();
    let queue = unique_queue("least-privilege");
    broker.declare(&queue).await;
    let conn = amqp().await;
    publish(&conn, &queue, 40).await;

    let app = spawn_app(test_settings(&user.management_url, &queue)).await;
    let r = app
        .report_until(
            "40 ready messages seen as the monitoring user",
            STATS_WAIT,
            |r| r["inputs"]["messages_ready"] == 40,
        )
        .await;
    assert_eq!(r["source_up"], true, "{r}");
    assert_eq!(r["fallback"], false, "{r}");
}
