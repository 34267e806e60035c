//! Shared by the monitor's black-box tests: spawn the app on port 0 (optionally on a clock the test
//! advances), read its JSON and metrics, and drive a real RabbitMQ (queues declared and purged through
//! the management API, messages published and consumed over AMQP with lapin).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use monitor::{Application, Settings};
use pool_core::clock::{Clock, ManualClock};
use serde_json::Value;

/// How long the broker may take to show a change through the management API (it samples queue
/// statistics every few seconds, and rates need two samples): a deadline, never a measurement.
pub const STATS_WAIT: Duration = Duration::from_secs(90);

/// A queue name no other test uses.
pub fn unique_queue(tag: &str) -> String {
    testkit::servers::unique(&format!("monitor-test-{tag}"))
}

/// Settings for a test: port 0, a fast poll, no stabilisation unless the test sets one.
pub fn test_settings(management_url: &str, queue: &str) -> Settings {
    let mut s = Settings::defaults();
    s.source.rabbitmq_management_url = management_url.to_owned();
    s.source.poll_interval = Duration::from_millis(250);
    s.source.source_timeout = Duration::from_secs(2);
    s.workload.workload_name = "ingest-worker".into();
    s.workload.queue = queue.to_owned();
    s.workload.scale_down_stabilization = Duration::ZERO;
    s
}

/// The wall time a test's manual clock starts at, which makes a report's `observed_at` tell which
/// reading its decision was taken at.
pub const CLOCK_START: &str = "2026-01-01T00:00:00.000Z";

/// A clock that stands still until the test advances it, so a stabilisation window passes exactly
/// when the test says, however slow the machine; its wall time starts at [`CLOCK_START`].
pub fn manual_clock() -> Arc<ManualClock> {
    let start: DateTime<Utc> = CLOCK_START.parse().expect("a valid start");
    Arc::new(ManualClock::at(start))
}

/// The clock's current reading as a report's `observed_at` shows it.
pub fn observed_at(clock: &ManualClock) -> String {
    clock.utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The monitor running in the test process, with an HTTP client that ignores any ambient proxy.
pub struct MonitorApp {
    pub app: testkit::TestApp,
    pub client: reqwest::Client,
}

/// Build and run the monitor on the machine's clock.
pub async fn spawn_app(settings: Settings) -> MonitorApp {
    let app = Application::build(settings)
        .await
        .expect("the test settings are valid");
    start(app)
}

/// Build and run the monitor with its decisions taken on `clock`.
pub async fn spawn_app_with_clock(settings: Settings, clock: Arc<ManualClock>) -> MonitorApp {
    let app = Application::build_with_clock(settings, clock)
        .await
        .expect("the test settings are valid");
    start(app)
}

fn start(app: Application) -> MonitorApp {
    let port = app.port();
    MonitorApp {
        app: testkit::TestApp::start(port, app.run_until_stopped()),
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
    }
}

impl MonitorApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.app.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let json = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("GET {path} answered {status} non-JSON {body:?}: {e}"));
        (status, json)
    }

    /// The latest report, once the first poll has finished.
    pub async fn report(&self, workload: Option<&str>) -> Value {
        let path = match workload {
            Some(w) => format!("/desired-worker-scale?workload={w}"),
            None => "/desired-worker-scale".to_owned(),
        };
        let path = path.as_str();
        testkit::eventually("the first poll", Duration::from_secs(30), || async move {
            let (status, body) = self.get_json(path).await;
            (status == 200).then_some(body)
        })
        .await
    }

    /// Wait until the report satisfies `pred` (the broker samples queue statistics every few seconds,
    /// so a change shows up after up to one statistics interval plus one poll).
    pub async fn report_until(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let pred = &pred;
        testkit::eventually(what, timeout, || async move {
            let r = self.report(None).await;
            pred(&r).then_some(r)
        })
        .await
    }

    /// The first report whose decision was taken at `clock`'s current reading (or later).
    pub async fn report_at(&self, clock: &ManualClock) -> Value {
        let at = observed_at(clock);
        self.report_until(
            &format!("a decision taken at {at}"),
            Duration::from_secs(30),
            |r| r["observed_at"].as_str() >= Some(at.as_str()),
        )
        .await
    }

    pub async fn metrics(&self) -> String {
        let r = self.get("/metrics").await;
        assert_eq!(r.status().as_u16(), 200);
        r.text().await.unwrap()
    }
}

/// Management API helper for a test's own queues.
pub struct Broker {
    pub management: String,
    http: reqwest::Client,
    base: url::Url,
    auth: (String, String),
}

impl Broker {
    pub fn new() -> Self {
        let management = testkit::servers::rabbitmq_management_url();
        let mut base = url::Url::parse(&management).expect("TEST_RABBITMQ_MANAGEMENT_URL is a URL");
        let auth = (
            base.username().to_owned(),
            base.password().unwrap_or("").to_owned(),
        );
        base.set_username("").unwrap();
        base.set_password(None).unwrap();
        Self {
            management,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            base,
            auth,
        }
    }

    fn url(&self, segments: &[&str]) -> url::Url {
        let mut u = self.base.clone();
        u.path_segments_mut()
            .unwrap()
            .pop_if_empty()
            .extend(segments);
        u
    }

    /// Declare a non-durable queue that the broker deletes after ten unused minutes, so a failed
    /// test leaves nothing behind for long.
    pub async fn declare(&self, queue: &str) {
        let r = self
            .http
            .put(self.url(&["api", "queues", "/", queue]))
            .basic_auth(&self.auth.0, Some(&self.auth.1))
            .json(&serde_json::json!({"durable": false, "auto_delete": false,
                                      "arguments": {"x-expires": 600_000}}))
            .send()
            .await
            .expect("management API reachable");
        assert!(r.status().is_success(), "declare {queue}: {}", r.status());
    }

    pub async fn purge(&self, queue: &str) {
        let r = self
            .http
            .delete(self.url(&["api", "queues", "/", queue, "contents"]))
            .basic_auth(&self.auth.0, Some(&self.auth.1))
            .send()
            .await
            .expect("management API reachable");
        assert!(r.status().is_success(), "purge {queue}: {}", r.status());
    }

    pub async fn delete(&self, queue: &str) {
        let _ = self
            .http
            .delete(self.url(&["api", "queues", "/", queue]))
            .basic_auth(&self.auth.0, Some(&self.auth.1))
            .send()
            .await;
    }
}

/// An AMQP connection for publishing and consuming.
pub async fn amqp() -> Connection {
    let url = testkit::servers::amqp_url();
    Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at TEST_AMQP_URL unreachable: {e}"))
}

async fn publish_one(ch: &Channel, queue: &str, body: &[u8]) -> lapin::Result<()> {
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default(),
    )
    .await?
    .await?;
    Ok(())
}

/// Publish `n` small messages to `queue` through the default exchange.
pub async fn publish(conn: &Connection, queue: &str, n: usize) {
    let ch = conn.create_channel().await.unwrap();
    for i in 0..n {
        publish_one(&ch, queue, format!("{{\"n\":{i}}}").as_bytes())
            .await
            .unwrap();
    }
    let _ = ch.close(200, "done".into()).await;
}

/// A worker that can never keep up, without any pacing: one consumer (prefetch 1, manual ack) that,
/// for every message it takes, publishes `fanout` new ones to the same queue before acknowledging it.
/// Arrivals are therefore exactly `fanout` times completions whatever the machine's speed, the queue
/// only grows (the worker is saturated), and publishing, consuming and acknowledging share one
/// channel, so the broker samples both counters at the same instants and reports rates in that ratio.
/// Starts the cycle with one message; runs until the task is aborted.
pub async fn amplifying_consumer(
    conn: &Connection,
    queue: &str,
    fanout: usize,
) -> tokio::task::JoinHandle<()> {
    use futures::StreamExt;
    let ch = conn.create_channel().await.unwrap();
    ch.basic_qos(1, BasicQosOptions::default()).await.unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    publish_one(&ch, queue, b"{}").await.unwrap();
    let queue = queue.to_owned();
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            for _ in 0..fanout {
                if publish_one(&ch, &queue, b"{}").await.is_err() {
                    return;
                }
            }
            if delivery.ack(BasicAckOptions::default()).await.is_err() {
                return;
            }
        }
    })
}

/// A TCP forwarder in front of the management API that the test can stop and restart on the same
/// port: "the broker went away" without stopping the broker other tests share.
pub struct Outage {
    pub port: u16,
    target: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Outage {
    pub async fn start(target: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut o = Self {
            port,
            target: target.to_owned(),
            task: None,
        };
        o.serve(listener);
        o
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                conns.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }

    /// Stop listening and cut every open connection (the JoinSet aborts them when dropped).
    pub async fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listen again on the same port.
    pub async fn restore(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("the forwarder's port is free again");
        self.serve(listener);
    }
}

/// `host:port` of a URL.
pub fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        u.host_str().unwrap(),
        u.port_or_known_default().unwrap()
    )
}
