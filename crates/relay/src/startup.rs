//! Building and running the relay (zero2prod style: `Application::build` → `port` → `run_until_stopped`).

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use pool_core::http::{health, metrics, not_found, track_requests};
use pool_core::metrics::{HttpMetrics, new_registry};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::api::{self, ApiDoc};
use crate::config::{DEFAULT_PORT, Settings};
use crate::key::RELAYED_ROUTES;
use crate::metrics::RelayMetrics;
use crate::relay::{Policy, Relay};
use crate::store::{RedisSettings, Store};
use crate::upstream::Upstream;

/// How long in-flight requests get to finish after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A bound, not yet running, relay.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Bind the listener and prepare everything. Redis is not contacted here: the relay starts (and
    /// serves, as BYPASS) while Redis is down. Fails on a malformed URL or a port already taken.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let registry = new_registry("relay");
        let http_metrics = HttpMetrics::register(&registry);
        let relay_metrics = RelayMetrics::register(&registry);

        let store = Store::new(
            &RedisSettings {
                url: settings.redis_url.clone(),
                timeout: settings.redis_timeout,
                retry: settings.redis_retry,
                key_prefix: settings.redis_key_prefix.clone(),
            },
            settings.l1_ttl,
            settings.l1_capacity,
            relay_metrics.clone(),
        )?;
        let upstream = Upstream::new(
            &settings.upstream_url,
            settings.upstream_timeout,
            relay_metrics.clone(),
        )?;
        let policy = Policy {
            ttl: Duration::from_secs(settings.cache_ttl_seconds),
            negative_ttl: Duration::from_secs(settings.negative_ttl_seconds),
            grace: Duration::from_secs(settings.stale_grace_seconds),
            lock_timeout: settings.redis_lock_timeout,
        };
        let relay = web::Data::from(Arc::new(Relay::new(store, upstream, policy, relay_metrics)));

        let (host, port) = settings.listen.addr(DEFAULT_PORT);
        let listener = TcpListener::bind((host.as_str(), port))
            .map_err(|e| anyhow::anyhow!("cannot listen on {host}:{port}: {e}"))?;
        let port = listener.local_addr()?.port();
        tracing::info!(
            %host,
            port,
            upstream = %settings.upstream_url,
            redis = %redact(&settings.redis_url),
            workers = settings.listen.workers(),
            l1_ttl = ?settings.l1_ttl,
            "relay listening"
        );

        let registry = web::Data::new(registry);
        let http_metrics = web::Data::new(http_metrics);
        let openapi = ApiDoc::openapi();
        let server = HttpServer::new(move || {
            let mut app = App::new()
                .app_data(relay.clone())
                .app_data(registry.clone())
                .app_data(http_metrics.clone())
                .wrap(from_fn(track_requests))
                .wrap(from_fn(api::request_id));
            for &route in RELAYED_ROUTES {
                app = app.service(
                    web::resource(route)
                        .route(web::get().to(move |req, relay| api::relay(route, req, relay)))
                        .default_service(web::to(api::method_not_allowed)),
                );
            }
            app.route("/health", web::get().to(health))
                .route("/ready", web::get().to(api::ready))
                .route("/metrics", web::get().to(metrics))
                .route("/docs", web::get().to(api::docs_redirect))
                .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", openapi.clone()))
                .default_service(web::to(not_found))
        })
        .workers(settings.listen.workers())
        .backlog(4096)
        .disable_signals()
        .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until SIGTERM or Ctrl-C, then stop accepting and let in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        tokio::spawn(async move {
            pool_core::shutdown::signal().await;
            handle.stop(true).await;
        });
        self.server.await
    }
}

/// The Redis URL without its password, for logs.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}
