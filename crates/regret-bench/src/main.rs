//! `regret-bench`: every ranking strategy against generated histories whose truth is known.
//!
//! For each scenario and seed, the event generator's model ([`event_generator::scenario`]) draws a
//! world and its hourly counts; at the end of the history each strategy picks a pool for many random
//! instance-type sets, and its regret is the true current termination probability of its pick minus the
//! best candidate's. Prints a markdown table (mean regret in percentage points) and checks the targets.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::bail;
use chrono::{TimeZone, Utc};
use clap::Parser;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use event_generator::scenario::{ScenarioKind, World, sample_counts, world};
use pool_ranking::backtest::{Series, evidence_at};
use pool_ranking::rank::probability_lowest;
use pool_ranking::{Evidence, Hour, Model, ModelConfig, Params, Strategy, fit, rank};

/// Ranking strategies against generated histories with a known truth.
#[derive(Parser, Debug)]
#[command(name = "regret-bench", version)]
struct Args {
    /// Seeds per scenario.
    #[arg(long, env = "REGRET_SEEDS", default_value_t = 6)]
    seeds: u64,
    /// Random instance-type sets ranked per world.
    #[arg(long, env = "REGRET_SETS", default_value_t = 300)]
    sets: usize,
    /// Hours of history per world.
    #[arg(long, env = "REGRET_HOURS", default_value_t = 336)]
    hours: u32,
    /// Thompson draws per set (its regret is the mean over draws).
    #[arg(long, env = "REGRET_DRAWS", default_value_t = 10)]
    draws: usize,
    /// Requests in the traffic-spread check.
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// Exit with status 1 when a target is missed.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    check: bool,
}

/// One strategy as the bench runs it.
struct Variant {
    name: &'static str,
    strategy: Strategy,
    risk: Option<f64>,
    half_life_hours: Option<f64>,
    adapt: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "naive",
        strategy: Strategy::Naive,
        risk: None,
        half_life_hours: None,
        adapt: true,
    },
    Variant {
        name: "wilson",
        strategy: Strategy::Wilson,
        risk: None,
        half_life_hours: None,
        adapt: true,
    },
    Variant {
        name: "wilson, half_life=24h",
        strategy: Strategy::Wilson,
        risk: None,
        half_life_hours: Some(24.0),
        adapt: true,
    },
    Variant {
        name: "bayes",
        strategy: Strategy::Bayes,
        risk: None,
        half_life_hours: None,
        adapt: true,
    },
    Variant {
        name: "pooled (default)",
        strategy: Strategy::Pooled,
        risk: None,
        half_life_hours: None,
        adapt: true,
    },
    Variant {
        name: "pooled, no change adaptation",
        strategy: Strategy::Pooled,
        risk: None,
        half_life_hours: None,
        adapt: false,
    },
    Variant {
        name: "pooled, risk=0.9",
        strategy: Strategy::Pooled,
        risk: Some(0.9),
        half_life_hours: None,
        adapt: true,
    },
    Variant {
        name: "oracle: pooled, told when each pool changed",
        strategy: Strategy::Pooled,
        risk: None,
        half_life_hours: None,
        adapt: false,
    },
    Variant {
        name: "thompson",
        strategy: Strategy::Thompson,
        risk: None,
        half_life_hours: None,
        adapt: true,
    },
];

/// The default strategy and the reference it must beat.
const DEFAULT: &str = "pooled (default)";
const NAIVE: &str = "naive";
/// The scenarios the summed target is over.
const TARGET_SCENARIOS: [ScenarioKind; 4] = [
    ScenarioKind::Stationary,
    ScenarioKind::LongTail,
    ScenarioKind::RegimeChange,
    ScenarioKind::ColdStart,
];

struct Drawn {
    world: World,
    series: Vec<Series>,
}

fn draw(kind: ScenarioKind, seed: u64, hours: u32) -> Drawn {
    let start = Utc.with_ymd_and_hms(2026, 11, 8, 0, 0, 0).unwrap();
    let w = world(kind, seed, start, hours);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let counts = sample_counts(&w, &mut rng);
    let series = w
        .pools
        .iter()
        .zip(counts)
        .map(|(p, c)| Series {
            pool: p.pool_id.clone(),
            hours: c
                .into_iter()
                .map(|(jobs, spot)| Hour { jobs, spot })
                .collect(),
        })
        .collect();
    Drawn { world: w, series }
}

/// The instance types of the pools with jobs, sorted.
fn instance_types(evidence: &[Evidence]) -> Vec<&str> {
    evidence
        .iter()
        .filter(|e| e.jobs > 0)
        .map(|e| e.pool.instance_type().as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The pools with jobs of the `chosen` instance types: a request's candidates.
fn candidates_of(evidence: &[Evidence], chosen: &[&str]) -> Vec<usize> {
    (0..evidence.len())
        .filter(|&i| {
            evidence[i].jobs > 0 && chosen.contains(&evidence[i].pool.instance_type().as_str())
        })
        .collect()
}

/// Mean regret of every variant over `sets` random instance-type sets of one world.
fn regrets(d: &Drawn, args: &Args, seed: u64) -> Vec<(f64, usize)> {
    let t = d.world.hours as usize;
    let evidence_for = |half_life: Option<f64>| -> Vec<Evidence> {
        d.series
            .iter()
            .map(|s| evidence_at(s, t, t, half_life))
            .collect()
    };
    let plain = evidence_for(None);
    let weighted = evidence_for(Some(24.0));
    let adaptive = fit(&plain, &ModelConfig::default());
    let fixed = fit(
        &plain,
        &ModelConfig {
            adapt: false,
            ..ModelConfig::default()
        },
    );
    let weighted_model = fit(&weighted, &ModelConfig::default());
    // What an oracle that knows each pool's last change would use: only the hours since.
    let told: Vec<Evidence> = d
        .series
        .iter()
        .zip(&d.world.pools)
        .map(|(s, p)| {
            let since = p.rate.last().map_or(0, |r| r.0) as usize;
            evidence_at(s, t, t - since, None)
        })
        .collect();
    let told_model = fit(
        &told,
        &ModelConfig {
            adapt: false,
            ..ModelConfig::default()
        },
    );
    let truth: Vec<f64> = d
        .world
        .pools
        .iter()
        .map(|p| p.rate_at(d.world.hours - 1))
        .collect();
    let types = instance_types(&plain);
    // Sets and Thompson draws from separate streams, so the sets do not depend on the draws.
    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(7919));
    let mut draws_rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(7919) ^ 0xd4a5);
    let mut sums = vec![(0.0, 0usize); VARIANTS.len()];
    for _ in 0..args.sets {
        let m = rng.random_range(1..=3usize);
        let chosen: Vec<&str> = types.choose_multiple(&mut rng, m).copied().collect();
        let candidates = candidates_of(&plain, &chosen);
        if candidates.len() < 2 {
            continue;
        }
        let best = candidates
            .iter()
            .map(|&i| truth[i])
            .fold(f64::INFINITY, f64::min);
        for (v, sum) in VARIANTS.iter().zip(sums.iter_mut()) {
            let (evidence, model): (&[Evidence], &Model) = match (v.half_life_hours, v.adapt) {
                _ if v.name.starts_with("oracle") => (&told, &told_model),
                (Some(_), _) => (&weighted, &weighted_model),
                (None, true) => (&plain, &adaptive),
                (None, false) => (&plain, &fixed),
            };
            let params = Params {
                strategy: v.strategy,
                confidence: 0.95,
                risk: v.risk,
            };
            let draws = if v.strategy == Strategy::Thompson {
                args.draws
            } else {
                1
            };
            let mut total = 0.0;
            for _ in 0..draws {
                let pick = rank(evidence, model, &candidates, &params, &mut draws_rng)[0].index;
                total += truth[pick] - best;
            }
            sum.0 += total / draws as f64;
            sum.1 += 1;
        }
    }
    sums
}

/// Thompson's traffic over `requests` requests against each pool's probability of being best: the
/// largest excess (share − probability) over the sets tried.
fn spread(d: &Drawn, requests: usize) -> (f64, f64) {
    let t = d.world.hours as usize;
    let evidence: Vec<Evidence> = d
        .series
        .iter()
        .map(|s| evidence_at(s, t, t, None))
        .collect();
    let model = fit(&evidence, &ModelConfig::default());
    let types = instance_types(&evidence);
    let params = Params {
        strategy: Strategy::Thompson,
        confidence: 0.95,
        risk: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let (mut worst, mut top_share) = (f64::NEG_INFINITY, 0.0_f64);
    for _ in 0..20 {
        let chosen: Vec<&str> = types.choose_multiple(&mut rng, 2).copied().collect();
        let candidates = candidates_of(&evidence, &chosen);
        if candidates.len() < 2 {
            continue;
        }
        let mut picks = vec![0usize; evidence.len()];
        for r in 0..requests {
            let mut draw_rng = ChaCha8Rng::seed_from_u64(r as u64);
            picks[rank(&evidence, &model, &candidates, &params, &mut draw_rng)[0].index] += 1;
        }
        for &i in &candidates {
            let others: Vec<(f64, f64)> = candidates
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| (model.pools[j].alpha, model.pools[j].beta))
                .collect();
            let p = probability_lowest((model.pools[i].alpha, model.pools[i].beta), &others);
            let share = picks[i] as f64 / requests as f64;
            worst = worst.max(share - p);
            top_share = top_share.max(share);
        }
    }
    (worst, top_share)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let started = Instant::now();
    let scenarios = ScenarioKind::ALL;
    // mean[variant][scenario]
    let mut mean = vec![vec![0.0; scenarios.len()]; VARIANTS.len()];
    let mut pools = vec![0usize; scenarios.len()];
    let mut fit_us = vec![0.0; scenarios.len()];
    let mut strength = vec![0.0; scenarios.len()];
    for (si, &kind) in scenarios.iter().enumerate() {
        let mut sums = vec![(0.0, 0usize); VARIANTS.len()];
        for seed in 0..args.seeds {
            let d = draw(kind, seed, args.hours);
            pools[si] = d.world.pools.len();
            let t = Instant::now();
            let ev: Vec<Evidence> = d
                .series
                .iter()
                .map(|s| evidence_at(s, args.hours as usize, args.hours as usize, None))
                .collect();
            let m = fit(&ev, &ModelConfig::default());
            fit_us[si] += t.elapsed().as_secs_f64() * 1e6 / args.seeds as f64;
            strength[si] += m.prior_cv / args.seeds as f64;
            for (acc, (s, n)) in sums.iter_mut().zip(regrets(&d, &args, seed)) {
                acc.0 += s;
                acc.1 += n;
            }
        }
        for (v, (s, n)) in sums.into_iter().enumerate() {
            mean[v][si] = if n > 0 { s / n as f64 } else { f64::NAN };
        }
    }
    let target_cols: Vec<usize> = scenarios
        .iter()
        .enumerate()
        .filter(|(_, k)| TARGET_SCENARIOS.contains(k))
        .map(|(i, _)| i)
        .collect();
    let sum_of = |v: usize| target_cols.iter().map(|&i| mean[v][i]).sum::<f64>();
    let naive = VARIANTS.iter().position(|v| v.name == NAIVE).unwrap();
    let default = VARIANTS.iter().position(|v| v.name == DEFAULT).unwrap();

    println!(
        "Mean regret in percentage points (true current termination probability of the pick minus the \
         best candidate's), {} seeds × {} instance-type sets per scenario, {} h of history; lower is better.\n",
        args.seeds, args.sets, args.hours
    );
    let mut header = String::from("| strategy |");
    let mut rule = String::from("|---|");
    for k in scenarios {
        header.push_str(&format!(" {} |", k.as_str()));
        rule.push_str("---:|");
    }
    header.push_str(" sum of the first four | vs naive |");
    rule.push_str("---:|---:|");
    println!("{header}\n{rule}");
    for (v, variant) in VARIANTS.iter().enumerate() {
        let mut row = format!("| {} |", variant.name);
        for x in &mean[v] {
            row.push_str(&format!(" {:.3} |", x * 100.0));
        }
        row.push_str(&format!(
            " {:.3} | {:.2}× |",
            sum_of(v) * 100.0,
            sum_of(v) / sum_of(naive)
        ));
        println!("{row}");
    }
    println!();
    let pools_row: Vec<String> = scenarios
        .iter()
        .zip(&pools)
        .zip(&fit_us)
        .zip(&strength)
        .map(|(((k, p), us), s)| {
            format!(
                "{}: {p} pools, prior spread (cv) {s:.2}, fit {us:.0} µs",
                k.as_str()
            )
        })
        .collect();
    println!(
        "Model fit per request (all pools): {}\n",
        pools_row.join("; ")
    );

    let d = draw(ScenarioKind::Stationary, 0, args.hours);
    let (excess, top) = spread(&d, args.requests);
    println!(
        "Thompson over {} requests (20 random pairs of instance types, stationary seed 0): largest pool \
         share minus its probability of being best = {:+.1} points (target ≤ +10); busiest pool's share {:.0} %.\n",
        args.requests,
        excess * 100.0,
        top * 100.0
    );

    let mut failures = vec![];
    let ratio = sum_of(default) / sum_of(naive);
    println!(
        "Target: default's summed regret ≤ ½ naive's → {:.3} vs {:.3} ({:.2}×): {}",
        sum_of(default) * 100.0,
        sum_of(naive) * 100.0,
        ratio,
        if ratio <= 0.5 { "met" } else { "MISSED" }
    );
    if ratio > 0.5 {
        failures.push("summed regret");
    }
    for &i in &target_cols {
        if mean[default][i] > mean[naive][i] {
            println!(
                "Target missed: default worse than naive in {}",
                scenarios[i].as_str()
            );
            failures.push("a scenario worse than naive");
        }
    }
    println!(
        "Target: default no worse than naive in any of the four: {}",
        if target_cols
            .iter()
            .all(|&i| mean[default][i] <= mean[naive][i])
        {
            "met"
        } else {
            "MISSED"
        }
    );
    if excess > 0.10 {
        failures.push("thompson spread");
    }
    println!(
        "\n(regret-bench took {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    if args.check && !failures.is_empty() {
        bail!("targets missed: {}", failures.join(", "));
    }
    Ok(())
}
