//! The live view as time passes: new objects read once, redeliveries counted once, the live hours
//! moving on, changes that reload the view, flat layouts, and storage failing under it. Time is the
//! test's: each refresh is told what time it is.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use pool_core::window::Window;
use pool_history::compact::Shard;
use pool_history::live::{LiveView, NoViewObserver};
use pool_storage::StorageArgs;
use testkit::{event, write_partitioned};

use crate::rollups::{
    POOLS, assert_same, compact, folder, query, raw, totals, view_at, view_options, view_tallies,
};

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, h, m, s).unwrap()
}

#[tokio::test]
async fn new_objects_in_the_live_hours_are_read_once_and_redeliveries_count_once() {
    let (_dir, storage) = folder();
    let now = at(10, 57, 30);
    let first: Vec<_> = (0..10)
        .map(|i| event(at(9, 40, i), &format!("a-{i}"), POOLS[0], "ok"))
        .chain((0..6).map(|i| event(at(10, 50, i), &format!("b-{i}"), POOLS[1], "spot")))
        .collect();
    write_partitioned(&storage, "first", &first).await;
    let view = view_at(&storage, now).await;
    let raw = raw(&storage);
    let q = |now| pool_history::Query {
        window: Window::ALL,
        ..pool_history::Query::everything(now)
    };
    assert_eq!(totals(&view).objects, 2, "one object per hour");
    assert_same(&raw, &view, &q(now)).await;
    let version = view.version().unwrap();

    // Nothing new: nothing read, nothing changed.
    view.refresh(now + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(totals(&view).objects, 2);
    assert_eq!(view.version(), Some(version));

    // A new object with three new events and two redelivered copies; one event stamped a few
    // minutes ahead, in the next hour (within the allowed clock skew).
    let mut second: Vec<_> = (0..3)
        .map(|i| event(at(10, 55, i), &format!("c-{i}"), POOLS[2], "ok"))
        .collect();
    second.extend(first[10..12].iter().cloned());
    second.push(event(at(11, 0, 30), "ahead", POOLS[2], "spot"));
    write_partitioned(&storage, "second", &second).await;
    view.refresh(now + chrono::Duration::seconds(2))
        .await
        .unwrap();
    let t = totals(&view);
    assert_eq!(t.objects, 4, "the new objects only: {t:?}");
    assert_eq!(t.duplicates, 2, "{t:?}");
    assert_same(&raw, &view, &q(now)).await;
    assert!(view.version().unwrap() > version);
    let counted = view_tallies(&view, &q(now));
    assert_eq!(counted[POOLS[1]].jobs, 6, "redelivered copies count once");
    assert_eq!(counted[POOLS[2]].jobs, 4);
    assert!(view.status().dedup_hashes >= 20);

    // Two hours later the first hours have left the live hours: their dedup state is dropped, their
    // counts stay.
    let later = at(13, 5, 0);
    view.refresh(later).await.unwrap();
    assert_eq!(view.status().dedup_hashes, 0, "{:?}", view.status());
    assert_same(&raw, &view, &q(later)).await;
}

#[tokio::test]
async fn a_new_object_that_sorts_before_the_ones_read_is_read_on_the_next_refresh() {
    // The generator's `gen-…` objects and then the ingest-worker's time-ordered UUID names in the same
    // open hour: the UUID sorts before `gen-…`, so listing on from the newest key read would miss it.
    let (_dir, storage) = folder();
    let now = at(10, 57, 30);
    let first: Vec<_> = (0..4)
        .map(|i| event(at(10, 40, i), &format!("a-{i}"), POOLS[0], "ok"))
        .collect();
    write_partitioned(&storage, "gen-1", &first).await;
    let view = view_at(&storage, now).await;
    assert_eq!(totals(&view).objects, 1);
    let second: Vec<_> = (0..3)
        .map(|i| event(at(10, 57, i), &format!("b-{i}"), POOLS[0], "spot"))
        .collect();
    write_partitioned(&storage, "019af3c2-1a00-7abc-8000-000000000000", &second).await;
    view.refresh(now + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(totals(&view).objects, 2, "{:?}", totals(&view));
    let q = pool_history::Query {
        window: Window::ALL,
        ..pool_history::Query::everything(now)
    };
    assert_eq!(view_tallies(&view, &q)[POOLS[0]].jobs, 7);
    assert_same(&raw(&storage), &view, &q).await;
}

#[tokio::test]
async fn windows_are_exact_to_the_minute_up_to_an_hour_and_to_the_hour_beyond() {
    let (_dir, storage) = folder();
    let now = at(10, 30, 45);
    // One job a minute from 08:00 to 10:30.
    let events: Vec<_> = (0..151)
        .map(|i| {
            let t = at(8, 0, 0) + chrono::Duration::minutes(i);
            event(
                t,
                &format!("m-{i}"),
                POOLS[0],
                if i % 10 == 0 { "spot" } else { "ok" },
            )
        })
        .collect();
    write_partitioned(&storage, "minutes", &events).await;
    let view = view_at(&storage, now).await;
    let raw = raw(&storage);
    let jobs = |window: &str| {
        let q = pool_history::Query {
            window: Window::parse("window", window).unwrap(),
            ..pool_history::Query::everything(now)
        };
        view_tallies(&view, &q)[POOLS[0]].jobs
    };
    // 30 minutes before 10:30 (the current minute's start): 10:00 … 10:30.
    assert_eq!(jobs("30m"), 31);
    assert_eq!(jobs("90s"), 3, "rounded up to 2 minutes: 10:28 … 10:30");
    assert_eq!(jobs("1h"), 61);
    // Beyond an hour: whole hours before the current hour's start: 2h → from 08:00.
    assert_eq!(jobs("2h"), 151);
    for w in ["30m", "1h", "61m", "2h"] {
        let q = pool_history::Query {
            window: Window::parse("window", w).unwrap(),
            ..pool_history::Query::everything(now)
        };
        assert_same(&raw, &view, &q).await;
    }
}

#[tokio::test]
async fn a_change_older_than_the_hour_cells_reloads_the_view() {
    let (_dir, storage) = folder();
    let now = at(10, 30, 0);
    // Three jobs a day per pool for 70 days.
    let events: Vec<_> = (0..70)
        .flat_map(|d| {
            POOLS.iter().enumerate().flat_map(move |(p, pool)| {
                (0..3).map(move |j| {
                    let t = now - chrono::Duration::days(d) - chrono::Duration::hours(3 * j + 1);
                    event(
                        t,
                        &format!("d{d}-{p}-{j}"),
                        pool,
                        if j == 0 { "spot" } else { "ok" },
                    )
                })
            })
        })
        .collect();
    write_partitioned(&storage, "history", &events).await;
    compact(&storage, Shard::default()).await;
    let view = view_at(&storage, now).await;
    let raw = raw(&storage);
    let q = query(Window::ALL, Some(Duration::from_secs(7 * 86_400)));
    assert_same(&raw, &view, &q).await;

    // A late object 68 days back in an hour that has events already: beyond the hour cells, so that
    // hour cannot be replaced alone and the view reloads (within the refresh loop) and answers like raw.
    let old = now - chrono::Duration::days(68) - chrono::Duration::hours(1);
    write_partitioned(
        &storage,
        "very-late",
        &[event(old, "very-late", POOLS[3], "spot")],
    )
    .await;
    view.refresh(now + chrono::Duration::seconds(61))
        .await
        .unwrap();
    view.refresh(now + chrono::Duration::seconds(62))
        .await
        .unwrap();
    assert_eq!(totals(&view).rebuilds, 1, "{:?}", totals(&view));
    assert_same(&raw, &view, &q).await;
    // The longest windows are exact to the day.
    let q = query(Window::from_secs(69 * 86_400), None);
    assert_eq!(q.window.grain(), Some(pool_core::window::Grain::Day));
    assert_same(&raw, &view, &q).await;
}

#[tokio::test]
async fn flat_folders_and_the_seeds_single_object_are_followed_too() {
    let dir = tempfile::tempdir().unwrap();
    let now = at(10, 30, 0);
    let write = |name: &str, events: &[pool_core::Event]| {
        let body: String = events.iter().map(|e| e.to_json() + "\n").collect();
        std::fs::write(dir.path().join(name), body).unwrap();
    };
    let some = |tag: &str, n: i64| -> Vec<pool_core::Event> {
        (0..n)
            .map(|i| {
                event(
                    now - chrono::Duration::hours(i),
                    &format!("{tag}-{i}"),
                    POOLS[(i % 3) as usize],
                    "ok",
                )
            })
            .collect()
    };
    write("a.json", &some("a", 20));
    let storage = StorageArgs::for_url(dir.path().to_str().unwrap())
        .open()
        .unwrap();
    let view = view_at(&storage, now).await;
    let raw = raw(&storage);
    let q = query(Window::ALL, None);
    assert_same(&raw, &view, &q).await;
    // A new object is read on the next refresh, alone.
    write("b.json", &some("b", 5));
    view.refresh(now + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_same(&raw, &view, &q).await;
    assert_eq!(totals(&view).objects, 2);
    // An object rewritten in place (the seed's single file grows) reloads the view.
    write("a.json", &some("a", 30));
    view.refresh(now + chrono::Duration::seconds(2))
        .await
        .unwrap();
    view.refresh(now + chrono::Duration::seconds(3))
        .await
        .unwrap();
    assert_same(&raw, &view, &q).await;
    assert_eq!(totals(&view).rebuilds, 1);

    // The seed's layout: one object.
    let file = dir.path().join("a.json");
    let single = StorageArgs::for_url(file.to_str().unwrap()).open().unwrap();
    assert!(single.single_object);
    let view = view_at(&single, now).await;
    assert_same(&crate::rollups::raw(&single), &view, &q).await;
}

#[tokio::test]
async fn storage_failing_under_a_loaded_view_leaves_it_answering() {
    let bucket = testkit::new_bucket("live-down").await;
    let storage = testkit::s3_args(&bucket, "events/").open().unwrap();
    let now = at(10, 30, 0);
    let events: Vec<_> = (0..30)
        .map(|i| {
            event(
                now - chrono::Duration::minutes(i * 7),
                &format!("j-{i}"),
                POOLS[i as usize % 2],
                "ok",
            )
        })
        .collect();
    write_partitioned(&storage, "batch", &events).await;
    let view = Arc::new(LiveView::new(
        storage.clone(),
        view_options(),
        Arc::new(NoViewObserver),
    ));
    view.refresh(now).await.unwrap();
    let q = query(Window::from_secs(6 * 3600), None);
    let before = view_tallies(&view, &q);
    assert_eq!(before.values().map(|t| t.jobs).sum::<u64>(), 30);

    // The bucket goes away: refreshes fail, the view keeps its answers and says it is failing.
    testkit::delete_bucket(&bucket).await;
    let err = view
        .refresh(now + chrono::Duration::seconds(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, pool_history::QueryError::Storage { .. }),
        "{err:?}"
    );
    let status = view.status();
    assert!(status.failing && status.loaded, "{status:?}");
    assert_eq!(status.refreshed_at, Some(now), "the last success");
    assert_eq!(view_tallies(&view, &q), before, "still answering");
}
