//! Building and running the HTTP server (zero2prod's shape: build → port → run_until_stopped).

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use utoipa::OpenApi;

use pool_http::metrics::{HttpMetrics, new_registry};
use pool_http::{self as http, track_requests};

use crate::metrics::SelectorMetrics;
use crate::routes::{self, ApiDoc};
use crate::runtime::QueryRuntime;
use crate::scans::{ScanGate, ScanLimits};
use crate::settings::Settings;
use crate::state::{AppState, Defaults};
use pool_history::{EventSource, SourceOptions};

pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Open storage, bind the port and prepare the server. Nothing is served until
    /// [`run_until_stopped`](Self::run_until_stopped).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let storage = settings
            .storage
            .open()
            .context("opening the event storage")?;
        tracing::info!(events = %storage.display, root = %storage.root_url(), "event storage");
        let registry = new_registry("pool_selector");
        let http_metrics = web::Data::new(HttpMetrics::register(&registry));
        let selector_metrics = SelectorMetrics::register(&registry);
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let source = Arc::new(EventSource::new(
            storage,
            SourceOptions {
                dedup: settings.dedup,
                use_rollups: settings.use_rollups,
                rollup_cache_bytes: settings.rollup_cache_bytes,
                listing_max_age: settings.rollup_recheck,
            },
            Arc::new(selector_metrics),
        ));
        let limits = &settings.limits;
        let scan_limits = ScanLimits {
            max_running: limits.max_concurrent_scans.unwrap_or(cores).max(1),
            max_queued: limits.max_queued_scans,
        };
        tracing::info!(
            max_concurrent_scans = scan_limits.max_running,
            max_queued_scans = scan_limits.max_queued,
            "scan limits"
        );
        let state = web::Data::new(AppState {
            scans: ScanGate::new(
                source,
                QueryRuntime::new(cores).context("starting the query runtime")?,
                scan_limits,
                &registry,
            ),
            defaults: Defaults {
                window: settings.event_filter_window,
                strategy: settings.strategy,
                half_life: settings.half_life,
                confidence: settings.confidence,
                pools_limit: limits.pools_default_limit as usize,
                stale_after: settings.stale_after,
                diversity_tolerance: settings.diversity_tolerance,
            },
            max_clock_skew: limits.max_clock_skew,
            model: pool_ranking::ModelConfig {
                change_alpha: settings.change_alpha,
                ..pool_ranking::ModelConfig::default()
            },
            backtests: Arc::new(tokio::sync::Semaphore::new(scan_limits.max_running)),
        });
        let registry = web::Data::new(registry);
        let (listener, port) = settings.listen.bind(settings.port())?;
        let openapi = ApiDoc::openapi();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(track_requests))
                .app_data(state.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(http::query_config())
                .route("/get-pool", web::get().to(routes::get_pool))
                .route("/pools", web::get().to(routes::pools))
                .route("/backtest", web::get().to(crate::backtest::backtest))
                .route(
                    "/backtest.svg",
                    web::get().to(crate::backtest::backtest_svg),
                )
                .route("/ready", web::get().to(routes::ready))
                .configure(http::operations(Some(openapi.clone())))
        })
        .workers(settings.listen.workers())
        // A client that closes its side has gone: drop its handler, so a scan nobody waits for is
        // cancelled (see `scans`). HTTP clients do not half-close while awaiting an answer.
        .h1_allow_half_closed(false)
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        tracing::info!(port, "pool-selector listening");
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until SIGTERM/SIGINT (actix-web's signal handling drains in-flight requests first).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
