//! Rollups against raw events: the same answers for every window, filter and weighting, over generated
//! histories with redeliveries, malformed objects, late objects, racing compactors and day merges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use pool_core::event::{AvailabilityZone, InstanceType, Partition};
use pool_core::storage::{Storage, StorageArgs};
use pool_core::window::Window;
use pool_history::compact::{CompactOptions, Compactor, PassReport, Shard};
use pool_history::scan::NoObserver;
use pool_history::{EventSource, Query, SourceOptions, Tally};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use testkit::{event, write_partitioned};

const POOLS: [&str; 6] = [
    "pool-c6a.xlarge-us-east-1a",
    "pool-c6a.xlarge-us-east-1b",
    "pool-m6a.xlarge-us-east-1a",
    "pool-m6a.xlarge-us-east-1c",
    "pool-r6a.large-us-west-2a",
    "pool-c7i.metal-24xl-us-west-2b",
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap()
}

/// `hours` hours of history before `now()`: every pool gets a random number of jobs per hour with its
/// own termination rate; about one hour in five gets a second object repeating part of the first
/// (redelivery), and one hour gets a malformed object.
async fn generate(storage: &Storage, seed: u64, hours: i64) -> usize {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = now() - chrono::Duration::hours(hours);
    let mut total = 0;
    for h in 0..=hours {
        let hour_start = start + chrono::Duration::hours(h);
        let hour_start = hour_start - chrono::Duration::seconds(hour_start.timestamp() % 3600);
        let mut events = vec![];
        for (i, pool) in POOLS.iter().enumerate() {
            let rate = 0.02 + 0.05 * i as f64;
            for j in 0..rng.random_range(0..12) {
                let at =
                    hour_start + chrono::Duration::milliseconds(rng.random_range(0..3_600_000));
                if at >= now() {
                    continue;
                }
                let outcome = if rng.random_bool(rate) {
                    "spot"
                } else if rng.random_bool(0.05) {
                    "TIMED_OUT"
                } else {
                    "ok"
                };
                events.push(event(at, &format!("job-{h}-{i}-{j}"), pool, outcome));
            }
        }
        total += events.len();
        write_partitioned(storage, &format!("batch-{h}"), &events).await;
        if rng.random_bool(0.2) && events.len() > 2 {
            write_partitioned(
                storage,
                &format!("redelivered-{h}"),
                &events[..events.len() / 2],
            )
            .await;
        }
    }
    // A malformed object in an old hour: one good line, one truncated, one with a bad pool id.
    let p = Partition::of(&(now() - chrono::Duration::hours(hours / 2)));
    let good = event(
        now() - chrono::Duration::hours(hours / 2),
        "malformed-neighbour",
        POOLS[0],
        "ok",
    );
    let body = format!(
        "{}\n{{\"finished_at\":\"2026-\n{{\"finished_at\":\"{}\",\"job_id\":\"x\",\"pool_id\":\"nope\",\"status\":\"SUCCEEDED\",\"reason\":\"\"}}\n",
        good.to_json(),
        good.to_json().split('"').nth(3).unwrap()
    );
    storage
        .put(
            &storage.object_path(&p, "malformed"),
            body.into_bytes().into(),
        )
        .await
        .unwrap();
    total + 1
}

fn folder() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageArgs::for_url(dir.path().to_str().unwrap())
        .open()
        .unwrap();
    (dir, storage)
}

fn source(storage: &Storage, use_rollups: bool) -> Arc<EventSource> {
    Arc::new(EventSource::new(
        storage.clone(),
        SourceOptions {
            use_rollups,
            // Tests relist explicitly (`invalidate`), standing in for the periodic recheck.
            listing_max_age: Duration::from_secs(3600),
            ..SourceOptions::default()
        },
        Arc::new(NoObserver),
    ))
}

async fn compact(storage: &Storage, shard: Shard) -> PassReport {
    let compactor = Compactor::new(
        source(storage, false),
        CompactOptions {
            settle: Duration::from_secs(600),
            shard,
            concurrency: 2,
        },
    );
    compactor.run_once(now(), &|_, _| {}).await.unwrap()
}

fn query(window: Window, half_life: Option<Duration>) -> Query {
    Query {
        window,
        half_life,
        ..Query::everything(now())
    }
}

async fn tallies(
    src: &Arc<EventSource>,
    q: &Query,
) -> (HashMap<String, Tally>, pool_history::ScanReport) {
    let t = src.tally(q).await.unwrap();
    (
        t.pools
            .into_iter()
            .map(|(p, t)| (p.as_str().to_owned(), t))
            .collect(),
        t.report,
    )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3 * a.abs().max(b.abs()) + 1e-300
}

/// The rollup-backed answer equals the raw one: counts exactly, weighted sums within 0.1 %.
async fn assert_same(
    raw: &Arc<EventSource>,
    rolled: &Arc<EventSource>,
    q: &Query,
) -> pool_history::ScanReport {
    let (a, _) = tallies(raw, q).await;
    let (b, report) = tallies(rolled, q).await;
    assert_eq!(
        a.keys().collect::<std::collections::BTreeSet<_>>(),
        b.keys().collect::<std::collections::BTreeSet<_>>(),
        "same pools for {q:?}"
    );
    for (pool, x) in &a {
        let y = &b[pool];
        let what = format!("{pool} for {q:?}: raw {x:?} rollups {y:?}");
        assert_eq!(x.jobs, y.jobs, "{what}");
        assert_eq!(x.spot_terminations, y.spot_terminations, "{what}");
        assert_eq!(x.other_failures, y.other_failures, "{what}");
        assert_eq!(x.last_event_micros, y.last_event_micros, "{what}");
        assert_eq!(x.first_event_micros, y.first_event_micros, "{what}");
        assert!(close(x.weight, y.weight), "weight {what}");
        assert!(close(x.weight_sq, y.weight_sq), "weight² {what}");
        assert!(
            close(x.weighted_terminations, y.weighted_terminations),
            "terminations {what}"
        );
        assert!(close(x.rate(), y.rate()), "rate {what}");
    }
    report
}

#[tokio::test]
async fn rollups_answer_exactly_like_raw_events_for_random_queries() {
    let (_dir, storage) = folder();
    generate(&storage, 7, 80).await;
    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(pass.errors, 0);
    assert!(pass.hours_compacted >= 70, "{pass:?}");
    assert!(pass.days_merged >= 3, "closed days merged: {pass:?}");
    assert_eq!(pass.pending_hours, 0);

    let raw = source(&storage, false);
    let rolled = source(&storage, true);
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let types: Vec<InstanceType> = ["c6a.xlarge", "m6a.xlarge", "r6a.large", "c7i.metal-24xl"]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    let zones: Vec<AvailabilityZone> = ["us-east-1a", "us-east-1b", "us-west-2a"]
        .iter()
        .map(|z| z.parse().unwrap())
        .collect();
    let mut rollup_hours_seen = 0;
    for i in 0..60 {
        let window = if i % 6 == 0 {
            Window::ALL
        } else {
            Window::from_secs(rng.random_range(60..100 * 3600))
        };
        let half_life = match rng.random_range(0..4) {
            0 => None,
            1 => Some(Duration::from_secs(3600)),
            2 => Some(Duration::from_secs(rng.random_range(3600..48 * 3600))),
            _ => Some(Duration::from_secs(30 * 86_400)),
        };
        let mut q = query(window, half_life);
        q.instance_types = types
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .cloned()
            .collect();
        q.zones = zones
            .iter()
            .filter(|_| rng.random_bool(0.3))
            .cloned()
            .collect();
        let report = assert_same(&raw, &rolled, &q).await;
        rollup_hours_seen += report.rollup_hours;
        if window == Window::ALL {
            assert!(report.rollup_hours >= 70, "{report:?}");
            assert!(
                report.raw_hours <= 2,
                "only the open and settling hours are raw: {report:?}"
            );
        }
    }
    assert!(rollup_hours_seen > 1000);
    // A half-life under an hour is beyond the rollups' precision: read raw, still the same answer.
    let report = assert_same(
        &raw,
        &rolled,
        &query(Window::ALL, Some(Duration::from_secs(600))),
    )
    .await;
    assert_eq!(report.rollup_hours, 0);

    // A year of history is a few hundred objects: closed days are one file each, no hourly leftovers.
    let keys: Vec<String> = storage
        .store
        .list(Some(&storage.root.clone().join("_rollups")))
        .map(|m| m.unwrap().location.to_string())
        .collect::<Vec<_>>()
        .await;
    let days = keys.iter().filter(|k| k.ends_with("day.parquet")).count();
    let hours = keys.iter().filter(|k| k.contains("/hr=")).count();
    assert!(days >= 3, "{keys:?}");
    assert!(hours <= 24, "only today's hours stay hourly: {keys:?}");

    // Running again does nothing: everything is up to date.
    let again = compact(&storage, Shard::default()).await;
    assert_eq!(
        (again.hours_compacted, again.days_merged, again.errors),
        (0, 0, 0),
        "{again:?}"
    );
}

use futures::StreamExt;

#[tokio::test]
async fn a_late_object_in_a_compacted_hour_is_read_raw_until_compacted_again() {
    let (_dir, storage) = folder();
    generate(&storage, 3, 50).await;
    compact(&storage, Shard::default()).await;
    let raw = source(&storage, false);
    let rolled = source(&storage, true);
    let q = query(Window::ALL, Some(Duration::from_secs(6 * 3600)));
    let before = assert_same(&raw, &rolled, &q).await;

    // A late delivery lands in an hour of a day that is already merged.
    let late_at = now() - chrono::Duration::hours(40);
    let late: Vec<_> = (0..50)
        .map(|i| event(late_at, &format!("late-{i}"), POOLS[2], "spot"))
        .collect();
    write_partitioned(&storage, "late", &late).await;
    rolled.catalog().invalidate();
    let after = assert_same(&raw, &rolled, &q).await;
    assert_eq!(after.raw_hours, before.raw_hours + 1, "{after:?}");
    let (t, _) = tallies(&rolled, &q).await;
    let (t0, _) = tallies(&raw, &q).await;
    assert_eq!(
        t[POOLS[2]].spot_terminations,
        t0[POOLS[2]].spot_terminations
    );

    // The next pass compacts that hour again and re-merges its day.
    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(
        (pass.hours_compacted, pass.days_merged, pass.errors),
        (1, 1, 0),
        "{pass:?}"
    );
    rolled.catalog().invalidate();
    let healed = assert_same(&raw, &rolled, &q).await;
    assert_eq!(healed.raw_hours, before.raw_hours);
}

#[tokio::test]
async fn two_compactors_at_once_and_sharded_compactors_agree_with_raw() {
    let (_dir, storage) = folder();
    generate(&storage, 5, 75).await;
    let raw = source(&storage, false);
    let rolled = source(&storage, true);

    // Two shards: each takes its own hours; together they cover everything.
    let half = compact(&storage, Shard { index: 0, count: 2 }).await;
    assert!(
        half.hours_compacted > 20 && half.hours_compacted < 55,
        "{half:?}"
    );
    let q = query(Window::from_secs(70 * 3600), None);
    let partial = assert_same(&raw, &rolled, &q).await;
    assert!(
        partial.rollup_hours > 0 && partial.raw_hours > 10,
        "{partial:?}"
    );

    // Two full compactors racing over the rest.
    let (a, b) = tokio::join!(
        compact(&storage, Shard::default()),
        compact(&storage, Shard::default())
    );
    assert_eq!((a.errors, b.errors), (0, 0), "{a:?} {b:?}");
    // Whatever order their writes landed in, one more pass settles the day merges.
    compact(&storage, Shard::default()).await;
    rolled.catalog().invalidate();
    for half_life in [None, Some(Duration::from_secs(7200))] {
        let q = query(Window::ALL, half_life);
        let report = assert_same(&raw, &rolled, &q).await;
        assert!(report.raw_hours <= 2, "{report:?}");
    }
}

#[tokio::test]
async fn rollups_on_s3_match_raw_events() {
    let bucket = testkit::new_bucket("rollups").await;
    let storage = testkit::s3_args(&bucket, "events/").open().unwrap();
    generate(&storage, 9, 30).await;
    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(pass.errors, 0);
    assert!(pass.hours_compacted >= 25, "{pass:?}");
    let raw = source(&storage, false);
    let rolled = source(&storage, true);
    for window in [Window::ALL, Window::from_secs(7 * 3600)] {
        let report = assert_same(
            &raw,
            &rolled,
            &query(window, Some(Duration::from_secs(3600))),
        )
        .await;
        assert!(report.rollup_hours > 0, "{report:?}");
    }
}

#[tokio::test]
async fn objects_split_into_byte_ranges_count_every_line_once_and_skip_bad_ones() {
    // Over DataFusion's 10 MiB threshold, so the object is read as byte ranges on several cores; a bad
    // line sits in the middle.
    let (_dir, storage) = folder();
    let at = now() - chrono::Duration::minutes(20);
    let mut body = String::new();
    let n = 70_000;
    for i in 0..n {
        let e = event(
            at,
            &format!("job-{i:08}-{}", "x".repeat(60)),
            POOLS[i % POOLS.len()],
            if i % 10 == 0 { "spot" } else { "ok" },
        );
        body.push_str(&e.to_json());
        body.push('\n');
        if i == n / 2 {
            body.push_str("{\"finished_at\":\"2026-11-22T10:\n");
        }
    }
    assert!(body.len() > 12 << 20, "{} bytes", body.len());
    storage
        .put(
            &storage.object_path(&Partition::of(&at), "big"),
            body.into_bytes().into(),
        )
        .await
        .unwrap();
    let raw = source(&storage, false);
    let t = raw.tally(&query(Window::ALL, None)).await.unwrap();
    let jobs: u64 = t.pools.iter().map(|(_, t)| t.jobs).sum();
    let spot: u64 = t.pools.iter().map(|(_, t)| t.spot_terminations).sum();
    assert_eq!(jobs, n as u64, "{:?}", t.report);
    assert_eq!(spot, (n as u64).div_ceil(10));
    assert_eq!(t.report.skipped_lines, 1, "{:?}", t.report);
    assert_eq!(t.report.duplicates, 0);
    assert_eq!(t.report.objects, 1);
}
