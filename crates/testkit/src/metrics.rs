//! Reading a service's Prometheus metrics the way the HPA and Prometheus do: over HTTP.

/// The `/metrics` exposition of the service at `base` (empty when it does not answer).
pub async fn scrape(base: &str) -> String {
    match reqwest::get(format!("{}/metrics", base.trim_end_matches('/'))).await {
        Ok(res) => res.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Read one sample of a Prometheus metric from a text exposition: the sum over every series of `name`
/// whose labels contain all of `labels` (`key="value"` pairs).
pub fn metric_value(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_part) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| label_part.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            if all { value.parse::<f64>().ok() } else { None }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_value_sums_matching_series() {
        let text = "# HELP x y\nx_total{route=\"/a\",status=\"200\"} 3\nx_total{route=\"/a\",status=\"404\"} 2\nx_total{route=\"/b\",status=\"200\"} 7\n";
        assert_eq!(
            super::metric_value(text, "x_total", &[("route", "/a")]),
            5.0
        );
        assert_eq!(
            super::metric_value(text, "x_total", &[("status", "200")]),
            10.0
        );
        assert_eq!(super::metric_value(text, "x_total", &[]), 12.0);
    }
}
