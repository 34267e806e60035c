//! What the worker's tests share: queues of their own on the test broker, event fixtures, the worker
//! in-process ([`spawn_app`]) or as its binary ([`WorkerProcess`]), and reading back what was stored.

use std::collections::{BTreeMap, HashSet};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use ingest_worker::{Application, Settings};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use object_store::ObjectStoreExt;
use pool_amqp::AmqpArgs;
use pool_core::event::Event;
use pool_storage::{Storage, StorageArgs};
use testkit::TestApp;
use testkit::process::{ChildProcess, Sig, free_port};
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

/// The job ids of `events`.
pub fn job_ids(events: &[Event]) -> HashSet<String> {
    events
        .iter()
        .map(|e| e.job_id.as_str().to_owned())
        .collect()
}

/// Every event stored under the root, with the object it came from.
pub async fn stored(storage: &Storage) -> Vec<(String, Event)> {
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
            let event = Event::from_json(line)
                .unwrap_or_else(|e| panic!("{} holds an invalid line: {e}", meta.location));
            out.push((meta.location.to_string(), event));
        }
    }
    out
}

/// The distinct job ids stored.
pub async fn stored_job_ids(storage: &Storage) -> HashSet<String> {
    stored(storage)
        .await
        .into_iter()
        .map(|(_, e)| e.job_id.as_str().to_owned())
        .collect()
}

/// Wait until at least `want` distinct job ids are stored; returns them.
pub async fn wait_stored(storage: &Storage, want: usize, timeout: Duration) -> HashSet<String> {
    testkit::eventually(
        &format!("{want} distinct job ids in storage"),
        timeout,
        || async {
            let ids = stored_job_ids(storage).await;
            (ids.len() >= want).then_some(ids)
        },
    )
    .await
}

/// Count events per pool, each job id once: what a correct reader of the store counts.
pub fn jobs_per_pool<'a>(events: impl IntoIterator<Item = &'a Event>) -> BTreeMap<String, u64> {
    let mut seen = HashSet::new();
    let mut out = BTreeMap::new();
    for e in events {
        if seen.insert(e.job_id.as_str().to_owned()) {
            *out.entry(e.pool_id.as_str().to_owned()).or_default() += 1;
        }
    }
    out
}

/// Messages ready in `queue` (quorum queues do not count unacknowledged ones here).
pub async fn ready_messages(args: &AmqpArgs, queue: &str) -> u32 {
    let conn = pool_amqp::connect(args, "test-inspect")
        .await
        .expect("connect");
    let channel = conn.create_channel().await.expect("channel");
    let q = channel
        .queue_declare(
            queue.into(),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("the queue exists");
    let _ = conn.close(200, "bye".into()).await;
    q.message_count()
}

/// Wait until `queue` holds no ready message.
pub async fn wait_drained(args: &AmqpArgs, queue: &str) {
    testkit::eventually(
        &format!("queue {queue} to be drained"),
        Duration::from_secs(30),
        || async { (ready_messages(args, queue).await == 0).then_some(()) },
    )
    .await;
}

/// Take every message from `queue` (acknowledged, so they are gone): (headers, body).
pub async fn drain(args: &AmqpArgs, queue: &str) -> Vec<(FieldTable, Vec<u8>)> {
    let conn = pool_amqp::connect(args, "test-drain")
        .await
        .expect("connect");
    let channel = conn.create_channel().await.expect("channel");
    let mut out = Vec::new();
    while let Some(m) = channel
        .basic_get(queue.into(), BasicGetOptions { no_ack: true })
        .await
        .expect("basic.get")
    {
        out.push((
            m.delivery.properties.headers().clone().unwrap_or_default(),
            m.delivery.data.clone(),
        ));
    }
    let _ = conn.close(200, "bye".into()).await;
    out
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

/// Worker settings for a test: batches written once their first message is 300 ms old (so a test
/// waiting for the store does not wait for the 2 s default), metrics on a free port of 127.0.0.1.
pub fn worker_settings(amqp: AmqpArgs, storage: StorageArgs) -> Settings {
    let mut s = Settings::new(amqp, storage);
    s.batch.batch_max_age = Duration::from_millis(300);
    s.shutdown_grace = Duration::from_secs(20);
    s
}

/// The worker running inside the test process, stopped the way SIGTERM stops the binary: through the
/// shutdown future `run_until_stopped` takes.
pub struct TestWorker {
    pub app: TestApp,
    shutdown: Option<oneshot::Sender<()>>,
    outcome: Option<oneshot::Receiver<anyhow::Result<()>>>,
}

/// Build the worker from `settings` and run it in-process.
pub async fn spawn_app(settings: Settings) -> TestWorker {
    let app = Application::build(settings)
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

    /// One metric of the worker (the sum of its series; 0 when absent).
    pub async fn metric(&self, name: &str) -> f64 {
        self.app.metric(name, &[]).await
    }

    /// The sum of a metric's series whose labels include `labels`.
    pub async fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.app.metric(name, labels).await
    }
}

/// The worker binary as a child process, configured through its environment (as in production).
pub struct WorkerProcess {
    pub process: ChildProcess,
    pub base: String,
}

impl WorkerProcess {
    pub fn spawn(amqp: &AmqpArgs, events_url: &StorageArgs, extra: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ingest-worker"));
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AMQP_URL", &amqp.url)
            .env("AMQP_EXCHANGE", &amqp.exchange)
            .env("AMQP_QUEUE", &amqp.queue)
            .env("AMQP_DEAD_LETTER_EXCHANGE", &amqp.dead_letter_exchange)
            .env("AMQP_DEAD_LETTER_QUEUE", &amqp.dead_letter_queue)
            .env("EVENTS_URL", events_url.resolved_url())
            .env("METRICS_HOST", "127.0.0.1")
            .env("METRICS_PORT", port.to_string())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(e) = &events_url.aws_endpoint_url {
            cmd.env("AWS_ENDPOINT_URL", e);
        }
        if let Some(k) = &events_url.aws_access_key_id {
            cmd.env("AWS_ACCESS_KEY_ID", k);
        }
        if let Some(k) = &events_url.aws_secret_access_key {
            cmd.env("AWS_SECRET_ACCESS_KEY", k);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Self {
            process: ChildProcess::spawn("ingest-worker", cmd),
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn wait_healthy(&self) {
        let url = format!("{}/health", self.base);
        testkit::eventually("the worker's /health", Duration::from_secs(60), || async {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    /// One metric of the worker process (0 when absent or when it does not answer).
    pub async fn metric(&self, name: &str) -> f64 {
        testkit::metric_value(&testkit::scrape(&self.base).await, name, &[])
    }

    pub fn signal(&self, signal: Sig) {
        self.process.signal(signal);
    }
}
