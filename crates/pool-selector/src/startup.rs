//! Building and running the HTTP server (zero2prod's shape: build → port → run_until_stopped).

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use anyhow::Context;
use chrono::Utc;
use utoipa::OpenApi;

use pool_history::live::{LiveView, ViewObserver};
use pool_http::metrics::{HttpMetrics, new_registry};
use pool_http::{self as http, track_requests};

use crate::metrics::SelectorMetrics;
use crate::routes::{self, ApiDoc};
use crate::runtime::QueryRuntime;
use crate::settings::Settings;
use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    view: Arc<LiveView>,
    runtime: QueryRuntime,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Open storage, start the live view's refresh loop (its first pass loads the history; `/ready`
    /// answers 200 once it has), bind the port and prepare the server. Nothing is served until
    /// [`run_until_stopped`](Self::run_until_stopped).
    pub async fn build(mut settings: Settings) -> anyhow::Result<Self> {
        settings.model_inputs = crate::inputs::load(&settings.inputs).await?;
        let storage = settings
            .storage
            .open()
            .context("opening the event storage")?;
        tracing::info!(events = %storage.display, root = %storage.root_url(), "event storage");
        let registry = new_registry("pool_selector");
        let http_metrics = web::Data::new(HttpMetrics::register(&registry));
        let selector_metrics = Arc::new(SelectorMetrics::register(&registry));
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let view = Arc::new(LiveView::new(
            storage,
            settings.view_options(),
            Arc::clone(&selector_metrics) as Arc<dyn ViewObserver>,
        ));
        // The view is read and refreshed on a runtime of its own (DataFusion spreads a read over
        // every core; actix-web's workers are single-threaded).
        let runtime = QueryRuntime::new(cores).context("starting the query runtime")?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        runtime.spawn(Arc::clone(&view).run(
            settings.refresh_interval,
            Utc::now,
            wait(stopped.clone()),
        ));
        // The view's age keeps moving on /metrics even while a refresh hangs on storage.
        {
            let (view, metrics, stopped) =
                (Arc::clone(&view), Arc::clone(&selector_metrics), stopped);
            runtime.spawn(async move {
                let mut ticks = tokio::time::interval(Duration::from_secs(1));
                tokio::select! {
                    _ = wait(stopped) => {}
                    _ = async {
                        loop {
                            ticks.tick().await;
                            metrics.status(&view.status(), Utc::now());
                        }
                    } => {}
                }
            });
        }
        let state = web::Data::new(AppState::new(&settings, Arc::clone(&view), &registry));
        tracing::info!(
            refresh_interval = ?settings.refresh_interval,
            relist_interval = ?settings.relist_interval,
            max_concurrent_backtests = state.backtests.available_permits(),
            "live view"
        );
        let registry = web::Data::new(registry);
        let (listener, port) = settings.listen.bind(settings.port())?;
        let openapi = ApiDoc::openapi();
        let server = http::serve::start(
            move || {
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
            },
            listener,
            http::serve::ServeOptions::new(settings.listen.workers(), Duration::from_secs(10)),
        )?;
        tracing::info!(port, "pool-selector listening");
        Ok(Self {
            port,
            server,
            view,
            runtime,
            stop,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The live view (tests and benchmarks refresh it directly to control time).
    pub fn view(&self) -> Arc<LiveView> {
        Arc::clone(&self.view)
    }

    /// Serve until SIGTERM / Ctrl-C and let in-flight requests finish, then stop the view's refresh
    /// loop.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = http::serve::run_until(vec![self.server], pool_service::shutdown::signal())
            .await
            .map(drop);
        let _ = self.stop.send(true);
        drop(self.runtime);
        served
    }
}
