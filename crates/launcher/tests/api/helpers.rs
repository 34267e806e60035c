//! The services a launcher test needs, each real and in-process: pool-selector over events in a temp
//! folder (the ranking), the intake on the test RabbitMQ (outcomes), and the launcher itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use launcher::startup::Overrides;
use launcher::{Application, Settings};
use pool_amqp::AmqpArgs;
use serde_json::{Value, json};
use testkit::TestApp;
use testkit::events::{fleet_events, write_partitioned};

/// The intake's token (the launcher posts outcomes with it).
pub const TOKEN: &str = "launcher-test-token";

/// The launcher's callers: the one every helper calls as, another one, and `admin`.
pub const CALLER: &str = "alice";
pub const CALLER_TOKEN: &str = "alice-launcher-token";
pub const OTHER: &str = "bob";
pub const OTHER_TOKEN: &str = "bob-launcher-token";
pub const ADMIN_TOKEN: &str = "admin-launcher-token";

/// The repository's launch templates (the astronaut job).
pub fn repo_templates() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/launch-templates")
}

/// The ranking: pool-selector over c6a.xlarge in three zones, 1a best, then 1b, then 1c.
pub struct World {
    pub selector: TestApp,
    pub intake: TestApp,
    pub amqp: AmqpArgs,
    _events: tempfile::TempDir,
    pub dir: tempfile::TempDir,
}

pub const POOL_A: &str = "pool-c6a.xlarge-us-east-1a";
pub const POOL_B: &str = "pool-c6a.xlarge-us-east-1b";
pub const POOL_C: &str = "pool-c6a.xlarge-us-east-1c";

impl World {
    pub async fn start() -> Self {
        let events = tempfile::tempdir().expect("temp folder");
        let storage = pool_storage_for(events.path());
        let age = chrono::Duration::minutes(20);
        write_partitioned(
            &storage,
            "x",
            &fleet_events(&[
                (POOL_A, 300, 0, age),
                (POOL_B, 300, 30, age),
                (POOL_C, 300, 90, age),
            ]),
        )
        .await;
        let settings = pool_selector::Settings::for_events_url(events.path().to_str().unwrap());
        let app = pool_selector::Application::build(settings)
            .await
            .expect("pool-selector builds");
        let selector = TestApp::start(app.port(), app.run_until_stopped());
        selector.wait_ready().await;

        let amqp = testkit::queues::test_amqp("launcher");
        testkit::queues::declare_topology(&amqp).await;
        let mut s = intake::Settings::for_amqp(amqp.clone());
        s.intake.intake_tokens = vec![TOKEN.into()];
        let app = intake::Application::build(s)
            .await
            .expect("the intake builds");
        let intake = TestApp::start(app.port(), app.run_until_stopped());
        World {
            selector,
            intake,
            amqp,
            _events: events,
            dir: tempfile::tempdir().expect("temp folder"),
        }
    }

    /// A truth file giving each pool its probability of a spot reclaim.
    pub fn truth(&self, pools: &[(&str, f64)]) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("truth-{}.json", testkit::servers::unique("t")));
        let pools: Vec<Value> = pools
            .iter()
            .map(|(p, prob)| json!({"pool_id": p, "termination_probability": prob}))
            .collect();
        std::fs::write(&path, json!({"seed": 1, "pools": pools}).to_string()).unwrap();
        path
    }

    /// Launcher settings against this world: its own Redis key prefix and run folder, fast polling.
    pub fn settings(&self, templates: &Path) -> Settings {
        let mut s =
            Settings::for_tests(templates.to_owned(), &self.selector.base, &self.intake.base);
        s.launcher_tokens = vec![
            format!("{CALLER}:{CALLER_TOKEN}"),
            format!("{OTHER}:{OTHER_TOKEN}"),
            format!("admin:{ADMIN_TOKEN}"),
        ];
        s.intake_token = Some(TOKEN.into());
        s.redis_url = Some(testkit::servers::redis_url());
        s.redis_key_prefix = format!("{}:", testkit::servers::unique("launcher"));
        s.local.spark_work_dir = self.dir.path().join("runs");
        s.poll_interval = Duration::from_millis(100);
        s
    }

    /// A launcher of simulated runs (no Spark) whose spot reclaims follow `pools`' probabilities.
    pub async fn simulated_launcher(&self, pools: &[(&str, f64)]) -> TestApp {
        let mut s = self.settings(&repo_templates());
        s.local.simulate_truth = Some(self.truth(pools));
        s.local.simulate_only = true;
        spawn_launcher(s).await
    }

    /// Every outcome event published so far (taken from the queue).
    pub async fn outcomes(&self) -> Vec<pool_core::Event> {
        testkit::queues::drain_events(&self.amqp).await
    }
}

fn pool_storage_for(dir: &Path) -> pool_storage::Storage {
    pool_storage::StorageArgs::for_url(dir.to_str().expect("utf-8 path"))
        .open()
        .expect("local storage")
}

pub async fn spawn_launcher(settings: Settings) -> TestApp {
    spawn_launcher_with(settings, Overrides::default()).await
}

/// A launcher with a test's backend, clock or no reconciler; its client calls as [`CALLER`].
pub async fn spawn_launcher_with(settings: Settings, overrides: Overrides) -> TestApp {
    let app = Application::build_with(settings, overrides)
        .await
        .expect("the launcher builds");
    let mut app = TestApp::start(app.port(), app.run_until_stopped());
    app.client = client_for(CALLER_TOKEN);
    app
}

/// A client that presents `token` on every request.
pub fn client_for(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("a header value"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("a client")
}

/// `POST /launch` with `body`: status and JSON.
pub async fn post_launch(app: &TestApp, body: &Value) -> (u16, Value) {
    let res = app
        .client
        .post(app.url("/launch"))
        .json(body)
        .send()
        .await
        .expect("the launcher answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON"))
}

/// `DELETE /launches/{id}` as the app's caller: status and JSON.
pub async fn cancel(app: &TestApp, id: &str) -> (u16, Value) {
    let res = app
        .client
        .delete(app.url(&format!("/launches/{id}")))
        .send()
        .await
        .expect("the launcher answers");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON"))
}

/// Wait until the launch is in a final state; return it.
pub async fn wait_finished(app: &TestApp, id: &str, timeout: Duration) -> Value {
    testkit::eventually(&format!("launch {id} to finish"), timeout, || async {
        let (status, body) = app.get(&format!("/launches/{id}")).await;
        assert_eq!(status, 200, "{body}");
        let state = body["state"].as_str().unwrap_or_default().to_owned();
        let published = body["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome_published"] == true || a["state"] == "CANCELLED");
        (["COMPLETED", "FAILED", "CANCELLED"].contains(&state.as_str()) && published)
            .then_some(body)
    })
    .await
}

/// Wait for `n` outcome events on the queue (they are taken from it).
pub async fn wait_outcomes(world: &World, n: usize) -> Vec<pool_core::Event> {
    let got = std::sync::Mutex::new(Vec::new());
    testkit::eventually(
        &format!("{n} outcome events"),
        Duration::from_secs(60),
        || async {
            let more = world.outcomes().await;
            let mut got = got.lock().unwrap();
            got.extend(more);
            (got.len() >= n).then_some(())
        },
    )
    .await;
    got.into_inner().unwrap()
}

/// Wait until the launch is in a final state (published or not); return it.
pub async fn wait_ended(app: &TestApp, id: &str, timeout: Duration) -> Value {
    testkit::eventually(&format!("launch {id} to end"), timeout, || async {
        let (status, body) = app.get(&format!("/launches/{id}")).await;
        assert_eq!(status, 200, "{body}");
        ["COMPLETED", "FAILED", "CANCELLED"]
            .contains(&body["state"].as_str().unwrap_or_default())
            .then_some(body)
    })
    .await
}
