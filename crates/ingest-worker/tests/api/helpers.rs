//! What the worker's tests share: queues of their own on the test broker, event fixtures, the worker
//! in-process ([`spawn_app`]) or as its binary ([`WorkerProcess`]), and reading back what was stored.

use std::process::{Command, Stdio};
use std::time::Duration;

use ingest_worker::{Application, Settings};
use pool_amqp::AmqpArgs;
use pool_storage::StorageArgs;
use testkit::app::GracefulApp;
use testkit::process::{ChildProcess, Sig, free_port};

pub use testkit::events::{job_ids, jobs_per_pool, spread_events as events};
pub use testkit::queues::{
    amqp_on, delete_topology, drain, ready_messages, test_amqp, wait_drained,
};
pub use testkit::stored::{stored, stored_job_ids, wait_stored};

/// Worker settings for a test: batches written once their first message is 300 ms old (so a test
/// waiting for the store does not wait for the 2 s default), metrics on a free port of 127.0.0.1.
pub fn worker_settings(amqp: AmqpArgs, storage: StorageArgs) -> Settings {
    let mut s = Settings::new(amqp, storage);
    s.batch.batch_max_age = Duration::from_millis(300);
    s.shutdown_grace = Duration::from_secs(20);
    s
}

/// The worker running inside the test process, stopped the way SIGTERM stops the binary: through the
/// The worker in-process, stopped the way SIGTERM stops the binary: through the shutdown future
/// `run_until_stopped` takes ([`testkit::app::GracefulApp::stop`] returns how it ended).
pub type TestWorker = GracefulApp<anyhow::Result<()>>;

/// Build the worker from `settings` and run it in-process.
pub async fn spawn_app(settings: Settings) -> TestWorker {
    let app = Application::build(settings)
        .await
        .expect("the worker builds");
    GracefulApp::start(app.port(), |shutdown| app.run_until_stopped(shutdown))
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
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        testkit::metric_value(&testkit::scrape(&self.base).await, name, labels)
    }

    pub fn signal(&self, signal: Sig) {
        self.process.signal(signal);
    }
}
