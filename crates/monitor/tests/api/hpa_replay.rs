//! Replays the Kubernetes HPA algorithm on top of the monitor's decision over a backlog curve, to show
//! the replica count converges and does not flap.
//!
//! The HPA part follows the controller (pkg/controller/podautoscaler, autoscaling/v2 defaults):
//! * target `Value` (Object/External): `usageRatio = metric / target`; inside the tolerance (±10%)
//!   keep the current count, else `ceil(usageRatio × currentReplicas)`;
//! * External with target `AverageValue`: `usageRatio = metric / (averageValue × currentReplicas)`;
//!   inside the tolerance keep, else `ceil(metric / averageValue)`;
//! * every 15 s; scale-up limited to max(+4 pods, +100%) per period; scale-down to the highest
//!   recommendation of the last 300 s; clamped to [minReplicas, maxReplicas].
//!
//! The deployment model: each pod handles `MU` messages per second once ready, `POD_STARTUP` after it
//! was created; the queue fills with a recorded-style arrival curve (quiet, ramp, a noisy plateau with
//! a one-minute pause in it, ramp down, quiet). The monitor polls every 5 s and the HPA reads its
//! `pool_monitor_desired_replicas` as an External metric with target AverageValue 1.
//!
//! For contrast the same loop is run with the HPA fed the raw queue length (target AverageValue = the
//! backlog per worker — a plain queue-length HPA): with enough workers the backlog drains to zero,
//! the HPA scales in, the backlog returns, and it oscillates. The flap detector must see that, or it
//! would prove nothing about the monitor.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use monitor::decision::{History, Policy, QueueStats, decide};

const TOLERANCE: f64 = 0.1;
const HPA_PERIOD: u64 = 15;
const POLL: u64 = 5;
const MU: f64 = 60.0;
const POD_STARTUP: u64 = 20;
const MIN: u32 = 1;
const MAX: u32 = 30;
const BACKLOG_PER_WORKER: u64 = 2_000;

/// `ceil(currentReplicas × metric / target)` with the tolerance (target type Value).
fn hpa_value(current: u32, metric: f64, target: f64) -> u32 {
    let ratio = metric / target;
    if (1.0 - ratio).abs() <= TOLERANCE {
        current
    } else {
        (ratio * f64::from(current)).ceil() as u32
    }
}

/// `ceil(metric / averageValue)` with the tolerance on `metric / (averageValue × current)`.
fn hpa_average_value(current: u32, metric: f64, average: f64) -> u32 {
    let ratio = metric / (average * f64::from(current));
    if (1.0 - ratio).abs() <= TOLERANCE {
        current
    } else {
        (metric / average).ceil() as u32
    }
}

#[test]
fn hpa_formulas_match_the_documented_examples() {
    // Kubernetes docs: current 200m against a 100m target doubles; 50m halves; within 10% nothing.
    assert_eq!(hpa_value(3, 200.0, 100.0), 6);
    assert_eq!(hpa_value(4, 50.0, 100.0), 2);
    assert_eq!(hpa_value(5, 105.0, 100.0), 5);
    assert_eq!(hpa_value(5, 95.0, 100.0), 5);
    // AverageValue: 10 000 messages at 2 000 per pod -> 5 pods whatever the current count...
    assert_eq!(hpa_average_value(1, 10_000.0, 2_000.0), 5);
    assert_eq!(hpa_average_value(9, 10_000.0, 2_000.0), 5);
    // ...unless the per-pod value is within 10% of the target.
    assert_eq!(hpa_average_value(5, 10_500.0, 2_000.0), 5);
    // The monitor's desired replicas with averageValue 1 is taken as is (outside the tolerance).
    assert_eq!(hpa_average_value(3, 7.0, 1.0), 7);
    assert_eq!(hpa_average_value(7, 7.0, 1.0), 7);
}

/// Arrival rate (messages per second) at second `t` of the curve.
fn arrivals(t: u64) -> f64 {
    let t = t as f64;
    let plateau = |t: f64| 400.0 * (1.0 + 0.04 * (2.0 * std::f64::consts::PI * t / 97.0).sin());
    match t {
        t if t < 600.0 => 40.0,
        t if t < 900.0 => 40.0 + (t - 600.0) / 300.0 * 360.0,
        t if t < 2_400.0 => plateau(t),
        t if t < 2_460.0 => 0.0, // a one-minute pause upstream
        t if t < 3_000.0 => plateau(t),
        t if t < 3_300.0 => 400.0 - (t - 3_000.0) / 300.0 * 360.0,
        _ => 40.0,
    }
}
const END: u64 = 4_500;

/// The HPA's behaviour around its replica calculation.
struct Hpa {
    recommendations: VecDeque<(u64, u32)>,
}

impl Hpa {
    fn step(&mut self, t: u64, current: u32, raw: u32) -> u32 {
        let raw = raw.clamp(MIN, MAX);
        self.recommendations.push_back((t, raw));
        while self
            .recommendations
            .front()
            .is_some_and(|(at, _)| t - at > 300)
        {
            self.recommendations.pop_front();
        }
        let up_limit = (current + 4).max(current * 2);
        if raw > current {
            raw.min(up_limit)
        } else {
            let stabilised = self.recommendations.iter().map(|(_, r)| *r).max().unwrap();
            stabilised.min(current)
        }
    }
}

/// What the HPA reads.
#[derive(Clone, Copy)]
enum Feed {
    /// `pool_monitor_desired_replicas`, External AverageValue 1.
    Monitor,
    /// `pool_monitor_queue_messages_ready`, External AverageValue BACKLOG_PER_WORKER.
    QueueLength,
}

struct Run {
    /// (second, replicas) after every HPA period.
    replicas: Vec<(u64, u32)>,
    /// Ready messages every second.
    backlog: Vec<f64>,
}

fn simulate(feed: Feed) -> Run {
    let policy = Policy {
        min_replicas: MIN,
        max_replicas: MAX,
        target_backlog_per_worker: BACKLOG_PER_WORKER,
        worker_capacity_per_second: Some(50.0), // a conservative guess; measurement replaces it
        target_drain: Duration::from_secs(120),
        activation_backlog: 0,
        scale_down_stabilization: Duration::from_secs(120),
        fallback_replicas: 1,
    };
    let base = Instant::now();
    let mut history = History::new();
    let mut hpa = Hpa {
        recommendations: VecDeque::new(),
    };
    // Creation time of each pod; the deployment starts with one ready pod.
    let mut pods: Vec<u64> = vec![0];
    let mut ready = 0.0_f64;
    let mut published = 0.0;
    let mut acked = 0.0;
    let mut desired_metric = MIN;
    let mut run = Run {
        replicas: Vec::new(),
        backlog: Vec::new(),
    };
    for t in 0..END {
        let consumers = pods
            .iter()
            .filter(|c| **c == 0 || t >= **c + POD_STARTUP)
            .count();
        let arrived = arrivals(t);
        let done = (ready + arrived).min(consumers as f64 * MU);
        ready = ready + arrived - done;
        published += arrived;
        acked += done;
        run.backlog.push(ready);

        if t % POLL == POLL - 1 {
            let stats = QueueStats {
                messages_ready: ready.round() as u64,
                messages_unacknowledged: if done > 0.0 { consumers as u64 } else { 0 },
                consumers: consumers as u64,
                publish_rate: published / POLL as f64,
                ack_rate: acked / POLL as f64,
                deliver_get_rate: acked / POLL as f64,
            };
            published = 0.0;
            acked = 0.0;
            let now = base + Duration::from_secs(t);
            let d = decide(Some(&stats), &policy, &history, now);
            history.record(&d, &policy, now);
            if std::env::var("REPLAY_DEBUG").is_ok() && t % 60 == 59 {
                eprintln!(
                    "t={t} pods={} consumers={consumers} {stats:?} -> {d:?}",
                    pods.len()
                );
            }
            desired_metric = d.desired;
        }
        if t % HPA_PERIOD == HPA_PERIOD - 1 {
            let current = pods.len() as u32;
            let raw = match feed {
                Feed::Monitor => hpa_average_value(current, f64::from(desired_metric), 1.0),
                Feed::QueueLength => {
                    hpa_average_value(current, ready.round(), BACKLOG_PER_WORKER as f64)
                }
            };
            let next = hpa.step(t, current, raw);
            if next > current {
                pods.extend(std::iter::repeat_n(t, (next - current) as usize));
            } else {
                pods.truncate(next as usize); // newest pods go first
            }
            run.replicas.push((t, next));
        }
    }
    run
}

/// Scale-ups that follow a scale-down: the signature of flapping.
fn reversals(replicas: &[(u64, u32)], from: u64, to: u64) -> usize {
    let mut last_dir = 0i32;
    let mut count = 0;
    let window: Vec<u32> = replicas
        .iter()
        .filter(|(t, _)| (from..to).contains(t))
        .map(|(_, r)| *r)
        .collect();
    for w in window.windows(2) {
        let dir = (w[1] as i64 - w[0] as i64).signum() as i32;
        if dir != 0 {
            if last_dir == -1 && dir == 1 {
                count += 1;
            }
            last_dir = dir;
        }
    }
    count
}

fn at(run: &Run, t: u64) -> u32 {
    run.replicas
        .iter()
        .rev()
        .find(|(s, _)| *s <= t)
        .map(|(_, r)| *r)
        .unwrap()
}

fn table(run: &Run) -> String {
    (0..END)
        .step_by(300)
        .map(|t| {
            format!(
                "t={t:>4}s replicas={:>2} ready={:>7.0}",
                at(run, t.max(14)),
                run.backlog[t as usize]
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn monitor_fed_hpa_converges_without_flapping() {
    let run = simulate(Feed::Monitor);
    let trace = table(&run);
    eprintln!("monitor-fed HPA:\n{trace}");
    // Never a scale-up after a scale-down over the whole hour and a quarter.
    assert_eq!(reversals(&run.replicas, 0, END), 0, "flapping:\n{trace}");
    // On the plateau it settles at ceil(max arrivals / capacity) = ceil(416 / 60) = 7 and stays.
    let plateau: Vec<u32> = run
        .replicas
        .iter()
        .filter(|(t, _)| (1_500..3_000).contains(t))
        .map(|(_, r)| *r)
        .collect();
    assert!(
        plateau.iter().all(|r| *r == 7),
        "plateau {plateau:?}\n{trace}"
    );
    // The one-minute pause (2400-2460 s) did not scale anything in: the range above covers it.
    // The backlog stays bounded once converged: under 10 s of arrivals.
    let worst = run.backlog[1_500..3_000]
        .iter()
        .cloned()
        .fold(0.0_f64, f64::max);
    assert!(worst < 4_000.0, "backlog up to {worst}\n{trace}");
    // And it comes back to the minimum after the load goes, with the queue empty.
    assert_eq!(at(&run, END - 1), MIN, "{trace}");
    assert!(run.backlog[END as usize - 1] < 1.0, "{trace}");
    // Scale-up was prompt: during the ramp the backlog never exceeded two minutes of arrivals.
    let ramp_worst = run.backlog[600..1_500]
        .iter()
        .cloned()
        .fold(0.0_f64, f64::max);
    assert!(
        ramp_worst < 400.0 * 120.0,
        "ramp backlog {ramp_worst}\n{trace}"
    );
}

#[test]
fn queue_length_fed_hpa_oscillates_which_the_detector_sees() {
    let run = simulate(Feed::QueueLength);
    let trace = table(&run);
    eprintln!("queue-length HPA:\n{trace}");
    let flaps = reversals(&run.replicas, 900, 3_000);
    eprintln!("scale-ups after a scale-down on the plateau: {flaps}");
    assert!(
        flaps >= 2,
        "expected the plain queue-length HPA to oscillate on the plateau, saw {flaps}\n{trace}"
    );
    let monitor = simulate(Feed::Monitor);
    assert!(reversals(&monitor.replicas, 900, 3_000) < flaps);
}
