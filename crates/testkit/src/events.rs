//! Valid job events for fixtures, and their hourly NDJSON objects.

use std::collections::{BTreeMap, HashSet};

use chrono::TimeZone;
use pool_core::Event;
use pool_core::event::ndjson::Partitioned;
use pool_storage::Storage;

/// Build a valid event: `outcome` is `"ok"`, `"spot"` or any other failure reason.
pub fn event(
    finished_at: chrono::DateTime<chrono::Utc>,
    job_id: &str,
    pool_id: &str,
    outcome: &str,
) -> Event {
    let (status, reason) = match outcome {
        "ok" => ("SUCCEEDED", ""),
        "spot" => ("FAILED", pool_core::event::SPOT_INSTANCE_TERMINATION),
        other => ("FAILED", other),
    };
    Event::new(
        finished_at,
        job_id.parse().expect("valid job id"),
        pool_id.parse().expect("valid pool id"),
        pool_core::Outcome::from_parts(status, reason).expect("consistent outcome"),
    )
}

/// `jobs` events for one pool, `spot` of them spot terminations, finishing `age` ago (spread over the
/// following minute so they stay in one hourly partition most of the time).
pub fn pool_events(pool_id: &str, jobs: usize, spot: usize, age: chrono::Duration) -> Vec<Event> {
    let base = chrono::Utc::now() - age;
    (0..jobs)
        .map(|i| {
            event(
                base + chrono::Duration::milliseconds(i as i64 % 60_000),
                &format!("{pool_id}-{}-{i}", base.timestamp_millis()),
                pool_id,
                if i < spot { "spot" } else { "ok" },
            )
        })
        .collect()
}

/// [`pool_events`] for several pools at once: `(pool_id, jobs, spot, age)` each.
pub fn fleet_events(pools: &[(&str, usize, usize, chrono::Duration)]) -> Vec<Event> {
    pools
        .iter()
        .flat_map(|&(pool, jobs, spot, age)| pool_events(pool, jobs, spot, age))
        .collect()
}

/// Write events as hive-partitioned NDJSON objects named `<name>`, one per hourly partition.
pub async fn write_partitioned(storage: &Storage, name: &str, events: &[Event]) {
    storage
        .put_partitioned(name, Partitioned::of(events))
        .await
        .expect("writing test events");
}

/// Serialize events as NDJSON.
pub fn ndjson(events: &[Event]) -> String {
    events.iter().map(|e| e.to_json() + "\n").collect()
}

/// `n` valid events with job ids `<prefix>-<i>`, spread over `hours` hourly partitions from
/// 2026-11-22T00:00Z and 6 pools (odd names included), every 7th a spot termination.
pub fn spread_events(prefix: &str, n: usize, hours: u32) -> Vec<Event> {
    let base = chrono::Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
    let pools = [
        "pool-c6a.xlarge-us-east-1a",
        "pool-c6a.xlarge-us-east-1b",
        "pool-m6a.xlarge-us-east-1a",
        "pool-r6a.xlarge-us-east-1c",
        "pool-m7i-flex.large-eu-central-1b",
        "pool-c7i.metal-24xl-us-west-2-lax-1a",
    ];
    (0..n)
        .map(|i| {
            let at = base
                + chrono::Duration::hours((i as u32 % hours.max(1)) as i64)
                + chrono::Duration::milliseconds((i % 3_600_000) as i64);
            let outcome = if i % 7 == 0 { "spot" } else { "ok" };
            event(
                at,
                &format!("{prefix}-{i}"),
                pools[i % pools.len()],
                outcome,
            )
        })
        .collect()
}

/// The job ids of `events`.
pub fn job_ids(events: &[Event]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e.job_id.as_str().to_owned())
        .collect()
}

/// Count events per pool, each distinct event (all five fields) once: what pool-selector counts, a
/// redelivered copy being dropped.
pub fn jobs_per_pool<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<String, u64> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for e in events {
        if seen.insert(serde_json::to_string(e).expect("an event serialises")) {
            *out.entry(e.pool_id.as_str().to_owned()).or_default() += 1;
        }
    }
    out
}
