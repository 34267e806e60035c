//! What the relay's black-box tests run against: a real pool-selector over a temporary folder of
//! events, the relay itself on port 0 (both in process, through `testkit::TestApp`), and, for the
//! outage tests, a private redis-server that a test may kill, freeze or restart without disturbing
//! the others (a `testkit::process::ChildProcess`).
//!
//! Every relay runs on a [`ManualClock`]: a test ages the cache by moving the clock
//! ([`TestRelay::clock`]), never by sleeping, and replicas made with [`TestRelay::replica`] share it.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Age;
use pool_core::clock::ManualClock;
use pool_storage::StorageArgs;
use relay::{Application, Settings};
use serde_json::Value;
use testkit::TestApp;
use testkit::process::{ChildProcess, free_port, wait_port};
use testkit::{fleet_events, metric_value, write_partitioned};

/// pool-selector over a small dataset: three pools with recent jobs.
pub struct Upstream {
    pub base: String,
    client: reqwest::Client,
    /// The running pool-selector (stopped when the test ends).
    _app: TestApp,
    _events: tempfile::TempDir,
}

impl Upstream {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// [`spawn`](Self::spawn) with pool-selector's settings changed by `tweak`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut pool_selector::Settings)) -> Self {
        let dir = tempfile::tempdir().expect("temp folder");
        let storage = StorageArgs::for_url(dir.path().to_str().expect("utf-8 path"))
            .open()
            .expect("local storage");
        let age = Age::minutes(20);
        let events = fleet_events(&[
            ("pool-c6a.xlarge-us-east-1a", 200, 20, age),
            ("pool-m6a.xlarge-us-east-1b", 200, 2, age),
            ("pool-r6a.xlarge-us-east-1c", 200, 0, age),
        ]);
        write_partitioned(&storage, "x", &events).await;

        let mut settings = pool_selector::Settings::for_events_url(dir.path().to_str().unwrap());
        tweak(&mut settings);
        let app = pool_selector::Application::build(settings)
            .await
            .expect("pool-selector builds");
        let app = TestApp::start(app.port(), app.run_until_stopped());
        app.wait_ready().await;
        Self {
            base: app.base.clone(),
            client: reqwest::Client::new(),
            _app: app,
            _events: dir,
        }
    }

    async fn exposition(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("pool-selector answers /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// Requests pool-selector itself counted on `route` (`/get-pool`, `/pools`, or `unmatched`).
    pub async fn requests_to(&self, route: &str) -> u64 {
        metric_value(
            &self.exposition().await,
            "pool_selector_http_requests_total",
            &[("route", route)],
        ) as u64
    }

    /// Every request pool-selector counted except the test's own `/metrics` and `/ready` reads.
    pub async fn requests(&self) -> u64 {
        let text = self.exposition().await;
        let all = metric_value(&text, "pool_selector_http_requests_total", &[]);
        let own: f64 = ["/metrics", "/ready"]
            .iter()
            .map(|r| metric_value(&text, "pool_selector_http_requests_total", &[("route", r)]))
            .sum();
        (all - own) as u64
    }
}

/// A relay on a free port. Each one gets its own Redis key prefix, so tests sharing one Redis never
/// see each other's entries (a [`replica`](TestRelay::replica) shares its original's prefix).
pub struct TestRelay {
    pub base: String,
    /// The operations listener (`/metrics`, `/docs`, `/openapi.json`).
    pub admin: String,
    pub client: reqwest::Client,
    pub prefix: String,
    /// The time the relay judges its cache by; it moves only when the test advances it.
    pub clock: Arc<ManualClock>,
    /// The running relay (stopped when the test ends).
    app: TestApp,
}

/// One relayed answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub cache: String,
    pub age: Option<u64>,
    pub request_id: String,
    /// The `Content-Type` header (empty when absent).
    pub content_type: String,
    pub body: Value,
}

pub fn unique_prefix() -> String {
    format!("{}:", testkit::servers::unique("relay-test"))
}

/// A relay in front of `upstream`, caching in `redis` under a key prefix of its own, on a clock of its
/// own standing at the current time; `tweak` changes its settings last.
pub async fn spawn_app(
    upstream: &str,
    redis: &str,
    tweak: impl FnOnce(&mut Settings),
) -> TestRelay {
    let clock = Arc::new(ManualClock::starting_now());
    spawn_on(upstream, redis, unique_prefix(), clock, tweak).await
}

async fn spawn_on(
    upstream: &str,
    redis: &str,
    prefix: String,
    clock: Arc<ManualClock>,
    tweak: impl FnOnce(&mut Settings),
) -> TestRelay {
    let mut settings = Settings::for_upstream(upstream, redis);
    settings.redis_key_prefix = prefix;
    tweak(&mut settings);
    let prefix = settings.redis_key_prefix.clone();
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("relay builds");
    let admin = format!("http://127.0.0.1:{}", app.admin_port());
    let app = TestApp::start(app.port(), app.run_until_stopped());
    TestRelay {
        base: app.base.clone(),
        admin,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        prefix,
        clock,
        app,
    }
}

impl TestRelay {
    /// Another replica of this relay: in front of `upstream`, sharing this one's cache in `redis`
    /// (same key prefix) and its clock, with no in-process copies of its own.
    pub async fn replica(
        &self,
        upstream: &str,
        redis: &str,
        tweak: impl FnOnce(&mut Settings),
    ) -> TestRelay {
        spawn_on(
            upstream,
            redis,
            self.prefix.clone(),
            self.clock.clone(),
            tweak,
        )
        .await
    }

    /// Move the relay's clock forward by `by` (and its replicas' with it).
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.get_with(path_and_query, None).await
    }

    pub async fn get_with(&self, path_and_query: &str, request_id: Option<&str>) -> Reply {
        self.get_at(&self.base, path_and_query, request_id).await
    }

    /// [`get`](Self::get) with an owned path (for many requests built in a loop).
    pub async fn get_owned(&self, path_and_query: String) -> Reply {
        self.get(&path_and_query).await
    }

    /// A GET on the operations listener.
    pub async fn get_admin(&self, path_and_query: &str) -> Reply {
        self.get_at(&self.admin, path_and_query, None).await
    }

    async fn get_at(&self, base: &str, path_and_query: &str, request_id: Option<&str>) -> Reply {
        let mut req = self.client.get(format!("{base}{path_and_query}"));
        if let Some(id) = request_id {
            req = req.header("x-request-id", id);
        }
        let res = req.send().await.expect("the relay answers");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        let (status, cache, request_id, content_type) = (
            res.status().as_u16(),
            header("x-cache"),
            header("x-request-id"),
            header("content-type"),
        );
        let age = res
            .headers()
            .get("age")
            .map(|v| v.to_str().unwrap().parse().expect("numeric Age"));
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            cache,
            age,
            request_id,
            content_type,
            body,
        }
    }

    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let text = self
            .client
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .expect("the relay answers /metrics on its admin port")
            .text()
            .await
            .unwrap();
        metric_value(&text, name, labels) as u64
    }
}

/// Whether the shared test Redis holds an entry for `key` (`GET /route?canonical-query`) under `prefix`.
pub async fn redis_holds(prefix: &str, key: &str) -> bool {
    let client = redis::Client::open(shared_redis()).expect("TEST_REDIS_URL is a Redis URL");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("the shared test Redis answers");
    redis::cmd("EXISTS")
        .arg(format!("{prefix}e:{key}"))
        .query_async::<i64>(&mut con)
        .await
        .expect("EXISTS")
        == 1
}

/// The shared test Redis (`TEST_REDIS_URL`, started by scripts/test-services.sh).
pub fn shared_redis() -> String {
    testkit::servers::redis_url()
}

/// A port nothing listens on (bound, then released).
pub fn dead_port() -> u16 {
    free_port()
}

/// A TCP proxy to `target` whose answers arrive late: requests pass at once, but every byte coming
/// back is held until [`LateProxy::release`]. Redis behind it answers, only later than any timeout,
/// and the test decides when (no clock involved).
pub struct LateProxy {
    pub port: u16,
    gate: tokio::sync::watch::Sender<bool>,
}

impl LateProxy {
    pub async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (gate, open) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pipe(cr, sw, None));
                tokio::spawn(pipe(sr, cw, Some(open.clone())));
            }
        });
        Self { port, gate }
    }

    /// Let the held answers (and all later ones) through.
    pub fn release(&self) {
        let _ = self.gate.send(true);
    }
}

/// Copy `from` to `to`; with a gate, each chunk waits until the gate is open.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: Option<tokio::sync::watch::Receiver<bool>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Some(open) = gate.as_mut()
            && open.wait_for(|o| *o).await.is_err()
        {
            break;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
}

/// A private redis-server on a free port, killed (with its process group) when dropped.
pub struct RedisServer {
    pub port: u16,
    process: Option<ChildProcess>,
}

impl RedisServer {
    pub async fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            process: None,
        };
        server.restart().await;
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start (again) on the same port, and wait until it answers PING.
    pub async fn restart(&mut self) {
        assert!(self.process.is_none(), "redis-server already running");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The name says what to install when the binary is missing.
        let mut process = ChildProcess::spawn("redis-server (Debian package redis-server)", cmd);
        wait_port(&mut process, self.port, Duration::from_secs(30)).await;
        self.process = Some(process);
        let url = self.url();
        testkit::eventually(
            "the private redis-server to answer PING",
            Duration::from_secs(30),
            || {
                let url = url.clone();
                async move {
                    let client = redis::Client::open(url).ok()?;
                    let mut con = client.get_multiplexed_async_connection().await.ok()?;
                    redis::cmd("PING")
                        .query_async::<String>(&mut con)
                        .await
                        .ok()
                }
            },
        )
        .await;
    }

    /// Kill it outright (SIGKILL): connections drop, nothing answers on the port.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Freeze it (SIGSTOP): connections stay open and nothing answers, a Redis "too slow".
    pub fn pause(&self) {
        self.running().pause();
    }

    /// Thaw it (SIGCONT) after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.running().resume();
    }

    fn running(&self) -> &ChildProcess {
        self.process.as_ref().expect("redis-server running")
    }
}
