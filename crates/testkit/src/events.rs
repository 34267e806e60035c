//! Valid job events for fixtures, and their hourly NDJSON objects.

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
