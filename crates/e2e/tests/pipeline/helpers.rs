//! What the pipeline tests share: queues of their own on a broker, event fixtures, each service
//! in-process on port 0 through testkit's `TestApp` (the ingest-worker, pool-selector, the intake), and
//! reading back what was stored.
//! The queue, storage and fixture helpers are testkit's, shared with every crate's tests.

use std::collections::BTreeMap;
use std::time::Duration;

use pool_amqp::AmqpArgs;
use pool_storage::StorageArgs;
use serde_json::Value;
use testkit::TestApp;
use testkit::app::GracefulApp;

pub use testkit::events::{jobs_per_pool, spread_events as events};
pub use testkit::queues::{amqp_on, delete_topology, test_amqp};
pub use testkit::stored::{wait_stored, wait_stored_lines};

// ---------------------------------------------------------------------------------------------------
// The services, in-process.
// ---------------------------------------------------------------------------------------------------

/// The ingest-worker in-process, stopped the way SIGTERM stops the binary: through the shutdown
/// The ingest-worker in-process, stopped the way SIGTERM stops the binary: through the shutdown
/// future `run_until_stopped` takes.
pub type TestWorker = GracefulApp<anyhow::Result<()>>;

/// The ingest-worker consuming `amqp` into `storage`: batches written once their first message is
/// 300 ms old (so a test waiting for the store does not wait for the 2 s default), metrics on a free
/// port of 127.0.0.1.
pub async fn spawn_worker(amqp: AmqpArgs, storage: StorageArgs) -> TestWorker {
    let mut settings = ingest_worker::Settings::new(amqp, storage);
    settings.batch.batch_max_age = Duration::from_millis(300);
    settings.shutdown_grace = Duration::from_secs(60);
    let app = ingest_worker::Application::build(settings)
        .await
        .expect("the worker builds");
    GracefulApp::start(app.port(), |shutdown| app.run_until_stopped(shutdown))
}

/// pool-selector in-process over `storage`.
pub struct Selector {
    pub app: TestApp,
}

pub async fn spawn_selector(storage: StorageArgs) -> Selector {
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = storage;
    // The pipeline's events may land in hours the view does not follow live (a generator's history):
    // those are found by the whole-root listing, so list often here instead of every minute.
    settings.relist_interval = std::time::Duration::from_secs(1);
    let app = pool_selector::Application::build(settings)
        .await
        .expect("pool-selector builds");
    let app = TestApp::start(app.port(), app.run_until_stopped());
    app.wait_ready().await;
    Selector { app }
}

impl Selector {
    /// `GET /pools` over the whole history: jobs per pool as the ranking counts them (empty before
    /// any event is counted).
    pub async fn jobs_per_pool(&self) -> BTreeMap<String, u64> {
        let res = reqwest::get(self.app.url("/pools?window=0"))
            .await
            .expect("pool-selector answers");
        if res.status() == 404 {
            return BTreeMap::new();
        }
        assert_eq!(res.status(), 200, "GET /pools");
        let body: Value = res.json().await.expect("JSON");
        body["pools"]
            .as_array()
            .expect("pools array")
            .iter()
            .map(|p| {
                (
                    p["pool_id"].as_str().unwrap().to_owned(),
                    p["jobs"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// Wait until pool-selector's view has read every event object in `storage` (it refreshes every
    /// second), then its count of jobs per pool.
    pub async fn counted(&self, storage: &pool_storage::Storage) -> BTreeMap<String, u64> {
        use futures::TryStreamExt;
        let objects = storage
            .store
            .list(Some(&storage.root))
            .try_collect::<Vec<_>>()
            .await
            .expect("list the events")
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".json"))
            .count() as u64;
        testkit::eventually(
            &format!("pool-selector's view to read all {objects} objects"),
            Duration::from_secs(60),
            || async {
                let res = reqwest::get(self.app.url("/pools?window=0")).await.ok()?;
                let body: Value = res.json().await.ok()?;
                (body["view"]["objects"].as_u64()? >= objects).then_some(())
            },
        )
        .await;
        self.jobs_per_pool().await
    }
}

/// The bearer token the test intake accepts on `POST /events`.
pub const INTAKE_TOKEN: &str = "e2e-test-token";

/// The intake in-process, publishing to `amqp`, taking bodies up to `max_body_bytes`.
pub async fn spawn_intake(amqp: AmqpArgs, max_body_bytes: usize) -> TestApp {
    let mut settings = intake::Settings::for_amqp(amqp);
    settings.max_body_bytes = max_body_bytes;
    settings.intake.intake_tokens = vec![INTAKE_TOKEN.to_owned()];
    let app = intake::Application::build(settings)
        .await
        .expect("the intake builds");
    TestApp::start(app.port(), app.run_until_stopped())
}

/// `POST /events` to the intake with the test token: the status and the JSON answer.
pub async fn post_events(
    intake: &TestApp,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(intake.url("/events"))
        .header("content-type", content_type)
        .bearer_auth(INTAKE_TOKEN)
        .body(body)
        .send()
        .await
        .expect("the intake answers");
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON body, got {text:?}")),
    )
}
