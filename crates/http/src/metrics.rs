//! Prometheus plumbing: one registry per service, HTTP request metrics, and the text exposition.

use prometheus::{
    Counter, Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter,
    IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
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

/// Register an integer counter (`IntCounter`).
pub fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(registry, IntCounter::new(name, help).expect("valid metric"))
}

/// Register a floating-point counter (`Counter`), for totals of fractional amounts such as seconds.
pub fn counter_f64(registry: &Registry, name: &str, help: &str) -> Counter {
    register(registry, Counter::new(name, help).expect("valid metric"))
}

/// Register an integer gauge (`IntGauge`).
pub fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    register(registry, IntGauge::new(name, help).expect("valid metric"))
}

/// Register a floating-point gauge (`Gauge`), for ages, rates and Unix timestamps.
pub fn gauge_f64(registry: &Registry, name: &str, help: &str) -> Gauge {
    register(registry, Gauge::new(name, help).expect("valid metric"))
}

/// Register a histogram with the given buckets (e.g. [`LATENCY_BUCKETS`]).
pub fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    register(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
            .expect("valid metric"),
    )
}

/// Counter vector helper.
pub fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

/// Register a floating-point gauge vector (`GaugeVec`) with the given labels.
pub fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    register(
        registry,
        GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

/// Register an integer gauge vector (`IntGaugeVec`) with the given labels.
pub fn int_gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        registry,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

/// Histogram vector helper with the shared latency buckets.
pub fn histogram_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    histogram_vec_with_buckets(registry, name, help, labels, LATENCY_BUCKETS)
}

/// Register a histogram vector with the given labels and buckets.
pub fn histogram_vec_with_buckets(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: &[f64],
) -> HistogramVec {
    register(
        registry,
        HistogramVec::new(
            HistogramOpts::new(name, help).buckets(buckets.to_vec()),
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

    #[test]
    fn every_helper_registers_its_shape() {
        let registry = Registry::new_custom(Some("t".to_owned()), None).unwrap();
        counter(&registry, "ints_total", "An IntCounter.").inc_by(3);
        counter_f64(&registry, "seconds_total", "A Counter.").inc_by(1.5);
        gauge(&registry, "depth", "An IntGauge.").set(7);
        gauge_f64(&registry, "age_seconds", "A Gauge.").set(2.5);
        histogram(&registry, "pass_seconds", "A Histogram.", &[1.0, 10.0]).observe(4.0);
        gauge_vec(&registry, "rate", "A GaugeVec.", &["queue"])
            .with_label_values(&["q1"])
            .set(0.25);
        int_gauge_vec(
            &registry,
            "replicas",
            "An IntGaugeVec.",
            &["workload", "queue"],
        )
        .with_label_values(&["w", "q1"])
        .set(4);
        histogram_vec_with_buckets(
            &registry,
            "attempt_seconds",
            "A HistogramVec.",
            &["outcome"],
            &[60.0],
        )
        .with_label_values(&["ok"])
        .observe(30.0);
        let text = encode(&registry);
        for line in [
            "# HELP t_ints_total An IntCounter.",
            "# TYPE t_ints_total counter",
            "t_ints_total 3",
            "# TYPE t_seconds_total counter",
            "t_seconds_total 1.5",
            "# TYPE t_depth gauge",
            "t_depth 7",
            "# TYPE t_age_seconds gauge",
            "t_age_seconds 2.5",
            "# TYPE t_pass_seconds histogram",
            r#"t_pass_seconds_bucket{le="1"} 0"#,
            r#"t_pass_seconds_bucket{le="10"} 1"#,
            "t_pass_seconds_count 1",
            "# TYPE t_rate gauge",
            r#"t_rate{queue="q1"} 0.25"#,
            "# TYPE t_replicas gauge",
            r#"t_replicas{queue="q1",workload="w"} 4"#,
            "# TYPE t_attempt_seconds histogram",
            r#"t_attempt_seconds_bucket{outcome="ok",le="60"} 1"#,
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing from:\n{text}"
            );
        }
    }
}
