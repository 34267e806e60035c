//! The one HTTP client to pool-selector, bounded: at most `UPSTREAM_MAX_CONNECTIONS` requests at once
//! and at most `UPSTREAM_MAX_BODY_BYTES` read from an answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use actix_web::http::StatusCode;
use bytes::Bytes;
use pool_http::ApiError;

use crate::entry::Entry;
use crate::key::CacheKey;
use crate::metrics::RelayMetrics;
use pool_core::clock::SharedClock;

/// Header carrying the request id, in and out.
pub const REQUEST_ID: &str = "x-request-id";

/// Why the upstream gave no answer. Cloned to every request waiting on the same fetch.
/// The `String`s are for the log only: what a public client is told is in `From<&UpstreamError> for
/// ApiError`, which names what failed and never the backend's address or error text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("pool-selector is unreachable: {0}")]
    Unavailable(String),
    #[error("pool-selector did not answer within {0:?}")]
    Timeout(Duration),
    #[error("pool-selector's answer could not be read: {0}")]
    Broken(String),
    /// Not an upstream failure: the client's budget of cache misses is spent (nothing was sent).
    #[error("the client's cache misses are over their limit for {0:?}")]
    Limited(Duration),
}

impl From<&UpstreamError> for ApiError {
    fn from(e: &UpstreamError) -> Self {
        match e {
            UpstreamError::Timeout(t) => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                format!("the ranking service did not answer within {t:?}; retry shortly"),
            )
            .retry_after(1),
            UpstreamError::Unavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream_unavailable",
                "the ranking service is unreachable; retry shortly",
            )
            .retry_after(1),
            UpstreamError::Broken(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "bad_gateway",
                "the ranking service's answer could not be used",
            ),
            UpstreamError::Limited(wait) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests from this client that the cache could not answer \
                 (MISS_RATE_PER_CLIENT, MISS_BURST_PER_CLIENT); cached answers are still served, retry \
                 later",
            )
            .retry_after(
                u32::try_from(wait.as_secs_f64().ceil() as u64)
                    .unwrap_or(u32::MAX)
                    .max(1),
            ),
        }
    }
}

/// The bounds on talking to pool-selector.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamLimits {
    pub timeout: Duration,
    pub max_connections: usize,
    pub max_body_bytes: usize,
}

#[derive(Clone)]
pub struct Upstream {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
    max_body_bytes: usize,
    connections: Arc<Semaphore>,
    metrics: RelayMetrics,
    /// Stamps each answer with the time it arrived, from which the relay judges its freshness.
    clock: SharedClock,
}

impl Upstream {
    pub fn new(
        base_url: &str,
        limits: UpstreamLimits,
        metrics: RelayMetrics,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let shown = pool_service::redact::url(base_url);
        let parsed = url::Url::parse(base_url)
            .map_err(|_| anyhow::anyhow!("UPSTREAM_URL {shown} is not a URL"))?;
        anyhow::ensure!(
            parsed.scheme() == "http",
            "UPSTREAM_URL {shown} must be an http:// URL (pool-selector runs next to the relay)"
        );
        let timeout = limits.timeout;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_max_idle_per_host(limits.max_connections.max(1))
            .build()?;
        Ok(Self {
            client,
            base: base_url.trim_end_matches('/').to_owned(),
            timeout,
            max_body_bytes: limits.max_body_bytes,
            connections: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            metrics,
            clock,
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
            Err(UpstreamError::Broken(_) | UpstreamError::Limited(_)) => "broken".into(),
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
        let deadline = tokio::time::Instant::now() + self.timeout;
        // A free connection, within the same timeout as the request itself.
        self.metrics.upstream_waiting.inc();
        let acquired = tokio::time::timeout_at(deadline, self.connections.acquire()).await;
        self.metrics.upstream_waiting.dec();
        let _connection = acquired
            .map_err(|_| UpstreamError::Timeout(self.timeout))?
            .expect("the semaphore is never closed");
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
        let no_store = res
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-store"));
        if res
            .content_length()
            .is_some_and(|n| n > self.max_body_bytes as u64)
        {
            return Err(self.oversized());
        }
        let mut body = bytes::BytesMut::new();
        let mut res = res;
        while let Some(chunk) = res.chunk().await.map_err(|e| self.classify(e))? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(self.oversized());
            }
            body.extend_from_slice(&chunk);
        }
        let body: Bytes = body.freeze();
        Ok(Entry {
            status,
            content_type,
            body,
            stored_at_ms: self.clock.now_ms(),
            fresh_for_ms: 0,
            no_store,
        })
    }

    fn oversized(&self) -> UpstreamError {
        self.metrics.upstream_oversized.inc();
        UpstreamError::Broken(format!(
            "the answer is larger than UPSTREAM_MAX_BODY_BYTES ({} bytes)",
            self.max_body_bytes
        ))
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
