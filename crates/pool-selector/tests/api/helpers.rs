//! Spawning pool-selector in the test process for black-box HTTP tests, and the fixtures they share.

use chrono::Duration;
use pool_selector::{Application, Settings};
use pool_storage::{Storage, StorageArgs};
use testkit::{pool_events, write_partitioned};

/// pool-selector on a free port (stopped when dropped), with a client for it.
pub type App = testkit::TestApp;

/// pool-selector over the events at `url` (a folder, `file://` or `s3://` URL).
pub async fn spawn_app(url: &str) -> App {
    spawn_app_with(Settings::for_events_url(url)).await
}

/// pool-selector over `storage`.
pub async fn spawn_app_on(storage: StorageArgs) -> App {
    let mut settings = Settings::for_events_url("unused");
    settings.storage = storage;
    spawn_app_with(settings).await
}

/// pool-selector with these settings (see [`Settings::for_events_url`] for a start), once its view
/// of the history is loaded.
pub async fn spawn_app_with(settings: Settings) -> App {
    let app = spawn_unready(settings).await;
    app.wait_ready().await;
    app
}

/// pool-selector with these settings, without waiting for its view to load (storage that is missing
/// or hangs).
pub async fn spawn_unready(settings: Settings) -> App {
    let app = Application::build(settings)
        .await
        .expect("pool-selector builds");
    testkit::TestApp::start(app.port(), app.run_until_stopped())
}

/// A temporary folder holding `events` in hourly partitions.
pub async fn folder_with(events: &[pool_core::Event]) -> (tempfile::TempDir, Storage) {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageArgs::for_url(dir.path().to_str().unwrap())
        .open()
        .unwrap();
    write_partitioned(&storage, "batch-1", events).await;
    (dir, storage)
}

/// `per_age` successful jobs of one pool at each of `ages` (how long ago they finished).
pub fn events_at(
    pool_id: &str,
    per_age: usize,
    ages: impl IntoIterator<Item = Duration>,
) -> Vec<pool_core::Event> {
    ages.into_iter()
        .flat_map(|age| pool_events(pool_id, per_age, 0, age))
        .collect()
}

pub fn url(dir: &tempfile::TempDir) -> &str {
    dir.path().to_str().unwrap()
}
