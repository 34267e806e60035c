//! Spawning pool-selector in the test process for black-box HTTP tests, and the fixtures they share.

use std::ops::Deref;

use chrono::Duration;
use pool_selector::{Application, Settings};
use pool_storage::{Storage, StorageArgs};
use serde_json::Value;
use testkit::{pool_events, write_partitioned};

/// pool-selector on a free port (stopped when dropped), with a client for it.
pub struct App {
    app: testkit::TestApp,
    pub client: reqwest::Client,
}

impl Deref for App {
    type Target = testkit::TestApp;
    fn deref(&self) -> &testkit::TestApp {
        &self.app
    }
}

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

/// pool-selector with these settings (see [`Settings::for_events_url`] for a start).
pub async fn spawn_app_with(settings: Settings) -> App {
    let app = Application::build(settings)
        .await
        .expect("pool-selector builds");
    App {
        app: testkit::TestApp::start(app.port(), app.run_until_stopped()),
        client: reqwest::Client::new(),
    }
}

impl App {
    /// `GET path_and_query`: the status and the body as JSON (a JSON string when it is not JSON).
    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let res = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .expect("request reaches the app");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    /// `GET path`: the status and the body as text.
    pub async fn text(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request reaches the app");
        (res.status().as_u16(), res.text().await.expect("body"))
    }
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
