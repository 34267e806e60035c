//! What poolctl's tests run against: the real services in this process (testkit::TestApp) over the
//! real test servers (S3, Redis, RabbitMQ from scripts/test-services.sh), and the real `poolctl`
//! binary (assert_cmd) pointed at them through its environment variables.

#![allow(dead_code)]

use std::process::Output;

use chrono::Duration as Age;
use pool_amqp::AmqpArgs;
use testkit::TestApp;
use testkit::{fleet_events, new_bucket, s3_args, write_partitioned};

/// The intake token every test intake accepts.
pub const TOKEN: &str = "poolctl-test-token";
/// The launcher token of the test launcher's one caller (`LAUNCHER_TOKENS` ci:<this>).
pub const LAUNCHER_TOKEN: &str = "poolctl-launcher-token";

/// pool-selector over a fresh S3 bucket holding three pools with recent jobs (r6a the safest, then
/// m6a, then c6a), and the relay in front of it with the shared test Redis.
pub struct Ranking {
    pub selector: TestApp,
    pub relay: TestApp,
}

/// The ranking services (see [`Ranking`]).
pub async fn spawn_app() -> Ranking {
    let bucket = new_bucket("poolctl").await;
    let args = s3_args(&bucket, "events/");
    let storage = args.open().expect("S3 storage");
    let age = Age::minutes(20);
    let events = fleet_events(&[
        ("pool-c6a.xlarge-us-east-1a", 200, 20, age),
        ("pool-m6a.xlarge-us-east-1b", 200, 2, age),
        ("pool-r6a.xlarge-us-east-1c", 200, 0, age),
    ]);
    write_partitioned(&storage, "fixture", &events).await;

    let mut settings = pool_selector::Settings::for_events_url("unused");
    settings.storage = args;
    let app = pool_selector::Application::build(settings)
        .await
        .expect("pool-selector builds");
    let selector = TestApp::start(app.port(), app.run_until_stopped());
    selector.wait_ready().await;
    let relay = spawn_relay(&selector.base).await;
    Ranking { selector, relay }
}

/// A relay in front of `upstream`, caching in the shared test Redis under a key prefix of its own.
pub async fn spawn_relay(upstream: &str) -> TestApp {
    let mut settings = relay::Settings::for_upstream(upstream, &testkit::servers::redis_url());
    settings.redis_key_prefix = format!("{}:", testkit::servers::unique("poolctl-test"));
    let app = relay::Application::build(settings)
        .await
        .expect("the relay builds");
    TestApp::start(app.port(), app.run_until_stopped())
}

/// The intake publishing to exchanges and queues of this test's own on the test RabbitMQ (declared),
/// accepting [`TOKEN`].
pub async fn spawn_intake() -> (TestApp, AmqpArgs) {
    let amqp = testkit::queues::test_amqp("poolctl");
    testkit::queues::declare_topology(&amqp).await;
    let mut settings = intake::Settings::for_amqp(amqp.clone());
    settings.intake.intake_tokens = vec![TOKEN.into()];
    let app = intake::Application::build(settings)
        .await
        .expect("the intake builds");
    (TestApp::start(app.port(), app.run_until_stopped()), amqp)
}

/// A URL where nothing listens (a port found free).
pub fn dead_url() -> String {
    format!("http://127.0.0.1:{}", testkit::process::free_port())
}

/// `poolctl` with every service URL pointing nowhere (so a test reaches only what it names), no
/// colour and no settings inherited from the environment running the tests.
pub fn poolctl() -> assert_cmd::Command {
    // Cargo builds the binary for its integration tests and names it here.
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_poolctl"));
    for var in [
        "POOL_SELECTOR_URL",
        "MONITOR_URL",
        "INTAKE_URL",
        "INTAKE_TOKEN",
        "LAUNCHER_URL",
        "LAUNCHER_TOKEN",
        "POOLCTL_OUTPUT",
        "POOLCTL_TIMEOUT",
        "NO_COLOR",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("POOL_SELECTOR_URL", dead_url())
        .env("MONITOR_URL", dead_url())
        .env("INTAKE_URL", dead_url())
        .env("LAUNCHER_URL", dead_url());
    cmd
}

/// Run `cmd` off the test's runtime (the services it calls are served by that runtime).
pub async fn run(mut cmd: assert_cmd::Command) -> Done {
    let output = tokio::task::spawn_blocking(move || cmd.output().expect("poolctl runs"))
        .await
        .expect("the command's thread");
    Done(output)
}

/// A finished poolctl run.
pub struct Done(pub Output);

impl Done {
    pub fn code(&self) -> i32 {
        self.0.status.code().expect("exited, not killed")
    }

    pub fn stdout(&self) -> String {
        String::from_utf8(self.0.stdout.clone()).expect("UTF-8 output")
    }

    pub fn stderr(&self) -> String {
        String::from_utf8(self.0.stderr.clone()).expect("UTF-8 errors")
    }

    /// Assert the exit code, showing both streams when it is another one.
    pub fn expect(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout()))
    }
}
