//! What the pipeline tests share: queues of their own on a broker, event fixtures, each service
//! in-process on port 0 through testkit's `TestApp` (the ingest-worker, pool-selector, the intake), and
//! reading back what was stored.
//!
//! The queue and storage helpers mirror those of ingest-worker's own tests (`tests/api/helpers.rs`):
//! they need the broker's and the store's clients, which the harness (`testkit`) does not depend on.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use pool_amqp::AmqpArgs;
use pool_core::event::Event;
use pool_storage::{Storage, StorageArgs};
use serde_json::Value;
use testkit::TestApp;
use tokio::sync::oneshot;

/// Settings naming exchanges and queues of their own on the test broker (`TEST_AMQP_URL`).
pub fn test_amqp(tag: &str) -> AmqpArgs {
    amqp_on(&testkit::servers::amqp_url(), tag)
}

/// Settings naming exchanges and queues of their own on the broker at `url`.
pub fn amqp_on(url: &str, tag: &str) -> AmqpArgs {
    let mut args = AmqpArgs::for_url(url).with_suffix(&testkit::servers::unique(tag));
    args.connect_timeout = Duration::from_secs(5);
    args.confirm_timeout = Duration::from_secs(20);
    args
}

/// `n` valid events with job ids `<prefix>-<i>`, spread over `hours` hourly partitions and 6 pools,
/// every 7th a spot termination.
pub fn events(prefix: &str, n: usize, hours: u32) -> Vec<Event> {
    let base = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap();
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
            testkit::event(
                at,
                &format!("{prefix}-{i}"),
                pools[i % pools.len()],
                outcome,
            )
        })
        .collect()
}

/// Count events per pool, each job id once: what a correct ranking must count.
pub fn jobs_per_pool(events: &[Event]) -> BTreeMap<String, u64> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for e in events {
        if seen.insert(e.job_id.as_str().to_owned()) {
            *out.entry(e.pool_id.as_str().to_owned()).or_default() += 1;
        }
    }
    out
}

/// Every event line stored under the root (duplicates included).
pub async fn stored(storage: &Storage) -> Vec<Event> {
    let metas: Vec<_> = storage
        .store
        .list(Some(&storage.root))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|m| m.expect("listing the store"))
        .collect();
    let mut out = Vec::new();
    for meta in metas {
        let bytes = storage
            .store
            .get(&meta.location)
            .await
            .expect("reading an object")
            .bytes()
            .await
            .expect("reading an object");
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            out.push(
                Event::from_json(line)
                    .unwrap_or_else(|e| panic!("{} holds an invalid line: {e}", meta.location)),
            );
        }
    }
    out
}

/// Wait until at least `want` distinct job ids are stored; returns them.
pub async fn wait_stored(storage: &Storage, want: usize, timeout: Duration) -> HashSet<String> {
    testkit::eventually(
        &format!("{want} distinct job ids in storage"),
        timeout,
        || async {
            let ids: HashSet<String> = stored(storage)
                .await
                .into_iter()
                .map(|e| e.job_id.as_str().to_owned())
                .collect();
            (ids.len() >= want).then_some(ids)
        },
    )
    .await
}

/// Wait until exactly `want` event lines are stored (copies included).
pub async fn wait_stored_lines(storage: &Storage, want: usize, timeout: Duration) {
    testkit::eventually(
        &format!("{want} event lines in storage"),
        timeout,
        || async { (stored(storage).await.len() == want).then_some(()) },
    )
    .await;
}

/// Delete the test's exchanges and queues (best effort; the test broker is thrown away anyway).
pub async fn delete_topology(args: &AmqpArgs) {
    use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
    let Ok(conn) = pool_amqp::connect(args, "test-cleanup").await else {
        return;
    };
    if let Ok(channel) = conn.create_channel().await {
        for q in [&args.queue, &args.dead_letter_queue] {
            let _ = channel
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
        for x in [&args.exchange, &args.dead_letter_exchange] {
            let _ = channel
                .exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = conn.close(200, "bye".into()).await;
}

// ---------------------------------------------------------------------------------------------------
// The services, in-process.
// ---------------------------------------------------------------------------------------------------

/// The ingest-worker in-process, stopped the way SIGTERM stops the binary: through the shutdown
/// future `run_until_stopped` takes.
pub struct TestWorker {
    pub app: TestApp,
    shutdown: Option<oneshot::Sender<()>>,
    outcome: Option<oneshot::Receiver<anyhow::Result<()>>>,
}

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
    let (shutdown, stopped) = oneshot::channel::<()>();
    let (report, outcome) = oneshot::channel();
    let port = app.port();
    let app = TestApp::start(port, async move {
        let result = app
            .run_until_stopped(async move {
                let _ = stopped.await;
            })
            .await;
        let _ = report.send(result);
    });
    TestWorker {
        app,
        shutdown: Some(shutdown),
        outcome: Some(outcome),
    }
}

impl TestWorker {
    /// Ask it to stop (as SIGTERM does) and return how that went.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.shutdown.take().expect("stopped once").send(());
        self.outcome
            .take()
            .expect("stopped once")
            .await
            .expect("the worker task reports how it stopped")
    }

    pub async fn metric(&self, name: &str) -> f64 {
        self.app.metric(name, &[]).await
    }
}

/// pool-selector in-process over `storage`.
pub struct Selector {
    pub app: TestApp,
}

pub async fn spawn_selector(storage: StorageArgs) -> Selector {
    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = storage;
    let app = pool_selector::Application::build(settings)
        .await
        .expect("pool-selector builds");
    Selector {
        app: TestApp::start(app.port(), app.run_until_stopped()),
    }
}

impl Selector {
    /// `GET /pools` over the whole history: jobs per pool as the ranking counts them.
    pub async fn jobs_per_pool(&self) -> BTreeMap<String, u64> {
        let res = reqwest::get(self.app.url("/pools?window=0"))
            .await
            .expect("pool-selector answers");
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
