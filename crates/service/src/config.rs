//! Configuration pieces flattened into the binaries' clap parsers. Each comes from a flag or, failing
//! that, the environment variable named in its `env` attribute.

pub use crate::telemetry::TelemetryArgs;

use clap::Args;

/// RabbitMQ names every producer, the ingest worker and the monitor agree on (each can be overridden
/// with its `AMQP_*` variable). Here, not in `pool-amqp`, because the monitor reads the queue's depth
/// through the management API and never speaks AMQP.
/// Default exchange producers publish to.
pub const DEFAULT_EXCHANGE: &str = "events";
/// Default queue the ingest worker consumes.
pub const DEFAULT_QUEUE: &str = "events.ingest";
/// Default dead-letter exchange.
pub const DEFAULT_DEAD_LETTER_EXCHANGE: &str = "events.dlx";
/// Default queue holding messages that can never be stored.
pub const DEFAULT_DEAD_LETTER_QUEUE: &str = "events.dead";

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
    /// Bind the listening socket (the service's default port when none was given; 0 picks a free one)
    /// and return it with the port actually bound. The error names the address and what to change.
    pub fn bind(&self, default_port: u16) -> std::io::Result<(std::net::TcpListener, u16)> {
        self.bind_port(self.port.unwrap_or(default_port))
    }
    /// Bind `port` on this host: a second port of the same service (the relay's admin port).
    pub fn bind_port(&self, port: u16) -> std::io::Result<(std::net::TcpListener, u16)> {
        let host = &self.host;
        let listener = std::net::TcpListener::bind((host.as_str(), port)).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot listen on {host}:{port}: {e} (set HOST and PORT to a free address)"
                ),
            )
        })?;
        let port = listener.local_addr()?.port();
        Ok((listener, port))
    }
    pub fn workers(&self) -> usize {
        self.workers.filter(|w| *w > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}
