//! `event-generator`: synthetic Spark job events for the Pool Selector.
//!
//! Each simulated pool has a traffic share and a hidden spot termination probability; events are drawn
//! from them and written through a [`sink::Sink`]. The hidden parameters can be written out (`--truth`)
//! so a ranking can be checked against what really drove the data.
//!
//! * [`config`]: flags, environment and the checked [`config::Plan`].
//! * [`pools`]: the pool catalogue, traffic weights and termination probabilities.
//! * [`generate`]: seeded events and backfill finish times.
//! * [`sink`]: destinations (folder / S3 objects, RabbitMQ).

pub mod config;
pub mod generate;
pub mod pools;
pub mod sink;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeZone, Utc};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

pub use config::{Args, Mode, Plan};
use generate::{Backfill, Generator};
use pools::draw_pools;
use sink::Sink;

/// Events per batch handed to the sink.
const BATCH: usize = 8192;
/// How often a stream wakes up to catch up with its rate.
const STREAM_TICK: Duration = Duration::from_millis(10);

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
    let pools = draw_pools(&mut pool_rng, &plan.pools, plan.skew)?;
    let pool_count = pools.len();
    let generator = Generator::new(event_rng, pools, plan.other_failure_rate);
    let mut sink = sink::open(&plan.sink, &plan.settings).await?;
    tracing::info!(sink = %plan.sink, seed = plan.seed, events = ?plan.events, mode = ?plan.mode, pools = pool_count, "generating");

    let (generator, stopped) = match plan.mode {
        Mode::Backfill { start, end } => {
            let total = plan.events.unwrap_or(0);
            backfill(
                generator,
                Backfill::new(start, end, total),
                &mut *sink,
                &stop,
            )
            .await?
        }
        Mode::Stream { rate, .. } => {
            stream(generator, rate, plan.events, &mut *sink, &stop).await?
        }
    };
    let report = sink.finish().await?;

    if let Some(path) = &plan.truth {
        let truth = generator.truth(plan.seed, plan.skew);
        let mut json = serde_json::to_vec_pretty(&truth)?;
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
        },
        seed: plan.seed,
        pools: pool_count,
        stopped,
    })
}

/// Draw events on a blocking thread and serialise/write them on this one: the two halves share the
/// work on two cores.
async fn backfill(
    mut generator: Generator,
    mut clock: Backfill,
    sink: &mut dyn Sink,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<(Generator, bool)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let stop_producer = stop.clone();
    let producer = tokio::task::spawn_blocking(move || {
        let mut stopped = false;
        while clock.remaining() > 0 {
            if stop_producer.load(Ordering::Relaxed) {
                stopped = true;
                break;
            }
            let mut batch = Vec::with_capacity(BATCH);
            while batch.len() < BATCH {
                let Some(t) = clock.next_time(generator.rng()) else {
                    break;
                };
                batch.push(generator.event_at(t));
            }
            if tx.blocking_send(batch).is_err() {
                // The writer gave up (an error is on its way back).
                break;
            }
        }
        (generator, stopped)
    });
    let mut failure = None;
    while let Some(batch) = rx.recv().await {
        if let Err(e) = sink.send(batch).await {
            failure = Some(e);
            break;
        }
    }
    drop(rx);
    let (generator, stopped) = producer.await.context("the generator thread panicked")?;
    match failure {
        Some(e) => Err(e),
        None => Ok((generator, stopped)),
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
    let started = Instant::now();
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
