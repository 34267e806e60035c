//! Black-box HTTP tests of pool-selector over a local folder: the ranking routes, their errors, how
//! the history is read, and the operations endpoints.

use chrono::Duration;
use testkit::{fleet_events, metric_value, pool_events, write_partitioned};

use pool_core::window::Window;

use crate::helpers::{events_at, folder_with, spawn_app, spawn_app_with, spawn_unready, url};

#[tokio::test]
async fn get_pool_keeps_the_seed_contract_and_adds_the_evidence() {
    let mut events = pool_events("pool-c6a.xlarge-us-east-1a", 400, 40, Duration::minutes(30));
    events.extend(pool_events(
        "pool-m6a.xlarge-us-east-1b",
        400,
        4,
        Duration::minutes(30),
    ));
    events.extend(pool_events(
        "pool-r6a.xlarge-us-east-1c",
        400,
        0,
        Duration::minutes(30),
    ));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;

    let (status, body) = app
        .get("/get-pool?instance_types=c6a.xlarge,m6a.xlarge")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pool_id"], "pool-m6a.xlarge-us-east-1b");
    assert_eq!(body["instance_type"], "m6a.xlarge");
    assert_eq!(body["availability_zone"], "us-east-1b");
    assert_eq!(body["jobs"], 400);
    assert_eq!(body["spot_terminations"], 4);
    assert_eq!(body["candidates"], 2);
    assert_eq!(body["strategy"], "pooled");
    assert!(body["score"].as_f64().unwrap() > 0.01);

    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 200);
    assert_eq!(body["pool_id"], "pool-r6a.xlarge-us-east-1c");

    let (status, body) = app.get("/pools").await;
    assert_eq!(status, 200);
    let ids: Vec<_> = body["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pool_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids,
        [
            "pool-r6a.xlarge-us-east-1c",
            "pool-m6a.xlarge-us-east-1b",
            "pool-c6a.xlarge-us-east-1a"
        ]
    );
    assert_eq!(body["view"]["rows"], 1200);
    let worst = &body["pools"][2];
    assert_eq!(worst["spot_terminations"], 40);
    assert!((worst["termination_rate"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert!(worst["ci_low"].as_f64().unwrap() < 0.1 && worst["ci_high"].as_f64().unwrap() > 0.1);
}

#[tokio::test]
async fn a_small_lucky_pool_does_not_beat_a_proven_one_unless_naive() {
    // A proven pool at 1 %, a lucky one with 2 clean jobs, and the fleet around them at 5–6 %: the
    // lucky pool's family and zone say it is probably no better than its neighbours.
    let hour = Duration::hours(1);
    let events = fleet_events(&[
        ("pool-c6a.large-us-east-1a", 2, 0, hour),
        ("pool-m6a.large-us-east-1a", 5000, 50, hour),
        ("pool-c6a.xlarge-us-east-1b", 500, 25, hour),
        ("pool-r6a.large-us-east-1b", 500, 25, hour),
        ("pool-m6a.xlarge-us-east-1c", 500, 30, hour),
    ]);
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;

    for strategy in [
        "",
        "&strategy=pooled",
        "&strategy=wilson",
        "&strategy=bayes",
    ] {
        let (status, body) = app
            .get(&format!(
                "/get-pool?window=7d&instance_types=c6a.large,m6a.large{strategy}"
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["pool_id"], "pool-m6a.large-us-east-1a", "{strategy}");
    }
    let (_, body) = app
        .get("/get-pool?strategy=naive&instance_types=c6a.large,m6a.large")
        .await;
    assert_eq!(body["pool_id"], "pool-c6a.large-us-east-1a");
    assert_eq!(body["score"], 0.0);
    // min_jobs removes the lucky pool even from the naive ranking.
    let (_, body) = app.get("/get-pool?strategy=naive&min_jobs=10").await;
    assert_eq!(body["pool_id"], "pool-m6a.large-us-east-1a");
}

#[tokio::test]
async fn filters_zones_windows_and_limits() {
    let mut events = pool_events("pool-c6a.xlarge-us-east-1a", 100, 1, Duration::days(3));
    events.extend(pool_events(
        "pool-c6a.xlarge-us-east-1b",
        100,
        20,
        Duration::minutes(10),
    ));
    events.extend(pool_events(
        "pool-c6a.xlarge-us-west-2a",
        100,
        5,
        Duration::minutes(10),
    ));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;

    let (_, body) = app.get("/get-pool").await;
    assert_eq!(body["pool_id"], "pool-c6a.xlarge-us-east-1a");
    // The 3-day-old history falls out of a 24-hour window.
    let (_, body) = app.get("/get-pool?window=24h").await;
    assert_eq!(body["pool_id"], "pool-c6a.xlarge-us-west-2a");
    assert_eq!(body["window_seconds"], 86400);
    let (_, body) = app.get("/get-pool?window=86400").await;
    assert_eq!(body["pool_id"], "pool-c6a.xlarge-us-west-2a");
    let (_, body) = app
        .get("/get-pool?availability_zones=us-east-1b,us-east-1a&window=1d")
        .await;
    assert_eq!(body["pool_id"], "pool-c6a.xlarge-us-east-1b");
    // Case and duplicates inside a list do not matter.
    let (status, body) = app
        .get("/get-pool?instance_types=C6A.XLARGE,c6a.xlarge&window=30m")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["candidates"], 2);
    let (_, body) = app.get("/pools?limit=1").await;
    assert_eq!(body["pools"].as_array().unwrap().len(), 1);
    assert_eq!(body["total_pools"], 3);
    // Recency weighting shrinks the effective sample of old evidence.
    let (_, body) = app.get("/pools?half_life=12h").await;
    let old = body["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pool_id"] == "pool-c6a.xlarge-us-east-1a")
        .unwrap();
    assert_eq!(old["jobs"], 100);
    assert!(old["effective_jobs"].as_f64().unwrap() <= 100.0 + 1e-6);
    assert_eq!(body["half_life_seconds"], 43200);
}

#[tokio::test]
async fn no_matching_data_is_a_404_saying_so() {
    let (dir, _) = folder_with(&pool_events(
        "pool-c6a.xlarge-us-east-1a",
        10,
        0,
        Duration::days(2),
    ))
    .await;
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/get-pool?instance_types=z9.huge").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");
    assert!(
        body["message"].as_str().unwrap().contains("z9.huge"),
        "{body}"
    );
    let (status, _) = app.get("/get-pool?window=1h").await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/pools?window=1h").await;
    assert_eq!(status, 404);

    let empty = tempfile::tempdir().unwrap();
    let app = spawn_app(url(&empty)).await;
    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn malformed_parameters_are_400s_naming_the_parameter() {
    let (dir, _) = folder_with(&pool_events(
        "pool-c6a.xlarge-us-east-1a",
        10,
        0,
        Duration::hours(1),
    ))
    .await;
    let app = spawn_app(url(&dir)).await;
    let long = "a".repeat(10_000);
    let many = vec!["c6a.xlarge"; 300]
        .iter()
        .enumerate()
        .map(|(i, _)| format!("c{i}.xlarge"))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        ("instance_types=c6a.xlarge'%20OR%20'1'='1", "instance_types"),
        (
            "instance_types=c6a.xlarge);DROP%20TABLE%20events;--",
            "instance_types",
        ),
        ("instance_types=c6a", "instance_types"),
        (&format!("instance_types={long}") as &str, "instance_types"),
        (&format!("instance_types={many}"), "instance_types"),
        ("availability_zones=mars-1", "availability_zones"),
        ("window=yesterday", "window"),
        ("window=-5", "window"),
        ("window=99999999999999999999", "window"),
        ("window=100000w", "window"),
        ("strategy=best", "strategy"),
        ("half_life=soon", "half_life"),
        ("confidence=2", "confidence"),
        ("min_jobs=-1", "min_jobs"),
        ("limit=0", "limit"),
    ];
    for (query, field) in cases {
        let (status, body) = app.get(&format!("/pools?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"], "bad_parameter", "{query}");
        assert_eq!(body["field"], field, "{query}");
        assert!(body["message"].as_str().unwrap().contains(field), "{query}");
    }
    let (status, body) = app.get("/get-pool?instance_type=c6a.xlarge").await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("instance_type"));
}

#[tokio::test]
async fn malformed_lines_and_objects_are_skipped_counted_and_the_rest_answers() {
    let good = pool_events("pool-c6a.xlarge-us-east-1a", 50, 5, Duration::minutes(20));
    let (dir, storage) = folder_with(&good).await;
    let partition = good[0].partition();
    // One object mixing valid and broken lines, one that is not JSON at all.
    let mixed = format!(
        "{}\n{{\"finished_at\": \"2026-11-22T10:00\n\n{}\nnot json\n{{\"finished_at\":\"{}\",\"job_id\":7,\"pool_id\":\"pool-m6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\"}}\n",
        testkit::ndjson(&pool_events(
            "pool-m6a.xlarge-us-east-1a",
            1,
            0,
            Duration::minutes(20)
        ))
        .trim(),
        testkit::ndjson(&pool_events(
            "pool-m6a.xlarge-us-east-1b",
            1,
            0,
            Duration::minutes(20)
        ))
        .trim(),
        pool_core::event::format_timestamp(&good[0].finished_at),
    );
    storage
        .put(
            &storage.object_path(&partition, "mixed"),
            mixed.into_bytes().into(),
        )
        .await
        .unwrap();
    storage
        .put(
            &storage.object_path(&partition, "garbage"),
            bytes::Bytes::from_static(b"\x00\x01\x02 binary garbage"),
        )
        .await
        .unwrap();
    let app = spawn_app(url(&dir)).await;

    for _ in 0..2 {
        let (status, body) = app.get("/pools").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["view"]["rows"], 52, "{body}");
        assert_eq!(body["view"]["skipped_lines"], 4, "{body}");
        assert_eq!(body["view"]["quarantined_objects"], 2, "{body}");
        assert_eq!(body["total_pools"], 3);
    }
    let (_, metrics) = app.text("/metrics").await;
    assert_eq!(
        metric_value(&metrics, "pool_selector_bad_lines_total", &[]),
        4.0
    );
    assert_eq!(
        metric_value(&metrics, "pool_selector_quarantined_objects_total", &[]),
        2.0
    );
}

#[tokio::test]
async fn decodable_but_invalid_rows_are_skipped() {
    let good = pool_events("pool-c6a.xlarge-us-east-1a", 10, 0, Duration::minutes(20));
    let (dir, storage) = folder_with(&good).await;
    let ts = pool_core::event::format_timestamp(&good[0].finished_at);
    let bad = format!(
        "{{\"finished_at\":\"{ts}\",\"job_id\":\"x1\",\"pool_id\":\"not-a-pool\",\"status\":\"SUCCEEDED\",\"reason\":\"\"}}\n\
         {{\"finished_at\":\"{ts}\",\"job_id\":\"x2\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\",\"reason\":\"SPOT_INSTANCE_TERMINATION\"}}\n"
    );
    storage
        .put(
            &storage.object_path(&good[0].partition(), "bad-rows"),
            bad.into_bytes().into(),
        )
        .await
        .unwrap();
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/pools").await;
    assert_eq!(status, 200);
    assert_eq!(body["pools"][0]["jobs"], 10);
    assert_eq!(body["pools"][0]["spot_terminations"], 0);
    let skipped = body["view"]["invalid_rows"].as_u64().unwrap()
        + body["view"]["skipped_lines"].as_u64().unwrap();
    assert_eq!(skipped, 2, "{body}");
}

#[tokio::test]
async fn a_job_stored_twice_counts_once() {
    let events = pool_events("pool-c6a.xlarge-us-east-1a", 100, 10, Duration::minutes(5));
    let (dir, storage) = folder_with(&events).await;
    // At-least-once delivery: part of the batch written again under another key.
    write_partitioned(&storage, "redelivered", &events[..30]).await;
    let app = spawn_app(url(&dir)).await;
    let (_, body) = app.get("/pools").await;
    assert_eq!(body["pools"][0]["jobs"], 100);
    assert_eq!(body["pools"][0]["spot_terminations"], 10);
    assert_eq!(body["view"]["duplicates"], 30);
}

#[tokio::test]
async fn every_object_is_read_once_whatever_the_windows_asked() {
    let events = events_at(
        "pool-c6a.xlarge-us-east-1a",
        5,
        (0..10).map(|day| Duration::days(day) + Duration::minutes(5)),
    );
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;
    let (_, all) = app.get("/pools").await;
    assert_eq!(all["view"]["rows"], 50);
    let objects = all["view"]["objects"].as_u64().unwrap();
    assert!(objects >= 10, "{all}");
    let (_, recent) = app.get("/pools?window=1h").await;
    assert_eq!(recent["view"]["rows"], 5);
    for window in ["2h", "7d", "30m", "0"] {
        let (_, body) = app.get(&format!("/pools?window={window}")).await;
        assert_eq!(
            body["view"]["objects"], objects,
            "nothing read again: {body}"
        );
    }
}

#[tokio::test]
async fn flat_folders_and_single_files_are_read_too() {
    let events = pool_events("pool-c6a.xlarge-us-east-1a", 20, 2, Duration::minutes(5));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.json"), testkit::ndjson(&events)).unwrap();
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/get-pool").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["jobs"], 20);

    let file = dir.path().join("events.json");
    let app = spawn_app(&format!("file://{}", file.display())).await;
    let (status, body) = app.get("/get-pool?window=1h").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["spot_terminations"], 2);
}

#[tokio::test]
async fn operations_endpoints() {
    let (dir, _) = folder_with(&pool_events(
        "pool-c6a.xlarge-us-east-1a",
        5,
        0,
        Duration::minutes(5),
    ))
    .await;
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = app.get("/ready").await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.get("/no/such/route").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"], "not_found");

    app.get("/get-pool").await;
    app.get("/get-pool?window=bad").await;
    let (status, metrics) = app.text("/metrics").await;
    assert_eq!(status, 200);
    let ok = [("route", "/get-pool"), ("status", "200")];
    assert_eq!(
        metric_value(&metrics, "pool_selector_http_requests_total", &ok),
        1.0
    );
    let bad = [("route", "/get-pool"), ("status", "400")];
    assert_eq!(
        metric_value(&metrics, "pool_selector_http_requests_total", &bad),
        1.0
    );
    assert!(metric_value(&metrics, "pool_selector_view_events_total", &[]) >= 5.0);
    assert!(metric_value(&metrics, "pool_selector_view_bytes_read_total", &[]) > 0.0);
    assert_eq!(
        metric_value(&metrics, "pool_selector_view_loaded", &[]),
        1.0
    );
    assert!(metric_value(&metrics, "pool_selector_view_age_seconds", &[]) < 3600.0);
    assert!(metrics.contains("pool_selector_http_request_duration_seconds_bucket"));

    let (status, spec) = app.get("/openapi.json").await;
    assert_eq!(status, 200);
    for path in ["/get-pool", "/pools", "/ready", "/health"] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the spec"
        );
    }
    let (status, html) = app.text("/docs/").await;
    assert_eq!(status, 200);
    assert!(html.to_lowercase().contains("swagger"));

    let missing = spawn_unready(pool_selector::Settings::for_events_url(
        "/nonexistent/pool-selector/events",
    ))
    .await;
    let (status, body) = missing.get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "loading");
}

/// Windows up to 31 days are read from per-hour and per-day roots instead of one listing of the whole
/// history; longer ones list everything and prune. Both must count exactly the events inside the
/// window, whatever hour the cutoff falls in, including events stamped a little in the future.
#[tokio::test]
async fn every_window_counts_exactly_the_events_inside_it() {
    // One event every 5 hours over 45 days (so every hour of the day is a cutoff hour somewhere), a
    // few minutes off the hour so no event sits on a window's edge; and one from a skewed producer
    // clock, finished "in the future", in the next hour's partition.
    let ages = (0..216)
        .map(|i| Duration::hours(5 * i) + Duration::minutes(7))
        .chain([-Duration::minutes(70)]);
    let events = events_at("pool-c6a.xlarge-us-east-1a", 1, ages);
    let (dir, _) = folder_with(&events).await;
    // The skewed event is 70 minutes ahead: allowed here, so it is counted (the default skew of 5
    // minutes would ignore it, see `events_stamped_in_the_future_do_not_steer_the_ranking`).
    let mut settings = pool_selector::Settings::for_events_url(url(&dir));
    settings.limits.max_clock_skew = std::time::Duration::from_secs(2 * 3600);
    let app = spawn_app_with(settings).await;
    for window_hours in [
        1_i64,
        3,
        24,
        25,
        47,
        24 * 7,
        24 * 30,
        24 * 31,
        24 * 40,
        24 * 70,
    ] {
        let window = Window::from_secs(window_hours as u64 * 3600);
        // The window starts on its grain before now; asked again if the grain turned meanwhile.
        let (body, cutoff) = loop {
            let before = window.start(chrono::Utc::now()).unwrap();
            let (status, body) = app.get(&format!("/pools?window={window_hours}h")).await;
            assert_eq!(status, 200, "window {window_hours}h: {body}");
            if window.start(chrono::Utc::now()).unwrap() == before {
                break (body, before);
            }
        };
        assert_eq!(
            body["window_start"],
            pool_core::event::format_timestamp(&cutoff),
            "{body}"
        );
        let expected = events.iter().filter(|e| e.finished_at >= cutoff).count();
        assert_eq!(
            body["pools"][0]["jobs"], expected,
            "window {window_hours}h counted the wrong events: {body}"
        );
    }
    let (_, body) = app.get("/pools").await;
    assert_eq!(body["pools"][0]["jobs"], events.len());
}

#[tokio::test]
async fn closed_hours_are_answered_from_rollups_with_the_same_counts() {
    let mut events = vec![];
    for (pool, hours_ago, spot) in [
        ("pool-c6a.xlarge-us-east-1a", 3, 4),
        ("pool-c6a.xlarge-us-east-1a", 30, 1),
        ("pool-m6a.xlarge-us-east-1b", 5, 0),
        ("pool-m6a.xlarge-us-east-1b", 50, 9),
    ] {
        events.extend(pool_events(pool, 40, spot, Duration::hours(hours_ago)));
    }
    let (dir, storage) = folder_with(&events).await;
    let mut raw_settings = pool_selector::Settings::for_events_url(url(&dir));
    raw_settings.use_rollups = false;
    let raw = spawn_app_with(raw_settings).await;

    let source = std::sync::Arc::new(pool_history::EventSource::new(
        storage,
        pool_history::SourceOptions::default(),
        std::sync::Arc::new(pool_history::scan::NoObserver),
    ));
    let compactor = pool_history::compact::Compactor::new(
        source,
        pool_history::compact::CompactOptions {
            settle: std::time::Duration::ZERO,
            ..Default::default()
        },
    );
    let pass = compactor
        .run_once(chrono::Utc::now(), &|_, _| {})
        .await
        .unwrap();
    assert!(pass.hours_compacted >= 3, "{pass:?}");
    let app = spawn_app(url(&dir)).await;

    for query in [
        "/pools",
        "/pools?window=48h&half_life=6h",
        "/pools?instance_types=m6a.xlarge",
    ] {
        let (status, with) = app.get(query).await;
        assert_eq!(status, 200, "{with}");
        let (_, without) = raw.get(query).await;
        assert!(
            with["view"]["rollup_hours"].as_u64().unwrap() >= 2,
            "{with}"
        );
        assert_eq!(without["view"]["rollup_hours"], 0);
        let counts = |body: &serde_json::Value| -> Vec<(String, u64, u64)> {
            body["pools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p["pool_id"].as_str().unwrap().to_owned(),
                        p["jobs"].as_u64().unwrap(),
                        p["spot_terminations"].as_u64().unwrap(),
                    )
                })
                .collect()
        };
        assert_eq!(counts(&with), counts(&without), "{query}");
        let rate =
            |body: &serde_json::Value| body["pools"][0]["termination_rate"].as_f64().unwrap();
        assert!(
            (rate(&with) - rate(&without)).abs() <= 1e-3 * rate(&without).max(1e-9),
            "{query}"
        );
    }
}

/// 5,000 perfect jobs stamped `9999-12-31` would make their pool the best for ever: they are ignored
/// and counted, and the real evidence decides.
#[tokio::test]
async fn events_stamped_in_the_future_do_not_steer_the_ranking() {
    let far = chrono::DateTime::parse_from_rfc3339("9999-12-31T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut events: Vec<_> = (0..5_000)
        .map(|i| {
            testkit::event(
                far,
                &format!("forged-{i}"),
                "pool-x2iedn.xlarge-us-east-1a",
                "ok",
            )
        })
        .collect();
    // Two minutes ahead is clock skew, not forgery: it counts.
    events.push(testkit::event(
        chrono::Utc::now() + Duration::minutes(2),
        "skewed-1",
        "pool-c6a.xlarge-us-east-1a",
        "ok",
    ));
    events.extend(pool_events(
        "pool-c6a.xlarge-us-east-1a",
        300,
        3,
        Duration::hours(2),
    ));
    events.extend(pool_events(
        "pool-m6a.xlarge-us-east-1a",
        300,
        30,
        Duration::hours(2),
    ));
    let (dir, _) = folder_with(&events).await;
    let app = spawn_app(url(&dir)).await;
    let (status, body) = app.get("/pools").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["pools"][0]["pool_id"], "pool-c6a.xlarge-us-east-1a",
        "{body}"
    );
    assert_eq!(body["pools"][0]["jobs"], 301, "{body}");
    assert_eq!(body["total_pools"], 2, "{body}");
    assert_eq!(body["view"]["future_events"], 5_000, "{body}");
    let (_, best) = app.get("/get-pool").await;
    assert_eq!(best["pool_id"], "pool-c6a.xlarge-us-east-1a");
    let (_, metrics) = app.text("/metrics").await;
    assert!(
        metric_value(&metrics, "pool_selector_view_future_events_total", &[]) >= 5_000.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn pools_has_a_default_limit_and_says_how_many_matched() {
    let events = fleet_events(&[
        ("pool-c6a.xlarge-us-east-1a", 50, 1, Duration::hours(1)),
        ("pool-m6a.xlarge-us-east-1a", 50, 2, Duration::hours(1)),
        ("pool-r6a.xlarge-us-east-1a", 50, 3, Duration::hours(1)),
    ]);
    let (dir, _) = folder_with(&events).await;
    let mut settings = pool_selector::Settings::for_events_url(url(&dir));
    settings.limits.pools_default_limit = 2;
    let app = spawn_app_with(settings).await;
    let (_, body) = app.get("/pools").await;
    assert_eq!(body["pools"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["total_pools"], 3);
    let (_, body) = app.get("/pools?limit=3").await;
    assert_eq!(body["pools"].as_array().unwrap().len(), 3, "{body}");
    let (status, _) = app.get("/pools?limit=10001").await;
    assert_eq!(status, 400);
}
