//! Turning random numbers into events.
//!
//! Everything random comes from one seeded ChaCha stream, so a seed (and, for a backfill, an end time)
//! fixes every byte: timestamps, pools, outcomes and job ids.
//!
//! A backfill is a [`Producer`]: [`Backfill`] spreads `--events` uniformly over the window, while
//! [`ScenarioBackfill`] plays a [`World`] hour by hour. Both turn (pool, probability, finish time) into
//! an event through [`Generator::event_in`].

use std::collections::VecDeque;

use chrono::{DateTime, TimeZone, Utc};
use pool_core::event::{Event, JobId, Outcome};
use rand::Rng;
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand_chacha::ChaCha8Rng;

use pool_scenario::pools::{PoolSpec, Truth, TruthPool};
use pool_scenario::{OutcomeCounts, RateModel, ScenarioKind, ScenarioTruth, World, poisson};

/// Non-spot failure reasons and their share among non-spot failures.
pub const OTHER_REASONS: &[(&str, f64)] = &[("TIMED_OUT", 0.4), ("SPARK_EXECUTION_ERROR", 0.6)];

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    jobs: u64,
    spot: u64,
    other: u64,
}

/// Draws one event at a time for a given finish time.
pub struct Generator {
    rng: ChaCha8Rng,
    pools: Vec<PoolSpec>,
    pick: WeightedIndex<f64>,
    other_failure_rate: f64,
    counts: Vec<Counts>,
    uuid_buf: [u8; uuid::fmt::Hyphenated::LENGTH],
}

impl Generator {
    /// `rng` should be a stream of its own (not the one that drew the pools), so the pools do not depend
    /// on how many events are drawn.
    pub fn new(rng: ChaCha8Rng, pools: Vec<PoolSpec>, other_failure_rate: f64) -> Self {
        let pick = WeightedIndex::new(pools.iter().map(|p| p.weight))
            .expect("pool weights are positive and finite");
        let counts = vec![Counts::default(); pools.len()];
        Self {
            rng,
            pools,
            pick,
            other_failure_rate,
            counts,
            uuid_buf: [0; uuid::fmt::Hyphenated::LENGTH],
        }
    }

    /// The random stream, shared with the [`Backfill`] clock so one seed drives both.
    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// One job that finished at `finished_at`, in a pool drawn by traffic weight, with an outcome drawn
    /// from the pool's termination probability and the global non-spot failure rate.
    pub fn event_at(&mut self, finished_at: DateTime<Utc>) -> Event {
        let i = self.pick.sample(&mut self.rng);
        let probability = self.pools[i].termination_probability;
        self.event_in(i, probability, finished_at)
    }

    /// One job of pool `i` (an index into the pools given to [`Generator::new`]) that finished at
    /// `finished_at`: a spot termination with `probability`, else another failure with the global
    /// non-spot failure rate (one roll: `P(other) = min(rate, 1 - probability)`), else a success. The
    /// job id is a seeded UUID v4. Counted in the pool's totals for [`Generator::truth`].
    pub fn event_in(&mut self, i: usize, probability: f64, finished_at: DateTime<Utc>) -> Event {
        let roll: f64 = self.rng.random();
        let counts = &mut self.counts[i];
        counts.jobs += 1;
        let outcome = if roll < probability {
            counts.spot += 1;
            Outcome::SpotTermination
        } else if roll < probability + self.other_failure_rate {
            counts.other += 1;
            // Reuse the roll: where it fell inside the failure band picks the reason.
            let mut at = (roll - probability) / self.other_failure_rate;
            let mut reason = OTHER_REASONS[OTHER_REASONS.len() - 1].0;
            for (r, share) in OTHER_REASONS {
                if at < *share {
                    reason = r;
                    break;
                }
                at -= share;
            }
            Outcome::OtherFailure(reason.to_owned())
        } else {
            Outcome::Succeeded
        };
        let id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
        let job_id: JobId = id
            .hyphenated()
            .encode_lower(&mut self.uuid_buf)
            .parse()
            .expect("a UUID is a valid job id");
        Event::new(finished_at, job_id, self.pools[i].pool_id.clone(), outcome)
    }

    /// The truth file for what has been generated so far.
    pub fn truth(&self, seed: u64, skew: f64) -> Truth {
        let mut pools: Vec<TruthPool> = self
            .pools
            .iter()
            .zip(&self.counts)
            .map(|(p, c)| TruthPool {
                pool_id: p.pool_id.to_string(),
                instance_type: p.pool_id.instance_type().to_string(),
                availability_zone: p.pool_id.availability_zone().to_string(),
                weight: p.weight,
                termination_probability: p.termination_probability,
                jobs: c.jobs,
                spot_terminations: c.spot,
                other_failures: c.other,
            })
            .collect();
        pools.sort_by(|a, b| {
            a.termination_probability
                .total_cmp(&b.termination_probability)
                .then_with(|| a.pool_id.cmp(&b.pool_id))
        });
        Truth {
            seed,
            skew,
            other_failure_probability: self.other_failure_rate,
            events: self.counts.iter().map(|c| c.jobs).sum(),
            pools,
        }
    }
}

/// Finish times for a backfill: `total` instants uniformly distributed over `[start, end)`, produced in
/// ascending order without holding them all.
///
/// Sorted uniform samples are drawn one by one: given the previous one `x`, the minimum of the `r`
/// samples still to come (uniform on `(x, 1)`) is `x + (1 - x)(1 - V^(1/r))` with `V` uniform. Ascending
/// output means one hourly partition fills up after another, so the sink writes each hour once.
#[derive(Debug, Clone)]
pub struct Backfill {
    start_ms: i64,
    span_ms: i64,
    remaining: u64,
    x: f64,
}

impl Backfill {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>, total: u64) -> Self {
        let start_ms = start.timestamp_millis();
        Self {
            start_ms,
            span_ms: (end.timestamp_millis() - start_ms).max(1),
            remaining: total,
            x: 0.0,
        }
    }

    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The next finish time, or `None` when all have been drawn.
    pub fn next_time(&mut self, rng: &mut ChaCha8Rng) -> Option<DateTime<Utc>> {
        if self.remaining == 0 {
            return None;
        }
        // V in (0, 1]: 1 - [0, 1).
        let v = 1.0 - rng.random::<f64>();
        let step = -(v.ln() / self.remaining as f64).exp_m1();
        self.x += (1.0 - self.x) * step;
        self.remaining -= 1;
        let offset = ((self.x * self.span_ms as f64) as i64).min(self.span_ms - 1);
        Some(
            Utc.timestamp_millis_opt(self.start_ms + offset)
                .single()
                .expect("backfill times are in chrono's range"),
        )
    }
}

/// A backfill's events in time order, drawn batch by batch on the generator's random stream.
pub trait Producer: Send {
    /// True once every event has been drawn.
    fn is_done(&self) -> bool;
    /// Append events to `batch` until it holds `max` or nothing is left.
    fn fill(&mut self, generator: &mut Generator, batch: &mut Vec<Event>, max: usize);
}

impl Producer for Backfill {
    fn is_done(&self) -> bool {
        self.remaining == 0
    }

    fn fill(&mut self, generator: &mut Generator, batch: &mut Vec<Event>, max: usize) {
        while batch.len() < max {
            let Some(t) = self.next_time(generator.rng()) else {
                break;
            };
            batch.push(generator.event_at(t));
        }
    }
}

/// The pools of `world` as a [`Generator`] knows them: traffic shares from `jobs_per_hour` and the
/// first segment's rate (a scenario run passes each hour's rate to [`Generator::event_in`] instead).
pub fn world_pools(world: &World) -> Vec<PoolSpec> {
    let total: f64 = world.pools.iter().map(|p| p.jobs_per_hour).sum();
    world
        .pools
        .iter()
        .map(|p| PoolSpec {
            pool_id: p.pool_id.clone(),
            weight: p.jobs_per_hour / total,
            termination_probability: p.rate_at(0),
        })
        .collect()
}

/// A scenario backfill: the events of a [`World`], hour by hour. In hour `h` every pool that exists
/// gets Poisson(`jobs_per_hour`) jobs with finish times uniform inside the hour, each a spot termination
/// with `rate_at(h)`; the hour's events are written in time order. The generator must have been built
/// from [`world_pools`] of the same world.
#[derive(Debug, Clone)]
pub struct ScenarioBackfill {
    world: World,
    hour: u32,
    pending: VecDeque<Event>,
    /// Outcomes per pool and rate segment, aligned with `world.pools[i].rate`.
    segments: Vec<Vec<OutcomeCounts>>,
}

impl ScenarioBackfill {
    pub fn new(world: World) -> Self {
        let segments = world
            .pools
            .iter()
            .map(|p| vec![OutcomeCounts::default(); p.rate.len()])
            .collect();
        Self {
            world,
            hour: 0,
            pending: VecDeque::new(),
            segments,
        }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// The truth file for what has been generated so far.
    pub fn truth(
        &self,
        kind: ScenarioKind,
        rate_model: RateModel,
        seed: u64,
        other_failure_rate: f64,
    ) -> ScenarioTruth {
        ScenarioTruth::new(
            kind,
            rate_model,
            seed,
            &self.world,
            other_failure_rate,
            &self.segments,
        )
    }

    /// Draw the next hour's events into `pending`.
    fn draw_hour(&mut self, generator: &mut Generator) {
        const HOUR_MS: i64 = 3_600_000;
        let hour = self.hour;
        self.hour += 1;
        let start_ms = self.world.hour_start(hour).timestamp_millis();
        let mut jobs: Vec<(i64, usize)> = Vec::new();
        for (i, pool) in self.world.pools.iter().enumerate() {
            let n = poisson(generator.rng(), pool.expected_jobs_at(hour));
            for _ in 0..n {
                jobs.push((generator.rng().random_range(0..HOUR_MS), i));
            }
        }
        jobs.sort_unstable();
        for (offset, i) in jobs {
            let pool = &self.world.pools[i];
            let segment = pool
                .rate
                .partition_point(|(from, _)| *from <= hour)
                .saturating_sub(1);
            let finished_at = Utc
                .timestamp_millis_opt(start_ms + offset)
                .single()
                .expect("scenario times are in chrono's range");
            let event = generator.event_in(i, pool.rate_at(hour), finished_at);
            let counts = &mut self.segments[i][segment];
            counts.jobs += 1;
            match event.outcome {
                Outcome::SpotTermination => counts.spot_terminations += 1,
                Outcome::OtherFailure(_) => counts.other_failures += 1,
                Outcome::Succeeded => {}
            }
            self.pending.push_back(event);
        }
    }
}

impl Producer for ScenarioBackfill {
    fn is_done(&self) -> bool {
        self.pending.is_empty() && self.hour >= self.world.hours
    }

    fn fill(&mut self, generator: &mut Generator, batch: &mut Vec<Event>, max: usize) {
        while batch.len() < max {
            if let Some(event) = self.pending.pop_front() {
                batch.push(event);
            } else if self.hour < self.world.hours {
                self.draw_hour(generator);
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pool_scenario::pools::{PoolChoice, draw_pools};
    use rand::SeedableRng;

    fn generator(seed: u64) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pools = draw_pools(&mut rng, &PoolChoice::Count(10), 1.0).unwrap();
        rng.set_stream(1);
        Generator::new(rng, pools, 0.02)
    }

    #[test]
    fn backfill_times_are_sorted_uniform_and_inside_the_window() {
        let end = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let start = end - chrono::Duration::hours(10);
        let mut clock = Backfill::new(start, end, 100_000);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut per_hour = [0u64; 10];
        let mut last = start;
        while let Some(t) = clock.next_time(&mut rng) {
            assert!(t >= last && t >= start && t < end);
            last = t;
            per_hour[((t - start).num_hours()) as usize] += 1;
        }
        assert_eq!(per_hour.iter().sum::<u64>(), 100_000);
        for n in per_hour {
            assert!((9_500..=10_500).contains(&n), "{per_hour:?}");
        }
    }

    #[test]
    fn outcomes_follow_the_hidden_probabilities() {
        let mut g = generator(11);
        let t = Utc::now();
        for _ in 0..200_000 {
            let e = g.event_at(t);
            match &e.outcome {
                Outcome::OtherFailure(r) => assert!(OTHER_REASONS.iter().any(|(x, _)| x == r)),
                Outcome::Succeeded | Outcome::SpotTermination => {}
            }
        }
        let truth = g.truth(11, 1.0);
        assert_eq!(truth.events, 200_000);
        for p in truth.pools.iter().filter(|p| p.jobs > 5_000) {
            let rate = p.spot_terminations as f64 / p.jobs as f64;
            let sd = (p.termination_probability * (1.0 - p.termination_probability)
                / p.jobs as f64)
                .sqrt();
            assert!(
                (rate - p.termination_probability).abs() < 5.0 * sd + 1e-9,
                "{p:?}"
            );
            let other = p.other_failures as f64 / p.jobs as f64;
            assert!((other - 0.02).abs() < 0.01, "{p:?}");
        }
    }

    #[test]
    fn job_ids_are_seeded_uuids() {
        let a: Vec<_> = (0..3)
            .map(|_| generator(1).event_at(Utc::now()).job_id)
            .collect();
        assert_eq!(a[0], a[1]);
        let mut g = generator(1);
        let x = g.event_at(Utc::now()).job_id;
        let y = g.event_at(Utc::now()).job_id;
        assert_ne!(x, y);
        let parsed = uuid::Uuid::parse_str(x.as_str()).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }
}
