//! The generator writing to a local folder: layout, determinism, truth file, streams, the binary.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::helpers::{END, generate, parse_object, read_tree};
use chrono::{DateTime, Utc};
use clap::Parser;
use pool_core::event::Outcome;

fn dir_arg(dir: &tempfile::TempDir) -> String {
    dir.path().to_str().unwrap().to_owned()
}

#[tokio::test]
async fn same_seed_and_end_give_the_same_bytes_and_keys() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let args = |dir: &str, seed: &'static str| {
        vec![
            "--sink".to_owned(),
            dir.to_owned(),
            "--events".into(),
            "20000".into(),
            "--hours".into(),
            "6".into(),
            "--end".into(),
            END.into(),
            "--seed".into(),
            seed.into(),
        ]
    };
    for (dir, seed) in [(&a, "42"), (&b, "42"), (&c, "43")] {
        let args = args(&dir_arg(dir), seed);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let summary = generate(&args).await;
        assert_eq!(summary.events, 20_000);
    }
    let (ta, tb, tc) = (
        read_tree(a.path()),
        read_tree(b.path()),
        read_tree(c.path()),
    );
    assert!(!ta.is_empty());
    assert_eq!(ta, tb, "same seed and end: identical keys and bytes");
    assert!(ta.keys().all(|k| k.contains("/gen-42-")), "{:?}", ta.keys());
    assert_ne!(
        ta.values().collect::<Vec<_>>(),
        tc.values().collect::<Vec<_>>(),
        "another seed gives other data"
    );
}

#[tokio::test]
async fn backfill_is_hive_partitioned_by_finished_at_and_fills_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&[
        "--sink",
        &format!("file://{}", dir_arg(&dir)),
        "--events",
        "30000",
        "--hours",
        "48",
        "--end",
        END,
        "--seed",
        "1",
    ])
    .await;
    let tree = read_tree(dir.path());
    assert_eq!(summary.objects as usize, tree.len());
    assert_eq!(
        summary.bytes,
        tree.values().map(|v| v.len() as u64).sum::<u64>()
    );
    let end: DateTime<Utc> = END.parse().unwrap();
    let start = end - chrono::Duration::hours(48);
    let mut per_partition: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (key, bytes) in &tree {
        // dt=YYYY-MM-DD/hr=HH/<name>.json
        let parts: Vec<&str> = key.split('/').collect();
        assert_eq!(parts.len(), 3, "{key}");
        assert!(
            parts[0].starts_with("dt=") && parts[1].starts_with("hr="),
            "{key}"
        );
        assert!(parts[2].ends_with(".json"), "{key}");
        let events = parse_object(key, bytes);
        for e in &events {
            assert!(e.finished_at >= start && e.finished_at < end, "{e:?}");
        }
        total += events.len();
        *per_partition
            .entry(format!("{}/{}", parts[0], parts[1]))
            .or_default() += 1;
    }
    assert_eq!(total, 30_000);
    // END is on the hour: exactly 48 hourly partitions, each written once (small data, time-ordered).
    assert_eq!(per_partition.len(), 48, "{per_partition:?}");
    assert!(per_partition.values().all(|n| *n == 1), "{per_partition:?}");
}

#[tokio::test]
async fn big_partitions_are_split_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate(&[
        "--sink",
        &dir_arg(&dir),
        "--events",
        "5000",
        "--hours",
        "1",
        "--end",
        END,
        "--seed",
        "9",
        "--max-object-bytes",
        "65536",
    ])
    .await;
    let tree = read_tree(dir.path());
    assert!(tree.len() >= 10, "{} objects", tree.len());
    assert_eq!(summary.objects as usize, tree.len());
    let line_max = 400;
    let mut total = 0;
    for (key, bytes) in &tree {
        assert!(bytes.len() < 65536 + line_max, "{key}: {}", bytes.len());
        total += parse_object(key, bytes).len();
    }
    assert_eq!(total, 5000);
}

#[tokio::test]
async fn truth_file_describes_the_pools_and_matches_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let truth_path = dir.path().join("truth.json");
    let data = dir.path().join("events");
    generate(&[
        "--sink",
        data.to_str().unwrap(),
        "--events",
        "50000",
        "--hours",
        "24",
        "--end",
        END,
        "--seed",
        "5",
        "--pools",
        "12",
        "--truth",
        truth_path.to_str().unwrap(),
    ])
    .await;
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();
    assert_eq!(truth["seed"], 5);
    assert_eq!(truth["events"], 50_000);
    let pools = truth["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 12);

    let mut seen: HashMap<String, (u64, u64, u64)> = HashMap::new();
    for (key, bytes) in read_tree(&data) {
        for e in parse_object(&key, &bytes) {
            let c = seen.entry(e.pool_id.to_string()).or_default();
            c.0 += 1;
            match e.outcome {
                Outcome::SpotTermination => c.1 += 1,
                Outcome::OtherFailure(_) => c.2 += 1,
                Outcome::Succeeded => {}
            }
        }
    }
    let mut weight_sum = 0.0;
    let mut last_p = 0.0;
    let mut weights = Vec::new();
    for p in pools {
        let id = p["pool_id"].as_str().unwrap();
        let parsed: pool_core::PoolId = id.parse().unwrap();
        assert_eq!(parsed.instance_type().as_str(), p["instance_type"]);
        assert_eq!(parsed.availability_zone().as_str(), p["availability_zone"]);
        let prob = p["termination_probability"].as_f64().unwrap();
        assert!((0.001..=0.6).contains(&prob), "{p}");
        assert!(prob >= last_p, "pools are listed best first");
        last_p = prob;
        let w = p["weight"].as_f64().unwrap();
        weight_sum += w;
        weights.push(w);
        let counts = seen.get(id).copied().unwrap_or_default();
        assert_eq!(p["jobs"], counts.0, "{id}");
        assert_eq!(p["spot_terminations"], counts.1, "{id}");
        assert_eq!(p["other_failures"], counts.2, "{id}");
    }
    assert!((weight_sum - 1.0).abs() < 1e-9);
    let (max, min) = (
        weights.iter().copied().fold(0.0, f64::max),
        weights.iter().copied().fold(1.0, f64::min),
    );
    assert!(max / min > 5.0, "uneven traffic: {weights:?}");
    assert_eq!(seen.len(), 12);
}

#[tokio::test]
async fn an_explicit_pool_list_is_used_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let list =
        "pool-c6a.xlarge-us-east-1a,pool-m7i-flex.large-eu-central-1b,pool-r6a.2xlarge-us-west-2c";
    generate(&[
        "--sink",
        &dir_arg(&dir),
        "--events",
        "3000",
        "--end",
        END,
        "--pool-list",
        list,
        "--seed",
        "2",
    ])
    .await;
    let mut pools = BTreeSet::new();
    for (key, bytes) in read_tree(dir.path()) {
        for e in parse_object(&key, &bytes) {
            pools.insert(e.pool_id.to_string());
        }
    }
    let expected: BTreeSet<String> = list.split(',').map(str::to_owned).collect();
    assert_eq!(pools, expected);
}

/// On tokio's paused clock (it advances only when every task waits on a timer): the rate is checked on
/// the clock the stream runs on, not on the machine's.
#[tokio::test(start_paused = true)]
async fn a_stream_keeps_its_rate_and_stamps_events_now() {
    let dir = tempfile::tempdir().unwrap();
    let before = Utc::now() - chrono::Duration::milliseconds(1);
    let started = tokio::time::Instant::now();
    let summary = generate(&[
        "--sink",
        &dir_arg(&dir),
        "--rate",
        "400",
        "--events",
        "200",
        "--seed",
        "3",
    ])
    .await;
    let took = started.elapsed();
    let after = Utc::now();
    assert_eq!(summary.events, 200);
    assert_eq!(summary.mode, "stream");
    // 200 events at 400/s take half a second of the stream's clock, and not much more.
    assert!(took >= Duration::from_millis(500), "{took:?}");
    assert!(took <= Duration::from_millis(700), "{took:?}");
    let mut n = 0;
    for (key, bytes) in read_tree(dir.path()) {
        for e in parse_object(&key, &bytes) {
            assert!(e.finished_at >= before && e.finished_at <= after, "{e:?}");
            n += 1;
        }
    }
    assert_eq!(n, 200);
}

#[tokio::test]
async fn stopping_an_endless_stream_still_writes_what_was_generated() {
    let dir = tempfile::tempdir().unwrap();
    let args = event_generator::Args::try_parse_from([
        "event-generator",
        "--sink",
        &dir_arg(&dir),
        "--rate",
        "1000",
        "--events",
        "0",
        "--flush-interval",
        "100ms",
    ])
    .unwrap();
    let plan = args.plan(Utc::now()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let run = tokio::spawn(event_generator::run(plan, stop.clone()));
    // Data shows up while the stream runs (flush interval), not only at the end.
    let partial = testkit::eventually(
        "objects written mid-stream",
        Duration::from_secs(10),
        || {
            let dir = dir.path().to_owned();
            async move {
                let tree = read_tree(&dir);
                (!tree.is_empty()).then_some(tree.len())
            }
        },
    )
    .await;
    assert!(partial >= 1);
    stop.store(true, Ordering::Relaxed);
    let summary = run.await.unwrap().unwrap();
    assert!(summary.stopped);
    assert!(summary.events > 0);
    let written: usize = read_tree(dir.path())
        .iter()
        .map(|(k, v)| parse_object(k, v).len())
        .sum();
    assert_eq!(written as u64, summary.events);
}

#[test]
fn the_binary_prints_a_one_line_summary_and_refuses_bad_input() {
    let exe = env!("CARGO_BIN_EXE_event-generator");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(exe)
        .args(["--sink", &dir_arg(&dir), "--events", "1000", "--seed", "8"])
        .args(["--end", END, "--hours", "2"])
        .env_remove("EVENTS_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["events"], 1000);
    assert_eq!(summary["seed"], 8);
    assert_eq!(summary["mode"], "backfill");
    assert!(summary["objects"].as_u64().unwrap() >= 2);
    assert!(summary["bytes"].as_u64().unwrap() > 1000 * 100);
    assert!(summary["elapsed_s"].as_f64().is_some());
    assert_eq!(summary["sink"], dir_arg(&dir));

    // Environment fallbacks work like flags.
    let env_dir = tempfile::tempdir().unwrap();
    let out = Command::new(exe)
        .env("GENERATOR_SINK", dir_arg(&env_dir))
        .env("GENERATOR_EVENTS", "10")
        .env("GENERATOR_SEED", "8")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        read_tree(env_dir.path())
            .iter()
            .map(|(k, v)| parse_object(k, v).len())
            .sum::<usize>(),
        10
    );

    for (args, says) in [
        (
            &["--sink", "amqp://guest:guest@127.0.0.1:1/%2f"][..],
            "RabbitMQ is unavailable",
        ),
        (&["--sink", "ftp://host/x"], "unknown scheme"),
        (&["--rate", "10", "--hours", "3"], "give one or the other"),
        (&["--pool-list", "pool-c6a.large"], "pool id"),
        (&["--end", "soon"], "not an ISO 8601 timestamp"),
    ] {
        let out = Command::new(exe)
            .args(args)
            .env("GENERATOR_SINK", dir_arg(&dir))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
