//! The launcher's HTTP API: `POST /launch`, `GET /launches`, `GET /launches/{id}`,
//! `DELETE /launches/{id}`, `GET /applications`, `GET /ready`, and its OpenAPI document.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use pool_http::{ApiError, ErrorBody};

use crate::launch::{Attempt, Launch, LaunchRequest, State};
use crate::service::{LaunchError, Launcher};
use crate::store::StoreError;
use crate::template::Application;

/// Most launches one `GET /launches` returns.
pub const MAX_LIST_LIMIT: usize = 1000;
pub const DEFAULT_LIST_LIMIT: usize = 100;

impl From<LaunchError> for ApiError {
    fn from(e: LaunchError) -> Self {
        let msg = e.to_string();
        match e {
            LaunchError::Invalid(s) => ApiError::bad_parameter(s.field, s.message),
            LaunchError::NoPool(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_pool", msg)
            }
            LaunchError::RelayRefused(_) => {
                ApiError::new(StatusCode::BAD_REQUEST, "relay_refused", msg)
            }
            LaunchError::RelayUnavailable(_) => {
                ApiError::unavailable("relay_unavailable", msg).retry_after(5)
            }
            LaunchError::Busy { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_launches", msg)
                    .retry_after(10)
            }
            LaunchError::Submission(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "submission_failed", msg)
            }
            LaunchError::Store(StoreError::Unavailable(_)) => {
                ApiError::unavailable("store_unavailable", msg).retry_after(5)
            }
            LaunchError::Store(StoreError::Corrupt(_)) => ApiError::internal(msg),
            LaunchError::NotFound(_) => ApiError::not_found(msg),
            LaunchError::Finished(..) => ApiError::new(StatusCode::CONFLICT, "finished", msg),
            LaunchError::Contended(_) => ApiError::unavailable("contended", msg).retry_after(1),
        }
    }
}

/// Start a launch: the pool comes from the ranking, the run from the template; `202` with the launch.
#[utoipa::path(post, path = "/launch", tag = "launches", request_body = LaunchRequest,
    responses((status = 202, body = Launch), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody),
              (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn launch(
    launcher: web::Data<Launcher>,
    body: web::Json<LaunchRequest>,
) -> Result<HttpResponse, ApiError> {
    let launch = launcher.launch(&body).await?;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/launches/{}", launch.launch_id)))
        .json(launch))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only launches in this state: SUBMITTED, RUNNING, COMPLETED, FAILED, CANCELLED.
    pub state: Option<String>,
    /// At most this many, newest first (1–1000, default 100).
    pub limit: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LaunchList {
    pub launches: Vec<Launch>,
}

/// Launches, newest first.
#[utoipa::path(get, path = "/launches", tag = "launches", params(ListParams),
    responses((status = 200, body = LaunchList), (status = 400, body = ErrorBody)))]
pub async fn list(
    launcher: web::Data<Launcher>,
    q: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let state = match q.state.as_deref().filter(|s| !s.trim().is_empty()) {
        None => None,
        Some(s) => Some(State::parse(s).ok_or_else(|| {
            ApiError::bad_parameter(
                "state",
                format!(
                    "state: {s:?} is not one of SUBMITTED, RUNNING, COMPLETED, FAILED, CANCELLED"
                ),
            )
        })?),
    };
    let limit = match q.limit.as_deref().filter(|s| !s.trim().is_empty()) {
        None => DEFAULT_LIST_LIMIT,
        Some(l) => l
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_parameter(
                    "limit",
                    format!("limit: {l:?} is not a number between 1 and {MAX_LIST_LIMIT}"),
                )
            })?,
    };
    let launches = launcher
        .store
        .list(state, limit)
        .await
        .map_err(LaunchError::from)?;
    Ok(HttpResponse::Ok().json(LaunchList { launches }))
}

/// One launch, with every attempt.
#[utoipa::path(get, path = "/launches/{id}", tag = "launches", params(("id" = String, Path)),
    responses((status = 200, body = Launch), (status = 404, body = ErrorBody)))]
pub async fn get(
    launcher: web::Data<Launcher>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(launcher.get(&id).await?))
}

/// Cancel a launch: its run is stopped, no outcome is published for it.
#[utoipa::path(delete, path = "/launches/{id}", tag = "launches", params(("id" = String, Path)),
    responses((status = 202, body = Launch), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    launcher: web::Data<Launcher>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(launcher.cancel(&id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Applications {
    pub applications: Vec<Application>,
}

/// The launch templates.
#[utoipa::path(get, path = "/applications", tag = "launches", responses((status = 200, body = Applications)))]
pub async fn applications(launcher: web::Data<Launcher>) -> HttpResponse {
    HttpResponse::Ok().json(Applications {
        applications: launcher.templates.iter().map(|t| t.application()).collect(),
    })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Ready {
    pub status: &'static str,
    pub backend: &'static str,
}

/// Readiness: the launch store and the backend answer.
#[utoipa::path(get, path = "/ready", tag = "operations",
    responses((status = 200, body = Ready), (status = 503, body = ErrorBody)))]
pub async fn ready(launcher: web::Data<Launcher>) -> Result<HttpResponse, ApiError> {
    launcher
        .store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable("store_unavailable", e.to_string()))?;
    launcher
        .backend
        .ready()
        .await
        .map_err(|e| ApiError::unavailable("backend_unavailable", e.to_string()))?;
    Ok(HttpResponse::Ok().json(Ready {
        status: "ready",
        backend: launcher.backend.name(),
    }))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "launcher",
        description = "Places Spark jobs on the recommended spot pool and feeds each outcome back."
    ),
    paths(launch, list, get, cancel, applications, ready, pool_http::health),
    components(schemas(
        LaunchRequest,
        Launch,
        Attempt,
        State,
        LaunchList,
        Applications,
        Application,
        Ready,
        ErrorBody,
        pool_http::Health
    ))
)]
pub struct ApiDoc;
