//! Test support for the ingestion pipeline: unique queue names on the test broker, a private broker
//! that can be restarted, the worker in-process or as a process, and reading back what was stored.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use futures::StreamExt;
use ingest_worker::{Application, Settings};
use lapin::options::{BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use object_store::ObjectStoreExt;
use pool_amqp::AmqpArgs;
use pool_core::event::Event;
use pool_storage::{Storage, StorageArgs};

/// Settings naming exchanges and queues of their own on the test broker (`TEST_AMQP_URL`).
pub fn test_amqp(tag: &str) -> AmqpArgs {
    amqp_on(&testkit::require_env("TEST_AMQP_URL"), tag)
}

/// Settings naming exchanges and queues of their own on the broker at `url`.
pub fn amqp_on(url: &str, tag: &str) -> AmqpArgs {
    let suffix = format!("{tag}-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let mut args = AmqpArgs::for_url(url).with_suffix(&suffix);
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
            let (status, reason) = if i % 7 == 0 {
                ("FAILED", "SPOT_INSTANCE_TERMINATION")
            } else {
                ("SUCCEEDED", "")
            };
            Event::from_json(
                format!(
                    r#"{{"finished_at":"{}","job_id":"{prefix}-{i}","pool_id":"{}","status":"{status}","reason":"{reason}"}}"#,
                    pool_core::event::format_timestamp(&at),
                    pools[i % pools.len()]
                )
                .as_bytes(),
            )
            .expect("test events are valid")
        })
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

/// A worker running inside the test process.
pub struct InProcessWorker {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl InProcessWorker {
    pub async fn spawn(settings: Settings) -> Self {
        let app = Application::build(settings)
            .await
            .expect("the worker builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            base,
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Ask it to stop (as SIGTERM does) and return how that went.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().unwrap().send(());
        self.handle.take().unwrap().await.expect("worker task")
    }

    pub async fn metric(&self, name: &str) -> f64 {
        metric(&self.base, name).await
    }

    pub async fn metric_with(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_with(&self.base, name, labels).await
    }
}

impl Drop for InProcessWorker {
    fn drop(&mut self) {
        if let Some(h) = &self.handle {
            h.abort();
        }
    }
}

/// One metric's value from a `/metrics` endpoint (0 when absent or unreachable).
pub async fn metric(base: &str, name: &str) -> f64 {
    metric_with(base, name, &[]).await
}

/// The sum of a metric's series whose labels include `labels` (0 when absent or unreachable).
pub async fn metric_with(base: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    match reqwest::get(format!("{base}/metrics")).await {
        Ok(res) => testkit::metric_value(&res.text().await.unwrap_or_default(), name, labels),
        Err(_) => 0.0,
    }
}

/// Worker settings for a test: fast batches, metrics on a free port of 127.0.0.1.
pub fn worker_settings(amqp: AmqpArgs, storage: StorageArgs) -> Settings {
    let mut s = Settings::new(amqp, storage);
    s.batch.batch_max_age = Duration::from_millis(300);
    s.shutdown_grace = Duration::from_secs(20);
    s
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The worker binary as a child process, configured through its environment (as in production).
pub struct WorkerProcess {
    pub child: Child,
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
        let child = cmd.spawn().expect("spawning the ingest-worker binary");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn wait_healthy(&self) {
        let url = format!("{}/health", self.base);
        testkit::eventually("the worker's /health", Duration::from_secs(30), || async {
            reqwest::get(&url)
                .await
                .ok()
                .filter(|r| r.status().is_success())
                .map(|_| ())
        })
        .await;
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .expect("running kill")
            .success();
        assert!(ok, "kill -{sig} {}", self.child.id());
    }

    /// Wait for the process to exit; its exit code.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                started.elapsed() < timeout,
                "the worker did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// A private RabbitMQ node, for tests that restart the broker without disturbing anyone else's tests.
// ---------------------------------------------------------------------------------------------------

const RABBIT_BIN: &str = "/usr/lib/rabbitmq/bin";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A RabbitMQ node of its own (own ports, data folder and epmd), started and restarted by the test.
/// Data survives [`PrivateBroker::restart`]; everything is killed and deleted on drop.
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    pub amqp_port: u16,
    dist_port: u16,
    epmd_port: u16,
    node: String,
    epmd: Child,
    server: Option<Child>,
}

impl PrivateBroker {
    pub async fn start() -> Self {
        assert!(
            FsPath::new(RABBIT_BIN).join("rabbitmq-server").exists(),
            "rabbitmq-server is not installed ({RABBIT_BIN}); run scripts/install-deps.sh"
        );
        let dir = tempfile::Builder::new()
            .prefix("ingest-broker-")
            .tempdir_in("/tmp")
            .expect("temp dir");
        for sub in ["home", "mnesia", "log"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            "log.console = false\nlog.file.level = warning\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rabbitmq-env.conf"), "").unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "rabbitmq:rabbitmq"])
                .arg(dir.path())
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown of the broker folder to the rabbitmq user");
        }
        let epmd_port = free_port();
        let node = format!(
            "ingest{}@localhost",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let epmd = Command::new("epmd")
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("epmd (from erlang-base) must be installed");
        let mut broker = Self {
            dir,
            amqp_port: free_port(),
            dist_port: free_port(),
            epmd_port,
            node,
            epmd,
            server: None,
        };
        broker.launch().await;
        broker
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    async fn launch(&mut self) {
        use std::os::unix::process::CommandExt;
        let d = self.dir();
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=rabbitmq",
                "--regid=rabbitmq",
                "--init-groups",
                "env",
            ]);
            c
        } else {
            Command::new("env")
        };
        cmd.arg("LANG=C.UTF-8")
            .arg(format!("HOME={}", d.join("home").display()))
            .arg(format!("RABBITMQ_NODENAME={}", self.node))
            .arg("RABBITMQ_NODE_IP_ADDRESS=127.0.0.1")
            .arg(format!("RABBITMQ_NODE_PORT={}", self.amqp_port))
            .arg(format!("RABBITMQ_DIST_PORT={}", self.dist_port))
            .arg(format!("ERL_EPMD_PORT={}", self.epmd_port))
            .arg(format!(
                "RABBITMQ_CONF_ENV_FILE={}",
                d.join("rabbitmq-env.conf").display()
            ))
            .arg(format!(
                "RABBITMQ_CONFIG_FILE={}",
                d.join("rabbitmq.conf").display()
            ))
            .arg(format!(
                "RABBITMQ_ENABLED_PLUGINS_FILE={}",
                d.join("enabled_plugins").display()
            ))
            .arg(format!(
                "RABBITMQ_MNESIA_BASE={}",
                d.join("mnesia").display()
            ))
            .arg(format!("RABBITMQ_LOG_BASE={}", d.join("log").display()))
            .arg(format!(
                "RABBITMQ_PID_FILE={}",
                d.join("beam.pid").display()
            ))
            .arg(format!("{RABBIT_BIN}/rabbitmq-server"))
            .current_dir(&d)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.server = Some(cmd.spawn().expect("starting rabbitmq-server"));
        let url = self.url();
        let args = AmqpArgs::for_url(&url);
        let started = Instant::now();
        loop {
            if let Ok(conn) = pool_amqp::connect(&args, "probe").await {
                let _ = conn.close(200, "probe".into()).await;
                break;
            }
            if let Some(status) = self.server.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the private RabbitMQ node exited during start-up ({status}); logs in {}",
                    d.join("log").display()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the private RabbitMQ node did not accept connections within 120 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stop the node gracefully (SIGTERM: durable queues and persistent messages survive).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if started.elapsed() > Duration::from_secs(60) {
                    kill_group(child.id());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            // The VM may outlive the start script for a moment.
            let beam = std::fs::read_to_string(self.dir().join("beam.pid")).unwrap_or_default();
            if let Ok(pid) = beam.trim().parse::<u32>() {
                let started = Instant::now();
                while FsPath::new(&format!("/proc/{pid}")).exists()
                    && started.elapsed() < Duration::from_secs(30)
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            kill_group(child.id());
        }
    }

    /// Stop and start again on the same ports with the same data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            kill_group(child.id());
            let _ = child.wait();
        }
        let _ = self.epmd.kill();
        let _ = self.epmd.wait();
    }
}

/// Count events per pool (each job id once), the way a correct ranking must.
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

/// The bearer token the test pool-selector accepts on `POST /events`.
pub const INTAKE_TOKEN: &str = "ingest-worker-test-token";

/// pool-selector, in-process on a free port, over the same storage as the worker.
pub struct Selector {
    pub base: String,
}

impl Selector {
    pub async fn spawn(storage: StorageArgs) -> Self {
        Self::spawn_with(storage, AmqpArgs::default(), 16 * 1024 * 1024).await
    }

    /// With `POST /events` publishing to `amqp`, bodies up to `max_body_bytes`.
    pub async fn spawn_with(storage: StorageArgs, amqp: AmqpArgs, max_body_bytes: usize) -> Self {
        let mut settings = pool_selector::Settings::for_events_url("unused");
        settings.storage = storage;
        settings.amqp = amqp;
        settings.max_body_bytes = max_body_bytes;
        settings.intake.intake_tokens = vec![INTAKE_TOKEN.to_owned()];
        let app = pool_selector::Application::build(settings)
            .await
            .expect("pool-selector builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self { base }
    }

    /// `GET /pools` (whole history): jobs per pool as the ranking counts them.
    pub async fn jobs_per_pool(&self) -> BTreeMap<String, u64> {
        let res = reqwest::get(format!("{}/pools?window=0", self.base))
            .await
            .expect("pool-selector answers");
        assert_eq!(res.status(), 200, "GET /pools");
        let body: serde_json::Value = res.json().await.expect("JSON");
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

/// Delete the test's exchanges and queues (best effort; the harness broker is thrown away anyway).
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
