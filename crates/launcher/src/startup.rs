//! Building and running the launcher (zero2prod's shape: build → port → run_until_stopped), with its
//! reconciler running beside the HTTP server.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use anyhow::Context;
use tokio::task::JoinHandle;
use utoipa::OpenApi;

use pool_http::{self as http, track_requests};

use crate::auth::Callers;
use crate::backend::Backend;
use crate::backend::kubernetes::KubernetesBackend;
use crate::backend::local::LocalBackend;
use crate::clients::{Intake, Ranking};
use crate::launch::Defaults;
use crate::manifest::Placement;
use crate::metrics::Metrics;
use crate::routes::{self, ApiDoc};
use crate::service::{Launcher, Limits, Parts};
use crate::settings::{BackendKind, Settings};
use crate::simulate::Truth;
use crate::store::{MemoryStore, RedisStore, Store};
use crate::template::Templates;
use pool_core::clock::{SharedClock, SystemClock};

/// How long in-flight requests may take to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a submission claim holds: a submitter that died leaves its attempt to the reconciler after
/// this; one submission may take half of it.
pub const CLAIM_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// What a test may put in place of the real thing.
#[derive(Default)]
pub struct Overrides {
    /// Instead of the backend the settings ask for (a [`crate::backend::fake::FakeBackend`]).
    pub backend: Option<Arc<dyn Backend>>,
    /// Instead of the system clock (a [`pool_core::clock::ManualClock`]; replicas share one).
    pub clock: Option<SharedClock>,
    /// Serve the API only, without a reconciler: a replica a test stops in the middle of a request
    /// (its reconciler would otherwise take the lease and the attempt over).
    pub no_reconciler: bool,
}

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
    /// Load the templates (a bad one stops the start, named), the callers and the defaults, prepare the
    /// store (Redis is connected lazily) and the backend, bind the port, and start the reconciler.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, Overrides::default()).await
    }

    /// [`build`](Self::build) with a test's backend or clock.
    pub async fn build_with(settings: Settings, overrides: Overrides) -> anyhow::Result<Self> {
        let (templates, callers, defaults) = load_config(&settings)?;
        let store = open_store(&settings)?;
        let backend = match overrides.backend {
            Some(b) => b,
            None => backend(&settings).await?,
        };
        let intake = Intake::new(
            &settings.intake_url,
            settings.intake_token.clone(),
            settings.http_client_timeout,
        );
        if !intake.enabled() {
            tracing::warn!(
                "no INTAKE_TOKEN: outcomes wait in the outbox (launcher_outbox_depth), the ranking does not learn from launches"
            );
        }
        let Metrics {
            registry,
            http: http_metrics,
            launcher: launcher_metrics,
        } = Metrics::new();
        let launcher = web::Data::new(Launcher::new(Parts {
            store,
            backend,
            templates,
            picker: Arc::new(Ranking::new(
                &settings.relay_url,
                settings.http_client_timeout,
            )),
            intake,
            clock: overrides.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            limits: Limits {
                max_active: settings.max_active_launches,
                max_attempt_duration: settings.max_attempt_duration,
                retention: settings.launch_retention,
                claim_ttl: CLAIM_TTL,
            },
            defaults,
            metrics: launcher_metrics,
        }));
        let reconciler = if overrides.no_reconciler {
            tokio::spawn(async {})
        } else {
            tokio::spawn(reconcile(
                launcher.clone().into_inner(),
                settings.poll_interval,
            ))
        };
        let (server, port) = serve(&settings, launcher.clone(), callers, registry, http_metrics)?;
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
        let served =
            http::serve::run_until(vec![self.server], pool_service::shutdown::signal()).await;
        self.reconciler.abort();
        served.map(drop)
    }
}

/// The templates, the callers and the launch defaults from `settings`. What would only refuse
/// requests later (no caller, a default application that is not a template) is logged, not refused.
fn load_config(settings: &Settings) -> anyhow::Result<(Templates, Callers, Defaults)> {
    let templates = Templates::load(&settings.templates)?;
    let callers = Callers::parse(&settings.launcher_tokens)?;
    if callers.is_empty() {
        tracing::warn!(
            "no LAUNCHER_TOKENS: every launch route answers 401 until caller:token pairs are set"
        );
    }
    let defaults = Defaults::new(
        &settings.default_application,
        &settings.default_instance_types,
        settings.default_max_attempts,
    )
    .map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if templates.get(&defaults.application).is_none() {
        tracing::warn!(
            application = %defaults.application,
            "DEFAULT_APPLICATION is not a template: a launch without `application` is refused"
        );
    }
    Ok((templates, callers, defaults))
}

/// Where launches are kept: Redis when `REDIS_URL` is set (shared by the replicas, kept across
/// restarts), else memory.
fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match &settings.redis_url {
        Some(url) => Arc::new(RedisStore::new(
            &pool_redis::RedisOptions {
                ca_file: settings.redis_ca_file.clone(),
                ..pool_redis::RedisOptions::new(url)
            },
            &settings.redis_key_prefix,
            settings.launch_retention,
        )?),
        None => {
            tracing::warn!(
                "no REDIS_URL: launches are kept in memory and lost when the launcher stops"
            );
            Arc::new(MemoryStore::new(settings.launch_retention))
        }
    })
}

/// The HTTP server on the listener `settings` name: the launch routes and the operations routes.
/// Returns it with the port it is bound to.
fn serve(
    settings: &Settings,
    launcher: web::Data<Launcher>,
    callers: Callers,
    registry: prometheus::Registry,
    http_metrics: pool_http::metrics::HttpMetrics,
) -> anyhow::Result<(Server, u16)> {
    let registry = web::Data::new(registry);
    let http_metrics = web::Data::new(http_metrics);
    let callers = web::Data::new(callers);
    let (listener, port) = settings.listen.bind(settings.port())?;
    let openapi = ApiDoc::openapi();
    let server = http::serve::start(
        move || {
            App::new()
                .wrap(from_fn(track_requests))
                .app_data(launcher.clone())
                .app_data(callers.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .app_data(http::query_config())
                .route("/launch", web::post().to(routes::launch))
                .route("/launches", web::get().to(routes::list))
                .route("/launches/{id}", web::get().to(routes::get))
                .route("/launches/{id}", web::delete().to(routes::cancel))
                .route("/applications", web::get().to(routes::applications))
                .route("/ready", web::get().to(routes::ready))
                .configure(http::operations(Some(openapi.clone())))
        },
        listener,
        http::serve::ServeOptions::new(settings.listen.workers(), SHUTDOWN_GRACE),
    )
    .context("cannot serve")?;
    Ok((server, port))
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
