//! What the model costs per view version: the fit's time for the fleet sizes the service sees, and
//! the per-request confidence (probability of being best and expected regret) it adds.

use std::time::Instant;

use pool_ranking::backtest::evidence_at;
use pool_ranking::rank::posteriors;
use pool_ranking::{Evidence, ModelConfig, Scored, Strategy, confidence, fit};
use pool_scenario::{RateModel, ScenarioKind};

use crate::worlds::draw;

/// Median, 90th percentile and largest time of one operation, milliseconds.
#[derive(Debug, Clone)]
pub struct Timing {
    pub what: String,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

fn summarise(what: String, mut ms: Vec<f64>) -> Timing {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Timing {
        what,
        median: at(0.5),
        p90: at(0.9),
        max: ms[ms.len() - 1],
    }
}

fn evidence(kind: ScenarioKind, hours: u32) -> Vec<Evidence> {
    let d = draw(RateModel::Structured, kind, 1, hours);
    let t = hours as usize;
    d.series
        .iter()
        .map(|s| evidence_at(s, t, t, None))
        .collect()
}

/// Fit times (default model and `pooled-v1`) and confidence times, `runs` each.
pub fn run(runs: usize) -> Vec<Timing> {
    let mut out = vec![];
    let cfg = ModelConfig::default();
    let hierarchy_only = ModelConfig {
        adapt: false,
        ..ModelConfig::default()
    };
    for (kind, hours) in [
        (ScenarioKind::Stationary, 336),
        (ScenarioKind::LongTail, 336),
        (ScenarioKind::LongTail, 720),
    ] {
        let ev = evidence(kind, hours);
        let mut ms = vec![];
        let mut prior_only = vec![];
        let mut v1 = vec![];
        for _ in 0..runs {
            let t = Instant::now();
            let m = std::hint::black_box(fit(&ev, &cfg));
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            std::hint::black_box(fit(&ev, &hierarchy_only));
            prior_only.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            std::hint::black_box(m.v1(&ev));
            v1.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let label = format!("{} pools, {hours} h series", ev.len());
        out.push(summarise(format!("fit, pooled (default): {label}"), ms));
        out.push(summarise(
            format!("of which the hierarchy (the fit without the change posterior): {label}"),
            prior_only,
        ));
        out.push(summarise(format!("fit, pooled-v1: {label}"), v1));
    }
    // Confidence of a pick among 36 candidates (3 instance types × 12 zones), and among all 432.
    let ev = evidence(ScenarioKind::LongTail, 336);
    let m = fit(&ev, &cfg);
    let types: Vec<&str> = vec!["c6a.large", "m6i.xlarge", "r7g.2xlarge"];
    let some: Vec<usize> = (0..ev.len())
        .filter(|&i| types.contains(&ev[i].pool.instance_type().as_str()))
        .collect();
    let all: Vec<usize> = (0..ev.len()).collect();
    for (label, candidates) in [("36 candidates", some), ("432 candidates", all)] {
        let order: Vec<Scored> = candidates
            .iter()
            .map(|&i| Scored {
                index: i,
                score: m.pools[i].posterior_mean(),
                ci_low: 0.0,
                ci_high: 1.0,
            })
            .collect();
        let mut order = order;
        order.sort_by(|a, b| a.score.total_cmp(&b.score));
        let mut ms = vec![];
        for _ in 0..runs {
            let t = Instant::now();
            std::hint::black_box(confidence(&order, posteriors(&ev, &m, Strategy::Pooled)));
            ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        out.push(summarise(
            format!("probability_best + expected_regret, {label}"),
            ms,
        ));
    }
    out
}
