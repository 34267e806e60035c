//! `event-generator`: synthetic Spark job events for the Pool Selector.
//!
//! Each simulated pool has a traffic share and a hidden spot termination probability; events are drawn
//! from them and written through a [`sink::Sink`]. The hidden parameters can be written out (`--truth`)
//! so a ranking can be checked against what really drove the data.
//!
//! With `--scenario NAME` a backfill instead simulates a [`pool_scenario::World`] whose pools appear, thin out
//! and change their termination probability over time (regime changes, new pools, zone, region and
//! family outages, spikes, drift, daily cycles), its base rates structured by `--rate-model` (the
//! family × zone structure by default, or worlds without it); the truth file then holds each pool's
//! rate over time.
//!
//! * [`settings`]: flags, environment and the checked [`settings::Plan`].
//! * [`pools`]: the pool catalogue, traffic weights and termination probabilities.
//! * [`scenario`]: seeded worlds with time-varying truth, and hourly count sampling (pure, no I/O; also
//!   used by benchmarks directly).
//! * [`generate`]: seeded events, backfill finish times and scenario backfills.
//! * [`sink`]: destinations (folder / S3 objects, a single appended object, RabbitMQ).
//!
//! `--trickle` is seed 000's generator: one event stamped now, then a random pause of up to
//! `--trickle-max-gap` (2 s), for ever; into a single object (`…/events.json`) each event is appended.

pub mod generate;
pub mod settings;
pub mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeZone, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use generate::{Backfill, Generator, Producer, ScenarioBackfill, world_pools};
use pool_scenario::pools::draw_pools;
use pool_scenario::{ScenarioKind, world_with};
pub use settings::{Args, Mode, Plan};
use sink::Sink;

/// Events per batch handed to the sink.
const BATCH: usize = 8192;
/// How often a stream wakes up to catch up with its rate.
const STREAM_TICK: Duration = Duration::from_millis(10);
/// How often a trickle's pause looks at the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// The one-line JSON summary printed at the end of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub events: u64,
    pub objects: u64,
    pub bytes: u64,
    pub elapsed_s: f64,
    pub events_per_s: f64,
    pub sink: String,
    pub mode: &'static str,
    /// The `--scenario` simulated, if any (omitted otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenario: Option<&'static str>,
    pub seed: u64,
    pub pools: usize,
    /// True when a signal ended the run before `--events` were written.
    pub stopped: bool,
}

/// Seeded random streams: one for the pools, one for the events, so the pools (and the truth) do not
/// depend on how many events are drawn.
fn rngs(seed: u64) -> (ChaCha8Rng, ChaCha8Rng) {
    let pools = ChaCha8Rng::seed_from_u64(seed);
    let mut events = ChaCha8Rng::seed_from_u64(seed);
    events.set_stream(1);
    (pools, events)
}

/// Run a checked plan. Setting `stop` ends the run early: what was generated is still written.
pub async fn run(plan: Plan, stop: Arc<AtomicBool>) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (mut pool_rng, event_rng) = rngs(plan.seed);
    let scenario = match (plan.scenario, plan.mode) {
        (Some(kind), Mode::Backfill { start, end }) => {
            let hours = u32::try_from((end - start).num_hours())
                .context("a scenario's --hours fits in 32 bits")?;
            Some((
                kind,
                world_with(kind, plan.rate_model, plan.seed, start, hours),
            ))
        }
        (Some(_), Mode::Stream { .. } | Mode::Trickle { .. }) => {
            anyhow::bail!("a scenario is a backfill, not a stream")
        }
        (None, _) => None,
    };
    let pools = match &scenario {
        Some((_, world)) => world_pools(world),
        None => draw_pools(&mut pool_rng, &plan.pools, plan.skew)?,
    };
    let pool_count = pools.len();
    let generator = Generator::new(event_rng, pools, plan.other_failure_rate);
    let mut sink = sink::open(&plan.sink, &plan.settings).await?;
    tracing::info!(sink = %plan.sink, seed = plan.seed, events = ?plan.events, mode = ?plan.mode,
        scenario = plan.scenario.map(ScenarioKind::as_str), pools = pool_count, "generating");

    // The truth file's bytes, if one is wanted.
    let want = plan.truth.is_some();
    let (truth, stopped) = match (plan.mode, scenario) {
        (Mode::Backfill { .. }, Some((kind, world))) => {
            let (_, producer, stopped) =
                backfill(generator, ScenarioBackfill::new(world), &mut *sink, &stop).await?;
            let truth = producer.truth(kind, plan.rate_model, plan.seed, plan.other_failure_rate);
            (want.then(|| serde_json::to_vec_pretty(&truth)), stopped)
        }
        (Mode::Backfill { start, end }, None) => {
            let total = plan.events.unwrap_or(0);
            let clock = Backfill::new(start, end, total);
            let (generator, _, stopped) = backfill(generator, clock, &mut *sink, &stop).await?;
            let truth = generator.truth(plan.seed, plan.skew);
            (want.then(|| serde_json::to_vec_pretty(&truth)), stopped)
        }
        (Mode::Stream { rate, .. }, _) => {
            let (generator, stopped) =
                stream(generator, rate, plan.events, &mut *sink, &stop).await?;
            let truth = generator.truth(plan.seed, plan.skew);
            (want.then(|| serde_json::to_vec_pretty(&truth)), stopped)
        }
        (Mode::Trickle { max_gap }, _) => {
            let (generator, stopped) =
                trickle(generator, max_gap, plan.events, &mut *sink, &stop).await?;
            let truth = generator.truth(plan.seed, plan.skew);
            (want.then(|| serde_json::to_vec_pretty(&truth)), stopped)
        }
    };
    let report = sink.finish().await?;

    if let (Some(path), Some(json)) = (&plan.truth, truth) {
        let mut json = json?;
        json.push(b'\n');
        std::fs::write(path, json)
            .with_context(|| format!("writing the truth file {}", path.display()))?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Summary {
        events: report.events,
        objects: report.objects,
        bytes: report.bytes,
        elapsed_s: (elapsed * 1000.0).round() / 1000.0,
        events_per_s: (report.events as f64 / elapsed.max(1e-9)).round(),
        sink: plan.sink.to_string(),
        mode: match plan.mode {
            Mode::Backfill { .. } => "backfill",
            Mode::Stream { .. } => "stream",
            Mode::Trickle { .. } => "trickle",
        },
        scenario: plan.scenario.map(ScenarioKind::as_str),
        seed: plan.seed,
        pools: pool_count,
        stopped,
    })
}

/// Draw events on a blocking thread and serialise/write them on this one: the two halves share the
/// work on two cores.
async fn backfill<P: Producer + 'static>(
    mut generator: Generator,
    mut producer: P,
    sink: &mut dyn Sink,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<(Generator, P, bool)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let stop_producer = stop.clone();
    let drawer = tokio::task::spawn_blocking(move || {
        let mut stopped = false;
        while !producer.is_done() {
            if stop_producer.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
            let mut batch = Vec::with_capacity(BATCH);
            producer.fill(&mut generator, &mut batch, BATCH);
            if !batch.is_empty() && tx.blocking_send(batch).is_err() {
                // The writer gave up (an error is on its way back).
                break;
            }
        }
        (generator, producer, stopped)
    });
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = sink.send(batch).await {
            failure = Some(e);
            break;
        }
    }
    drop(rx);
    let (generator, producer, stopped) = drawer.await.context("the generator thread panicked")?;
    match failure {
        Some(e) => Err(e),
        None => Ok((generator, producer, stopped)),
    }
}

/// Real-time stream: every tick, send as many events as the rate allows since the start (so a late
/// tick is caught up and the long-run rate holds), stamped with the current time.
async fn stream(
    mut generator: Generator,
    rate: f64,
    limit: Option<u64>,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> anyhow::Result<(Generator, bool)> {
    // Tokio's clock, the one the ticker runs on: a test with paused time drives the stream exactly.
    let started = tokio::time::Instant::now();
    let mut ticker = tokio::time::interval(STREAM_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0u64;
    loop {
        ticker.tick().await;
        if stop.load(Ordering::Relaxed) {
            return Ok((generator, true));
        }
        let due = (rate * started.elapsed().as_secs_f64()) as u64;
        let mut n = due.saturating_sub(sent).min(BATCH as u64 * 8);
        if let Some(limit) = limit {
            n = n.min(limit - sent);
        }
        if n > 0 {
            let now = Utc::now().timestamp_millis();
            let now = Utc
                .timestamp_millis_opt(now)
                .single()
                .expect("now is in range");
            let batch = (0..n).map(|_| generator.event_at(now)).collect();
            sink.send(batch).await?;
            sent += n;
        }
        if limit.is_some_and(|l| sent >= l) {
            return Ok((generator, false));
        }
    }
}

/// The current time in whole milliseconds (the event format's precision).
fn now_millis() -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(Utc::now().timestamp_millis())
        .single()
        .expect("now is in range")
}

/// Seed 000's trickle: one event stamped now, then a pause drawn uniformly from `[0, max_gap)` (on the
/// generator's seeded stream), until `limit` events or `stop`. Each event is sent on its own, so the
/// sink writes it at once (an appended line, a message) or within its flush interval (objects).
async fn trickle(
    mut generator: Generator,
    max_gap: Duration,
    limit: Option<u64>,
    sink: &mut dyn Sink,
    stop: &AtomicBool,
) -> anyhow::Result<(Generator, bool)> {
    use rand::Rng;
    let mut sent = 0u64;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok((generator, true));
        }
        let event = generator.event_at(now_millis());
        sink.send(vec![event]).await?;
        sent += 1;
        if limit.is_some_and(|l| sent >= l) {
            return Ok((generator, false));
        }
        // Tokio's clock, checking `stop` every tick: a test with paused time drives the pauses exactly.
        let pause = max_gap.mul_f64(generator.rng().random::<f64>());
        let until = tokio::time::Instant::now() + pause;
        while tokio::time::Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok((generator, true));
            }
            tokio::time::sleep_until(until.min(tokio::time::Instant::now() + STOP_CHECK)).await;
        }
    }
}
