//! From the scan's per-pool tallies to the ranking's evidence, and ranked pools as the API shows them.
//! The statistics themselves live in `pool_ranking` (pure, tested on their own); this module only
//! translates.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use pool_core::event::{Partition, PoolId, format_timestamp};
use pool_history::Tally;
use pool_ranking::{Change, Evidence, Hour, PoolModel, RECENT_HOURS, Scored};

pub use pool_core::request::Strategy;

/// The first hour of the recent series a ranking at `now` needs: [`RECENT_HOURS`] hours ending with
/// the current one.
pub fn series_start(now: DateTime<Utc>) -> DateTime<Utc> {
    Partition::of(&now).start() - TimeDelta::hours(RECENT_HOURS as i64 - 1)
}

/// A pool's evidence from its tally, whose `hourly` series starts at [`series_start`]. Hours past
/// the current one (events stamped slightly ahead, within the allowed clock skew) count in the
/// current hour.
pub fn evidence(pool: &PoolId, t: &Tally) -> Evidence {
    let mut recent: Vec<Hour> = vec![Hour::default(); RECENT_HOURS];
    for (i, h) in t.hourly.iter().enumerate() {
        let cell = &mut recent[i.min(RECENT_HOURS - 1)];
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
    /// Distinct jobs seen in the window.
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
    /// Posterior mean of the termination rate: the prior from the pool's family and zone, updated with
    /// the pool's own jobs (those since a detected change, when there is one).
    pub posterior_mean: f64,
    /// Prior mean from the pools sharing the instance family and the zone.
    pub prior_mean: f64,
    /// Prior strength in pseudo-jobs: how many jobs of its own outweigh what its neighbours say.
    pub prior_strength: f64,
    /// The last hours are significantly worse than the rest of the window (Fisher's exact test at
    /// CHANGE_ALPHA).
    pub degraded: bool,
    /// A change in this pool (or its zone) was detected; the posterior uses only the last hours.
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
    fn the_series_ends_with_the_current_hour() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 10, 30, 5).unwrap();
        assert_eq!(
            series_start(now),
            Utc.with_ymd_and_hms(2026, 11, 19, 11, 0, 0).unwrap()
        );
    }

    #[test]
    fn evidence_keeps_the_tally_and_folds_hours_ahead_into_the_current_one() {
        let mut t = Tally::default();
        for i in 0..10 {
            t.add(i < 2, false, 1.0, i);
        }
        t.hourly = vec![HourCount { jobs: 1, spot: 0 }; RECENT_HOURS + 1];
        t.hourly[0].spot = 1;
        let e = evidence(&"pool-c6a.large-us-east-1a".parse().unwrap(), &t);
        assert_eq!((e.jobs, e.spot), (10, 2));
        assert_eq!(e.recent.len(), RECENT_HOURS);
        assert_eq!(e.recent[0], Hour { jobs: 1, spot: 1 });
        assert_eq!(e.recent[RECENT_HOURS - 1], Hour { jobs: 2, spot: 0 });
        assert!((e.rate - 0.2).abs() < 1e-12);
    }
}
