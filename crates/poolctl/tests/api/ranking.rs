//! `get-pool` and `pools` through a real relay: tables for people, JSON and NDJSON for scripts.

use crate::helpers::{poolctl, run, spawn_app};

#[tokio::test]
async fn get_pool_names_the_pick_and_its_evidence() {
    let app = spawn_app().await;
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base).args([
        "get-pool",
        "-t",
        "c6a.xlarge,m6a.xlarge,r6a.xlarge",
        "--window",
        "24h",
    ]);
    let out = run(cmd).await.expect(0);
    let stdout = out.stdout();
    assert!(
        stdout.starts_with("pick pool-r6a.xlarge-us-east-1c\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("200 jobs, 0 lost to spot terminations"),
        "{stdout}"
    );
    assert!(
        stdout.contains("best of 3 candidates with probability"),
        "{stdout}"
    );
    assert!(stdout.contains("window 1d"), "{stdout}");
    assert!(!stdout.contains('\x1b'), "no colour off a terminal");

    // -k 2: the pick and an alternative, as a table with bars.
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base).args([
        "get-pool",
        "-t",
        "c6a.xlarge,m6a.xlarge,r6a.xlarge",
        "-k",
        "2",
    ]);
    let stdout = run(cmd).await.expect(0).stdout();
    assert!(
        stdout.contains("*  1  pool-r6a.xlarge-us-east-1c"),
        "{stdout}"
    );
    assert!(
        stdout.contains("   2  pool-m6a.xlarge-us-east-1b"),
        "{stdout}"
    );
    assert!(stdout.contains('●'), "{stdout}");
}

#[tokio::test]
async fn get_pool_json_is_the_services_answer() {
    let app = spawn_app().await;
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base)
        .env("POOLCTL_OUTPUT", "json")
        .args(["get-pool", "-t", "M6A.xlarge, c6a.xlarge", "-k", "2"]);
    let out = run(cmd).await.expect(0);
    let answer = out.json();
    assert_eq!(answer["pool_id"], "pool-m6a.xlarge-us-east-1b");
    assert_eq!(
        answer["alternatives"][0]["pool_id"],
        "pool-c6a.xlarge-us-east-1a"
    );
    // The same question asked of the relay directly: the same (cached) answer, field for field.
    let (status, direct) = app
        .relay
        .get("/get-pool?instance_types=c6a.xlarge,m6a.xlarge&k=2")
        .await;
    assert_eq!(status, 200);
    assert_eq!(answer, direct);

    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base).args([
        "-o",
        "ndjson",
        "get-pool",
        "-t",
        "r6a.xlarge",
    ]);
    let stdout = run(cmd).await.expect(0).stdout();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["pool_id"], "pool-r6a.xlarge-us-east-1c");
}

#[tokio::test]
async fn pools_is_an_aligned_table_with_a_bar_per_pool() {
    let app = spawn_app().await;
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base)
        .args(["pools", "--window", "7d"]);
    let stdout = run(cmd).await.expect(0).stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("3 of 3 pools, strategy pooled, window 7d, newest event "),
        "{stdout}"
    );
    let rows: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("pool-"))
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    for (row, pool) in rows.iter().zip([
        "*  1  pool-r6a.xlarge-us-east-1c",
        "   2  pool-m6a.xlarge-us-east-1b",
        "   3  pool-c6a.xlarge-us-east-1a",
    ]) {
        assert!(row.starts_with(pool), "{stdout}");
        assert!(row.contains('●'), "a bar on every row: {stdout}");
    }
    // Columns line up: every row is padded to the same widths, and ends with a timestamp of one length.
    let widths: Vec<usize> = rows.iter().map(|r| r.chars().count()).collect();
    assert!(widths.windows(2).all(|w| w[0] == w[1]), "{stdout}");
    assert!(stdout.ends_with("* the pick   ━ interval   ● score (lower is safer)\n"));

    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base).args([
        "pools",
        "-o",
        "json",
        "-z",
        "us-east-1a,us-east-1b",
        "--limit",
        "1",
    ]);
    let answer = run(cmd).await.expect(0).json();
    assert_eq!(answer["total_pools"], 2);
    assert_eq!(answer["pools"].as_array().unwrap().len(), 1);
    assert_eq!(answer["pools"][0]["pool_id"], "pool-m6a.xlarge-us-east-1b");

    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.relay.base).args([
        "pools",
        "-o",
        "ndjson",
        "--strategy",
        "naive",
    ]);
    let stdout = run(cmd).await.expect(0).stdout();
    let ids: Vec<String> = stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["pool_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        ids,
        [
            "pool-r6a.xlarge-us-east-1c",
            "pool-m6a.xlarge-us-east-1b",
            "pool-c6a.xlarge-us-east-1a"
        ]
    );
}

#[tokio::test]
async fn pool_selector_itself_answers_too() {
    // POOL_SELECTOR_URL may name a pool-selector (the same read API, no cache).
    let app = spawn_app().await;
    let mut cmd = poolctl();
    cmd.env("POOL_SELECTOR_URL", &app.selector.base)
        .args(["get-pool", "-o", "json"]);
    assert_eq!(
        run(cmd).await.expect(0).json()["pool_id"],
        "pool-r6a.xlarge-us-east-1c"
    );
}
