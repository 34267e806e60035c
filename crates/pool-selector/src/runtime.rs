//! A dedicated multi-threaded Tokio runtime for scans.
//!
//! actix-web runs each HTTP worker on a single-threaded runtime. DataFusion parallelises a scan by
//! spawning one task per partition, which on such a runtime would all share one thread. Scans therefore
//! run here, on a runtime with one thread per core, and the handler just awaits the result.

use std::future::Future;

use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

pub struct QueryRuntime(Option<Runtime>);

impl QueryRuntime {
    pub fn new(threads: usize) -> std::io::Result<Self> {
        Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("query")
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
    }

    pub fn spawn<F>(&self, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0.as_ref().expect("runtime lives until drop").spawn(f)
    }
}

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        // Dropping a runtime inside another one's async context panics; let it wind down in the background.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}
