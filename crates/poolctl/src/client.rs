//! Talking to the services: one request, its answer, and every way it can fail turned into a
//! [`CliError`] that names the service, its URL and what to do.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{CliError, Exit};
use pool_core::view::ErrorBody;

/// The services poolctl talks to, each with the setting that points at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// The relay (or pool-selector itself: the same read API).
    Relay,
    Monitor,
    Intake,
    Launcher,
}

impl Service {
    pub fn name(self) -> &'static str {
        match self {
            Service::Relay => "the relay",
            Service::Monitor => "the monitor",
            Service::Intake => "the intake",
            Service::Launcher => "the launcher",
        }
    }

    /// The environment variable (and flag) that sets its URL.
    pub fn setting(self) -> &'static str {
        match self {
            Service::Relay => "POOL_SELECTOR_URL (--url)",
            Service::Monitor => "MONITOR_URL (--monitor-url)",
            Service::Intake => "INTAKE_URL (--intake-url)",
            Service::Launcher => "LAUNCHER_URL (--launcher-url)",
        }
    }
}

/// A service's answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub retry_after: Option<String>,
}

impl Reply {
    /// The body as JSON (a service that answers something else is broken, or is not the service).
    pub fn json(&self, service: Service, base: &str) -> Result<Value, CliError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            CliError::service(format!(
                "{} at {base} answered {} with a body that is not JSON ({e}); is {} pointing at the right service?",
                service.name(),
                self.status,
                service.setting()
            ))
        })
    }

    fn error_body(&self) -> Option<ErrorBody> {
        ErrorBody::parse(&self.body)
    }
}

/// An HTTP client with a deadline per request, and a spinner on stderr while a request is slow.
pub struct Client {
    http: reqwest::Client,
    timeout: Duration,
    spinner: bool,
}

/// How long a request runs before the spinner appears: a quick answer never flickers one.
const SPINNER_AFTER: Duration = Duration::from_millis(300);

impl Client {
    /// `spinner`: show one on stderr for slow requests (only when stderr is a terminal).
    pub fn new(timeout: Duration, spinner: bool) -> Result<Self, CliError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("poolctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::service(format!("cannot set up an HTTP client: {e}")))?;
        Ok(Self {
            http,
            timeout,
            spinner,
        })
    }

    /// Send `method path` to `service` at `base`, with a JSON or raw body and a bearer token.
    pub async fn send(
        &self,
        service: Service,
        base: &str,
        method: Method,
        path_and_query: &str,
        body: Option<(&'static str, Vec<u8>)>,
        token: Option<&str>,
    ) -> Result<Reply, CliError> {
        self.send_with(service, base, method, path_and_query, body, token, &[])
            .await
    }

    /// [`send`](Self::send) with extra request headers (an `Idempotency-Key`).
    #[allow(clippy::too_many_arguments)]
    pub async fn send_with(
        &self,
        service: Service,
        base: &str,
        method: Method,
        path_and_query: &str,
        body: Option<(&'static str, Vec<u8>)>,
        token: Option<&str>,
        headers: &[(&'static str, &str)],
    ) -> Result<Reply, CliError> {
        let base = base.trim_end_matches('/');
        let url = format!("{base}{path_and_query}");
        let mut req = self.http.request(method, &url);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some((content_type, bytes)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let call = async {
            let res = req.send().await?;
            let status = res.status();
            let retry_after = res
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = res.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(Reply {
                status,
                body,
                retry_after,
            })
        };
        let result = if self.spinner {
            with_spinner(call, &format!("asking {} at {base}", service.name())).await
        } else {
            call.await
        };
        result.map_err(|e| self.transport_error(service, base, &e))
    }

    fn transport_error(&self, service: Service, base: &str, e: &reqwest::Error) -> CliError {
        let name = service.name();
        let setting = service.setting();
        if e.is_timeout() {
            return CliError::service(format!(
                "{name} at {base} did not answer within {:?}: retry, or allow longer with --timeout",
                self.timeout
            ));
        }
        if e.is_builder() {
            return CliError::usage(format!(
                "{base:?} is not a usable URL for {name}: set {setting} to e.g. http://127.0.0.1:8080"
            ));
        }
        let hint = match service {
            Service::Relay => "start the local stack with `make up`, or point POOL_SELECTOR_URL \
                               (--url) at a relay or a pool-selector"
                .to_owned(),
            _ => format!("start the local stack with `make up`, or set {setting}"),
        };
        CliError::service(format!(
            "cannot reach {name} at {base} ({}): {hint}",
            root_cause(e)
        ))
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which says more
/// than reqwest's "error sending request".
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Run `call`; when it takes longer than [`SPINNER_AFTER`], show a spinner with `message` on stderr
/// until it ends.
async fn with_spinner<T>(call: impl Future<Output = T>, message: &str) -> T {
    tokio::pin!(call);
    tokio::select! {
        out = &mut call => return out,
        _ = tokio::time::sleep(SPINNER_AFTER) => {}
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
        bar.set_style(style);
    }
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    let out = call.await;
    bar.finish_and_clear();
    out
}

/// Turn a non-2xx answer into the error a user can act on. 404 (and the launcher's 422) is "no data"
/// (exit 1); a refused
/// parameter is a usage error (exit 2) with the service's own message; everything else is a service
/// error (exit 3).
pub fn refusal(service: Service, base: &str, reply: &Reply) -> CliError {
    let name = service.name();
    let body = reply.error_body();
    let text = body
        .as_ref()
        .map(|b| b.text().to_owned())
        .unwrap_or_else(|| String::from_utf8_lossy(&reply.body).trim().to_owned());
    let text = if text.is_empty() {
        reply.status.to_string()
    } else {
        text
    };
    let retry = reply
        .retry_after
        .as_deref()
        .map(|s| format!(" (retry after {s} s)"))
        .unwrap_or_default();
    let key_reused = body
        .as_ref()
        .is_some_and(|b| b.error == "idempotency_key_reused");
    match reply.status.as_u16() {
        // A launch's Idempotency-Key used for another request: the command line's to fix.
        422 if key_reused => CliError::usage(format!("{name} refused: {text}")),
        // No matching data; the launcher's 422: the relay has no pool for the request.
        404 | 422 => CliError::new(Exit::NoData, text),
        // A launch that has already finished cannot be cancelled.
        409 => CliError::usage(format!("{name} refused: {text}")),
        400 | 414 | 415 | 413 => {
            let field = body
                .and_then(|b| b.field)
                .map(|f| format!(" (parameter {f})"))
                .unwrap_or_default();
            CliError::usage(format!("{name} refused the request{field}: {text}"))
        }
        401 | 403 => {
            let setting = match service {
                Service::Launcher => {
                    "Set LAUNCHER_TOKEN (--launcher-token) to a token of its LAUNCHER_TOKENS"
                }
                _ => "Set INTAKE_TOKEN (--intake-token) to one of its INTAKE_TOKENS",
            };
            CliError::service(format!(
                "{name} at {base} refused the token: {text}. {setting}"
            ))
        }
        429 => CliError::service(format!("{name} at {base} is busy: {text}{retry}")),
        s if s >= 500 => CliError::service(format!(
            "{name} at {base} failed ({}): {text}{retry}",
            reply.status
        )),
        _ => CliError::service(format!(
            "{name} at {base} answered {}: {text}",
            reply.status
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            body: body.as_bytes().to_vec(),
            retry_after: None,
        }
    }

    #[test]
    fn answers_map_to_exit_codes() {
        let base = "http://x";
        let e = refusal(
            Service::Relay,
            base,
            &reply(
                404,
                r#"{"error":"not_found","message":"no job events matching x"}"#,
            ),
        );
        assert_eq!(
            (e.exit, e.message.as_str()),
            (Exit::NoData, "no job events matching x")
        );
        let e = refusal(
            Service::Relay,
            base,
            &reply(
                400,
                r#"{"error":"bad_parameter","message":"window: bad","field":"window"}"#,
            ),
        );
        assert_eq!(e.exit, Exit::Usage);
        assert_eq!(
            e.message,
            "the relay refused the request (parameter window): window: bad"
        );
        let e = refusal(
            Service::Intake,
            base,
            &reply(401, r#"{"error":"unauthorized"}"#),
        );
        assert_eq!(e.exit, Exit::Service);
        assert!(e.message.contains("INTAKE_TOKEN"), "{e}");
        let e = refusal(
            Service::Launcher,
            base,
            &reply(401, r#"{"error":"unauthorized","message":"no"}"#),
        );
        assert!(e.message.contains("LAUNCHER_TOKEN"), "{e}");
        let e = refusal(
            Service::Launcher,
            base,
            &reply(
                422,
                r#"{"error":"idempotency_key_reused","message":"used"}"#,
            ),
        );
        assert_eq!(e.exit, Exit::Usage);
        let e = refusal(
            Service::Launcher,
            base,
            &reply(422, r#"{"error":"no_pool","message":"none"}"#),
        );
        assert_eq!(e.exit, Exit::NoData);
        let mut busy = reply(503, "not json");
        busy.retry_after = Some("2".into());
        let e = refusal(Service::Relay, base, &busy);
        assert_eq!(e.exit, Exit::Service);
        assert!(e.message.contains("not json (retry after 2 s)"), "{e}");
    }

    #[test]
    fn a_non_json_answer_names_the_setting() {
        let e = reply(200, "<html>")
            .json(Service::Monitor, "http://x")
            .unwrap_err();
        assert_eq!(e.exit, Exit::Service);
        assert!(e.message.contains("MONITOR_URL"), "{e}");
    }
}
