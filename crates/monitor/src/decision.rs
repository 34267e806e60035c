//! The scaling decision: a pure function of one queue observation, one workload's policy and that
//! workload's history. No clock, no I/O: the caller passes `now`, which is what lets the unit tests
//! and the HPA replay test walk through minutes of behaviour in microseconds.
//!
//! The rules (all rounded up, then the largest wins, clamped to `[min, max]`):
//!
//! * **backlog** — `ceil(ready / target_backlog_per_worker)`: KEDA's `QueueLength` meaning, "one worker
//!   per N waiting messages".
//! * **throughput** — `ceil(publish_rate / capacity)`: enough workers to keep up with arrivals.
//! * **drain time** — `ceil((ready / target_drain_seconds + publish_rate) / capacity)`: enough workers
//!   to clear the current backlog within the target time *while* keeping up with arrivals.
//!
//! `capacity` (messages per second one worker handles) is measured from the broker when the workers
//! are saturated, otherwise remembered from the last saturated measurement, otherwise configured.
//! Around the rules sit three guards: an activation threshold with hysteresis, a scale-down
//! stabilisation window (the HPA's "highest recommendation over the window"), and a fallback replica
//! count when the queue cannot be read.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Below this a rate is treated as zero: the management API reports `0.0` for an idle queue, but
/// arithmetic on rates must not turn `1e-12` into "one more worker".
const RATE_EPSILON: f64 = 1e-9;

/// One reading of a queue from the RabbitMQ management API.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, utoipa::ToSchema)]
pub struct QueueStats {
    /// Messages waiting to be delivered (`messages_ready`).
    pub messages_ready: u64,
    /// Messages delivered to consumers and not yet acknowledged (`messages_unacknowledged`).
    pub messages_unacknowledged: u64,
    /// Consumers attached to the queue (`consumers`).
    pub consumers: u64,
    /// Messages published into the queue per second (`message_stats.publish_details.rate`).
    pub publish_rate: f64,
    /// Messages acknowledged per second (`message_stats.ack_details.rate`).
    pub ack_rate: f64,
    /// Messages delivered (or fetched) per second (`message_stats.deliver_get_details.rate`).
    pub deliver_get_rate: f64,
}

impl QueueStats {
    /// Messages per second the consumers are *completing*: acknowledgements when there are any;
    /// deliveries only for auto-ack consumers (nothing unacknowledged), because right after a
    /// manual-ack consumer attaches, deliveries merely fill its prefetch buffer and would overstate
    /// what it can process.
    pub fn processing_rate(&self) -> Option<f64> {
        if self.ack_rate > RATE_EPSILON {
            Some(self.ack_rate)
        } else if self.messages_unacknowledged == 0 && self.deliver_get_rate > RATE_EPSILON {
            Some(self.deliver_get_rate)
        } else {
            None
        }
    }

    /// Nothing waiting, nothing in flight, nothing arriving.
    pub fn is_idle(&self) -> bool {
        self.messages_ready == 0
            && self.messages_unacknowledged == 0
            && self.publish_rate <= RATE_EPSILON
    }
}

/// One workload's scaling policy, already validated (see `settings`): `min <= fallback <= max`,
/// `max >= 1`, every target positive.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub min_replicas: u32,
    pub max_replicas: u32,
    /// Ready messages one worker is expected to have waiting (KEDA `QueueLength` value).
    pub target_backlog_per_worker: u64,
    /// Messages per second one worker handles, when known in advance.
    pub worker_capacity_per_second: Option<f64>,
    /// Time within which the current backlog should be cleared.
    pub target_drain: Duration,
    /// The workload stays at `min_replicas` until more than this many messages are ready.
    pub activation_backlog: u64,
    /// Scale-down waits for the highest recommendation of this window (0 = no stabilisation).
    pub scale_down_stabilization: Duration,
    /// Published while the queue cannot be read.
    pub fallback_replicas: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_replicas: 1,
            max_replicas: 10,
            target_backlog_per_worker: 1000,
            worker_capacity_per_second: None,
            target_drain: Duration::from_secs(60),
            activation_backlog: 0,
            scale_down_stabilization: Duration::from_secs(300),
            fallback_replicas: 1,
        }
    }
}

/// What produced the published number. `snake_case` in JSON and in the `rule` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// `ceil(ready / target_backlog_per_worker)` was the largest rule.
    Backlog,
    /// `ceil(publish_rate / capacity)` was the largest rule.
    Throughput,
    /// `ceil((ready / target_drain_seconds + publish_rate) / capacity)` was the largest rule.
    DrainTime,
    /// Every rule asked for fewer than `min_replicas`.
    MinReplicas,
    /// The largest rule asked for more than `max_replicas`.
    MaxReplicas,
    /// The backlog has not crossed the activation threshold: `min_replicas`.
    Activation,
    /// The queue could not be read: `fallback_replicas`.
    Fallback,
    /// A higher recommendation within the scale-down stabilisation window is being held.
    Stabilization,
}

impl Rule {
    pub fn as_str(&self) -> &'static str {
        match self {
            Rule::Backlog => "backlog",
            Rule::Throughput => "throughput",
            Rule::DrainTime => "drain_time",
            Rule::MinReplicas => "min_replicas",
            Rule::MaxReplicas => "max_replicas",
            Rule::Activation => "activation",
            Rule::Fallback => "fallback",
            Rule::Stabilization => "stabilization",
        }
    }
}

/// Where the per-worker capacity used by the throughput and drain-time rules came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CapacitySource {
    /// Measured now: `processing_rate / consumers` while messages were waiting (workers saturated).
    Measured,
    /// The last saturated measurement (the queue is not backed up now, so the current ack rate only
    /// shows the arrival rate, not what the workers could do).
    Remembered,
    /// `WORKER_CAPACITY_PER_SECOND`.
    Configured,
    /// Never measured and not configured: only the backlog rule applies.
    Unknown,
}

/// Each rule's replica count before clamping; `null` when the rule needs a capacity that is unknown
/// (or the queue could not be read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, utoipa::ToSchema)]
pub struct RuleValues {
    pub backlog: Option<u32>,
    pub throughput: Option<u32>,
    pub drain_time: Option<u32>,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The replica count to publish.
    pub desired: u32,
    /// This step's recommendation before scale-down stabilisation.
    pub recommendation: u32,
    /// What determined `desired`.
    pub decided_by: Rule,
    pub rules: RuleValues,
    pub capacity_per_worker: Option<f64>,
    pub capacity_source: CapacitySource,
    /// Whether the activation threshold has been crossed (and the queue has not gone idle since).
    pub active: bool,
    /// The queue could not be read and `fallback_replicas` was used.
    pub fallback: bool,
    /// A fresh saturated capacity measurement, to remember.
    measured_capacity: Option<f64>,
    /// The observation, to remember.
    observed: Option<QueueStats>,
}

/// What a workload remembers between polls: recent recommendations (for stabilisation), the last
/// saturated capacity measurement and the activation state.
#[derive(Debug, Clone, Default)]
pub struct History {
    recommendations: VecDeque<(Instant, u32)>,
    measured_capacity: Option<f64>,
    /// `None` until the first successful observation.
    active: Option<bool>,
    /// The previous successful observation.
    last: Option<QueueStats>,
}

impl History {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `decision`, taken at `now`, and forget what fell out of the stabilisation window.
    pub fn record(&mut self, decision: &Decision, policy: &Policy, now: Instant) {
        if !decision.fallback {
            self.active = Some(decision.active);
            self.last = decision.observed;
        }
        if let Some(c) = decision.measured_capacity {
            self.measured_capacity = Some(c);
        }
        self.recommendations
            .push_back((now, decision.recommendation));
        while let Some((t, _)) = self.recommendations.front() {
            if now.saturating_duration_since(*t) > policy.scale_down_stabilization {
                self.recommendations.pop_front();
            } else {
                break;
            }
        }
    }

    /// Highest recommendation recorded within `window` before `now`.
    fn highest_within(&self, window: Duration, now: Instant) -> Option<u32> {
        self.recommendations
            .iter()
            .filter(|(t, _)| now.saturating_duration_since(*t) <= window)
            .map(|(_, r)| *r)
            .max()
    }

    pub fn measured_capacity(&self) -> Option<f64> {
        self.measured_capacity
    }
}

/// `ceil(x)` as a replica count: non-finite or negative is 0, huge saturates, and float noise just
/// above a whole number (`2.0000000001`) does not add a worker.
fn ceil_replicas(x: f64) -> u32 {
    if !x.is_finite() || x <= 0.0 {
        return 0;
    }
    let c = (x - RATE_EPSILON * x.max(1.0)).ceil();
    if c >= u32::MAX as f64 {
        u32::MAX
    } else {
        c.max(0.0) as u32
    }
}

/// Decide the replica count for one workload from one observation (`None`: the queue could not be
/// read). Pure: the same inputs always give the same decision; record it with [`History::record`].
pub fn decide(
    stats: Option<&QueueStats>,
    policy: &Policy,
    history: &History,
    now: Instant,
) -> Decision {
    let observed = match stats {
        None => fallback(policy, history),
        Some(s) => observe(s, policy, history),
    };
    let (desired, decided_by) =
        stabilise(observed.recommendation, observed.rule, policy, history, now);
    Decision {
        desired,
        recommendation: observed.recommendation,
        decided_by,
        rules: observed.rules,
        capacity_per_worker: observed.capacity,
        capacity_source: observed.capacity_source,
        active: observed.active,
        fallback: stats.is_none(),
        measured_capacity: observed.measured,
        observed: stats.copied(),
    }
}

/// This step's recommendation and what it was made from, before scale-down stabilisation.
struct Observed {
    recommendation: u32,
    rule: Rule,
    rules: RuleValues,
    capacity: Option<f64>,
    capacity_source: CapacitySource,
    active: bool,
    /// A fresh saturated capacity measurement.
    measured: Option<f64>,
}

/// The queue could not be read: `fallback_replicas`, no rule values, and the activation state and
/// capacity as they were (nothing new was learned).
fn fallback(policy: &Policy, history: &History) -> Observed {
    let (capacity, capacity_source) = capacity_in_use(None, policy, history);
    Observed {
        recommendation: policy
            .fallback_replicas
            .clamp(policy.min_replicas, policy.max_replicas),
        rule: Rule::Fallback,
        rules: RuleValues::default(),
        capacity,
        capacity_source,
        active: history.active.unwrap_or(false),
        measured: None,
    }
}

/// The recommendation for a queue that was read: the capacity, each rule's value, activation, then
/// the largest rule (or `min_replicas` while inactive).
fn observe(s: &QueueStats, policy: &Policy, history: &History) -> Observed {
    let measured = saturated_capacity(s, history);
    let (capacity, capacity_source) = capacity_in_use(measured, policy, history);
    let rules = rule_values(s, policy, capacity);
    let active = is_active(s, policy, history, &rules);
    let (recommendation, rule) = if !active {
        (policy.min_replicas, Rule::Activation)
    } else {
        largest_rule(&rules, policy)
    };
    Observed {
        recommendation,
        rule,
        rules,
        capacity,
        capacity_source,
        active,
        measured,
    }
}

/// What one worker can do, measured from this observation, or `None` when the workers were not
/// saturated. Capacity is only visible while the workers are saturated: with messages waiting at
/// this poll and the previous one, and the same consumers, every consumer was busy in between, so
/// completions per consumer is what one worker can do. A queue that emptied meanwhile would
/// understate it (the consumers idled part of the time), so would consumers that joined during the
/// rate's window (counted, but not yet working all of it); with an empty queue the ack rate merely
/// echoes the arrival rate.
fn saturated_capacity(s: &QueueStats, history: &History) -> Option<f64> {
    let saturated = s.messages_ready > 0
        && history
            .last
            .is_some_and(|l| l.messages_ready > 0 && l.consumers == s.consumers);
    match (s.consumers, s.processing_rate()) {
        (c, Some(rate)) if c > 0 && saturated => Some(rate / c as f64),
        _ => None,
    }
}

/// The capacity the throughput and drain-time rules use, and where it came from: measured now,
/// else remembered from the last saturated measurement, else configured, else unknown.
fn capacity_in_use(
    measured: Option<f64>,
    policy: &Policy,
    history: &History,
) -> (Option<f64>, CapacitySource) {
    if let Some(m) = measured {
        (Some(m), CapacitySource::Measured)
    } else if let Some(m) = history.measured_capacity {
        (Some(m), CapacitySource::Remembered)
    } else if let Some(c) = policy.worker_capacity_per_second {
        (Some(c), CapacitySource::Configured)
    } else {
        (None, CapacitySource::Unknown)
    }
}

/// Each rule's replica count, before clamping (the module doc gives the formulas); the throughput
/// and drain-time rules need a capacity.
fn rule_values(s: &QueueStats, policy: &Policy, capacity: Option<f64>) -> RuleValues {
    let ready = s.messages_ready as f64;
    let publish = if s.publish_rate > RATE_EPSILON {
        s.publish_rate
    } else {
        0.0
    };
    RuleValues {
        backlog: Some(ceil_replicas(
            ready / policy.target_backlog_per_worker as f64,
        )),
        throughput: capacity.map(|c| ceil_replicas(publish / c)),
        drain_time: capacity
            .map(|c| ceil_replicas((ready / policy.target_drain.as_secs_f64() + publish) / c)),
    }
}

/// Activation with hysteresis. It switches on when the backlog crosses the threshold, or when
/// arrivals alone need more than one worker (and more than the minimum): waiting for a backlog then
/// would only build one. It switches off only when the queue is idle, so a flow the workers keep up
/// with (ready ≈ 0) does not bounce between the two. On the first observation a workload whose
/// consumers are already busy counts as active: the monitor restarting must not scale a busy
/// deployment down.
fn is_active(s: &QueueStats, policy: &Policy, history: &History, rules: &RuleValues) -> bool {
    let was_active = history.active.unwrap_or_else(|| {
        s.consumers > 0 && (s.messages_unacknowledged > 0 || s.processing_rate().is_some())
    });
    if was_active {
        !s.is_idle()
    } else {
        s.messages_ready > policy.activation_backlog
            || rules
                .throughput
                .is_some_and(|t| t > policy.min_replicas.max(1))
    }
}

/// The largest rule, clamped to `[min_replicas, max_replicas]` (the clamp then names the rule).
/// Ties go to the first in the order backlog, throughput, drain time, so "throughput" is reported
/// when the backlog is empty and drain time adds nothing to it.
fn largest_rule(rules: &RuleValues, policy: &Policy) -> (u32, Rule) {
    let (best, best_rule) = [
        (rules.backlog, Rule::Backlog),
        (rules.throughput, Rule::Throughput),
        (rules.drain_time, Rule::DrainTime),
    ]
    .into_iter()
    .filter_map(|(v, r)| v.map(|v| (v, r)))
    .fold(
        (0, Rule::Backlog),
        |acc, (v, r)| if v > acc.0 { (v, r) } else { acc },
    );
    if best < policy.min_replicas {
        (policy.min_replicas, Rule::MinReplicas)
    } else if best > policy.max_replicas {
        (policy.max_replicas, Rule::MaxReplicas)
    } else {
        (best, best_rule)
    }
}

/// Scale-down stabilisation: scale up at once, scale down only to the highest recommendation of
/// the window (never above `max_replicas`).
fn stabilise(
    recommendation: u32,
    rule: Rule,
    policy: &Policy,
    history: &History,
    now: Instant,
) -> (u32, Rule) {
    let held = history
        .highest_within(policy.scale_down_stabilization, now)
        .unwrap_or(0);
    if held > recommendation {
        (held.min(policy.max_replicas), Rule::Stabilization)
    } else {
        (recommendation, rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy {
            min_replicas: 1,
            max_replicas: 20,
            target_backlog_per_worker: 100,
            worker_capacity_per_second: Some(50.0),
            target_drain: Duration::from_secs(60),
            activation_backlog: 0,
            scale_down_stabilization: Duration::from_secs(0),
            fallback_replicas: 3,
        }
    }

    fn ready(n: u64) -> QueueStats {
        QueueStats {
            messages_ready: n,
            ..Default::default()
        }
    }

    fn once(stats: Option<&QueueStats>, p: &Policy) -> Decision {
        decide(stats, p, &History::new(), Instant::now())
    }

    /// Decide `stats` after a previous observation with `prev_ready` messages waiting.
    fn after(prev_ready: u64, stats: &QueueStats, p: &Policy) -> Decision {
        let mut h = History::new();
        let t0 = Instant::now();
        let prev = QueueStats {
            messages_ready: prev_ready,
            ..*stats
        };
        let d = decide(Some(&prev), p, &h, t0);
        h.record(&d, p, t0);
        decide(Some(stats), p, &h, t0 + Duration::from_secs(5))
    }

    #[test]
    fn ceil_replicas_edges() {
        assert_eq!(ceil_replicas(0.0), 0);
        assert_eq!(ceil_replicas(-3.0), 0);
        assert_eq!(ceil_replicas(f64::NAN), 0);
        assert_eq!(ceil_replicas(f64::INFINITY), 0);
        assert_eq!(ceil_replicas(0.01), 1);
        assert_eq!(ceil_replicas(2.0), 2);
        assert_eq!(ceil_replicas(2.000_000_000_01), 2);
        assert_eq!(ceil_replicas(2.01), 3);
        assert_eq!(ceil_replicas(1e20), u32::MAX);
    }

    #[test]
    fn backlog_rule_is_ceil_of_ready_over_target() {
        // 450 ready / 100 per worker = 4.5 -> 5; no arrivals, so drain: 450/60/50 = 0.15 -> 1.
        let d = once(Some(&ready(450)), &policy());
        assert_eq!(d.rules.backlog, Some(5));
        assert_eq!(d.rules.throughput, Some(0));
        assert_eq!(d.rules.drain_time, Some(1));
        assert_eq!((d.desired, d.decided_by), (5, Rule::Backlog));
        assert!(d.active && !d.fallback);
    }

    #[test]
    fn throughput_rule_with_configured_capacity() {
        // 230 msg/s / 50 per worker = 4.6 -> 5 workers; nothing waiting.
        let s = QueueStats {
            publish_rate: 230.0,
            consumers: 2,
            messages_unacknowledged: 10,
            ack_rate: 100.0,
            deliver_get_rate: 100.0,
            ..Default::default()
        };
        let d = once(Some(&s), &policy());
        assert_eq!(d.capacity_source, CapacitySource::Configured);
        assert_eq!(d.rules.throughput, Some(5));
        assert_eq!(d.rules.drain_time, Some(5));
        assert_eq!((d.desired, d.decided_by), (5, Rule::Throughput));
    }

    #[test]
    fn drain_rule_adds_backlog_clearing_to_arrivals() {
        // ready 6000 within 60 s = 100 msg/s, plus 100 msg/s arriving = 200 msg/s; capacity 50 -> 4.
        // backlog rule: 6000 / 2000 = 3.
        let mut p = policy();
        p.target_backlog_per_worker = 2000;
        let s = QueueStats {
            messages_ready: 6000,
            publish_rate: 100.0,
            ..Default::default()
        };
        let d = once(Some(&s), &p);
        assert_eq!(
            d.rules,
            RuleValues {
                backlog: Some(3),
                throughput: Some(2),
                drain_time: Some(4)
            }
        );
        assert_eq!((d.desired, d.decided_by), (4, Rule::DrainTime));
    }

    #[test]
    fn capacity_is_measured_only_while_saturated() {
        let p = policy();
        // 3 busy consumers acking 300 msg/s with 500 waiting: 100 msg/s per worker.
        let busy = QueueStats {
            messages_ready: 500,
            messages_unacknowledged: 30,
            consumers: 3,
            publish_rate: 450.0,
            ack_rate: 300.0,
            deliver_get_rate: 300.0,
        };
        let mut h = History::new();
        let t0 = Instant::now();
        // The first observation cannot tell whether the queue was backed up before it.
        let d = decide(Some(&busy), &p, &h, t0);
        assert_eq!(d.capacity_source, CapacitySource::Configured);
        h.record(&d, &p, t0);
        let now = t0 + Duration::from_secs(5);
        let d = decide(Some(&busy), &p, &h, now);
        assert_eq!(d.capacity_source, CapacitySource::Measured);
        assert_eq!(d.capacity_per_worker, Some(100.0));
        // throughput 450/100 -> 5; drain (500/60 + 450)/100 = 4.58 -> 5; backlog 5.
        assert_eq!(d.rules.throughput, Some(5));
        h.record(&d, &p, now);
        // Queue empty now: ack rate 120 over 3 consumers is the arrival rate, not the capacity.
        let keeping_up = QueueStats {
            messages_ready: 0,
            messages_unacknowledged: 3,
            consumers: 3,
            publish_rate: 120.0,
            ack_rate: 120.0,
            deliver_get_rate: 120.0,
        };
        let d = decide(Some(&keeping_up), &p, &h, now + Duration::from_secs(5));
        assert_eq!(d.capacity_source, CapacitySource::Remembered);
        assert_eq!(d.capacity_per_worker, Some(100.0));
        assert_eq!((d.desired, d.decided_by), (2, Rule::Throughput));
        // Without a remembered measurement, the configured capacity is used.
        let d = once(Some(&keeping_up), &p);
        assert_eq!(d.capacity_source, CapacitySource::Configured);
        assert_eq!(d.capacity_per_worker, Some(50.0));
        // The queue emptied since the previous poll (refilled now): the consumers idled part of
        // the time, so their ack rate understates them: not a measurement.
        let d = after(0, &busy, &p);
        assert_eq!(d.capacity_source, CapacitySource::Configured);
        assert_eq!(
            after(20, &busy, &p).capacity_source,
            CapacitySource::Measured
        );
        // Consumers joined since the previous poll: they did not work the whole window.
        let mut h = History::new();
        let fewer = QueueStats {
            consumers: 2,
            ..busy
        };
        let d = decide(Some(&fewer), &p, &h, t0);
        h.record(&d, &p, t0);
        let d = decide(Some(&busy), &p, &h, t0 + Duration::from_secs(5));
        assert_eq!(d.capacity_source, CapacitySource::Configured);
    }

    #[test]
    fn auto_ack_consumers_measure_from_deliveries_but_prefetch_fill_does_not_count() {
        let p = policy();
        let auto_ack = QueueStats {
            messages_ready: 100,
            consumers: 2,
            deliver_get_rate: 80.0,
            ..Default::default()
        };
        assert_eq!(after(100, &auto_ack, &p).capacity_per_worker, Some(40.0));
        let filling_prefetch = QueueStats {
            messages_unacknowledged: 500,
            ..auto_ack
        };
        let d = after(100, &filling_prefetch, &p);
        assert_eq!(d.capacity_source, CapacitySource::Configured);
    }

    #[test]
    fn unknown_capacity_leaves_only_the_backlog_rule() {
        let mut p = policy();
        p.worker_capacity_per_second = None;
        let s = QueueStats {
            messages_ready: 250,
            publish_rate: 1000.0,
            ..Default::default()
        };
        let d = once(Some(&s), &p);
        assert_eq!(d.capacity_source, CapacitySource::Unknown);
        assert_eq!(
            d.rules,
            RuleValues {
                backlog: Some(3),
                throughput: None,
                drain_time: None
            }
        );
        assert_eq!(d.desired, 3);
    }

    #[test]
    fn clamped_to_min_and_max() {
        let mut p = policy();
        p.min_replicas = 2;
        p.max_replicas = 6;
        let d = once(Some(&ready(50)), &p);
        assert_eq!((d.desired, d.decided_by), (2, Rule::MinReplicas));
        let d = once(Some(&ready(100_000)), &p);
        assert_eq!((d.desired, d.decided_by), (6, Rule::MaxReplicas));
        assert_eq!(d.rules.backlog, Some(1000));
    }

    #[test]
    fn activation_threshold_with_hysteresis() {
        let mut p = policy();
        p.min_replicas = 0;
        p.activation_backlog = 500;
        let mut h = History::new();
        let t0 = Instant::now();
        let mut step = |s: QueueStats, secs: u64| {
            let now = t0 + Duration::from_secs(secs);
            let d = decide(Some(&s), &p, &h, now);
            h.record(&d, &p, now);
            d
        };
        // 400 waiting, nobody consuming: below the threshold, stay at 0.
        let d = step(ready(400), 0);
        assert_eq!(
            (d.desired, d.decided_by, d.active),
            (0, Rule::Activation, false)
        );
        // Exactly the threshold still does not activate (KEDA: "greater than").
        let d = step(ready(500), 5);
        assert_eq!((d.desired, d.active), (0, false));
        // 501 crosses it: backlog rule 501/100 -> 6.
        let d = step(ready(501), 10);
        assert_eq!(
            (d.desired, d.decided_by, d.active),
            (6, Rule::Backlog, true)
        );
        // Draining below the threshold keeps the workload active: rules decide, not activation.
        let draining = QueueStats {
            messages_ready: 120,
            messages_unacknowledged: 20,
            consumers: 6,
            publish_rate: 10.0,
            ack_rate: 300.0,
            deliver_get_rate: 300.0,
        };
        let d = step(draining, 15);
        assert!(d.active);
        assert_eq!((d.desired, d.decided_by), (2, Rule::Backlog));
        // Idle queue: inactive again, back to min (0).
        let idle = QueueStats {
            consumers: 2,
            ..Default::default()
        };
        let d = step(idle, 20);
        assert_eq!(
            (d.desired, d.decided_by, d.active),
            (0, Rule::Activation, false)
        );
    }

    #[test]
    fn arrivals_needing_several_workers_activate_without_a_backlog() {
        let mut p = policy();
        p.min_replicas = 0;
        p.activation_backlog = 500;
        // 400 msg/s at 50 per worker: 8 workers, whatever the backlog says.
        let flow = QueueStats {
            publish_rate: 400.0,
            ..Default::default()
        };
        let d = once(Some(&flow), &p);
        assert_eq!(
            (d.desired, d.decided_by, d.active),
            (8, Rule::Throughput, true)
        );
        // A trickle one worker could handle waits for the backlog threshold (batching).
        let trickle = QueueStats {
            messages_ready: 100,
            publish_rate: 10.0,
            ..Default::default()
        };
        let d = once(Some(&trickle), &p);
        assert_eq!(
            (d.desired, d.decided_by, d.active),
            (0, Rule::Activation, false)
        );
    }

    #[test]
    fn activation_keeps_min_when_min_is_positive() {
        let mut p = policy();
        p.min_replicas = 2;
        p.activation_backlog = 1000;
        let d = once(Some(&ready(800)), &p);
        assert_eq!((d.desired, d.decided_by), (2, Rule::Activation));
        assert_eq!(d.rules.backlog, Some(8), "rules are still reported");
    }

    #[test]
    fn busy_consumers_at_monitor_start_count_as_active() {
        let mut p = policy();
        p.activation_backlog = 1000;
        let s = QueueStats {
            messages_ready: 0,
            messages_unacknowledged: 40,
            consumers: 4,
            publish_rate: 190.0,
            ack_rate: 190.0,
            deliver_get_rate: 190.0,
        };
        let d = once(Some(&s), &p);
        assert!(d.active);
        assert_eq!((d.desired, d.decided_by), (4, Rule::Throughput));
    }

    #[test]
    fn scale_down_is_stabilised_scale_up_is_immediate() {
        let mut p = policy();
        p.scale_down_stabilization = Duration::from_secs(30);
        let mut h = History::new();
        let t0 = Instant::now();
        let mut at = |n: u64, secs: u64| {
            let now = t0 + Duration::from_secs(secs);
            let d = decide(Some(&ready(n)), &p, &h, now);
            h.record(&d, &p, now);
            (d.desired, d.recommendation, d.decided_by)
        };
        assert_eq!(at(200, 0), (2, 2, Rule::Backlog));
        assert_eq!(at(900, 5), (9, 9, Rule::Backlog), "up at once");
        assert_eq!(at(100, 10), (9, 1, Rule::Stabilization), "brief dip held");
        assert_eq!(at(800, 15), (9, 8, Rule::Stabilization));
        assert_eq!(at(100, 30), (9, 1, Rule::Stabilization));
        assert_eq!(at(100, 35), (9, 1, Rule::Stabilization), "9 was 30 s ago");
        assert_eq!(
            at(100, 36),
            (8, 1, Rule::Stabilization),
            "9 left the window"
        );
        assert_eq!(at(100, 46), (1, 1, Rule::Backlog), "8 left the window");
    }

    #[test]
    fn fallback_is_flagged_never_zero() {
        let mut p = policy();
        p.min_replicas = 0;
        let d = once(None, &p);
        assert_eq!((d.desired, d.decided_by), (3, Rule::Fallback));
        assert!(d.fallback);
        assert_eq!(d.rules, RuleValues::default());
    }

    #[test]
    fn fallback_does_not_cut_a_recent_higher_scale() {
        let mut p = policy();
        p.scale_down_stabilization = Duration::from_secs(60);
        let mut h = History::new();
        let t0 = Instant::now();
        let d = decide(Some(&ready(1500)), &p, &h, t0);
        h.record(&d, &p, t0);
        assert_eq!(d.desired, 15);
        let t1 = t0 + Duration::from_secs(5);
        let d = decide(None, &p, &h, t1);
        h.record(&d, &p, t1);
        assert!(d.fallback);
        assert_eq!(
            (d.desired, d.recommendation, d.decided_by),
            (15, 3, Rule::Stabilization)
        );
        let t2 = t0 + Duration::from_secs(61);
        let d = decide(None, &p, &h, t2);
        assert_eq!((d.desired, d.decided_by), (3, Rule::Fallback));
    }

    #[test]
    fn same_inputs_same_decision() {
        let p = policy();
        let h = History::new();
        let now = Instant::now();
        let s = ready(777);
        assert_eq!(decide(Some(&s), &p, &h, now), decide(Some(&s), &p, &h, now));
    }
}
