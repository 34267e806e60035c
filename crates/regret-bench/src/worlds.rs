//! The worlds the benchmark draws: each a rate model (how pools' base rates are structured) and the
//! scenarios (how traffic and rates move) it is measured in. Seven structures get the four target
//! scenarios; four worlds are about dynamics on the generator's own structure.

use chrono::{TimeZone, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use pool_ranking::backtest::Series;
use pool_ranking::{Hour, Signals};
use pool_scenario::{RateModel, ScenarioKind, World, sample_counts, world_with};

/// The four scenarios the structural worlds are measured in.
pub const FOUR: &[ScenarioKind] = &[
    ScenarioKind::Stationary,
    ScenarioKind::LongTail,
    ScenarioKind::RegimeChange,
    ScenarioKind::ColdStart,
];

/// One world of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct WorldSpec {
    pub name: &'static str,
    pub model: RateModel,
    pub scenarios: &'static [ScenarioKind],
}

pub const WORLDS: &[WorldSpec] = &[
    WorldSpec {
        name: "generator as is",
        model: RateModel::Structured,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "no family/zone structure",
        model: RateModel::Unstructured,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "heavy per-pool noise",
        model: RateModel::Idiosyncratic,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "two kinds of pool",
        model: RateModel::TwoKinds,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "size effect in a family",
        model: RateModel::SizeEffect,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "family × zone interaction",
        model: RateModel::Interaction,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "traffic in bad pools",
        model: RateModel::BadTraffic,
        scenarios: FOUR,
    },
    WorldSpec {
        name: "zone, region, family outages",
        model: RateModel::Structured,
        scenarios: &[ScenarioKind::ZoneOutage, ScenarioKind::Outages],
    },
    WorldSpec {
        name: "transient spikes",
        model: RateModel::Structured,
        scenarios: &[ScenarioKind::Spikes],
    },
    WorldSpec {
        name: "slow drift",
        model: RateModel::Structured,
        scenarios: &[ScenarioKind::Drift],
    },
    WorldSpec {
        name: "daily seasonality",
        model: RateModel::Structured,
        scenarios: &[ScenarioKind::Seasonality],
    },
];

/// One (world, scenario) pair: a column of the per-scenario table.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    pub world: usize,
    pub scenario: ScenarioKind,
}

/// Every cell, world by world.
pub fn cells() -> Vec<Cell> {
    WORLDS
        .iter()
        .enumerate()
        .flat_map(|(w, spec)| {
            spec.scenarios
                .iter()
                .map(move |&scenario| Cell { world: w, scenario })
        })
        .collect()
}

/// A drawn world and its hourly counts.
pub struct Drawn {
    pub world: World,
    pub series: Vec<Series>,
}

impl Drawn {
    /// Every pool's true rate in hour `h`.
    pub fn truth_at(&self, h: u32) -> Vec<f64> {
        self.world.pools.iter().map(|p| p.rate_at(h)).collect()
    }
}

/// Draw the world of `model` and `kind` for `seed`, with its counts.
pub fn draw(model: RateModel, kind: ScenarioKind, seed: u64, hours: u32) -> Drawn {
    let start = Utc.with_ymd_and_hms(2026, 11, 8, 0, 0, 0).unwrap();
    let w = world_with(kind, model, seed, start, hours);
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

/// Simulated Spot Advisor bands for the world's (region, instance type) pairs. `informative`: the
/// band of the pairs' mean true base rate (with noise of 0.3 on the log rate), cut at 2, 4, 8 and
/// 16 %; otherwise a random band, which says nothing.
pub fn advisor_bands(d: &Drawn, informative: bool, seed: u64) -> Signals {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xad);
    let mut sums: std::collections::BTreeMap<(String, String), (f64, f64)> = Default::default();
    for p in &d.world.pools {
        let key = (
            p.pool_id.availability_zone().region().to_owned(),
            p.pool_id.instance_type().as_str().to_owned(),
        );
        let e = sums.entry(key).or_default();
        e.0 += p.rate[0].1.ln();
        e.1 += 1.0;
    }
    let bands = sums.into_iter().map(|(key, (sum, count))| {
        let band = if informative {
            let noise: f64 = rng.sample::<f64, _>(rand_distr::StandardNormal) * 0.3;
            let rate = (sum / count + noise).exp();
            [0.02, 0.04, 0.08, 0.16]
                .iter()
                .filter(|&&c| rate > c)
                .count() as u8
        } else {
            rng.random_range(0..5u8)
        };
        (key, band)
    });
    Signals::from_bands(bands)
}
