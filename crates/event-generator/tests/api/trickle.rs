//! Seed 000's generator: `--trickle` writes one event stamped now at random pauses, for ever, and into a
//! single object (the seed's `events.json`, on S3 or in a folder) it appends each event.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::helpers::generate;
use chrono::{SubsecRound, Utc};
use clap::Parser;
use object_store::ObjectStoreExt;
use pool_core::event::Event;

fn events_in(bytes: &[u8]) -> Vec<Event> {
    bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            Event::from_json(l).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

/// On tokio's paused clock (it advances only when every task waits on a timer): the pauses are checked
/// on the clock the trickle runs on, not on the machine's.
#[tokio::test(start_paused = true)]
async fn a_single_object_gets_one_event_appended_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("seed").join("events.json");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Whole milliseconds: the line is written with the event's own (millisecond) timestamp format.
    let earlier = testkit::event(
        Utc::now().trunc_subsecs(3),
        "from-before",
        "pool-c6a.xlarge-us-east-1a",
        "ok",
    );
    std::fs::write(&file, earlier.to_json() + "\n").unwrap();

    let before = Utc::now() - chrono::Duration::milliseconds(1);
    let started = tokio::time::Instant::now();
    // No --trickle: a sink that is a single object implies it.
    let summary = generate(&[
        "--sink",
        file.to_str().unwrap(),
        "--events",
        "20",
        "--seed",
        "4",
    ])
    .await;
    let took = started.elapsed();
    let after = Utc::now();
    assert_eq!(summary.mode, "trickle");
    assert_eq!((summary.events, summary.objects), (20, 1));
    // 19 pauses between 20 events, each drawn from [0, 2 s).
    assert!(took > Duration::ZERO, "{took:?}");
    assert!(took < Duration::from_secs(38), "{took:?}");

    let events = events_in(&std::fs::read(&file).unwrap());
    assert_eq!(events.len(), 21, "appended after the line already there");
    assert_eq!(events[0], earlier);
    for e in &events[1..] {
        assert!(
            e.finished_at >= before && e.finished_at <= after,
            "stamped now: {e:?}"
        );
    }
}

#[tokio::test]
async fn an_endless_trickle_stops_on_request_with_everything_written() {
    let dir = tempfile::tempdir().unwrap();
    let args = event_generator::Args::try_parse_from([
        "event-generator",
        "--sink",
        dir.path().to_str().unwrap(),
        "--trickle",
        "--trickle-max-gap",
        "50ms",
        "--flush-interval",
        "100ms",
    ])
    .unwrap();
    let plan = args.plan(Utc::now()).unwrap();
    assert_eq!(plan.events, None, "a trickle runs until stopped");
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(event_generator::run(plan, stop.clone()));
    // Into a folder: hourly objects, flushed while it runs.
    testkit::eventually("trickled objects", Duration::from_secs(30), || {
        let dir = dir.path().to_owned();
        async move { (!crate::helpers::read_tree(&dir).is_empty()).then_some(()) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let summary = run.await.unwrap().unwrap();
    assert!(summary.stopped);
    assert_eq!(summary.mode, "trickle");
    let written: usize = crate::helpers::read_tree(dir.path())
        .iter()
        .map(|(k, v)| crate::helpers::parse_object(k, v).len())
        .sum();
    assert_eq!(written as u64, summary.events);
}

/// The seed's own variables, as its `.env` set them, and no flag: the binary trickles into
/// `s3://$S3_BUCKET_NAME/$S3_FILE_NAME` on the LocalStack-style endpoint, appending on every run.
#[tokio::test]
async fn the_seeds_variables_trickle_into_its_events_json_on_s3() {
    let bucket = testkit::new_bucket("trickle").await;
    let run = |events: &'static str| {
        let bucket = bucket.clone();
        async move {
            let named = bucket.clone();
            let out = tokio::task::spawn_blocking(move || {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_event-generator"));
                for var in [
                    "EVENTS_URL",
                    "GENERATOR_SINK",
                    "AWS_ENDPOINT_URL",
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                    "LOCALSTACK_PORT",
                ] {
                    cmd.env_remove(var);
                }
                cmd.env("S3_BUCKET_NAME", &named)
                    .env("S3_FILE_NAME", "events.json")
                    .env("LOCALSTACK_URL", testkit::s3_endpoint())
                    .env("AWS_KEY_ID", "test")
                    .env("AWS_SECRET", "test")
                    .env("GENERATOR_EVENTS", events)
                    .env("GENERATOR_TRICKLE_MAX_GAP", "100ms")
                    .output()
                    .unwrap()
            })
            .await
            .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let summary: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("a one-line JSON summary");
            assert_eq!(summary["mode"], "trickle");
            assert_eq!(summary["sink"], format!("s3://{bucket}/events.json"));
        }
    };
    let storage = testkit::s3_args(&bucket, "events.json").open().unwrap();
    let read = || async {
        let bytes = storage
            .store
            .get(&storage.root)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        events_in(&bytes)
    };
    run("5").await;
    let first = read().await;
    assert_eq!(first.len(), 5);
    run("3").await;
    let both = read().await;
    assert_eq!(both.len(), 8, "the second run appended");
    assert_eq!(both[..5], first[..]);
}
