//! Spawning the intake in the test process, talking to it, and reading back what it published.

use std::ops::Deref;

use intake::{Application, Settings};
use pool_amqp::AmqpArgs;
use pool_core::Event;
use serde_json::Value;

pub use testkit::ndjson;
pub use testkit::queues::{declare_topology, delete_topology, drain_events, ready_messages};

/// A bearer token every test intake accepts.
pub const TOKEN: &str = "test-token-1";
/// A second accepted token, with a rate of its own.
pub const OTHER_TOKEN: &str = "other-token";

/// Exchange and queue names of this test's own on the test RabbitMQ.
pub fn test_amqp() -> AmqpArgs {
    testkit::queues::test_amqp("intake")
}

/// A broker address where nothing listens (a port just found free).
pub fn dead_amqp() -> AmqpArgs {
    testkit::queues::amqp_on(
        &format!(
            "amqp://guest:guest@127.0.0.1:{}/%2f",
            testkit::process::free_port()
        ),
        "dead",
    )
}

/// Test settings publishing with `amqp`, accepting [`TOKEN`] and [`OTHER_TOKEN`], changed by `tweak`.
pub fn settings(amqp: AmqpArgs, tweak: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::for_amqp(amqp);
    s.intake.intake_tokens = vec![TOKEN.into(), OTHER_TOKEN.into()];
    tweak(&mut s);
    s
}

/// The intake on a free port (stopped when dropped), with a client for it.
pub struct App {
    app: testkit::TestApp,
}

impl Deref for App {
    type Target = testkit::TestApp;
    fn deref(&self) -> &testkit::TestApp {
        &self.app
    }
}

/// The intake with these settings (see [`settings`]).
pub async fn spawn_app(settings: Settings) -> App {
    let app = Application::build(settings)
        .await
        .expect("the intake builds");
    App {
        app: testkit::TestApp::start(app.port(), app.run_until_stopped()),
    }
}

/// An answer: status, body (JSON, or the text as a JSON string) and `Retry-After`.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<String>,
}

impl App {
    /// `POST /events` with `body` as `content_type`, with `token` as bearer when given.
    pub async fn post(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self
            .client
            .post(self.url("/events"))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        reply(req.send().await.expect("the intake answers")).await
    }

    /// `POST /events` of a JSON body with [`TOKEN`].
    pub async fn post_json(&self, body: impl Into<reqwest::Body>) -> Reply {
        self.post(Some(TOKEN), "application/json", body).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.client
                .get(self.url(path))
                .send()
                .await
                .expect("the intake answers"),
        )
        .await
    }
}

async fn reply(res: reqwest::Response) -> Reply {
    let status = res.status().as_u16();
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = res.text().await.expect("a body");
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        retry_after,
    }
}

/// `n` valid events of recent jobs, with job ids starting with `tag`. Stamped to the millisecond, as
/// they travel, so what is read back from the queue equals what was sent.
pub fn events(tag: &str, n: usize) -> Vec<Event> {
    let finished = (chrono::Utc::now() - chrono::Duration::minutes(10)).timestamp_millis();
    let pools = [
        "pool-c6a.xlarge-us-east-1a",
        "pool-m6a.xlarge-us-east-1b",
        "pool-c7i.metal-24xl-us-west-2-lax-1a",
    ];
    (0..n)
        .map(|i| {
            testkit::event(
                chrono::DateTime::from_timestamp_millis(finished + i as i64).expect("a valid time"),
                &format!("{tag}-{i}"),
                pools[i % pools.len()],
                if i % 7 == 0 { "spot" } else { "ok" },
            )
        })
        .collect()
}
