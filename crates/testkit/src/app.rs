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
    /// A client for it (keeps connections alive across a test's requests).
    pub client: reqwest::Client,
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
            client: reqwest::Client::new(),
            handle: Some(handle),
        }
    }

    /// `base` + `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// `GET path_and_query`: the status and the body as JSON (a JSON string when it is not JSON).
    pub async fn get(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let (status, text) = self.text(path_and_query).await;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, body)
    }

    /// `GET path_and_query`: the status and the body as text.
    pub async fn text(&self, path_and_query: &str) -> (u16, String) {
        let res = self
            .client
            .get(self.url(path_and_query))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path_and_query} reaches the service: {e}"));
        (res.status().as_u16(), res.text().await.expect("a body"))
    }

    /// Wait until `GET /ready` answers 200 (a service that loads before it serves, like pool-selector's
    /// view of the history), or panic after a generous deadline.
    pub async fn wait_ready(&self) {
        crate::eventually(
            &format!("{}/ready to answer 200", self.base),
            std::time::Duration::from_secs(60),
            || async {
                let res = self.client.get(self.url("/ready")).send().await.ok()?;
                (res.status().as_u16() == 200).then_some(())
            },
        )
        .await;
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

/// A service whose `run_until_stopped` takes a shutdown future (the way SIGTERM stops its binary):
/// [`GracefulApp::stop`] resolves that future and returns how the service ended.
pub struct GracefulApp<T> {
    pub app: TestApp,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    outcome: Option<tokio::sync::oneshot::Receiver<T>>,
}

/// The shutdown future handed to a [`GracefulApp`]'s service.
pub type Shutdown = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

impl<T: Send + 'static> GracefulApp<T> {
    /// Run `run(shutdown)` (an application's `run_until_stopped`) on a task; `port` is the one it bound.
    pub fn start<F, Fut>(port: u16, run: F) -> Self
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let (report, outcome) = tokio::sync::oneshot::channel();
        let serve = run(Box::pin(async move {
            let _ = stopped.await;
        }));
        let app = TestApp::start(port, async move {
            let _ = report.send(serve.await);
        });
        Self {
            app,
            shutdown: Some(shutdown),
            outcome: Some(outcome),
        }
    }

    /// Ask the service to stop and wait for how it ended.
    pub async fn stop(mut self) -> T {
        let _ = self.shutdown.take().expect("stopped once").send(());
        self.outcome
            .take()
            .expect("stopped once")
            .await
            .expect("the service's task reports how it ended")
    }
}

impl<T> std::ops::Deref for GracefulApp<T> {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}
