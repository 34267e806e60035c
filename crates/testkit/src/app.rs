//! A service running inside the test process. Every service's `Application` binds port 0 when its
//! settings say so and serves until its future ends; [`TestApp`] owns that future's task, knows the
//! port, and stops the service when dropped. Each crate's `tests/api/main.rs` has a `spawn_app()` that
//! builds its settings and hands the application here.

use std::future::Future;

use tokio::task::JoinHandle;

/// A running in-process service: `base` is `http://127.0.0.1:<port>`.
pub struct TestApp {
    pub port: u16,
    pub base: String,
    handle: Option<JoinHandle<()>>,
}

impl TestApp {
    /// Run `serve` (an application's `run_until_stopped()`) on a task; `port` is the one it bound.
    pub fn start<F, T>(port: u16, serve: F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let handle = tokio::spawn(async move {
            serve.await;
        });
        Self {
            port,
            base: format!("http://127.0.0.1:{port}"),
            handle: Some(handle),
        }
    }

    /// `base` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// This service's `/metrics` exposition.
    pub async fn metrics(&self) -> String {
        crate::metrics::scrape(&self.base).await
    }

    /// One metric of this service: the sum of its series whose labels include `labels`.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        crate::metrics::metric_value(&self.metrics().await, name, labels)
    }

    /// Stop the service now (its task is aborted, which drops the server and closes its port).
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}
