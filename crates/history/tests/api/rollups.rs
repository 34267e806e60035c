//! The live view (loaded from rollups and raw objects) against raw events: the same answers for every
//! window, filter and weighting, over generated histories with redeliveries, malformed objects, late
//! objects, racing compactors and day merges.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::StreamExt;
use pool_core::Event;
use pool_core::event::{AvailabilityZone, InstanceType, Outcome, Partition};
use pool_core::window::Window;
use pool_history::compact::{CompactOptions, Compactor, PassReport, Shard};
use pool_history::live::{LiveView, NoViewObserver, ReadTotals, ViewOptions};
use pool_history::scan::NoObserver;
use pool_history::{EventSource, HourCount, Query, SourceOptions, Tally};
use pool_storage::{Storage, StorageArgs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use testkit::{event, write_partitioned};

pub const POOLS: [&str; 6] = [
    "pool-c6a.xlarge-us-east-1a",
    "pool-c6a.xlarge-us-east-1b",
    "pool-m6a.xlarge-us-east-1a",
    "pool-m6a.xlarge-us-east-1c",
    "pool-r6a.large-us-west-2a",
    "pool-c7i.metal-24xl-us-west-2b",
];

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 0).unwrap()
}

/// `hours` hours of history before `now()`: every pool gets a random number of jobs per hour with its
/// own termination rate; about one hour in five gets a second object repeating part of the first
/// (redelivery), and one hour gets a malformed object. Returns the distinct valid events written
/// (each once, however often it was delivered).
pub async fn generate(storage: &Storage, seed: u64, hours: i64) -> Vec<Event> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let start = now() - chrono::Duration::hours(hours);
    let mut written = vec![];
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
        write_partitioned(storage, &format!("batch-{h}"), &events).await;
        if rng.random_bool(0.2) && events.len() > 2 {
            write_partitioned(
                storage,
                &format!("redelivered-{h}"),
                &events[..events.len() / 2],
            )
            .await;
        }
        written.extend(events);
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
    written.push(good);
    written
}

pub fn folder() -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageArgs::for_url(dir.path().to_str().unwrap())
        .open()
        .unwrap();
    (dir, storage)
}

/// The reference: every answer read from the raw events.
pub fn raw(storage: &Storage) -> Arc<EventSource> {
    Arc::new(EventSource::new(
        storage.clone(),
        SourceOptions::default(),
        Arc::new(NoObserver),
    ))
}

/// View options for tests: the relist (60 s) and the rollup recheck (10 s) happen when a test's clock
/// says so.
pub fn view_options() -> ViewOptions {
    ViewOptions {
        rollup_recheck: Duration::from_secs(10),
        relist_interval: Duration::from_secs(60),
        read_concurrency: 4,
        read_partitions: 2,
        ..ViewOptions::default()
    }
}

/// A live view over `storage`, loaded as of `at`.
pub async fn view_at(storage: &Storage, at: DateTime<Utc>) -> LiveView {
    let view = LiveView::new(storage.clone(), view_options(), Arc::new(NoViewObserver));
    view.refresh(at).await.expect("the view loads");
    view
}

pub fn totals(view: &LiveView) -> ReadTotals {
    view.status().totals
}

pub async fn compact(storage: &Storage, shard: Shard) -> PassReport {
    let compactor = Compactor::new(
        raw(storage),
        CompactOptions {
            settle: Duration::from_secs(600),
            shard,
            concurrency: 2,
        },
    );
    compactor.run_once(now(), &|_, _| {}).await.unwrap()
}

pub fn query(window: Window, half_life: Option<Duration>) -> Query {
    Query {
        window,
        half_life,
        ..Query::everything(now())
    }
}

pub async fn tallies(src: &Arc<EventSource>, q: &Query) -> HashMap<String, Tally> {
    let t = src.tally(q).await.unwrap();
    t.pools
        .into_iter()
        .map(|(p, t)| (p.as_str().to_owned(), t))
        .collect()
}

pub fn view_tallies(view: &LiveView, q: &Query) -> HashMap<String, Tally> {
    let (_, pools) = view.tally(q).expect("loaded");
    pools
        .into_iter()
        .map(|(p, t)| (p.as_str().to_owned(), t))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-3 * a.abs().max(b.abs()) + 1e-300
}

/// The view's answer equals the raw one: counts, first and last event and the hourly series exactly,
/// weighted sums within 0.1 %.
pub async fn assert_same(raw: &Arc<EventSource>, view: &LiveView, q: &Query) {
    let a = tallies(raw, q).await;
    let b = view_tallies(view, q);
    assert_eq!(
        a.keys().collect::<std::collections::BTreeSet<_>>(),
        b.keys().collect::<std::collections::BTreeSet<_>>(),
        "same pools for {q:?}"
    );
    for (pool, x) in &a {
        let y = &b[pool];
        let what = format!("{pool} for {q:?}: raw {x:?} view {y:?}");
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
        assert_eq!(trimmed(&x.hourly), trimmed(&y.hourly), "hourly {what}");
    }
}

/// Random windows (each exact to its grain), filters, half-lives and hourly series.
fn random_queries(seed: u64, n: usize) -> Vec<Query> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let types: Vec<InstanceType> = ["c6a.xlarge", "m6a.xlarge", "r6a.large", "c7i.metal-24xl"]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    let zones: Vec<AvailabilityZone> = ["us-east-1a", "us-east-1b", "us-west-2a"]
        .iter()
        .map(|z| z.parse().unwrap())
        .collect();
    (0..n)
        .map(|i| {
            let window = match i % 6 {
                0 => Window::ALL,
                1 => Window::from_secs(rng.random_range(60..3600)),
                _ => Window::from_secs(rng.random_range(60..100 * 3600)),
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
            if i % 3 == 0 {
                q.series_from = Some(hour_of(now()) - chrono::Duration::hours(71));
            }
            q
        })
        .collect()
}

#[tokio::test]
async fn the_view_answers_exactly_like_raw_events_before_and_after_compaction() {
    let (_dir, storage) = folder();
    generate(&storage, 7, 80).await;
    let raw = raw(&storage);
    let queries = random_queries(11, 60);

    // Nothing compacted: every hour read raw.
    let fresh = view_at(&storage, now()).await;
    assert_eq!(totals(&fresh).rollup_hours, 0);
    for q in &queries {
        assert_same(&raw, &fresh, q).await;
    }

    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(pass.errors, 0);
    assert!(pass.hours_compacted >= 70, "{pass:?}");
    assert!(pass.days_merged >= 3, "closed days merged: {pass:?}");
    assert_eq!(pass.pending_hours, 0);

    // Loaded from rollups: closed hours from them, the live hours (previous and current) raw.
    let view = view_at(&storage, now()).await;
    let t = totals(&view);
    assert!(t.rollup_hours >= 70, "{t:?}");
    assert!(t.raw_hours <= 2, "only the live hours are raw: {t:?}");
    for q in &queries {
        assert_same(&raw, &view, q).await;
    }

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

#[tokio::test]
async fn a_late_object_in_a_compacted_hour_replaces_that_hour_and_the_next_rollup_agrees() {
    let (_dir, storage) = folder();
    generate(&storage, 3, 50).await;
    compact(&storage, Shard::default()).await;
    let raw = raw(&storage);
    let view = view_at(&storage, now()).await;
    let q = query(Window::ALL, Some(Duration::from_secs(6 * 3600)));
    assert_same(&raw, &view, &q).await;

    // A late delivery lands in an hour of a day that is already merged, with a redelivered copy of one
    // of its own events.
    let late_at = now() - chrono::Duration::hours(40);
    let mut late: Vec<_> = (0..50)
        .map(|i| event(late_at, &format!("late-{i}"), POOLS[2], "spot"))
        .collect();
    late.push(late[0].clone());
    write_partitioned(&storage, "late", &late).await;
    let before = view_tallies(&view, &q)[POOLS[2]].clone();
    // Not listed yet: the view still answers as before.
    view.refresh(now() + chrono::Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(view_tallies(&view, &q)[POOLS[2]].jobs, before.jobs);
    // The relist finds it: the hour is read again whole and replaces what the view held.
    view.refresh(now() + chrono::Duration::seconds(61))
        .await
        .unwrap();
    assert_same(&raw, &view, &q).await;
    assert_eq!(view_tallies(&view, &q)[POOLS[2]].jobs, before.jobs + 50);
    assert_eq!(totals(&view).replaced_hours, 1);
    assert_eq!(totals(&view).rebuilds, 0);

    // The next pass compacts that hour again and re-merges its day; the view agrees with it as is.
    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(
        (pass.hours_compacted, pass.days_merged, pass.errors),
        (1, 1, 0),
        "{pass:?}"
    );
    view.refresh(now() + chrono::Duration::seconds(200))
        .await
        .unwrap();
    assert_same(&raw, &view, &q).await;
    assert_eq!(totals(&view).replaced_hours, 1, "nothing to replace");
    // A view started now loads that hour from the new rollup, with the same answer.
    let restarted = view_at(&storage, now()).await;
    assert_same(&raw, &restarted, &q).await;
}

#[tokio::test]
async fn two_compactors_at_once_and_sharded_compactors_agree_with_raw() {
    let (_dir, storage) = folder();
    generate(&storage, 5, 75).await;
    let raw = raw(&storage);

    // Two shards: each takes its own hours; together they cover everything.
    let half = compact(&storage, Shard { index: 0, count: 2 }).await;
    assert!(
        half.hours_compacted > 20 && half.hours_compacted < 55,
        "{half:?}"
    );
    let q = query(Window::from_secs(70 * 3600), None);
    let partial = view_at(&storage, now()).await;
    assert_same(&raw, &partial, &q).await;
    let t = totals(&partial);
    assert!(t.rollup_hours > 0 && t.raw_hours > 10, "{t:?}");

    // Two full compactors racing over the rest.
    let (a, b) = tokio::join!(
        compact(&storage, Shard::default()),
        compact(&storage, Shard::default())
    );
    assert_eq!((a.errors, b.errors), (0, 0), "{a:?} {b:?}");
    // Whatever order their writes landed in, one more pass settles the day merges.
    compact(&storage, Shard::default()).await;
    let view = view_at(&storage, now()).await;
    for half_life in [None, Some(Duration::from_secs(7200))] {
        assert_same(&raw, &view, &query(Window::ALL, half_life)).await;
    }
    assert!(totals(&view).raw_hours <= 2, "{:?}", totals(&view));
    // The view that saw the partial state follows the rollups as they appear: same answers.
    partial
        .refresh(now() + chrono::Duration::seconds(11))
        .await
        .unwrap();
    for half_life in [None, Some(Duration::from_secs(7200))] {
        assert_same(&raw, &partial, &query(Window::ALL, half_life)).await;
    }
}

const HOUR_MICROS: i64 = 3_600_000_000;

/// The start of `t`'s hour.
pub fn hour_of(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc.timestamp_micros(t.timestamp_micros().div_euclid(HOUR_MICROS) * HOUR_MICROS)
        .unwrap()
}

/// The hourly series `q` asks for, computed directly from the distinct events written: per pool, the
/// jobs and spot terminations in the window, not in the future, from `series_from` on.
fn expected_hourly(events: &[Event], q: &Query) -> HashMap<String, Vec<HourCount>> {
    let from = q.series_from.expect("a series").timestamp_micros();
    let cutoff = q.cutoff().map_or(i64::MIN, |c| c.timestamp_micros());
    let mut out: HashMap<String, Vec<HourCount>> = HashMap::new();
    for e in events {
        let at = e.finished_at.timestamp_micros();
        if at < cutoff || at < from || at > q.horizon_micros() || !q.wants(&e.pool_id) {
            continue;
        }
        let i = ((at - from) / HOUR_MICROS) as usize;
        let series = out.entry(e.pool_id.as_str().to_owned()).or_default();
        if series.len() <= i {
            series.resize(i + 1, HourCount::default());
        }
        series[i].jobs += 1;
        if e.outcome == Outcome::SpotTermination {
            series[i].spot += 1;
        }
    }
    out
}

/// Without trailing empty hours (a series only grows as far as its last event).
pub fn trimmed(series: &[HourCount]) -> &[HourCount] {
    let n = series
        .iter()
        .rposition(|c| *c != HourCount::default())
        .map_or(0, |i| i + 1);
    &series[..n]
}

/// Every pool's `hourly` is the series computed from the events, never reaches past the horizon's
/// hour, and sums to the tally's counts when the series starts no later than the window.
fn assert_series(got: &HashMap<String, Tally>, q: &Query, events: &[Event]) {
    let want = expected_hourly(events, q);
    let from = q.series_from.unwrap();
    let from_micros = from.timestamp_micros();
    let max_len = if q.horizon_micros() >= from_micros {
        ((q.horizon_micros() - from_micros) / HOUR_MICROS + 1) as usize
    } else {
        0
    };
    let covers_window = match q.cutoff() {
        Some(c) => from <= hour_of(c),
        None => events.iter().all(|e| e.finished_at >= from),
    };
    for (pool, t) in got {
        let what = format!("{pool} for {q:?}");
        assert!(t.hourly.len() <= max_len, "past the horizon: {what}");
        let expected = want.get(pool).map_or(&[][..], |v| &v[..]);
        assert_eq!(trimmed(&t.hourly), trimmed(expected), "{what}");
        let jobs: u64 = t.hourly.iter().map(|c| u64::from(c.jobs)).sum();
        let spot: u64 = t.hourly.iter().map(|c| u64::from(c.spot)).sum();
        assert!(jobs <= t.jobs && spot <= t.spot_terminations, "{what}");
        if covers_window {
            assert_eq!(
                (jobs, spot),
                (t.jobs, t.spot_terminations),
                "the series holds every counted job: {what}"
            );
        }
    }
    for pool in want.keys() {
        assert!(got.contains_key(pool), "{pool} missing for {q:?}");
    }
}

#[tokio::test]
async fn hourly_series_count_the_events_of_each_hour_from_raw_events_and_the_view() {
    let (_dir, storage) = folder();
    let mut events = generate(&storage, 13, 100).await;
    // Stamped a little ahead of the clock (within the allowed skew: counted) and far ahead (ignored):
    // the series stops at the horizon's hour.
    let ahead = vec![
        event(
            now() + chrono::Duration::minutes(2),
            "ahead-0",
            POOLS[1],
            "spot",
        ),
        event(
            now() + chrono::Duration::hours(30),
            "ahead-1",
            POOLS[1],
            "ok",
        ),
    ];
    write_partitioned(&storage, "ahead", &ahead).await;
    events.extend(ahead);

    let windows = [
        Window::ALL,
        Window::from_secs(110 * 3600),
        Window::from_secs(72 * 3600),
        Window::from_secs(30 * 3600 + 17 * 60),
        Window::from_secs(7 * 3600),
        Window::from_secs(50 * 60),
    ];
    let half_lives = [
        None,
        Some(Duration::from_secs(6 * 3600)),
        Some(Duration::from_secs(3600)),
    ];
    let m6a: InstanceType = "m6a.xlarge".parse().unwrap();
    let queries: Vec<Query> = windows
        .iter()
        .enumerate()
        .flat_map(|(i, &window)| {
            let q = query(window, None);
            let cutoff_hour = hour_of(q.cutoff().unwrap_or(now() - chrono::Duration::hours(110)));
            let starts = [
                hour_of(now() - chrono::Duration::hours(72)),
                cutoff_hour - chrono::Duration::hours(5),
                cutoff_hour,
                hour_of(now()) - chrono::Duration::hours(2),
                hour_of(now()) + chrono::Duration::hours(1),
            ];
            let m6a = m6a.clone();
            half_lives
                .iter()
                .enumerate()
                .flat_map(move |(j, &half_life)| {
                    let m6a = m6a.clone();
                    starts.into_iter().map(move |from| {
                        let mut q = query(window, half_life);
                        q.series_from = Some(from);
                        if (i + j) % 3 == 1 {
                            q.instance_types = vec![m6a.clone()];
                        }
                        q
                    })
                })
        })
        .collect();

    // Nothing compacted yet: every hour is raw, in the raw scan and in the view.
    let raw = raw(&storage);
    let fresh = view_at(&storage, now()).await;
    for q in &queries {
        assert_series(&tallies(&raw, q).await, q, &events);
        assert_series(&view_tallies(&fresh, q), q, &events);
    }
    let long = query(Window::ALL, None);
    assert!(
        tallies(&raw, &long)
            .await
            .values()
            .all(|t| t.hourly.is_empty()),
        "no series asked for, none kept"
    );
    assert!(
        view_tallies(&fresh, &long)
            .values()
            .all(|t| t.hourly.is_empty())
    );

    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(pass.errors, 0);
    assert!(pass.days_merged >= 3, "{pass:?}");
    let view = view_at(&storage, now()).await;
    assert!(totals(&view).rollup_hours >= 90, "{:?}", totals(&view));
    for q in &queries {
        assert_series(&view_tallies(&view, q), q, &events);
        assert_same(&raw, &view, q).await;
    }
    // The raw answers are unchanged by the compaction.
    for q in &queries {
        assert_series(&tallies(&raw, q).await, q, &events);
    }
}

#[tokio::test]
async fn the_view_over_s3_with_rollups_matches_raw_events() {
    let bucket = testkit::new_bucket("rollups").await;
    let storage = testkit::s3_args(&bucket, "events/").open().unwrap();
    generate(&storage, 9, 30).await;
    let pass = compact(&storage, Shard::default()).await;
    assert_eq!(pass.errors, 0);
    assert!(pass.hours_compacted >= 25, "{pass:?}");
    let raw = raw(&storage);
    let view = view_at(&storage, now()).await;
    assert!(totals(&view).rollup_hours >= 25, "{:?}", totals(&view));
    for window in [
        Window::ALL,
        Window::from_secs(7 * 3600),
        Window::from_secs(1800),
    ] {
        assert_same(&raw, &view, &query(window, Some(Duration::from_secs(3600)))).await;
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
    let t = raw(&storage)
        .tally(&query(Window::ALL, None))
        .await
        .unwrap();
    let jobs: u64 = t.pools.iter().map(|(_, t)| t.jobs).sum();
    let spot: u64 = t.pools.iter().map(|(_, t)| t.spot_terminations).sum();
    assert_eq!(jobs, n as u64, "{:?}", t.report);
    assert_eq!(spot, (n as u64).div_ceil(10));
    assert_eq!(t.report.skipped_lines, 1, "{:?}", t.report);
    assert_eq!(t.report.duplicates, 0);
    assert_eq!(t.report.objects, 1);
}
