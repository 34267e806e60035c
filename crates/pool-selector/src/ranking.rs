//! From the scan's per-pool tallies to the ranking's evidence, and ranked pools as the API shows them.
//! The statistics themselves live in `pool_ranking` (pure, tested on their own); this module only
//! translates.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use pool_core::event::{Partition, PoolId, format_timestamp};
use pool_history::Tally;
use pool_ranking::{Change, Evidence, Hour, PoolModel, SERIES_HOURS, Scored};

pub use pool_core::request::Strategy;

/// The first hour of the hourly series a ranking at `now` reads: [`SERIES_HOURS`] hours (30 days)
/// ending with the current one, or fewer when the window starts later (`cutoff`), so the change
/// posterior spreads its prior over the hours the window holds. The view keeps hourly counts for 64
/// days, so any window gets its whole series up to 30 days.
pub fn series_start(now: DateTime<Utc>, cutoff: Option<DateTime<Utc>>) -> DateTime<Utc> {
    let longest = Partition::of(&now).start() - TimeDelta::hours(SERIES_HOURS as i64 - 1);
    match cutoff {
        Some(c) => longest.max(Partition::of(&c).start()),
        None => longest,
    }
}

/// Hours in the series from `start` to the current hour at `now`, both included.
pub fn series_hours(start: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let hours = (Partition::of(&now).start() - start).num_hours().max(0) as usize + 1;
    hours.min(SERIES_HOURS)
}

/// A pool's evidence from its tally, whose `hourly` series starts at [`series_start`] and holds
/// `hours` hours. Hours past the current one (events stamped slightly ahead, within the allowed clock
/// skew) count in the current hour.
pub fn evidence(pool: &PoolId, t: &Tally, hours: usize) -> Evidence {
    let hours = hours.max(1);
    let mut recent: Vec<Hour> = vec![Hour::default(); hours];
    for (i, h) in t.hourly.iter().enumerate() {
        let cell = &mut recent[i.min(hours - 1)];
        cell.jobs += h.jobs;
        cell.spot += h.spot;
    }
    let mut e = Evidence::new(pool.clone(), t.jobs, t.spot_terminations, &recent);
    e.effective_jobs = t.effective_jobs();
    e.rate = t.rate();
    e
}

/// One pool's place in the ranking.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RankedPool {
    pub pool_id: String,
    pub instance_type: String,
    pub availability_zone: String,
    /// Jobs seen in the window: each distinct event once (redelivered copies dropped).
    pub jobs: u64,
    /// Jobs lost to `SPOT_INSTANCE_TERMINATION`.
    pub spot_terminations: u64,
    /// Jobs that failed for any other reason (not held against the pool).
    pub other_failures: u64,
    /// Terminations / jobs (weighted when `half_life` is set).
    pub termination_rate: f64,
    /// Lower end of the interval of the termination rate (`pooled`/`thompson`: the posterior's).
    pub ci_low: f64,
    /// Upper end of that interval.
    pub ci_high: f64,
    /// Effective number of jobs behind the estimate (equals `jobs` without recency weighting).
    pub effective_jobs: f64,
    /// The value pools are ordered by, ascending (lower is safer).
    pub score: f64,
    /// Posterior mean of the termination rate now: the shared prior updated with the pool's own jobs,
    /// averaged over when (and whether) its rate last changed.
    pub posterior_mean: f64,
    /// Mean of the shared prior: what the pool's region, zone, family, size and type say without its
    /// own jobs (each level weighted by how much it is found to matter).
    pub prior_mean: f64,
    /// Prior strength in pseudo-jobs: how many jobs of its own outweigh what its neighbours say.
    pub prior_strength: f64,
    /// The posterior of the rate now is `Beta(posterior_alpha, posterior_beta)` (the mixture over
    /// change times matched in mean and variance): what `probability_best` and `expected_regret`
    /// integrate.
    pub posterior_alpha: f64,
    pub posterior_beta: f64,
    /// Posterior probability that the pool's rate changed within its series (up to 30 days), on its
    /// own or with its zone, region or family.
    pub change_probability: f64,
    /// Posterior probability that the pool's rate now is higher than before its last change.
    pub degraded_probability: f64,
    /// `degraded_probability > 1 − CHANGE_ALPHA`: one threshold, on the model's own posterior.
    pub degraded: bool,
    /// The change, when one is more likely than not: its probability, most probable age and scope.
    pub change: Option<Change>,
    /// Latest `finished_at` of the pool's jobs (UTC, ISO 8601).
    pub last_event_at: String,
}

impl RankedPool {
    pub fn new(e: &Evidence, t: &Tally, m: &PoolModel, s: &Scored) -> Self {
        Self {
            pool_id: e.pool.as_str().to_owned(),
            instance_type: e.pool.instance_type().to_string(),
            availability_zone: e.pool.availability_zone().to_string(),
            jobs: t.jobs,
            spot_terminations: t.spot_terminations,
            other_failures: t.other_failures,
            termination_rate: t.rate(),
            ci_low: s.ci_low,
            ci_high: s.ci_high,
            effective_jobs: t.effective_jobs(),
            score: s.score,
            posterior_mean: m.posterior_mean(),
            prior_mean: m.prior_mean,
            prior_strength: m.prior_strength,
            posterior_alpha: m.alpha,
            posterior_beta: m.beta,
            change_probability: m.change_probability,
            degraded_probability: m.worse_probability,
            degraded: m.degraded,
            change: m.change,
            last_event_at: DateTime::from_timestamp_micros(t.last_event_micros)
                .map(|t| format_timestamp(&t))
                .unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use pool_history::HourCount;

    #[test]
    fn the_series_ends_with_the_current_hour_and_starts_with_the_window() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 5).unwrap();
        let start = series_start(now, None);
        assert_eq!(start, Utc.with_ymd_and_hms(2026, 10, 23, 11, 0, 0).unwrap());
        assert_eq!(series_hours(start, now), SERIES_HOURS);
        let day = Utc.with_ymd_and_hms(2026, 11, 21, 10, 0, 0).unwrap();
        let start = series_start(now, Some(day + TimeDelta::minutes(30)));
        assert_eq!(start, day);
        assert_eq!(series_hours(start, now), 25);
        let long_ago = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(series_start(now, Some(long_ago)), series_start(now, None));
    }

    #[test]
    fn evidence_keeps_the_tally_and_folds_hours_ahead_into_the_current_one() {
        let mut t = Tally::default();
        for i in 0..10 {
            t.add(i < 2, false, 1.0, i);
        }
        t.hourly = vec![HourCount { jobs: 1, spot: 0 }; 101];
        t.hourly[0].spot = 1;
        let e = evidence(&"pool-c6a.large-us-east-1a".parse().unwrap(), &t, 100);
        assert_eq!((e.jobs, e.spot), (10, 2));
        assert_eq!(e.recent.len(), 100);
        assert_eq!(e.recent[0], Hour { jobs: 1, spot: 1 });
        assert_eq!(e.recent[99], Hour { jobs: 2, spot: 0 });
        assert!((e.rate - 0.2).abs() < 1e-12);
    }
}
