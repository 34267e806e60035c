//! HTTP handlers and the OpenAPI document.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use pool_http::{ApiError, ErrorBody};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use crate::poller::{LookupError, Poller, ScaleReport};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScaleQuery {
    /// Workload name; defaults to the first configured workload.
    pub workload: Option<String>,
}

fn lookup_error(e: LookupError, poller: &Poller) -> ApiError {
    match e {
        LookupError::NotReady => ApiError::unavailable(
            "not_ready",
            format!(
                "no poll of the management API at {} has completed yet",
                poller.source()
            ),
        ),
        LookupError::UnknownWorkload(names) => {
            ApiError::not_found("no such workload; see details.workloads for the configured ones")
                .with_details(serde_json::json!({ "workloads": names }))
        }
    }
}

/// The desired replica count of one workload, with the inputs and the rule that decided it.
#[utoipa::path(
    get,
    path = "/desired-worker-scale",
    tag = "scaling",
    params(ScaleQuery),
    responses(
        (status = 200, description = "Latest decision", body = ScaleReport),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 404, description = "Unknown workload", body = ErrorBody),
        (status = 503, description = "No poll has completed yet", body = ErrorBody),
    )
)]
pub async fn desired_worker_scale(
    poller: web::Data<Arc<Poller>>,
    query: web::Query<ScaleQuery>,
) -> Result<HttpResponse, ApiError> {
    let workload = query.workload.as_deref().map(str::trim);
    if workload == Some("") {
        return Err(ApiError::bad_parameter(
            "workload",
            "workload must not be empty (omit it for the first configured workload)",
        ));
    }
    poller
        .report(workload)
        .map(|r| HttpResponse::Ok().json(r))
        .map_err(|e| lookup_error(e, &poller))
}

/// Every workload's latest decision.
#[utoipa::path(
    get,
    path = "/workloads",
    tag = "scaling",
    responses(
        (status = 200, description = "Latest decision per workload, in configuration order", body = [ScaleReport]),
        (status = 503, description = "No poll has completed yet", body = ErrorBody),
    )
)]
pub async fn workloads(poller: web::Data<Arc<Poller>>) -> Result<HttpResponse, ApiError> {
    poller
        .reports()
        .map(|r| HttpResponse::Ok().json(r))
        .map_err(|e| lookup_error(e, &poller))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `starting`.
    pub status: &'static str,
    pub workloads: Vec<String>,
}

/// Readiness: 200 once the first poll round finished (queue read, or fallback in force).
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Every workload has a decision", body = Readiness),
        (status = 503, description = "The first poll has not finished", body = Readiness),
    )
)]
pub async fn ready(poller: web::Data<Arc<Poller>>) -> HttpResponse {
    let body = |status| Readiness {
        status,
        workloads: poller.workload_names(),
    };
    if poller.is_ready() {
        HttpResponse::Ok().json(body("ready"))
    } else {
        HttpResponse::ServiceUnavailable().json(body("starting"))
    }
}

/// Prometheus text exposition (see the crate README for every metric name).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn metrics_doc() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "monitor",
        description = "Desired worker scale from RabbitMQ queue statistics, for the Kubernetes HPA."
    ),
    paths(desired_worker_scale, workloads, ready, metrics_doc, pool_http::health),
    components(schemas(ErrorBody, ScaleReport, Readiness, pool_http::Health))
)]
pub struct ApiDoc;
