//! The one HTTP client to pool-selector.

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use bytes::Bytes;
use pool_core::http::ApiError;

use crate::entry::{Entry, now_ms};
use crate::key::CacheKey;
use crate::metrics::RelayMetrics;

/// Header carrying the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Why the upstream gave no answer. Cloned to every request waiting on the same fetch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("pool-selector is unreachable: {0}")]
    Unavailable(String),
    #[error("pool-selector did not answer within {0:?}")]
    Timeout(Duration),
    #[error("pool-selector's answer could not be read: {0}")]
    Broken(String),
}

impl From<&UpstreamError> for ApiError {
    fn from(e: &UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout(_) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                e.to_string(),
            ),
            UpstreamError::Unavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                e.to_string(),
            ),
            UpstreamError::Broken(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "bad_gateway", e.to_string())
            }
        }
    }
}

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
    metrics: RelayMetrics,
}

impl Upstream {
    pub fn new(base_url: &str, timeout: Duration, metrics: RelayMetrics) -> anyhow::Result<Self> {
        let parsed = url::Url::parse(base_url)
            .map_err(|e| anyhow::anyhow!("UPSTREAM_URL {base_url:?} is not a URL: {e}"))?;
        anyhow::ensure!(
            parsed.scheme() == "http",
            "UPSTREAM_URL {base_url:?} must be an http:// URL (pool-selector runs next to the relay)"
        );
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            timeout,
            metrics,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET` the canonical form of `key`, passing the request id on. The answer is returned whatever its
    /// status; the caller decides what is cached.
    pub async fn fetch(&self, key: &CacheKey, request_id: &str) -> Result<Entry, UpstreamError> {
        let started = Instant::now();
        let result = self.send(key, request_id).await;
        let outcome = match &result {
            Ok(e) => StatusCode::from_u16(e.status)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|_| e.status.to_string()),
            Err(UpstreamError::Timeout(_)) => "timeout".into(),
            Err(UpstreamError::Unavailable(_)) => "unavailable".into(),
            Err(UpstreamError::Broken(_)) => "broken".into(),
        };
        let elapsed = started.elapsed();
        self.metrics
            .upstream(key.route(), &outcome, elapsed.as_secs_f64());
        match &result {
            Ok(_) => tracing::debug!(%key, request_id, %outcome, ?elapsed, "upstream answered"),
            Err(e) => tracing::warn!(%key, request_id, error = %e, "upstream failed"),
        }
        result
    }

    async fn send(&self, key: &CacheKey, request_id: &str) -> Result<Entry, UpstreamError> {
        let url = format!("{}{}", self.base, key.path_and_query());
        let res = self
            .client
            .get(&url)
            .header(REQUEST_ID, request_id)
            .send()
            .await
            .map_err(|e| self.classify(e))?;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/octet-stream")
            .to_owned();
        let body: Bytes = res.bytes().await.map_err(|e| self.classify(e))?;
        Ok(Entry {
            status,
            content_type,
            body,
            stored_at_ms: now_ms(),
            fresh_for_ms: 0,
        })
    }

    fn classify(&self, e: reqwest::Error) -> UpstreamError {
        if e.is_timeout() {
            UpstreamError::Timeout(self.timeout)
        } else if e.is_connect() {
            UpstreamError::Unavailable(root_cause(&e))
        } else {
            UpstreamError::Broken(root_cause(&e))
        }
    }

    /// Whether pool-selector answers its liveness probe (readiness report only).
    pub async fn healthy(&self) -> bool {
        self.client
            .get(format!("{}/health", self.base))
            .timeout(self.timeout.min(Duration::from_secs(1)))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }
}

/// The innermost error message (reqwest's own Display is just "error sending request").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
