//! regret-bench runs end to end on a tiny configuration and prints its tables (the benchmark's smoke
//! test: `make bench` runs it at full size; its figures are not checked here).

use std::process::Command;

#[test]
fn a_tiny_run_prints_the_regret_tables() {
    let out = Command::new(env!("CARGO_BIN_EXE_regret-bench"))
        .env("REGRET_SEEDS", "1")
        .env("REGRET_SETS", "5")
        .env("REGRET_HOURS", "48")
        .env("REGRET_DRAWS", "2")
        .output()
        .expect("regret-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Exit 1 means a target was missed, which a run this small may well do; 0 or 1 is a run that
    // finished and printed its verdict, anything else a failure.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}: {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().filter(|l| l.starts_with('|')).count() >= 4,
        "a markdown table: {stdout}"
    );
    assert!(stdout.contains("naive"), "{stdout}");
}
