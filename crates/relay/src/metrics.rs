//! The relay's own Prometheus metrics (request counts and latency by route come from
//! [`pool_http::metrics::HttpMetrics`]).
//!
//! Label children are resolved once here, so the hot path increments a counter without a label lookup.

use prometheus::{HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry};

use pool_http::metrics::{counter, counter_vec, gauge, histogram_vec};

use crate::entry::CacheStatus;

#[derive(Clone)]
pub struct RelayMetrics {
    hit: IntCounter,
    miss: IntCounter,
    stale: IntCounter,
    bypass: IntCounter,
    /// Hits answered from the in-process cache without asking Redis.
    pub l1_hits: IntCounter,
    /// Answers kept in process only, because Redis could not take them.
    pub l1_fallback_stores: IntCounter,
    /// Upstream answers refused for being larger than UPSTREAM_MAX_BODY_BYTES.
    pub upstream_oversized: IntCounter,
    /// Fetches waiting for a free upstream connection (UPSTREAM_MAX_CONNECTIONS).
    pub upstream_waiting: IntGauge,
    /// Requests that joined an upstream request already in flight for their key instead of sending one.
    pub coalesced_waiters: IntCounter,
    /// Background refreshes of stale entries started.
    pub stale_refreshes: IntCounter,
    /// Fetches that waited for another replica holding the Redis fetch lock.
    pub lock_waits: IntCounter,
    /// Requests refused (429) because their client's budget of upstream fetches was spent.
    pub limited: IntCounter,
    uncacheable: IntCounterVec,
    upstream_requests: IntCounterVec,
    upstream_latency: HistogramVec,
    redis_errors: IntCounterVec,
    /// 1 while Redis answers, 0 while the relay bypasses it.
    pub redis_up: IntGauge,
}

impl RelayMetrics {
    pub fn register(registry: &Registry) -> Self {
        let results = counter_vec(
            registry,
            "cache_requests_total",
            "Relayed requests by cache result (hit, miss, stale, bypass).",
            &["result"],
        );
        Self {
            hit: results.with_label_values(&["hit"]),
            miss: results.with_label_values(&["miss"]),
            stale: results.with_label_values(&["stale"]),
            bypass: results.with_label_values(&["bypass"]),
            l1_hits: counter(
                registry,
                "l1_hits_total",
                "Cache hits and stale answers served from the in-process cache without asking Redis.",
            ),
            l1_fallback_stores: counter(
                registry,
                "l1_fallback_stores_total",
                "Answers kept in the in-process cache for their whole life because Redis was unavailable.",
            ),
            upstream_oversized: counter(
                registry,
                "upstream_oversized_total",
                "Upstream answers refused for being larger than UPSTREAM_MAX_BODY_BYTES.",
            ),
            upstream_waiting: gauge(
                registry,
                "upstream_waiting",
                "Fetches waiting for a free upstream connection (UPSTREAM_MAX_CONNECTIONS).",
            ),
            coalesced_waiters: counter(
                registry,
                "coalesced_waiters_total",
                "Requests that waited for an upstream request already in flight for the same key.",
            ),
            stale_refreshes: counter(
                registry,
                "stale_refreshes_total",
                "Background refreshes of stale entries started.",
            ),
            lock_waits: counter(
                registry,
                "redis_lock_waits_total",
                "Fetches that waited for another replica holding the Redis fetch lock.",
            ),
            limited: counter(
                registry,
                "limited_total",
                "Requests refused with 429: their client's budget of cache misses \
                 (MISS_RATE_PER_CLIENT, MISS_BURST_PER_CLIENT) was spent.",
            ),
            uncacheable: counter_vec(
                registry,
                "uncacheable_total",
                "Requests forwarded on their own by design, never cached nor coalesced (answered BYPASS, \
                 also counted in cache_requests_total), by route and reason.",
                &["route", "reason"],
            ),
            upstream_requests: counter_vec(
                registry,
                "upstream_requests_total",
                "Requests sent to pool-selector, by route and outcome (status code, timeout, unavailable).",
                &["route", "outcome"],
            ),
            upstream_latency: histogram_vec(
                registry,
                "upstream_request_duration_seconds",
                "Latency of requests sent to pool-selector.",
                &["route"],
            ),
            redis_errors: counter_vec(
                registry,
                "redis_errors_total",
                "Redis commands that failed or timed out, by operation.",
                &["op"],
            ),
            redis_up: gauge(
                registry,
                "redis_up",
                "1 while Redis answers, 0 while the relay bypasses it.",
            ),
        }
    }

    pub fn result(&self, status: CacheStatus) {
        match status {
            CacheStatus::Hit => self.hit.inc(),
            CacheStatus::Miss => self.miss.inc(),
            CacheStatus::Stale => self.stale.inc(),
            CacheStatus::Bypass => self.bypass.inc(),
        }
    }

    /// One request forwarded on its own for `reason` (e.g. `unseeded_thompson`).
    pub fn uncacheable(&self, route: &str, reason: &str) {
        self.uncacheable.with_label_values(&[route, reason]).inc();
    }

    pub fn upstream(&self, route: &str, outcome: &str, seconds: f64) {
        self.upstream_requests
            .with_label_values(&[route, outcome])
            .inc();
        self.upstream_latency
            .with_label_values(&[route])
            .observe(seconds);
    }

    pub fn redis_error(&self, op: &str) {
        self.redis_errors.with_label_values(&[op]).inc();
    }
}
