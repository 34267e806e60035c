//! The closed loop: each strategy's picks get the next jobs. Over the last `hours` of a drawn world,
//! others' traffic shrinks to a background share of the generator's; every hour the strategy refits
//! on what it has seen (the background plus its own jobs), answers `requests` requests (random
//! instance-type sets), and each request runs `jobs` jobs on the pick, their outcomes drawn at the
//! pick's true rate in that hour. A pool the strategy stops picking then learns little: a greedy
//! strategy can keep an old belief about it for ever, which is what exploration is for.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Poisson};

use pool_ranking::backtest::{Series, evidence_at};
use pool_ranking::{Evidence, ModelConfig, Params, Strategy, fit, posteriors, probe, rank};
use pool_scenario::{RateModel, ScenarioKind};

use crate::open::{candidates_of, instance_types};
use crate::worlds::{Drawn, draw};

/// The closed loop's sizes.
#[derive(Debug, Clone, Copy)]
pub struct LoopSize {
    pub history_hours: u32,
    pub loop_hours: u32,
    pub requests: usize,
    pub jobs: u32,
    /// Others' traffic during the loop, as a share of the generator's.
    pub background: f64,
}

/// The strategies of the closed loop: name, strategy, share of requests spent on a probe
/// ([`pool_ranking::probe`]).
pub const STRATEGIES: &[(&str, Strategy, f64)] = &[
    ("naive", Strategy::Naive, 0.0),
    ("pooled-v1 (greedy)", Strategy::PooledV1, 0.0),
    ("pooled (default, greedy)", Strategy::Pooled, 0.0),
    ("pooled + probes (5 % of requests)", Strategy::Pooled, 0.05),
    ("thompson", Strategy::Thompson, 0.0),
];

/// The worlds of the closed loop.
pub const WORLDS: &[(&str, RateModel, ScenarioKind)] = &[
    (
        "regime change",
        RateModel::Structured,
        ScenarioKind::RegimeChange,
    ),
    ("slow drift", RateModel::Structured, ScenarioKind::Drift),
    (
        "traffic in bad pools, regime change",
        RateModel::BadTraffic,
        ScenarioKind::RegimeChange,
    ),
];

/// Mean regret per request over the loop, per strategy.
pub fn run(model: RateModel, kind: ScenarioKind, seed: u64, size: LoopSize) -> Vec<f64> {
    let d = draw(model, kind, seed, size.history_hours);
    let from = size.history_hours.saturating_sub(size.loop_hours);
    let background = with_background(&d, from, size, seed);
    let sets = request_sets(&background, from, seed);
    let lp = Loop {
        d: &d,
        background: &background,
        sets: &sets,
        from,
        size,
        seed,
    };
    STRATEGIES
        .iter()
        .map(|&(_, strategy, probes)| lp.mean_regret(strategy, probes))
        .collect()
}

/// The drawn series with others' traffic during the loop: a background share of the generator's,
/// drawn from its own stream.
fn with_background(d: &Drawn, from: u32, size: LoopSize, seed: u64) -> Vec<Series> {
    let hours = size.history_hours;
    let mut bg_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xb6);
    d.series
        .iter()
        .zip(&d.world.pools)
        .map(|(s, p)| {
            let mut hours_ = s.hours.clone();
            for h in from..hours {
                let mean = size.background * p.expected_jobs_at(h);
                let jobs = Poisson::new(mean.max(1e-12))
                    .map(|d| d.sample(&mut bg_rng) as u32)
                    .unwrap_or(0);
                let spot = if jobs > 0 {
                    Binomial::new(u64::from(jobs), p.rate_at(h))
                        .map(|d| d.sample(&mut bg_rng) as u32)
                        .unwrap_or(0)
                } else {
                    0
                };
                hours_[h as usize] = pool_ranking::Hour { jobs, spot };
            }
            Series {
                pool: s.pool.clone(),
                hours: hours_,
            }
        })
        .collect()
}

/// The requests' instance-type sets (30, of one to three types with jobs before the loop), the same
/// for every strategy.
fn request_sets(background: &[Series], from: u32, seed: u64) -> Vec<Vec<String>> {
    let start_evidence: Vec<Evidence> = background
        .iter()
        .map(|s| evidence_at(s, from as usize, from as usize, None))
        .collect();
    let types = instance_types(&start_evidence);
    let mut set_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5e75);
    (0..30)
        .map(|_| {
            let m = set_rng.random_range(1..=3usize);
            types.choose_multiple(&mut set_rng, m).cloned().collect()
        })
        .collect()
}

/// One closed loop's fixed parts: the world, its series with background traffic, the request sets,
/// and the loop's first hour.
struct Loop<'a> {
    d: &'a Drawn,
    background: &'a [Series],
    sets: &'a [Vec<String>],
    from: u32,
    size: LoopSize,
    seed: u64,
}

impl Loop<'_> {
    /// One strategy's mean regret per request: hour by hour, refit on the series so far, answer the
    /// hour's requests (a share of them with a probe), and add the picks' jobs to the series, so
    /// the strategy learns from its own picks.
    fn mean_regret(&self, strategy: Strategy, probes: f64) -> f64 {
        let (d, size, sets) = (self.d, self.size, self.sets);
        let cfg = ModelConfig::default();
        let mut series = self.background.to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0xc105ed);
        let mut draw_rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0xd4a5);
        let (mut regret, mut requests) = (0.0, 0usize);
        for h in self.from..size.history_hours {
            let t = h as usize;
            let evidence: Vec<Evidence> =
                series.iter().map(|s| evidence_at(s, t, t, None)).collect();
            let model = fit(&evidence, &cfg);
            let params = Params {
                strategy,
                confidence: 0.95,
                risk: None,
            };
            for r in 0..size.requests {
                let set = &sets[(t * size.requests + r) % sets.len()];
                let chosen: Vec<&String> = set.iter().collect();
                let candidates = candidates_of(&evidence, &chosen);
                if candidates.len() < 2 {
                    continue;
                }
                let ranked = rank(&evidence, &model, &candidates, &params, &mut draw_rng);
                let mut pick = ranked[0].index;
                if probes > 0.0 && rng.random_bool(probes) {
                    let post = posteriors(&evidence, &model, strategy);
                    if let Some(pos) = probe(&ranked, post, 0.0) {
                        pick = ranked[pos].index;
                    }
                }
                let truth = |i: usize| d.world.pools[i].rate_at(h);
                let best = candidates
                    .iter()
                    .map(|&i| truth(i))
                    .fold(f64::INFINITY, f64::min);
                regret += truth(pick) - best;
                requests += 1;
                let spot = Binomial::new(u64::from(size.jobs), truth(pick))
                    .map(|d| d.sample(&mut rng) as u32)
                    .unwrap_or(0);
                let cell = &mut series[pick].hours[t];
                cell.jobs += size.jobs;
                cell.spot += spot;
            }
        }
        if requests > 0 {
            regret / requests as f64
        } else {
            0.0
        }
    }
}
