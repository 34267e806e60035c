//! What the ranking knows about each pool: its counts over the window, and its last hours one by one
//! (the change tests compare those with the rest).

use pool_core::event::PoolId;

/// How many recent hours each pool carries hour by hour: the longest change-test split.
pub const RECENT_HOURS: usize = 72;

/// Unweighted, deduplicated counts of one pool in one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hour {
    pub jobs: u32,
    pub spot: u32,
}

/// One pool's evidence.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub pool: PoolId,
    /// Jobs in the window.
    pub jobs: u64,
    /// Jobs lost to a spot termination in the window.
    pub spot: u64,
    /// Effective number of jobs (Kish) and the termination rate under recency weighting; `jobs` and
    /// `spot / jobs` without it.
    pub effective_jobs: f64,
    pub rate: f64,
    /// The last [`RECENT_HOURS`] hours, oldest first; the last cell is the current hour. Hours before
    /// the window are zero.
    pub recent: Vec<Hour>,
}

impl Evidence {
    /// Unweighted evidence from totals and the recent hours (padded or trimmed to [`RECENT_HOURS`],
    /// keeping the newest).
    pub fn new(pool: PoolId, jobs: u64, spot: u64, recent: &[Hour]) -> Self {
        Self {
            pool,
            jobs,
            spot,
            effective_jobs: jobs as f64,
            rate: if jobs > 0 {
                spot as f64 / jobs as f64
            } else {
                0.0
            },
            recent: fit_recent(recent),
        }
    }

    /// Terminations on the effective scale.
    pub fn effective_spot(&self) -> f64 {
        self.rate * self.effective_jobs
    }

    /// Unweighted counts of the last `hours` hours: `(jobs, spot)`.
    pub fn last(&self, hours: usize) -> (u64, u64) {
        let from = self.recent.len().saturating_sub(hours);
        self.recent[from..].iter().fold((0, 0), |(j, s), h| {
            (j + u64::from(h.jobs), s + u64::from(h.spot))
        })
    }
}

/// `recent` as exactly [`RECENT_HOURS`] cells ending with its last one.
pub fn fit_recent(recent: &[Hour]) -> Vec<Hour> {
    let keep = recent.len().min(RECENT_HOURS);
    let mut out = vec![Hour::default(); RECENT_HOURS - keep];
    out.extend_from_slice(&recent[recent.len() - keep..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_hours_keep_the_newest_and_pad_the_oldest() {
        let pool: PoolId = "pool-c6a.xlarge-us-east-1a".parse().unwrap();
        let hours: Vec<Hour> = (0..100).map(|i| Hour { jobs: i, spot: 0 }).collect();
        let e = Evidence::new(pool.clone(), 10, 1, &hours);
        assert_eq!(e.recent.len(), RECENT_HOURS);
        assert_eq!(e.recent.last().unwrap().jobs, 99);
        assert_eq!(e.last(2), (98 + 99, 0));
        let e = Evidence::new(pool, 10, 1, &hours[..3]);
        assert_eq!(e.recent.len(), RECENT_HOURS);
        assert_eq!(e.recent[RECENT_HOURS - 3].jobs, 0);
        assert_eq!(e.recent[RECENT_HOURS - 1].jobs, 2);
        assert_eq!(e.rate, 0.1);
    }
}
