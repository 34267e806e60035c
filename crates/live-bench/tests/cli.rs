//! live-bench runs end to end over a small history and prints its tables (the benchmark's smoke test;
//! its figures are not checked here, only that it can run and say what it measured).

use std::process::Command;

use chrono::Duration;
use testkit::{pool_events, write_partitioned};

#[tokio::test]
async fn the_bench_loads_a_history_and_prints_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let storage = pool_storage::StorageArgs::for_url(dir.path().to_str().unwrap())
        .open()
        .unwrap();
    let mut events = pool_events("pool-c6a.xlarge-us-east-1a", 50, 2, Duration::hours(30));
    events.extend(pool_events(
        "pool-m6a.xlarge-us-east-1b",
        40,
        1,
        Duration::minutes(20),
    ));
    events.extend(pool_events(
        "pool-r6a.large-us-west-2a",
        30,
        3,
        Duration::days(3),
    ));
    write_partitioned(&storage, "batch", &events).await;

    let out = Command::new(env!("CARGO_BIN_EXE_live-bench"))
        .arg(dir.path())
        .arg("8")
        .output()
        .expect("live-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}: {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("3 pools"), "{stdout}");
    assert!(
        stdout.contains("| the whole history into the view |"),
        "{stdout}"
    );
    for row in ["distinct windows", "one window, 30 d", "whole history, k=3"] {
        let line = stdout
            .lines()
            .find(|l| l.contains(row))
            .unwrap_or_else(|| panic!("no row {row}: {stdout}"));
        // n requests, none failed.
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert_eq!(cells[2], "8", "{line}");
        assert_eq!(cells[7], "0", "errors: {line}");
    }
    // Whether a latency target is met depends on the machine at that moment: the test checks that
    // every row says one way or the other, not which.
    let verdicts = stdout
        .lines()
        .filter(|l| l.ends_with("| met |") || l.ends_with("| NOT met |"))
        .count();
    assert_eq!(verdicts, 3, "a verdict on every request row: {stdout}");
}
