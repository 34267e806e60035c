//! Building and running the launcher (zero2prod's shape: build → port → run_until_stopped), with its
//! reconciler running beside the HTTP server.

use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use tokio::task::JoinHandle;
use utoipa::OpenApi;

use pool_http::{self as http, track_requests};

use crate::backend::Backend;
use crate::backend::kubernetes::KubernetesBackend;
use crate::backend::local::LocalBackend;
use crate::clients::{Intake, Ranking};
use crate::manifest::Placement;
use crate::metrics::Metrics;
use crate::routes::{self, ApiDoc};
use crate::service::Launcher;
use crate::settings::{BackendKind, Settings};
use crate::simulate::Truth;
use crate::store::{MemoryStore, RedisStore, Store};
use crate::template::Templates;

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE_SECS: u64 = 10;

/// Largest `POST /launch` body.
const MAX_BODY_BYTES: usize = 64 * 1024;

pub struct Application {
    port: u16,
    server: Server,
    reconciler: JoinHandle<()>,
}

/// The backend the settings ask for.
pub async fn backend(settings: &Settings) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match settings.backend {
        BackendKind::Local => {
            let truth = settings
                .local
                .simulate_truth
                .as_deref()
                .map(Truth::load)
                .transpose()?;
            if settings.local.simulate_only && truth.is_none() {
                anyhow::bail!(
                    "SIMULATE_ONLY needs SIMULATE_TRUTH (the outcomes are drawn from it)"
                );
            }
            Arc::new(LocalBackend::new(
                settings.local.spark_submit.clone(),
                settings.local.spark_work_dir.clone(),
                truth,
                settings.local.simulate_only,
            ))
        }
        BackendKind::Kubernetes => Arc::new(KubernetesBackend::connect(placement(settings)).await?),
    })
}

pub fn placement(settings: &Settings) -> Placement {
    Placement {
        namespace: settings.kubernetes.spark_namespace.clone(),
        service_account: settings.kubernetes.spark_service_account.clone(),
    }
}

impl Application {
    /// Load the templates (a bad one stops the start, named), prepare the store (Redis is connected
    /// lazily) and the backend, bind the port, and start the reconciler.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let templates = Templates::load(&settings.templates)?;
        let store: Arc<dyn Store> = match &settings.redis_url {
            Some(url) => Arc::new(RedisStore::new(
                url,
                &settings.redis_key_prefix,
                settings.launch_retention,
            )?),
            None => {
                tracing::warn!(
                    "no REDIS_URL: launches are kept in memory and lost when the launcher stops"
                );
                Arc::new(MemoryStore::default())
            }
        };
        let backend = backend(&settings).await?;
        let intake = Intake::new(
            &settings.intake_url,
            settings.intake_token.clone(),
            settings.http_client_timeout,
        );
        if !intake.enabled() {
            tracing::warn!(
                "no INTAKE_TOKEN: outcomes are not published, the ranking does not learn from launches"
            );
        }
        let Metrics {
            registry,
            http: http_metrics,
            launcher: launcher_metrics,
        } = Metrics::new();
        let launcher = web::Data::new(Launcher {
            store,
            backend,
            templates,
            ranking: Ranking::new(&settings.relay_url, settings.http_client_timeout),
            intake,
            metrics: launcher_metrics,
            default_max_attempts: settings.default_max_attempts,
            max_active: settings.max_active_launches,
            holder: uuid::Uuid::new_v4().to_string(),
        });
        let reconciler = tokio::spawn(reconcile(
            launcher.clone().into_inner(),
            settings.poll_interval,
        ));
        let registry = web::Data::new(registry);
        let http_metrics = web::Data::new(http_metrics);
        let (listener, port) = settings.listen.bind(settings.port())?;
        let openapi = ApiDoc::openapi();
        let data = launcher.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(from_fn(track_requests))
                .app_data(data.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(http::query_config())
                .app_data(http::json_config(MAX_BODY_BYTES))
                .route("/launch", web::post().to(routes::launch))
                .route("/launches", web::get().to(routes::list))
                .route("/launches/{id}", web::get().to(routes::get))
                .route("/launches/{id}", web::delete().to(routes::cancel))
                .route("/applications", web::get().to(routes::applications))
                .route("/ready", web::get().to(routes::ready))
                .configure(http::operations(Some(openapi.clone())))
        })
        .workers(settings.listen.workers())
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE_SECS)
        .listen(listener)
        .context("cannot serve")?
        .run();
        tracing::info!(port, backend = launcher.backend.name(), relay = %settings.relay_url, "launcher listening");
        Ok(Self {
            port,
            server,
            reconciler,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until SIGTERM / Ctrl-C; then let requests finish and stop the reconciler. Runs keep going
    /// (they are in process groups of their own, or objects in the cluster): the next launcher picks
    /// them up.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::pin!(server);
        let r = tokio::select! {
            r = &mut server => r,
            _ = pool_core::shutdown::signal() => {
                drop(handle.stop(true));
                server.await
            }
        };
        self.reconciler.abort();
        r
    }
}

/// The reconciler: one pass per poll interval; the lease lasts three intervals, so a replica that
/// stops leading is replaced within them.
async fn reconcile(launcher: Arc<Launcher>, every: std::time::Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(e) = launcher.reconcile_once(every * 3).await {
            tracing::warn!(error = %e, "reconcile pass failed");
        }
    }
}
