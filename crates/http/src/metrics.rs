//! Prometheus plumbing: one registry per service, HTTP request metrics, and the text exposition.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 0.5 ms to 10 s: wide enough for a cache hit and a cold full-history scan.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A registry with the process collector (CPU, RSS, open fds) already registered.
pub fn new_registry(namespace: &str) -> Registry {
    let registry = Registry::new_custom(Some(namespace.to_owned()), None)
        .expect("a namespace made of letters and underscores is valid");
    #[cfg(target_os = "linux")]
    {
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
    }
    registry
}

/// Register a collector, panicking on a programming error (duplicate or malformed name).
pub fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are static and unique");
    c
}

/// Counter vector helper.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

/// Histogram vector helper with the shared latency buckets.
pub fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    register(
        registry,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
            labels,
        )
        .expect("valid metric"),
    )
}

/// The `method` label of a request: one of the standard methods (RFC 9110, and PATCH), or `other` for
/// anything else, so a client inventing methods cannot add series.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// Per-route request counters and latency, recorded by [`crate::track_requests`].
#[derive(Clone)]
pub struct HttpMetrics {
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Self {
        Self {
            requests: counter_vec(
                registry,
                "http_requests_total",
                "HTTP requests by route pattern, method and status code.",
                &["route", "method", "status"],
            ),
            latency: histogram_vec(
                registry,
                "http_request_duration_seconds",
                "HTTP request latency by route pattern.",
                &["route", "method"],
            ),
        }
    }
}

/// The Prometheus text exposition of everything in `registry`.
pub fn encode(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding cannot fail");
    String::from_utf8(buf).expect("the text format is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::Method;

    #[test]
    fn methods_outside_the_standard_ones_are_other() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for made_up in ["FOO", "get", "PROPFIND", "X-ANYTHING"] {
            let m = Method::from_bytes(made_up.as_bytes()).unwrap();
            assert_eq!(method_label(&m), "other", "{made_up}");
        }
    }
}
