//! Spawning pool-selector on a free port for black-box HTTP tests.

#![allow(dead_code)]

use pool_selector::{Application, Settings};
use pool_storage::StorageArgs;
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
}

impl TestApp {
    pub async fn spawn(url: &str) -> Self {
        Self::spawn_with(Settings::for_events_url(url)).await
    }

    pub async fn spawn_storage(storage: StorageArgs) -> Self {
        let mut settings = Settings::for_events_url("unused");
        settings.storage = storage;
        Self::spawn_with(settings).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        let app = Application::build(settings)
            .await
            .expect("pool-selector builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            client: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path_and_query: &str) -> (u16, Value) {
        let res = self
            .client
            .get(format!("{}{path_and_query}", self.base))
            .send()
            .await
            .expect("request reaches the app");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn text(&self, path: &str) -> (u16, String) {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request reaches the app");
        (res.status().as_u16(), res.text().await.expect("body"))
    }
}
