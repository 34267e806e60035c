//! Building and running the relay (zero2prod style: `Application::build` → `port` → `run_until_stopped`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::http::header::HeaderName;
use actix_web::middleware::from_fn;
use actix_web::{App, web};
use pool_http::metrics::{HttpMetrics, new_registry};
use pool_http::{self as http, health, not_found, operations, track_requests};
use prometheus::Registry;
use utoipa::OpenApi;

use crate::key::RELAYED_ROUTES;
use crate::limit::MissLimiter;
use crate::metrics::RelayMetrics;
use crate::relay::{Policy, Relay};
use crate::routes::{self, ApiDoc};
use crate::settings::{DEFAULT_ADMIN_PORT, DEFAULT_PORT, Settings};
use crate::store::{RedisSettings, Store};
use crate::upstream::{Upstream, UpstreamLimits};
use pool_core::clock::{SharedClock, SystemClock};

/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, not yet running, relay: the public listener and the operations listener.
pub struct Application {
    port: u16,
    admin_port: u16,
    server: Server,
    admin: Server,
}

impl Application {
    /// Bind both listeners and prepare everything. Redis is not contacted here: the relay starts (and
    /// serves, from its in-process cache) while Redis is down. Fails on a malformed URL or a port
    /// already taken.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Arc::new(SystemClock)).await
    }

    /// [`build`](Self::build) with the clock that decides the cache's freshness (entries' TTL and
    /// grace, their `Age`, `L1_TTL`). Tests pass a [`pool_core::clock::ManualClock`] to move past a TTL
    /// at once instead of sleeping through it; give replicas that share a Redis the same clock.
    pub async fn build_with_clock(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let registry = new_registry("relay");
        let http_metrics = web::Data::new(HttpMetrics::register(&registry));
        let relay = web::Data::from(Arc::new(relay(
            &settings,
            RelayMetrics::register(&registry),
            clock,
        )?));
        let (listener, port) = settings.listen.bind(DEFAULT_PORT)?;
        let (admin_listener, admin_port) = settings
            .listen
            .bind_port(settings.admin_port.unwrap_or(DEFAULT_ADMIN_PORT))?;
        tracing::info!(
            host = %settings.listen.host,
            port,
            admin_port,
            upstream = %settings.upstream_url,
            redis = %pool_service::redact::url(&settings.redis_url),
            workers = settings.listen.workers(),
            l1_ttl = ?settings.l1_ttl,
            lock_timeout = ?settings.effective_lock_timeout(),
            "relay listening"
        );
        let server = public_server(
            relay.clone(),
            http_metrics.clone(),
            listener,
            settings.listen.workers(),
        )?;
        let admin = admin_server(
            relay,
            web::Data::new(registry),
            http_metrics,
            admin_listener,
        )?;
        Ok(Self {
            port,
            admin_port,
            server,
            admin,
        })
    }

    /// The public port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The operations port actually bound.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Serve until SIGTERM or Ctrl-C, then stop accepting and let in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        http::serve::run_until(
            vec![self.server, self.admin],
            pool_service::shutdown::signal(),
        )
        .await
        .map(drop)
    }
}

/// The relay itself: its store (Redis behind an in-process cache), its upstream client, its cache
/// policy and the per-client miss limit, from the settings.
fn relay(
    settings: &Settings,
    relay_metrics: RelayMetrics,
    clock: SharedClock,
) -> anyhow::Result<Relay> {
    let store = Store::new(
        &RedisSettings {
            url: settings.redis_url.clone(),
            ca_file: settings.redis_ca_file.clone(),
            timeout: settings.redis_timeout,
            retry: settings.redis_retry,
            key_prefix: settings.redis_key_prefix.clone(),
        },
        settings.l1_ttl,
        Duration::from_secs(settings.stale_grace_seconds),
        settings.l1_capacity_bytes,
        relay_metrics.clone(),
        clock.clone(),
    )?;
    let upstream = Upstream::new(
        &settings.upstream_url,
        UpstreamLimits {
            timeout: settings.upstream_timeout,
            max_connections: settings.upstream_max_connections,
            max_body_bytes: settings.upstream_max_body_bytes,
        },
        relay_metrics.clone(),
        clock.clone(),
    )?;
    let policy = Policy {
        ttl: Duration::from_secs(settings.cache_ttl_seconds),
        negative_ttl: Duration::from_secs(settings.negative_ttl_seconds),
        grace: Duration::from_secs(settings.stale_grace_seconds),
        lock_timeout: settings.effective_lock_timeout(),
    };
    let client_header = settings
        .client_address_header
        .as_deref()
        .map(|h| {
            HeaderName::from_bytes(h.trim().to_ascii_lowercase().as_bytes())
                .map_err(|_| anyhow::anyhow!("CLIENT_ADDRESS_HEADER {h:?} is not a header name"))
        })
        .transpose()?;
    Ok(
        Relay::new(store, upstream, policy, relay_metrics, clock).with_miss_limit(
            MissLimiter::new(
                settings.miss_rate_per_client,
                settings.miss_burst_per_client,
            ),
            client_header,
        ),
    )
}

/// The public server: the relayed routes (GET only), the ranking page, `/health` and `/ready`; a deep
/// backlog, as it takes every user's traffic.
fn public_server(
    relay: web::Data<Relay>,
    http_metrics: web::Data<HttpMetrics>,
    listener: TcpListener,
    workers: usize,
) -> std::io::Result<Server> {
    http::serve::start(
        move || {
            let mut app = App::new()
                .app_data(relay.clone())
                .app_data(http_metrics.clone())
                .wrap(from_fn(track_requests))
                .wrap(from_fn(routes::request_id));
            for &route in RELAYED_ROUTES {
                app = app.service(
                    web::resource(route)
                        .route(web::get().to(move |req, relay| routes::relay(route, req, relay)))
                        .default_service(web::to(routes::method_not_allowed)),
                );
            }
            // The ranking page, for people: the same cache behind an HTML form.
            app = app.service(
                web::resource("/")
                    .route(web::get().to(routes::ranking_page))
                    .default_service(web::to(routes::method_not_allowed)),
            );
            app.route("/health", web::get().to(health))
                .route("/ready", web::get().to(routes::ready))
                .default_service(web::to(not_found))
        },
        listener,
        http::serve::ServeOptions {
            backlog: Some(4096),
            ..http::serve::ServeOptions::new(workers, SHUTDOWN_GRACE)
        },
    )
}

/// The operations server (`ADMIN_PORT`): `/metrics`, `/docs`, `/openapi.json` and `/ready`, kept off the
/// public port.
fn admin_server(
    relay: web::Data<Relay>,
    registry: web::Data<Registry>,
    http_metrics: web::Data<HttpMetrics>,
    listener: TcpListener,
) -> std::io::Result<Server> {
    let openapi = ApiDoc::openapi();
    http::serve::start(
        move || {
            App::new()
                .app_data(relay.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .route("/ready", web::get().to(routes::ready))
                .configure(operations(Some(openapi.clone())))
        },
        listener,
        http::serve::ServeOptions::new(1, Duration::from_secs(1)),
    )
}
