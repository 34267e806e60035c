//! Shared by the monitor's black-box tests: spawn the app on port 0, read its JSON and metrics, and
//! drive a real RabbitMQ (queues declared and purged through the management API, messages published
//! and consumed over AMQP with lapin).
#![allow(dead_code)]

use std::time::Duration;

use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use monitor::{Application, Settings};
use serde_json::Value;

/// The harness broker's management API (`TEST_RABBITMQ_MANAGEMENT_URL`, with credentials).
pub fn management_url() -> String {
    testkit::require_env("TEST_RABBITMQ_MANAGEMENT_URL")
}

/// The harness broker's AMQP URL (`TEST_AMQP_URL`).
pub fn amqp_url() -> String {
    testkit::require_env("TEST_AMQP_URL")
}

/// A queue name no other test uses.
pub fn unique_queue(tag: &str) -> String {
    format!(
        "monitor-test.{tag}.{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
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

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn spawn_app(settings: Settings) -> TestApp {
    let app = Application::build(settings)
        .await
        .expect("the test settings are valid");
    let address = format!("http://127.0.0.1:{}", app.port());
    let task = tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        task,
    }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
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
        testkit::eventually("the first poll", Duration::from_secs(15), || async move {
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
        let management = management_url();
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

    /// `messages_ready` as the management API reports it now.
    pub async fn ready(&self, queue: &str) -> u64 {
        let v: Value = self
            .http
            .get(self.url(&["api", "queues", "/", queue]))
            .basic_auth(&self.auth.0, Some(&self.auth.1))
            .send()
            .await
            .expect("management API reachable")
            .json()
            .await
            .unwrap();
        v["messages_ready"].as_u64().unwrap_or(0)
    }
}

/// An AMQP connection for publishing and consuming.
pub async fn amqp() -> Connection {
    let url = amqp_url();
    Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap_or_else(|e| panic!("RabbitMQ at TEST_AMQP_URL unreachable: {e}"))
}

/// Publish `n` small messages to `queue` through the default exchange.
pub async fn publish(conn: &Connection, queue: &str, n: usize) {
    let ch = conn.create_channel().await.unwrap();
    for i in 0..n {
        ch.basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            format!("{{\"n\":{i}}}").as_bytes(),
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let _ = ch.close(200, "done".into()).await;
}

/// Publish at `rate` messages per second for `duration` (bounded: it stops by itself).
pub async fn publish_at_rate(
    conn: &Connection,
    queue: &str,
    rate: u32,
    duration: Duration,
) -> tokio::task::JoinHandle<usize> {
    let ch = conn.create_channel().await.unwrap();
    let queue = queue.to_owned();
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut ticker = tokio::time::interval(Duration::from_millis(50));
        let per_tick = (rate as f64 / 20.0).round() as usize;
        let mut sent = 0;
        while started.elapsed() < duration {
            ticker.tick().await;
            for _ in 0..per_tick {
                if ch
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        b"{}",
                        BasicProperties::default(),
                    )
                    .await
                    .is_err()
                {
                    return sent;
                }
                sent += 1;
            }
        }
        sent
    })
}

/// A consumer that takes `work` per message (prefetch 1, manual ack), i.e. handles about
/// `1 / work` messages per second: a stand-in for an ingest worker of known capacity.
pub async fn slow_consumer(
    conn: &Connection,
    queue: &str,
    work: Duration,
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
    tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            tokio::time::sleep(work).await;
            if delivery.ack(BasicAckOptions::default()).await.is_err() {
                break;
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

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
