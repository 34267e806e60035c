//! Scenario backfills written to a local folder: counts match the truth file, each rate segment shows
//! in the data, runs are reproducible, and bad combinations are refused.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::helpers::{generate, parse_object, read_tree};
use chrono::{DateTime, Utc};
use pool_core::event::{Event, Outcome};
use pool_scenario::{OutcomeCounts, ScenarioKind, ScenarioTruth};

const END: &str = "2026-11-22T00:00:00";

fn events(dir: &Path) -> Vec<Event> {
    read_tree(dir)
        .iter()
        .flat_map(|(k, v)| parse_object(k, v))
        .collect()
}

fn count(c: &mut OutcomeCounts, e: &Event) {
    c.jobs += 1;
    match e.outcome {
        Outcome::SpotTermination => c.spot_terminations += 1,
        Outcome::OtherFailure(_) => c.other_failures += 1,
        Outcome::Succeeded => {}
    }
}

async fn run_scenario(name: &str, dir: &Path) -> (event_generator::Summary, ScenarioTruth) {
    let data = dir.join("events");
    let truth_path = dir.join("truth.json");
    let summary = generate(&[
        "--sink",
        data.to_str().unwrap(),
        "--scenario",
        name,
        "--hours",
        "48",
        "--seed",
        "7",
        "--end",
        END,
        "--truth",
        truth_path.to_str().unwrap(),
    ])
    .await;
    let truth: ScenarioTruth =
        serde_json::from_slice(&std::fs::read(&truth_path).unwrap()).unwrap();
    (summary, truth)
}

#[tokio::test]
async fn regime_change_events_match_the_truth_segment_by_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (summary, truth) = run_scenario("regime-change", dir.path()).await;
    let end: DateTime<Utc> = "2026-11-22T00:00:00Z".parse().unwrap();
    let start = end - chrono::Duration::hours(48);
    assert_eq!(truth.scenario, ScenarioKind::RegimeChange);
    assert_eq!((truth.seed, truth.hours), (7, 48));
    assert_eq!((truth.start, truth.end), (start, end));
    assert_eq!(truth.pools.len(), 150);
    assert_eq!(summary.scenario, Some("regime-change"));
    assert_eq!(summary.pools, 150);
    assert_eq!(summary.events, truth.events);

    // The raw JSON has the documented shape.
    let raw: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("truth.json")).unwrap()).unwrap();
    assert_eq!(raw["scenario"], "regime-change");
    assert_eq!(raw["start"], "2026-11-20T00:00:00Z");
    let segment = &raw["pools"][0]["rate"][0];
    assert_eq!(segment["from"], "2026-11-20T00:00:00Z");
    assert_eq!(segment["from_hour"], 0);
    for field in ["probability", "jobs", "spot_terminations", "other_failures"] {
        assert!(segment[field].is_number(), "{field}: {segment}");
    }
    for field in [
        "pool_id",
        "instance_type",
        "availability_zone",
        "jobs_per_hour",
        "first_hour",
        "jobs",
        "spot_terminations",
        "other_failures",
    ] {
        assert!(!raw["pools"][0][field].is_null(), "{field}");
    }

    let all = events(&dir.path().join("events"));
    assert_eq!(all.len() as u64, truth.events);
    let mut per_pool: HashMap<String, Vec<&Event>> = HashMap::new();
    for e in &all {
        assert!(e.finished_at >= start && e.finished_at < end, "{e:?}");
        per_pool.entry(e.pool_id.to_string()).or_default().push(e);
    }
    let mut changed_and_checked = 0;
    let mut busy_segments = 0;
    for pool in &truth.pools {
        let mine = per_pool.remove(&pool.pool_id).unwrap_or_default();
        let mut total = OutcomeCounts::default();
        let mut segments = vec![OutcomeCounts::default(); pool.rate.len()];
        for e in &mine {
            count(&mut total, e);
            let s = pool
                .rate
                .iter()
                .rposition(|seg| seg.from <= e.finished_at)
                .unwrap();
            count(&mut segments[s], e);
        }
        assert_eq!(total, pool.counts, "{}", pool.pool_id);
        let mut all_busy = true;
        for (seg, seen) in pool.rate.iter().zip(&segments) {
            assert_eq!(&seg.counts, seen, "{} from {}", pool.pool_id, seg.from);
            assert_eq!(
                seg.from,
                start + chrono::Duration::hours(i64::from(seg.from_hour))
            );
            if seen.jobs >= 150 {
                busy_segments += 1;
                let share = seen.spot_terminations as f64 / seen.jobs as f64;
                let p = seg.probability;
                let sd = (p * (1.0 - p) / seen.jobs as f64).sqrt();
                assert!(
                    (share - p).abs() < 5.0 * sd + 0.005,
                    "{} from {}: {share} vs {p} over {} jobs",
                    pool.pool_id,
                    seg.from,
                    seen.jobs
                );
            } else {
                all_busy = false;
            }
        }
        if pool.rate.len() > 1 && all_busy {
            changed_and_checked += 1;
        }
    }
    assert!(per_pool.is_empty(), "events of unknown pools: {per_pool:?}");
    assert!(busy_segments >= 10, "{busy_segments} busy segments");
    assert!(
        changed_and_checked >= 1,
        "at least one busy pool whose rate changed is checked before and after"
    );
}

#[tokio::test]
async fn scenario_runs_are_reproducible_and_cold_start_pools_start_late() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_, ta) = run_scenario("cold-start", a.path()).await;
    let (_, tb) = run_scenario("cold-start", b.path()).await;
    assert_eq!(ta, tb);
    let tree = read_tree(&a.path().join("events"));
    assert_eq!(tree, read_tree(&b.path().join("events")));
    assert!(
        tree.keys().all(|k| k.contains("/gen-7-")),
        "{:?}",
        tree.keys()
    );

    let late: HashMap<&str, DateTime<Utc>> = ta
        .pools
        .iter()
        .filter(|p| p.first_hour > 0)
        .map(|p| {
            (
                p.pool_id.as_str(),
                ta.start + chrono::Duration::hours(i64::from(p.first_hour)),
            )
        })
        .collect();
    assert_eq!(late.len(), 45);
    for e in events(&a.path().join("events")) {
        if let Some(first) = late.get(e.pool_id.as_str()) {
            assert!(e.finished_at >= *first, "{e:?} before {first}");
        }
    }
}

#[test]
fn the_binary_refuses_a_scenario_stream() {
    let exe = env!("CARGO_BIN_EXE_event-generator");
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["--scenario", "regime-change", "--rate", "10"][..],
            "--scenario regime-change simulates a backfill",
        ),
        (
            &["--scenario", "stationary", "--pools", "3"],
            "cannot be used with",
        ),
        (&["--scenario", "sunny"], "invalid value 'sunny'"),
        (
            &["--scenario", "stationary", "--hours", "2.5"],
            "whole number",
        ),
    ] {
        let out = Command::new(exe)
            .args(args)
            .env("GENERATOR_SINK", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
