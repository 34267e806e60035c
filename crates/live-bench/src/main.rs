//! `live-bench`: in-process `/get-pool` on the live view: how long the view takes to load a history,
//! the memory it holds, and the latency of a ranking with no HTTP in between (the handler's own code
//! path, `routes::choose`), for distinct windows (a model fitted per request) and for one window (the
//! fit reused). Prints markdown tables; `load-test/bench-live.sh` runs it over a year of 432 pools.
//!
//! ```text
//! live-bench <EVENTS_URL> [QUERIES]
//! ```
//!
//! Targets (from the issue that built the view): p99 ≤ 2 ms on 432 pools × 365 days, view memory
//! ≤ 150 MB.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pool_history::Query;
use pool_history::live::{LiveView, NoViewObserver, ViewStatus};
use pool_selector::Settings;
use pool_selector::routes::{Ranking, RankingParams, choose};
use pool_selector::state::AppState;

const TARGET_P99_MS: f64 = 2.0;
const TARGET_MEMORY_MB: f64 = 150.0;

/// Resident memory of this process, MB (`VmRSS`, or `VmHWM` for the peak).
fn memory_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Latencies {
    label: String,
    ms: Vec<f64>,
    /// Answers other than a pick or "no data for these filters in this window" (404).
    errors: usize,
}

impl Latencies {
    fn row(&mut self) -> String {
        self.ms.sort_by(f64::total_cmp);
        let p99 = percentile(&self.ms, 99.0);
        format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            self.label,
            self.ms.len(),
            percentile(&self.ms, 50.0),
            percentile(&self.ms, 95.0),
            p99,
            self.ms.last().copied().unwrap_or(f64::NAN),
            self.errors,
            if p99 <= TARGET_P99_MS {
                "met"
            } else {
                "NOT met"
            }
        )
    }
}

fn run(state: &AppState, label: &str, queries: &[String]) -> Latencies {
    let mut out = Latencies {
        label: label.to_owned(),
        ms: Vec::with_capacity(queries.len()),
        errors: 0,
    };
    for q in queries {
        let params: RankingParams =
            serde_urlencoded::from_str(q).expect("the bench's queries are well formed");
        let started = Instant::now();
        let answer = Ranking::parse(&params, state).and_then(|r| choose(state, &r));
        out.ms.push(started.elapsed().as_secs_f64() * 1e3);
        if answer.is_err_and(|e| e.status.as_u16() != 404) {
            out.errors += 1;
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("BENCH_LIVE_EVENTS").ok())
        .ok_or_else(|| anyhow::anyhow!("usage: live-bench <EVENTS_URL> [QUERIES]"))?;
    let n: usize = args.next().map_or(Ok(200), |s| s.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let settings = Settings::for_events_url(&url);
    let loaded = load_view(&runtime, &settings)?;
    let registry = prometheus::Registry::new();
    let state = AppState::new(&settings, Arc::clone(&loaded.view), &registry);
    let (types, days) = instance_types_and_days(&loaded.view)?;
    let queries = Queries::draw(&types, n);

    // One warm-up pass, then the measured ones.
    let one_window = &queries.one_window;
    run(&state, "warm-up", &one_window[..one_window.len().min(10)]);
    let mut rows = vec![
        run(
            &state,
            "distinct windows, 1 h–365 d (model fitted per request)",
            &queries.distinct,
        ),
        run(&state, "one window, 30 d (fit reused)", one_window),
        run(&state, "whole history, k=3 (fit reused)", &queries.whole),
    ];
    report(&loaded, days, types.len(), &mut rows);
    Ok(())
}

/// The live view with the whole history loaded, how long that took, and what it cost.
struct Loaded {
    view: Arc<LiveView>,
    load: Duration,
    status: ViewStatus,
    /// Growth of the process's resident memory over the load, MB.
    rss_growth_mb: f64,
}

/// Open the storage of `settings` and load the whole history into a live view (one refresh).
fn load_view(runtime: &tokio::runtime::Runtime, settings: &Settings) -> anyhow::Result<Loaded> {
    let storage = settings.storage.open()?;
    let before_mb = memory_mb("VmRSS:");
    let view = Arc::new(LiveView::new(
        storage,
        settings.view_options(),
        Arc::new(NoViewObserver),
    ));
    let started = Instant::now();
    runtime.block_on(view.refresh(Utc::now()))?;
    let load = started.elapsed();
    let status = view.status();
    let after_mb = memory_mb("VmRSS:");
    Ok(Loaded {
        view,
        load,
        status,
        rss_growth_mb: after_mb - before_mb,
    })
}

/// The instance types present (sorted), and the longest span of one pool's events, days.
fn instance_types_and_days(view: &LiveView) -> anyhow::Result<(Vec<String>, f64)> {
    let (_, pools) = view
        .tally(&Query::everything(Utc::now()))
        .ok_or_else(|| anyhow::anyhow!("the view did not load"))?;
    let mut types: Vec<String> = pools
        .iter()
        .map(|(p, _)| p.instance_type().to_string())
        .collect();
    types.sort();
    types.dedup();
    let days = pools
        .iter()
        .map(|(_, t)| t.last_event_micros - t.first_event_micros)
        .max()
        .unwrap_or(0) as f64
        / 86_400e6;
    Ok((types, days))
}

/// The measured requests: `n` sets of 2–3 instance types (seeded), each asked with its own window,
/// with one window for all, and over the whole history.
struct Queries {
    distinct: Vec<String>,
    one_window: Vec<String>,
    whole: Vec<String>,
}

impl Queries {
    fn draw(types: &[String], n: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut sets = vec![];
        for _ in 0..n {
            let k = rng.random_range(2..=3usize).min(types.len());
            let chosen: Vec<&String> = types.choose_multiple(&mut rng, k).collect();
            sets.push(
                chosen
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        let distinct: Vec<String> = sets
            .iter()
            .map(|s| {
                // Log-uniform between 1 hour and 365 days: each window a different fit.
                let hours = (rng.random_range(0.0..(8760f64).ln())).exp().max(1.0);
                format!("instance_types={s}&window={}", (hours * 3600.0) as u64)
            })
            .collect();
        let one_window: Vec<String> = sets
            .iter()
            .map(|s| format!("instance_types={s}&window=30d"))
            .collect();
        let whole: Vec<String> = sets
            .iter()
            .map(|s| format!("instance_types={s}&window=0&k=3"))
            .collect();
        Self {
            distinct,
            one_window,
            whole,
        }
    }
}

/// The Markdown report: the load (time, memory against its target) and each run's latencies.
fn report(loaded: &Loaded, days: f64, types: usize, rows: &mut [Latencies]) {
    let status = &loaded.status;
    let memory = status.memory_bytes as f64 / (1 << 20) as f64;
    println!(
        "In-process `/get-pool` on the live view: {} pools, {:.0} days, {} events ({} rollup hours, {} raw hours); {} instance types",
        status.pools,
        days,
        status.totals.events,
        status.totals.rollup_hours,
        status.totals.raw_hours,
        types
    );
    println!();
    println!(
        "| load | time | view memory (accounted) | process RSS growth | cells (minute / hour / day) |"
    );
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| the whole history into the view | {:.2} s | {:.1} MB ({}) | {:.1} MB | {} / {} / {} |",
        loaded.load.as_secs_f64(),
        memory,
        if memory <= TARGET_MEMORY_MB {
            "≤ 150 MB: met"
        } else {
            "≤ 150 MB: NOT met"
        },
        loaded.rss_growth_mb,
        status.cells[0],
        status.cells[1],
        status.cells[2]
    );
    println!();
    println!(
        "| requests | n | p50 ms | p95 ms | p99 ms | max ms | errors | p99 ≤ {TARGET_P99_MS} ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    for r in rows {
        println!("{}", r.row());
    }
    println!();
    println!(
        "Peak RSS of the bench process: {:.0} MB.",
        memory_mb("VmHWM:")
    );
}
