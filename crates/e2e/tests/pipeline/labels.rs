//! Bounded metric labels: every HTTP service's `/metrics` (pool-selector, the relay's public and
//! admin ports, the intake, the monitor, the launcher, the compactor, the ingest-worker) keeps the same
//! request series whatever methods and paths clients invent. Request labels come from closed sets: the
//! route is the matched pattern, never the path, and an unknown method is `other`.

use std::collections::BTreeSet;
use std::time::Duration;

use rand::Rng;
use testkit::TestApp;

use crate::helpers::{spawn_intake, spawn_selector, spawn_worker, test_amqp};

/// A service's HTTP listeners: where requests go and where its `/metrics` is.
struct Target {
    name: &'static str,
    /// Bases the random requests go to (the relay: both its ports).
    bases: Vec<String>,
    metrics: String,
}

/// The request series of an exposition (`*_http_request*` families), as name + labels.
fn request_series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && l.contains("_http_request"))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect()
}

/// Every series of an exposition.
fn all_series(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count()
}

async fn scrape(client: &reqwest::Client, url: &str) -> String {
    client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
        .text()
        .await
        .unwrap()
}

/// `n` requests with made-up methods (and some standard ones) to made-up paths of a few shapes, each
/// shape under a prefix the service routes (so matched patterns, 404s and 405s all occur).
async fn noise(client: &reqwest::Client, base: &str, n: usize, seed: u64) {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
    let prefixes = [
        "/",
        "/docs/",
        "/launches/",
        "/events/",
        "/pools/",
        "/metrics/",
        "/health/x/",
    ];
    for i in 0..n {
        let method = match i % 5 {
            0 => reqwest::Method::GET,
            1 => reqwest::Method::POST,
            _ => reqwest::Method::from_bytes(format!("M{:08X}", rng.random::<u32>()).as_bytes())
                .unwrap(),
        };
        let prefix = prefixes[i % prefixes.len()];
        let path = format!(
            "{base}{prefix}{:x}/{:x}",
            rng.random::<u64>(),
            rng.random::<u16>()
        );
        let _ = client
            .request(method, &path)
            .header("authorization", "Bearer not-a-token")
            .send()
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_add_no_metric_series_on_any_service() {
    let amqp = test_amqp("labels");
    let events = tempfile::tempdir().unwrap();
    let storage = pool_storage::StorageArgs::for_url(events.path().to_str().unwrap());
    testkit::write_partitioned(
        &storage.open().unwrap(),
        "x",
        &testkit::pool_events(
            "pool-c6a.xlarge-us-east-1a",
            20,
            2,
            chrono::Duration::minutes(30),
        ),
    )
    .await;

    let selector = spawn_selector(storage.clone()).await;
    let worker = spawn_worker(amqp.clone(), storage.clone()).await;
    let intake = spawn_intake(amqp.clone(), 1 << 20).await;

    let relay_app = relay::Application::build(relay::Settings::for_upstream(
        &selector.app.base,
        &testkit::servers::redis_url(),
    ))
    .await
    .unwrap();
    let relay_admin = format!("http://127.0.0.1:{}", relay_app.admin_port());
    let relay = TestApp::start(relay_app.port(), relay_app.run_until_stopped());

    let mut monitor_settings = monitor::Settings::defaults();
    monitor_settings.source.rabbitmq_management_url = testkit::servers::rabbitmq_management_url();
    monitor_settings.workload.queue = amqp.queue.clone();
    let monitor_app = monitor::Application::build(monitor_settings).await.unwrap();
    let monitor = TestApp::start(monitor_app.port(), monitor_app.run_until_stopped());

    let templates =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/launch-templates");
    let launcher_settings = launcher::Settings::for_tests(templates, &relay.base, &intake.base);
    let launcher_app = launcher::Application::build(launcher_settings)
        .await
        .unwrap();
    let launcher = TestApp::start(launcher_app.port(), launcher_app.run_until_stopped());

    let mut compactor_settings =
        compactor::Settings::for_events_url(events.path().to_str().unwrap());
    compactor_settings.once = false;
    compactor_settings.every = Some(Duration::from_secs(3600));
    let compactor_app = compactor::Application::build(compactor_settings)
        .await
        .unwrap();
    let compactor_base = format!(
        "http://127.0.0.1:{}",
        compactor_app.port().expect("--every serves /metrics")
    );
    tokio::spawn(compactor_app.run_until_stopped());

    let targets = [
        Target {
            name: "pool-selector",
            bases: vec![selector.app.base.clone()],
            metrics: selector.app.url("/metrics"),
        },
        Target {
            name: "relay",
            bases: vec![relay.base.clone(), relay_admin.clone()],
            metrics: format!("{relay_admin}/metrics"),
        },
        Target {
            name: "intake",
            bases: vec![intake.base.clone()],
            metrics: intake.url("/metrics"),
        },
        Target {
            name: "monitor",
            bases: vec![monitor.base.clone()],
            metrics: monitor.url("/metrics"),
        },
        Target {
            name: "launcher",
            bases: vec![launcher.base.clone()],
            metrics: launcher.url("/metrics"),
        },
        Target {
            name: "compactor",
            bases: vec![compactor_base.clone()],
            metrics: format!("{compactor_base}/metrics"),
        },
        Target {
            name: "ingest-worker",
            bases: vec![worker.base.clone()],
            metrics: worker.url("/metrics"),
        },
    ];
    let client = reqwest::Client::new();
    for (i, t) in targets.iter().enumerate() {
        // A first round of noise creates whatever bounded series the shapes of requests make (an
        // `other` method on an unmatched route, a 405, …); a second, with other methods and paths,
        // must add none, and the whole exposition stays about as large as before any noise.
        let before = all_series(&scrape(&client, &t.metrics).await);
        for base in &t.bases {
            noise(&client, base, 150, 2 * i as u64).await;
        }
        let first = scrape(&client, &t.metrics).await;
        for base in &t.bases {
            noise(&client, base, 150, 2 * i as u64 + 1).await;
        }
        let second = scrape(&client, &t.metrics).await;
        let (a, b) = (request_series(&first), request_series(&second));
        let new: Vec<_> = b.difference(&a).collect();
        assert!(
            new.is_empty(),
            "{}: 150 more made-up requests added series {new:?}",
            t.name
        );
        assert!(
            all_series(&second) < before + 400,
            "{}: {} series before the noise, {} after 300 made-up requests",
            t.name,
            before,
            all_series(&second)
        );
        assert!(
            !second.contains("method=\"M"),
            "{}: a made-up method became a label value",
            t.name
        );
    }
    drop(worker);
    crate::helpers::delete_topology(&amqp).await;
}
