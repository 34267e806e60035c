//! `Application::build(settings)` → `port()` → `run_until_stopped()`, as in zero2prod.
//!
//! `--once` runs one pass and returns (the process exits non-zero when the pass had errors, so a
//! CronJob's failed runs show). `--every` serves `/health` and `/metrics` and runs a pass per interval
//! until SIGTERM; a pass in progress is finished first, because every write it makes is already
//! idempotent and a half-done pass only costs the next one time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use anyhow::Context;
use chrono::Utc;

use pool_history::compact::{CompactOptions, Compactor, PassReport};
use pool_history::scan::NoObserver;
use pool_history::{EventSource, SourceOptions};
use pool_http::metrics::{HttpMetrics, new_registry};
use pool_http::serve::ServeOptions;
use pool_http::{operations, track_requests};

use crate::metrics::{CompactorMetrics, NAMESPACE};
use crate::report::{PassSummary, ReportFormat};
use crate::settings::{DEFAULT_PORT, Settings};

pub struct Application {
    passes: Passes,
    every: Option<Duration>,
    report: ReportFormat,
    server: Option<(u16, Server)>,
}

/// Runs and reports passes (apart from the server, which is not `Sync`).
struct Passes {
    compactor: Arc<Compactor>,
    metrics: CompactorMetrics,
    location: String,
}

impl Application {
    /// Open storage and, in `--every` mode, bind the port. Nothing runs until
    /// [`run_until_stopped`](Self::run_until_stopped).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if !settings.once && settings.every.is_none() {
            anyhow::bail!(
                "choose a mode: --once (one pass, then exit) or --every 5m (a pass every 5 minutes)"
            );
        }
        let storage = settings
            .storage
            .open()
            .context("opening the event storage")?;
        let location = storage.display.clone();
        let source = Arc::new(EventSource::new(
            storage,
            SourceOptions {
                // The compactor reads raw objects only; decoded rollups are needed per pass, not kept.
                rollup_cache_bytes: 64 << 20,
                rollup_key: settings.rollup_hmac_key,
                ..SourceOptions::default()
            },
            Arc::new(NoObserver),
        ));
        let compactor = Arc::new(Compactor::new(
            source,
            CompactOptions {
                settle: settings.settle,
                shard: settings.shard,
                concurrency: settings.concurrency(),
            },
        ));
        let registry = new_registry(NAMESPACE);
        let metrics_ = CompactorMetrics::register(&registry);
        let server = match settings.every {
            None => None,
            Some(_) => {
                let http_metrics = web::Data::new(HttpMetrics::register(&registry));
                let registry = web::Data::new(registry);
                let (listener, port) = settings.listen.bind(DEFAULT_PORT)?;
                let server = pool_http::serve::start(
                    move || {
                        App::new()
                            .wrap(from_fn(track_requests))
                            .app_data(registry.clone())
                            .app_data(http_metrics.clone())
                            .configure(operations(None))
                    },
                    listener,
                    ServeOptions::new(settings.listen.workers().min(2), Duration::from_secs(1)),
                )?;
                Some((port, server))
            }
        };
        tracing::info!(
            events = %location,
            shard = %settings.shard,
            settle = ?settings.settle,
            every = ?settings.every,
            "compactor ready"
        );
        Ok(Self {
            passes: Passes {
                compactor,
                metrics: metrics_,
                location,
            },
            every: settings.every,
            report: settings.report,
            server,
        })
    }

    /// The port of `/health` and `/metrics` (`--every` mode), or `None` for `--once`.
    pub fn port(&self) -> Option<u16> {
        self.server.as_ref().map(|(p, _)| *p)
    }

    /// One pass now, logged and counted.
    pub async fn pass(&self) -> anyhow::Result<PassReport> {
        self.passes.run().await
    }

    /// `--once`: one pass (an error if anything failed). `--every`: passes until SIGTERM.
    pub async fn run_until_stopped(mut self) -> anyhow::Result<()> {
        let Some(every) = self.every else {
            let (report, took) = self.passes.run_timed().await?;
            if let Some(summary) = PassSummary::new(&report, took).render(self.report) {
                println!("{summary}");
            }
            if report.errors > 0 {
                anyhow::bail!("{} hours or days could not be compacted", report.errors);
            }
            return Ok(());
        };
        let (_, server) = self.server.take().context("--every mode has a server")?;
        let passes = self.passes;
        let passes_until_shutdown = async move {
            let shutdown = pool_service::shutdown::signal();
            tokio::pin!(shutdown);
            loop {
                if let Err(e) = passes.run().await {
                    passes.metrics.errors.inc();
                    tracing::warn!(error = %format!("{e:#}"), "compaction pass failed; retrying next interval");
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = &mut shutdown => break,
                }
            }
        };
        pool_http::serve::run_until(vec![server], passes_until_shutdown)
            .await?
            .context("the metrics server stopped")?;
        Ok(())
    }
}

impl Passes {
    async fn run(&self) -> anyhow::Result<PassReport> {
        Ok(self.run_timed().await?.0)
    }

    /// One pass, logged and counted, with how long it took.
    async fn run_timed(&self) -> anyhow::Result<(PassReport, Duration)> {
        let started = Instant::now();
        let progress = |done: u64, total: u64| {
            tracing::info!(done, total, "compacting hours");
        };
        let report = self
            .compactor
            .run_once(Utc::now(), &progress)
            .await
            .with_context(|| format!("compacting {}", self.location))?;
        let took = started.elapsed();
        let seconds = took.as_secs_f64();
        self.metrics
            .observe(&report, seconds, Utc::now().timestamp() as f64);
        tracing::info!(
            hours_compacted = report.hours_compacted,
            days_merged = report.days_merged,
            events = report.events,
            events_per_second = (report.events as f64 / seconds.max(1e-9)).round(),
            pending_hours = report.pending_hours,
            lag_seconds = report.lag.as_secs(),
            errors = report.errors,
            seconds,
            "compaction pass finished"
        );
        Ok((report, took))
    }
}
