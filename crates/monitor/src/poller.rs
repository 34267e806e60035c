//! The poll loop: every `POLL_INTERVAL`, read each distinct queue once, decide every workload, and
//! publish the result to the shared reports (for `/desired-worker-scale`) and the metrics.
//!
//! The reports live behind a `std::sync::RwLock` held only to copy values in or out, never across an
//! `.await`, so a slow broker can delay the next decision but never an HTTP answer.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::SecondsFormat;
use serde::Serialize;

use crate::decision::{
    CapacitySource, Decision, History, Policy, QueueStats, Rule, RuleValues, decide,
};
use crate::metrics::MonitorMetrics;
use crate::settings::{MonitorConfig, WorkloadConfig};
use crate::source::{ManagementApi, SourceError};
use pool_core::clock::Clock;

/// The settings a decision used, echoed so a reader of the JSON can redo the arithmetic.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub target_backlog_per_worker: u64,
    pub worker_capacity_per_second: Option<f64>,
    pub target_drain_seconds: f64,
    pub activation_backlog: u64,
    pub scale_down_stabilization_seconds: f64,
    pub fallback_replicas: u32,
    pub poll_interval_seconds: f64,
}

impl PolicyView {
    fn new(p: &Policy, poll_interval: Duration) -> Self {
        Self {
            min_replicas: p.min_replicas,
            max_replicas: p.max_replicas,
            target_backlog_per_worker: p.target_backlog_per_worker,
            worker_capacity_per_second: p.worker_capacity_per_second,
            target_drain_seconds: p.target_drain.as_secs_f64(),
            activation_backlog: p.activation_backlog,
            scale_down_stabilization_seconds: p.scale_down_stabilization.as_secs_f64(),
            fallback_replicas: p.fallback_replicas,
            poll_interval_seconds: poll_interval.as_secs_f64(),
        }
    }
}

/// The answer of `GET /desired-worker-scale`: the seed's single number plus how it was reached.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScaleReport {
    /// Replica count the workload should run (the seed's field name).
    #[serde(rename = "desired-worker-scale")]
    pub desired_worker_scale: u32,
    pub workload: String,
    pub vhost: String,
    pub queue: String,
    /// What determined the number.
    pub decided_by: Rule,
    /// This poll's recommendation before scale-down stabilisation.
    pub recommendation: u32,
    /// True while the queue cannot be read and the fallback replica count is in force.
    pub fallback: bool,
    /// Whether the last read of the queue succeeded.
    pub source_up: bool,
    /// Whether the backlog has crossed the activation threshold (and the queue has not idled since).
    pub active: bool,
    /// Each rule's replica count before clamping.
    pub rules: RuleValues,
    /// Messages per second one worker handles, as used by the throughput and drain-time rules.
    pub capacity_per_worker: Option<f64>,
    pub capacity_source: CapacitySource,
    /// The queue reading the decision used; `null` when the source is down.
    pub inputs: Option<QueueStats>,
    pub policy: PolicyView,
    /// Why the source could not be read (credentials never included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the queue was read (RFC 3339, UTC).
    pub observed_at: String,
}

struct WorkloadSlot {
    config: WorkloadConfig,
    history: History,
    report: Option<ScaleReport>,
}

/// The workloads, their histories and latest reports.
pub struct Poller {
    api: ManagementApi,
    poll_interval: Duration,
    metrics: MonitorMetrics,
    /// The time decisions are taken at (the real clock, unless a test supplied its own).
    clock: Arc<dyn Clock>,
    slots: RwLock<Vec<WorkloadSlot>>,
    /// Outcome of the previous read per (vhost, queue), to log transitions instead of every poll.
    last_ok: RwLock<HashMap<(String, String), bool>>,
}

/// Why a report could not be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No poll has completed yet.
    NotReady,
    /// No workload of that name; carries the configured names.
    UnknownWorkload(Vec<String>),
}

impl Poller {
    pub fn new(config: &MonitorConfig, metrics: MonitorMetrics, clock: Arc<dyn Clock>) -> Self {
        Self {
            api: ManagementApi::new(
                config.management_url.clone(),
                config.source_timeout,
                config.management_ca.as_deref(),
            ),
            poll_interval: config.poll_interval,
            metrics,
            clock,
            slots: RwLock::new(
                config
                    .workloads
                    .iter()
                    .map(|w| WorkloadSlot {
                        config: w.clone(),
                        history: History::new(),
                        report: None,
                    })
                    .collect(),
            ),
            last_ok: RwLock::new(HashMap::new()),
        }
    }

    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }

    /// Poll forever, one round per interval (a slow round delays the next, never overlaps it).
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.poll_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.poll_once().await;
        }
    }

    /// Read every distinct queue once and decide every workload.
    pub async fn poll_once(&self) {
        let queues: Vec<(String, String)> = {
            let slots = self.slots.read().expect("poisoned");
            let mut set: Vec<(String, String)> = slots
                .iter()
                .map(|s| (s.config.vhost.clone(), s.config.queue.clone()))
                .collect();
            set.sort();
            set.dedup();
            set
        };
        let reads = futures::future::join_all(queues.iter().map(|(vhost, queue)| async move {
            let started = Instant::now();
            let r = self.api.queue_stats(vhost, queue).await;
            ((vhost.clone(), queue.clone()), r, started.elapsed())
        }))
        .await;
        // Wall time first: a report showing a time at or after a clock change then used a `now` at
        // or after it too, which is what lets a test tell which reading a decision was taken at.
        let observed_at = self
            .clock
            .utc()
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let now = self.clock.instant();
        let mut results: BTreeMap<(String, String), Result<QueueStats, SourceError>> =
            BTreeMap::new();
        for (key, result, elapsed) in reads {
            self.metrics.observe_source(
                &key.0,
                &key.1,
                result.as_ref().ok(),
                elapsed.as_secs_f64(),
            );
            self.log_source(&key, &result);
            results.insert(key, result);
        }
        let mut slots = self.slots.write().expect("poisoned");
        for slot in slots.iter_mut() {
            let key = (slot.config.vhost.clone(), slot.config.queue.clone());
            let Some(result) = results.get(&key) else {
                continue;
            };
            let stats = result.as_ref().ok();
            let d = decide(stats, &slot.config.policy, &slot.history, now);
            slot.history.record(&d, &slot.config.policy, now);
            self.metrics.observe_decision(
                &slot.config.name,
                &slot.config.queue,
                &slot.config.policy,
                &d,
            );
            let previous = slot.report.as_ref().map(|r| r.desired_worker_scale);
            if previous != Some(d.desired) {
                tracing::info!(
                    workload = %slot.config.name,
                    queue = %slot.config.queue,
                    from = ?previous,
                    to = d.desired,
                    decided_by = d.decided_by.as_str(),
                    ready = stats.map(|s| s.messages_ready),
                    publish_rate = stats.map(|s| s.publish_rate),
                    "desired scale changed"
                );
            }
            slot.report = Some(self.report_for(&slot.config, &d, result, &observed_at));
        }
    }

    fn report_for(
        &self,
        w: &WorkloadConfig,
        d: &Decision,
        result: &Result<QueueStats, SourceError>,
        observed_at: &str,
    ) -> ScaleReport {
        ScaleReport {
            desired_worker_scale: d.desired,
            workload: w.name.clone(),
            vhost: w.vhost.clone(),
            queue: w.queue.clone(),
            decided_by: d.decided_by,
            recommendation: d.recommendation,
            fallback: d.fallback,
            source_up: result.is_ok(),
            active: d.active,
            rules: d.rules,
            capacity_per_worker: d.capacity_per_worker,
            capacity_source: d.capacity_source,
            inputs: result.as_ref().ok().copied(),
            policy: PolicyView::new(&w.policy, self.poll_interval),
            error: result.as_ref().err().map(|e| e.to_string()),
            observed_at: observed_at.to_owned(),
        }
    }

    fn log_source(&self, key: &(String, String), result: &Result<QueueStats, SourceError>) {
        let ok = result.is_ok();
        let before = self
            .last_ok
            .write()
            .expect("poisoned")
            .insert(key.clone(), ok);
        match (before, result) {
            (Some(true) | None, Err(e)) => tracing::warn!(
                vhost = %key.0, queue = %key.1, error = %e,
                "cannot read the queue: publishing the fallback replica count"
            ),
            (Some(false), Err(e)) => {
                tracing::debug!(vhost = %key.0, queue = %key.1, error = %e, "queue still unreadable")
            }
            (Some(false), Ok(_)) => {
                tracing::info!(vhost = %key.0, queue = %key.1, "queue readable again")
            }
            (_, Ok(_)) => {}
        }
    }

    /// True once every workload has a report (the first round finished, read or fallback).
    pub fn is_ready(&self) -> bool {
        self.slots
            .read()
            .expect("poisoned")
            .iter()
            .all(|s| s.report.is_some())
    }

    /// The report of `workload`, or of the first configured workload when `None`.
    pub fn report(&self, workload: Option<&str>) -> Result<ScaleReport, LookupError> {
        let slots = self.slots.read().expect("poisoned");
        let slot = match workload {
            None => slots.first(),
            Some(name) => slots.iter().find(|s| s.config.name == name),
        };
        match slot {
            Some(s) => s.report.clone().ok_or(LookupError::NotReady),
            None => Err(LookupError::UnknownWorkload(
                slots.iter().map(|s| s.config.name.clone()).collect(),
            )),
        }
    }

    /// Every workload's report, in configuration order; `NotReady` before the first round.
    pub fn reports(&self) -> Result<Vec<ScaleReport>, LookupError> {
        self.slots
            .read()
            .expect("poisoned")
            .iter()
            .map(|s| s.report.clone().ok_or(LookupError::NotReady))
            .collect()
    }

    /// The configured workload names.
    pub fn workload_names(&self) -> Vec<String> {
        self.slots
            .read()
            .expect("poisoned")
            .iter()
            .map(|s| s.config.name.clone())
            .collect()
    }

    /// The management API location, redacted.
    pub fn source(&self) -> String {
        self.api.url().redacted().to_owned()
    }
}
