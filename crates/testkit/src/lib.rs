//! `testkit`: the one test harness of the workspace's black-box tests.
//!
//! * [`servers`]: the real servers `scripts/test-services.sh` starts (S3, RabbitMQ, Redis). A test that
//!   needs one calls [`require_env`], which fails it loudly, naming the variable and the script, when
//!   the server was not started: nothing is skipped in silence.
//! * [`app`]: a service's `Application` running in the test process on port 0 ([`app::TestApp`]).
//! * [`process`]: a binary or a server as a child process: signals through `nix`, exits awaited with a
//!   deadline, killed with its process group on drop ([`process::ChildProcess`]); free ports.
//! * [`broker`]: a private RabbitMQ node a test may stop and restart without disturbing the others.
//! * [`metrics`]: scraping a `/metrics` endpoint and reading one series.
//! * [`queues`]: exchanges and queues of a test's own on RabbitMQ, read back and deleted.
//! * [`users`]: RabbitMQ users of a test's own, one per role, with the role's production permissions.
//! * [`stored`]: every event line a pipeline stored, read back from S3 or a folder.
//! * [`events`]: valid job events and their hourly NDJSON objects, for fixtures.
//! * [`eventually`]: wait for a condition with a deadline (tests never pace themselves with sleeps
//!   nor assert on how long something took).

pub mod app;
pub mod broker;
pub mod events;
pub mod metrics;
pub mod process;
pub mod queues;
pub mod servers;
pub mod stored;
pub mod users;

use std::future::Future;
use std::time::{Duration, Instant};

pub use app::TestApp;
pub use events::{event, fleet_events, ndjson, pool_events, write_partitioned};
pub use metrics::{metric_value, scrape};
pub use servers::{delete_bucket, new_bucket, require_env, s3_args, s3_endpoint, silent_server};

/// Poll `check` every 50 ms until it returns `Some`, or panic after `timeout` with `what`. The timeout
/// is a deadline for a condition, generous enough for a loaded machine, never a measurement.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
