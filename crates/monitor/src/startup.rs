//! `Application::build(settings)` → `port()` → `run_until_stopped()`, as in zero2prod: tests build on
//! port 0, read the port, and spawn the future.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use pool_http::metrics::{HttpMetrics, new_registry};
use pool_http::{operations, query_config, track_requests};
use utoipa::OpenApi;

use crate::metrics::{MonitorMetrics, NAMESPACE};
use crate::poller::Poller;
use crate::routes::{ApiDoc, desired_worker_scale, ready, workloads};
use crate::settings::{ConfigError, DEFAULT_PORT, Settings};
use pool_core::clock::{Clock, SystemClock};

/// Why the application could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The port cannot be bound (the message names the address and what to change).
    #[error("{0}")]
    Bind(#[source] std::io::Error),
}

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub struct Application {
    port: u16,
    server: Server,
    poller: Arc<Poller>,
}

impl Application {
    /// Validate the settings, bind the port and prepare the server; nothing is polled until
    /// [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`Application::build`] with decisions taken at `clock`'s time instead of the machine's: the
    /// integration tests pass a clock they advance by hand, so a stabilisation window passes when
    /// the test says so rather than after waiting it out.
    pub async fn build_with_clock(
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let config = settings.validate()?;
        let registry = new_registry(NAMESPACE);
        let http_metrics = HttpMetrics::register(&registry);
        let poller = Arc::new(Poller::new(
            &config,
            MonitorMetrics::register(&registry),
            clock,
        ));

        let (listener, port) = config
            .listen
            .bind(DEFAULT_PORT)
            .map_err(StartupError::Bind)?;

        let registry = web::Data::new(registry);
        let http_metrics = web::Data::new(http_metrics);
        let poller_data = web::Data::new(poller.clone());
        let openapi = ApiDoc::openapi();
        let server = pool_http::serve::start(
            move || {
                App::new()
                    .wrap(from_fn(track_requests))
                    .app_data(registry.clone())
                    .app_data(http_metrics.clone())
                    .app_data(poller_data.clone())
                    .app_data(query_config())
                    .route("/desired-worker-scale", web::get().to(desired_worker_scale))
                    .route("/workloads", web::get().to(workloads))
                    .route("/ready", web::get().to(ready))
                    .configure(operations(Some(openapi.clone())))
            },
            listener,
            pool_http::serve::ServeOptions::new(config.listen.workers(), SHUTDOWN_GRACE),
        )
        .map_err(StartupError::Bind)?;

        tracing::info!(
            port,
            source = %poller.source(),
            workloads = ?poller.workload_names(),
            poll_interval = ?poller.poll_interval(),
            "monitor listening"
        );
        Ok(Self {
            port,
            server,
            poller,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve and poll until SIGTERM / Ctrl-C (or the server stops), then finish in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let poll = tokio::spawn(self.poller.clone().run());
        let served =
            pool_http::serve::run_until(vec![self.server], pool_service::shutdown::signal()).await;
        poll.abort();
        served.map(drop)
    }
}
