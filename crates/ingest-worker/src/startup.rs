//! `Application::build(settings)` → `port()` → `run_until_stopped(shutdown)`, as in zero2prod: the
//! worker plus its small HTTP server for `/metrics` and `/health` (the shared handlers of
//! [`pool_http`]; the worker has no routes of its own, so there is no `routes.rs`).
//!
//! `run_until_stopped` takes the shutdown future rather than listening for signals itself, so that
//! `main` passes SIGTERM/SIGINT and a test passes a future it resolves: the graceful stop is the same
//! code either way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, middleware, web};
use anyhow::Context;
use prometheus::Registry;

use pool_http::metrics::{HttpMetrics, new_registry};
use pool_http::serve::ServeOptions;
use pool_http::{operations, track_requests};
use pool_service::config::ListenArgs;

use crate::batch::Limits;
use crate::consumer::Worker;
use crate::metrics::WorkerMetrics;
use crate::settings::Settings;
use crate::writer::{RetryPolicy, Writer};

/// A built worker, ready to run: storage opened, metrics port bound. The broker is contacted when it
/// runs (and again after every broker restart), so it may start before RabbitMQ.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    worker: Arc<Worker>,
    grace: Duration,
    registry: Registry,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let storage = settings.storage.open().context("opening EVENTS_URL")?;
        anyhow::ensure!(
            !storage.single_object,
            "EVENTS_URL {} is a single object; the worker writes new objects under a folder or prefix",
            storage.display
        );
        storage
            .ensure_local_root()
            .context("creating the events folder")?;

        let registry = new_registry("ingest_worker");
        let metrics = WorkerMetrics::register(&registry);
        let http_metrics = web::Data::new(HttpMetrics::register(&registry));
        let writer = Writer::new(
            storage.clone(),
            settings.write_concurrency as usize,
            RetryPolicy {
                min_delay: settings.limits.write_retry_min_delay,
                max_delay: settings.limits.write_retry_max_delay,
                max_permanent_attempts: settings.limits.write_max_attempts,
                credentials_retry_for: settings.limits.write_credentials_retry_for,
            },
            metrics.clone(),
        );
        let limits = Limits {
            max_events: settings.batch.batch_max_events as usize,
            max_bytes: settings.batch.batch_max_bytes,
            max_messages: settings.batch_max_messages(),
            max_age: settings.batch.batch_max_age,
            max_message_bytes: settings.limits.max_message_bytes,
        };
        let prefetch = settings.effective_prefetch();
        metrics.effective_prefetch.set(prefetch.into());
        tracing::info!(
            effective_prefetch = prefetch,
            prefetch = settings.prefetch,
            max_message_bytes = settings.limits.max_message_bytes,
            max_inflight_bytes = settings.limits.max_inflight_bytes,
            "prefetch: min(PREFETCH, MAX_INFLIGHT_BYTES / MAX_MESSAGE_BYTES), at least 2"
        );
        if settings.limits.max_message_bytes < settings.amqp.message_max_bytes {
            tracing::warn!(
                max_message_bytes = settings.limits.max_message_bytes,
                amqp_message_max_bytes = settings.amqp.message_max_bytes,
                "MAX_MESSAGE_BYTES is below AMQP_MESSAGE_MAX_BYTES: producers' full-size messages \
                 will be dead-lettered as oversized"
            );
        }
        let worker = Worker::new(settings.amqp.clone(), limits, prefetch, writer, metrics)
            .with_dead_letter_max_attempts(settings.limits.dead_letter_max_attempts)
            .with_simulated_work(settings.simulate_workload);
        if !settings.simulate_workload.is_zero() {
            tracing::warn!(per_message = ?settings.simulate_workload,
                "SIMULATE_WORKLOAD_DURATION_IN_SEC is set: every message is held this long, then \
                 stored and acknowledged on its own (a load-test setting; unset it in production)");
        }

        let (listener, port) =
            ListenArgs::new(settings.metrics_host.as_str(), settings.metrics_port)
                .bind(settings.metrics_port)
                .context("binding the metrics port (METRICS_HOST, METRICS_PORT)")?;
        let data = web::Data::new(registry.clone());
        let server = pool_http::serve::start(
            move || {
                App::new()
                    .app_data(data.clone())
                    .app_data(http_metrics.clone())
                    .wrap(middleware::from_fn(track_requests))
                    .configure(operations(None))
            },
            listener,
            ServeOptions::new(1, Duration::from_secs(1)),
        )?;
        tracing::info!(events = %storage.display, port, "ingest-worker built");
        Ok(Self {
            port,
            server,
            worker: Arc::new(worker),
            grace: settings.shutdown_grace,
            registry,
        })
    }

    /// The port `/metrics` and `/health` are served on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics registry (tests read counters from it directly).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Consume until `shutdown` resolves; then stop consuming, write and acknowledge the open batch and
    /// return `Ok` — or an error if that took longer than the grace period (the unacknowledged messages
    /// are then redelivered to the next worker: nothing is lost).
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let worker = self.worker.clone();
        let mut work = tokio::spawn(async move { worker.run(stopped).await });

        let work_until_shutdown = async {
            tokio::select! {
            r = &mut work => r.context("worker task failed")
                .and_then(|r| r.map_err(anyhow::Error::from)),
            _ = shutdown => {
                tracing::info!(grace = ?self.grace, "shutting down");
                let _ = stop.send(true);
                match tokio::time::timeout(self.grace, &mut work).await {
                    Ok(r) => r.context("worker task failed")
                .and_then(|r| r.map_err(anyhow::Error::from)),
                    Err(_) => {
                        work.abort();
                        Err(anyhow::anyhow!(
                            "the open batch was not stored within the {:?} grace period; its messages \
                             stay unacknowledged and will be redelivered",
                            self.grace
                        ))
                    }
                }
            }
            }
        };
        // The metrics server outlives the work: it is stopped once the open batch is stored.
        let result = pool_http::serve::run_until(vec![self.server], work_until_shutdown)
            .await?
            .unwrap_or_else(|| Err(anyhow::anyhow!("the metrics server stopped")));
        if result.is_ok() {
            tracing::info!("stopped cleanly");
        }
        result
    }
}
