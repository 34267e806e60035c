//! Configuration pieces flattened into the binaries' clap parsers. Each comes from a flag or, failing
//! that, the environment variable named in its `env` attribute.

pub use crate::storage::StorageArgs;
pub use crate::telemetry::TelemetryArgs;

use clap::Args;

/// Where an HTTP server listens. Each binary sets its own default port through `PORT`.
#[derive(Args, Debug, Clone)]
pub struct ListenArgs {
    /// Address to bind.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to bind (0 picks a free one).
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "HTTP_WORKERS")]
    pub workers: Option<usize>,
}

impl ListenArgs {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port: Some(port),
            workers: None,
        }
    }
    /// `host:port`, with the service's default port when none was given.
    pub fn addr(&self, default_port: u16) -> (String, u16) {
        (self.host.clone(), self.port.unwrap_or(default_port))
    }
    pub fn workers(&self) -> usize {
        self.workers.filter(|w| *w > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}
