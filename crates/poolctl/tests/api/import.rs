//! `events import`: a seed history (seed 000's single `events.json`) migrated into the partitioned
//! layout, to a folder and to S3, in slices, after a kill, and through the intake; pool-selector (in
//! this process, over what the import wrote) counts every event once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use chrono::{Duration as Age, Utc};
use pool_core::Event;
use pool_storage::{Storage, StorageArgs};
use testkit::TestApp;
use testkit::events::jobs_per_pool;
use testkit::process::{ChildProcess, Sig};
use testkit::stored::stored;

use crate::helpers::{TOKEN, poolctl, run};

const POOLS: [&str; 5] = [
    "pool-c6a.xlarge-us-east-1a",
    "pool-c6a.xlarge-us-east-1b",
    "pool-m6a.xlarge-us-east-1a",
    "pool-r6a.large-eu-west-1c",
    "pool-c7i.metal-24xl-us-west-2-lax-1a",
];

/// A seed history as seed 000's generator wrote it: one event per line (its timestamp format, no
/// zone) spread over the last two days, with what a long-lived file collects besides: a blank line
/// (line 11) and two lines that are not events (lines 22 and 33). `n` events, `n + 3` lines.
fn seed_history(tag: &str, n: usize) -> (Vec<u8>, Vec<Event>) {
    let start = Utc::now() - Age::hours(48);
    let step_ms = 48 * 3_600_000 / n as i64;
    let events: Vec<Event> = (0..n)
        .map(|i| {
            let outcome = match i {
                i if i % 9 == 0 => "spot",
                i if i % 13 == 0 => "TIMED_OUT",
                _ => "ok",
            };
            testkit::event(
                start + Age::milliseconds(i as i64 * step_ms),
                &format!("{tag}-{i}"),
                POOLS[i % POOLS.len()],
                outcome,
            )
        })
        .collect();
    let mut text = String::new();
    for (i, e) in events.iter().enumerate() {
        match i {
            10 => text.push('\n'),
            20 => text.push_str("{\"job_id\": \"half an event\"}\n"),
            30 => text.push_str("not json at all\n"),
            _ => {}
        }
        text.push_str(&e.to_json());
        text.push('\n');
    }
    (text.into_bytes(), events)
}

/// pool-selector over `storage`, ready.
async fn selector(storage: StorageArgs) -> TestApp {
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = storage;
    let app = pool_selector::Application::build(settings)
        .await
        .expect("pool-selector builds");
    let app = TestApp::start(app.port(), app.run_until_stopped());
    app.wait_ready().await;
    app
}

/// Jobs per pool in pool-selector's whole-history ranking, and the copies it dropped as duplicates.
async fn counted(app: &TestApp) -> (BTreeMap<String, u64>, u64) {
    let (status, body) = app.get("/pools?window=0&limit=10000&strategy=naive").await;
    assert_eq!(status, 200, "{body}");
    let pools = body["pools"]
        .as_array()
        .expect("a ranking")
        .iter()
        .map(|p| {
            (
                p["pool_id"].as_str().unwrap().to_owned(),
                p["jobs"].as_u64().unwrap(),
            )
        })
        .collect();
    (pools, body["view"]["duplicates"].as_u64().unwrap_or(0))
}

/// Every (key, event) line stored under `storage`'s root, sorted.
async fn lines(storage: &Storage) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = stored(storage)
        .await
        .into_iter()
        .map(|(k, e)| (k, e.to_json()))
        .collect();
    out.sort();
    out
}

fn is_import_key(key: &str) -> bool {
    // …/dt=YYYY-MM-DD/hr=HH/import-<16 hex>-<8 digits>.json
    let name = key.rsplit('/').next().unwrap_or("");
    key.contains("/dt=")
        && key.contains("/hr=")
        && name.len() == "import-".len() + 16 + 1 + 8 + ".json".len()
        && name.starts_with("import-")
        && name.ends_with(".json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_file_imported_into_a_folder_again_and_again_is_counted_once() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed").join("events.json");
    std::fs::create_dir_all(seed.parent().unwrap()).unwrap();
    let (text, events) = seed_history("folder", 2000);
    std::fs::write(&seed, &text).unwrap();
    let dest = dir.path().join("events");
    let import = |batch: &str| {
        let mut cmd = poolctl();
        cmd.args(["-o", "json", "events", "import"])
            .arg(&seed)
            .arg("--to")
            .arg(&dest)
            .args(["--batch-size", batch]);
        cmd
    };

    let out = run(import("500")).await.expect(0);
    let report = out.json();
    assert_eq!(report["events"], 2000, "{report}");
    assert_eq!(report["lines"], 2003);
    assert_eq!(report["skipped"], 2);
    assert_eq!(report["batches"], 5);
    assert_eq!(report["complete"], true);
    for bad in ["line 22:", "line 33:"] {
        assert!(out.stderr().contains(bad), "{}", out.stderr());
    }
    let storage = StorageArgs::for_url(dest.to_str().unwrap()).open().unwrap();
    let first = lines(&storage).await;
    assert_eq!(first.len(), 2000, "every event stored once");
    let keys: std::collections::BTreeSet<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys.len() as u64, report["objects"].as_u64().unwrap());
    assert!(keys.iter().all(|k| is_import_key(k)), "{keys:?}");
    for (key, line) in &first {
        let e = Event::from_json(line.as_bytes()).unwrap();
        assert!(
            key.contains(&format!("/{}/", e.partition().path())),
            "{key}"
        );
    }

    // The same import again writes the same keys with the same lines: nothing is added.
    run(import("500")).await.expect(0);
    assert_eq!(lines(&storage).await, first);

    // Another batch size names other objects: now every event is stored twice …
    let again = run(import("300")).await.expect(0).json();
    assert_eq!(again["events"], 2000);
    assert_eq!(lines(&storage).await.len(), 4000);
    // … and pool-selector still counts each once.
    let app = selector(StorageArgs::for_url(dest.to_str().unwrap())).await;
    let (pools, duplicates) = counted(&app).await;
    assert_eq!(pools, jobs_per_pool(&events));
    assert_eq!(duplicates, 2000);
}

/// `poolctl events import` with the seed's own variables naming its object on the S3 test server.
fn seed_env_import(bucket: &str, state: &Path) -> assert_cmd::Command {
    let mut cmd = poolctl();
    cmd.env("S3_BUCKET_NAME", bucket)
        .env("S3_FILE_NAME", "events.json")
        .env("LOCALSTACK_URL", testkit::s3_endpoint())
        .env("AWS_KEY_ID", "test")
        .env("AWS_SECRET", "test")
        .env_remove("EVENTS_URL")
        .env_remove("AWS_ENDPOINT_URL")
        .args(["-o", "json", "events", "import", "--to"])
        .arg(format!("s3://{bucket}/events/"))
        .args(["--batch-size", "400", "--state"])
        .arg(state);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_object_on_s3_imported_in_slices_resumes_where_it_stopped() {
    let bucket = testkit::new_bucket("import").await;
    let (text, events) = seed_history("slices", 1500);
    let seed = testkit::s3_args(&bucket, "events.json").open().unwrap();
    seed.put(&seed.root, text.into()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("import-state.json");
    let dest = testkit::s3_args(&bucket, "events/").open().unwrap();

    // Two batches of 400 lines, then stop: lines 1–800 hold 797 events.
    let mut cmd = seed_env_import(&bucket, &state);
    cmd.args(["--max-batches", "2"]);
    let out = run(cmd).await.expect(0);
    let first = out.json();
    assert_eq!(first["source"], format!("s3://{bucket}/events.json"));
    assert_eq!(
        (first["batches"].as_u64(), first["lines"].as_u64()),
        (Some(2), Some(800))
    );
    assert_eq!(first["complete"], false);
    assert!(out.stderr().contains("--max-batches"), "{}", out.stderr());
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(checkpoint["lines"], 800);
    assert_eq!(checkpoint["batches"], 2);
    assert_eq!(lines(&dest).await.len(), 797);

    // The same command goes on from line 801.
    let second = run(seed_env_import(&bucket, &state)).await.expect(0).json();
    assert_eq!(second["resumed_from_line"], 800);
    assert_eq!(second["lines"], 703);
    assert_eq!(second["events"], 1500 - 797);
    assert_eq!(second["complete"], true);
    let all = lines(&dest).await;
    assert_eq!(all.len(), 1500, "no line written twice");

    // Nothing new: only the short last batch (lines 1201–1503) is written again, over its own keys.
    let third = run(seed_env_import(&bucket, &state)).await.expect(0).json();
    assert_eq!(third["lines"], 303);
    assert_eq!(lines(&dest).await, all);

    let app = selector(testkit::s3_args(&bucket, "events/")).await;
    let (pools, duplicates) = counted(&app).await;
    assert_eq!(pools, jobs_per_pool(&events));
    assert_eq!(duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_mid_way_resumes_and_stores_every_event_once() {
    let bucket = testkit::new_bucket("import-kill").await;
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("events.json");
    let (text, events) = seed_history("kill", 30_000);
    std::fs::write(&seed, &text).unwrap();
    let state = dir.path().join("state.json");
    let s3 = testkit::s3_args(&bucket, "events/");
    let command = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_poolctl"));
        cmd.env("AWS_ENDPOINT_URL", s3.aws_endpoint_url.clone().unwrap())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env_remove("EVENTS_URL")
            .args(["-o", "json", "events", "import"])
            .arg(&seed)
            .arg("--to")
            .arg(format!("s3://{bucket}/events/"))
            .args(["--batch-size", "100", "--state"])
            .arg(&state)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };

    let mut first = ChildProcess::spawn("poolctl events import", command());
    testkit::eventually(
        "the first batches checkpointed",
        Duration::from_secs(60),
        || async {
            let text = std::fs::read(&state).ok()?;
            let c: serde_json::Value = serde_json::from_slice(&text).ok()?;
            (c["batches"].as_u64()? >= 2).then_some(())
        },
    )
    .await;
    first.signal(Sig::SIGKILL);
    first.wait_exit(Duration::from_secs(30)).await;
    let c: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let killed_at = c["lines"].as_u64().unwrap();
    assert!(
        killed_at < 30_000,
        "killed before the end (at line {killed_at})"
    );

    let mut again = command();
    let out = tokio::task::spawn_blocking(move || again.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["resumed_from_line"], killed_at);
    assert_eq!(report["complete"], true);

    // A batch written before the kill and again after it landed on the same keys.
    let dest = s3.open().unwrap();
    assert_eq!(lines(&dest).await.len(), 30_000);
    let app = selector(s3).await;
    let (pools, duplicates) = counted(&app).await;
    assert_eq!(pools, jobs_per_pool(&events));
    assert_eq!(duplicates, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_intake_batches_wait_out_429_and_resume_from_the_checkpoint() {
    // An intake allowing one request a second per token: back-to-back batches are refused with 429.
    let amqp = testkit::queues::test_amqp("poolctl-import");
    testkit::queues::declare_topology(&amqp).await;
    let mut settings = intake::Settings::for_amqp(amqp.clone());
    settings.intake.intake_tokens = vec![TOKEN.into()];
    settings.intake.intake_rate_per_second = 1.0;
    settings.intake.intake_burst = 1;
    let app = intake::Application::build(settings)
        .await
        .expect("the intake builds");
    let intake = TestApp::start(app.port(), app.run_until_stopped());

    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("events.json");
    let (text, events) = seed_history("intake", 600);
    std::fs::write(&seed, &text).unwrap();
    let state = dir.path().join("state.json");
    let import = || {
        let mut cmd = poolctl();
        cmd.env("INTAKE_URL", &intake.base)
            .env("INTAKE_TOKEN", TOKEN)
            .args(["-o", "json", "events", "import"])
            .arg(&seed)
            .args(["--via", "intake", "--batch-size", "100", "--state"])
            .arg(&state);
        cmd
    };
    let mut cmd = import();
    cmd.args(["--max-batches", "3"]);
    let first = run(cmd).await.expect(0).json();
    assert_eq!(first["batches"], 3);
    assert_eq!(first["destination"], format!("intake {}", intake.base));
    let second = run(import()).await.expect(0).json();
    assert_eq!(second["resumed_from_line"], 300);
    assert_eq!(second["complete"], true);
    assert_eq!(
        first["events"].as_u64().unwrap() + second["events"].as_u64().unwrap(),
        600
    );
    assert!(
        first["retries"].as_u64().unwrap() + second["retries"].as_u64().unwrap() >= 1,
        "back-to-back batches met the rate limit: {first} {second}"
    );
    assert!(
        intake
            .metric("intake_http_requests_total", &[("status", "429")])
            .await
            >= 1.0
    );

    // Every event published exactly once: the second run did not send the first run's batches again.
    testkit::eventually(
        "the imported events in the queue",
        Duration::from_secs(60),
        || async { (testkit::queues::ready_messages(&amqp, &amqp.queue).await >= 7).then_some(()) },
    )
    .await;
    let mut got: Vec<String> = testkit::queues::drain_events(&amqp)
        .await
        .iter()
        .map(|e| e.job_id.as_str().to_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = events
        .iter()
        .map(|e| e.job_id.as_str().to_owned())
        .collect();
    want.sort();
    assert_eq!(got, want);
    testkit::queues::delete_topology(&amqp).await;
}

#[tokio::test]
async fn where_to_import_from_and_to_must_be_said() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("events.json");
    std::fs::write(&seed, b"").unwrap();
    let seed = seed.to_str().unwrap();
    let out_dir = dir.path().join("out");
    let to = out_dir.to_str().unwrap();
    let folder = dir.path().to_str().unwrap();
    for (args, says) in [
        (vec!["events", "import", "--to", to], "S3_BUCKET_NAME"),
        (vec!["events", "import", seed], "--to URL"),
        (vec!["events", "import", folder, "--to", to], "is a folder"),
        (
            vec!["events", "import", seed, "--to", seed],
            "single object",
        ),
        (
            vec!["events", "import", "/no/such/events.json", "--to", to],
            "no such object",
        ),
        (
            vec!["events", "import", seed, "--to", to, "--via", "intake"],
            "cannot be used with",
        ),
        (
            vec!["events", "import", seed, "--to", to, "--batch-size", "0"],
            "batch-size",
        ),
    ] {
        let mut cmd = poolctl();
        cmd.env_remove("EVENTS_URL")
            .env_remove("S3_BUCKET_NAME")
            .env_remove("S3_FILE_NAME")
            .args(&args);
        let out = run(cmd).await.expect(2);
        assert!(out.stderr().contains(says), "{args:?}: {}", out.stderr());
    }
}
