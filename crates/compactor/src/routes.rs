//! The compactor's HTTP routes in `--every` mode: only what operations need (`/health` for the
//! liveness probe, `/metrics` for Prometheus); its work is the passes, not requests.

use actix_web::web;
use pool_http::{health, metrics, not_found};

/// Register the routes. Needs the registry and `HttpMetrics` in the app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/metrics", web::get().to(metrics))
        .default_service(web::to(not_found));
}
