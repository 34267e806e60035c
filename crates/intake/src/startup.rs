//! Building and running the HTTP server (zero2prod's shape: build → port → run_until_stopped).

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use utoipa::OpenApi;

use pool_http::{self as http, track_requests};

use crate::metrics::Metrics;
use crate::routes::{self, ApiDoc, Intake};
use crate::settings::Settings;

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Bind the port and prepare the server. Does not connect to RabbitMQ (the first request or
    /// readiness probe does), so the intake starts while the broker is down. Nothing is served until
    /// [`run_until_stopped`](Self::run_until_stopped).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // How long in-flight requests may take to finish after SIGTERM (a publish awaiting its
        // confirm): longer than the confirm timeout, or it is an error here, at start.
        let grace = settings.shutdown_grace().map_err(anyhow::Error::msg)?;
        let Metrics {
            registry,
            http: http_metrics,
            intake: intake_metrics,
        } = Metrics::new();
        let intake = web::Data::new(Intake::new(&settings, intake_metrics));
        if !intake.enabled() {
            tracing::warn!("POST /events is off (no INTAKE_TOKENS): every request gets a 404");
        }
        let registry = web::Data::new(registry);
        let http_metrics = web::Data::new(http_metrics);
        let (listener, port) = settings.listen.bind(settings.port())?;
        let openapi = ApiDoc::openapi();
        let server = http::serve::start(
            move || {
                App::new()
                    .wrap(from_fn(track_requests))
                    .app_data(intake.clone())
                    .app_data(registry.clone())
                    .app_data(http_metrics.clone())
                    .app_data(http::query_config())
                    .route("/events", web::post().to(routes::post_events))
                    .route("/ready", web::get().to(routes::ready))
                    .configure(http::operations(Some(openapi.clone())))
            },
            listener,
            http::serve::ServeOptions::new(settings.listen.workers(), grace),
        )?;
        tracing::info!(
            port,
            broker = %settings.amqp.redacted_url(),
            exchange = %settings.amqp.exchange,
            shutdown_grace = ?grace,
            "intake listening"
        );
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until SIGTERM / Ctrl-C (or the server stops) and let in-flight requests finish: each
    /// one answers only after its publish was confirmed (or failed), so nothing accepted is lost when
    /// the process then exits. The broker connection is not closed politely: its I/O runs on the HTTP
    /// workers' runtimes, which are gone by then (a close would wait for ever); RabbitMQ sees the
    /// socket close instead.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        http::serve::run_until(vec![self.server], pool_service::shutdown::signal())
            .await
            .map(drop)
    }
}
