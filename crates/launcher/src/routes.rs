//! The launcher's HTTP API: `POST /launch`, `GET /launches`, `GET /launches/{id}`,
//! `DELETE /launches/{id}`, `GET /applications` (each needs a bearer token of `LAUNCHER_TOKENS`:
//! [`Caller`]), `GET /ready`, and its OpenAPI document.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::OpenApi;

use pool_http::{ApiError, ErrorBody};

use crate::auth::Caller;
use crate::launch::{Attempt, Claim, Launch, LaunchRequest, State};
use crate::service::{LaunchError, Launcher};
use crate::store::StoreError;
use crate::template::Application;

/// Most launches one `GET /launches` returns.
pub const MAX_LIST_LIMIT: usize = 1000;
pub const DEFAULT_LIST_LIMIT: usize = 100;

/// Largest `POST /launch` body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The header that makes a `POST /launch` safe to retry.
pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
/// Set on the answer that returns an earlier launch for a repeated key.
pub const IDEMPOTENT_REPLAYED: &str = "Idempotent-Replayed";
/// Longest idempotency key.
pub const MAX_KEY_LEN: usize = 255;

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
            LaunchError::BadPick(_) => ApiError::new(StatusCode::BAD_GATEWAY, "bad_pick", msg),
            LaunchError::Busy { .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_launches", msg)
                    .retry_after(10)
            }
            LaunchError::Submission(_) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "submission_failed", msg)
            }
            LaunchError::Backend(_) => {
                ApiError::unavailable("backend_unavailable", msg).retry_after(5)
            }
            LaunchError::Store(StoreError::Unavailable(_)) => {
                ApiError::unavailable("store_unavailable", msg).retry_after(5)
            }
            LaunchError::Store(StoreError::Corrupt(_)) => ApiError::internal(msg),
            LaunchError::NotFound(_) => ApiError::not_found(msg),
            LaunchError::Finished(..) => ApiError::new(StatusCode::CONFLICT, "finished", msg),
            LaunchError::Contended(_) => ApiError::unavailable("contended", msg).retry_after(1),
            LaunchError::KeyReused(..) => {
                let mut e = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    msg,
                );
                e.body.field = Some(IDEMPOTENCY_KEY.into());
                e
            }
        }
    }
}

/// The request's `Idempotency-Key`: 1–255 visible ASCII characters, or none.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(str::trim)
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(|k| Some(k.to_owned()))
        .ok_or_else(|| {
            ApiError::bad_parameter(
                IDEMPOTENCY_KEY,
                format!(
                    "{IDEMPOTENCY_KEY} must be 1-{MAX_KEY_LEN} visible ASCII characters (e.g. a UUID)"
                ),
            )
        })
}

/// The body of `POST /launch`: empty (the seed's bare `curl -X POST .../launch`) is the default
/// launch; otherwise JSON, whatever the content type says (`curl -d` sends a form type).
async fn launch_request(mut payload: web::Payload) -> Result<LaunchRequest, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body is larger than the {MAX_BODY_BYTES} byte limit"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(LaunchRequest::default());
    }
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
}

/// Start a launch: the pool comes from the ranking (checked against the request), the run from the
/// template; `202` with the launch. Every field is optional: no body at all launches
/// `DEFAULT_APPLICATION` on the best pool of `DEFAULT_INSTANCE_TYPES`. With an `Idempotency-Key`, a
/// retry of the same request returns the first launch (`200`, `Idempotent-Replayed: true`); the same
/// key with another request is a `422`.
#[utoipa::path(post, path = "/launch", tag = "launches",
    request_body(content = Option<LaunchRequest>, description = "What to launch; every field optional, and the body too."),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: 1-255 visible ASCII characters, unique per launch (e.g. a UUID). Remembered for LAUNCH_RETENTION, per caller.")),
    responses(
        (status = 202, description = "Launched: its first run is submitted", body = Launch),
        (status = 200, description = "The launch this Idempotency-Key made before (header Idempotent-Replayed: true)", body = Launch),
        (status = 400, description = "A bad field, a malformed body or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "No bearer token, or not one of LAUNCHER_TOKENS", body = ErrorBody),
        (status = 413, description = "The body is over 64 KiB", body = ErrorBody),
        (status = 422, description = "no_pool: the ranking knows no pool for these instance types; submission_failed: the run cannot be submitted; idempotency_key_reused: the key was used for a different request", body = ErrorBody),
        (status = 429, description = "MAX_ACTIVE_LAUNCHES launches are running (Retry-After)", body = ErrorBody),
        (status = 502, description = "The relay picked a pool the request does not allow", body = ErrorBody),
        (status = 503, description = "The relay, the store or the backend cannot be reached (Retry-After)", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn launch(
    launcher: web::Data<Launcher>,
    caller: Caller,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req)?;
    let body = launch_request(payload).await?;
    let launched = launcher.launch(&caller, &body, key.as_deref()).await?;
    let location = format!("/launches/{}", launched.launch.launch_id);
    Ok(if launched.replayed {
        HttpResponse::Ok()
            .insert_header(("Location", location))
            .insert_header((IDEMPOTENT_REPLAYED, "true"))
            .json(launched.launch)
    } else {
        HttpResponse::Accepted()
            .insert_header(("Location", location))
            .json(launched.launch)
    })
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

/// The caller's launches, newest first (every caller's for `admin`).
#[utoipa::path(get, path = "/launches", tag = "launches", params(ListParams),
    responses((status = 200, body = LaunchList), (status = 400, body = ErrorBody),
              (status = 401, description = "No bearer token, or not one of LAUNCHER_TOKENS", body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    launcher: web::Data<Launcher>,
    caller: Caller,
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
    let launches = launcher.list(&caller, state, limit).await?;
    Ok(HttpResponse::Ok().json(LaunchList { launches }))
}

/// One launch, with every attempt (another caller's launch is not found, except for `admin`).
#[utoipa::path(get, path = "/launches/{id}", tag = "launches", params(("id" = String, Path)),
    responses((status = 200, body = Launch), (status = 404, body = ErrorBody),
              (status = 401, description = "No bearer token, or not one of LAUNCHER_TOKENS", body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get(
    launcher: web::Data<Launcher>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(launcher.visible(&caller, &id).await?))
}

/// Cancel a launch (its caller's, or any for `admin`): it ends CANCELLED at once, its run is stopped,
/// no outcome is published for it.
#[utoipa::path(delete, path = "/launches/{id}", tag = "launches", params(("id" = String, Path)),
    responses((status = 202, body = Launch), (status = 404, body = ErrorBody),
              (status = 401, description = "No bearer token, or not one of LAUNCHER_TOKENS", body = ErrorBody),
              (status = 409, description = "The launch has finished already", body = ErrorBody),
              (status = 503, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn cancel(
    launcher: web::Data<Launcher>,
    caller: Caller,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Accepted().json(launcher.cancel(&caller, &id).await?))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Applications {
    pub applications: Vec<Application>,
    /// What a launch without `application` runs.
    pub default_application: String,
    /// What a launch without `instance_types` runs on.
    pub default_instance_types: Vec<String>,
}

/// The launch templates, and the defaults of a launch that names none.
#[utoipa::path(get, path = "/applications", tag = "launches",
    responses((status = 200, body = Applications),
              (status = 401, description = "No bearer token, or not one of LAUNCHER_TOKENS", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn applications(launcher: web::Data<Launcher>, _caller: Caller) -> HttpResponse {
    HttpResponse::Ok().json(Applications {
        applications: launcher.templates.iter().map(|t| t.application()).collect(),
        default_application: launcher.defaults.application.clone(),
        default_instance_types: launcher
            .defaults
            .instance_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
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
        description = "Places Spark jobs on the recommended spot pool and feeds each outcome back. The launch routes need `Authorization: Bearer <token>` with a token of LAUNCHER_TOKENS; a launch belongs to its caller (admin sees every launch)."
    ),
    paths(launch, list, get, cancel, applications, ready, pool_http::health),
    components(schemas(
        LaunchRequest,
        Launch,
        Attempt,
        Claim,
        State,
        LaunchList,
        Applications,
        Application,
        Ready,
        ErrorBody,
        pool_http::Health
    )),
    tags((name = "launches"), (name = "operations")),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the launch routes require (tokens from `LAUNCHER_TOKENS`).
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}
