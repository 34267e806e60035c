//! What the ranking knows about each pool: its counts over the window, and its hourly series (the
//! change-point posterior reads when its rate moved).

use pool_core::event::PoolId;

/// Longest hourly series the model reads: 30 days. The change posterior looks for changes up to
/// this old; older ones are part of "the whole window". The service keeps hourly counts for 64 days,
/// so a window longer than this still has its whole series available, and cost grows with it (a fit
/// walks every pool's series once).
pub const SERIES_HOURS: usize = 30 * 24;

/// The span `pooled-v1`'s change tests read (its longest split).
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
    /// The window's last hours, oldest first, at most [`SERIES_HOURS`]; the last cell is the current
    /// hour. Every pool of one fit should have the same length (the change posterior spreads its prior
    /// over the series' hours).
    pub recent: Vec<Hour>,
}

impl Evidence {
    /// Unweighted evidence from totals and the last hours (the newest [`SERIES_HOURS`] are kept).
    pub fn new(pool: PoolId, jobs: u64, spot: u64, recent: &[Hour]) -> Self {
        let keep = recent.len().min(SERIES_HOURS);
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
            recent: recent[recent.len() - keep..].to_vec(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_series_keeps_the_newest_hours() {
        let pool: PoolId = "pool-c6a.xlarge-us-east-1a".parse().unwrap();
        let hours: Vec<Hour> = (0..800).map(|i| Hour { jobs: i, spot: 0 }).collect();
        let e = Evidence::new(pool.clone(), 10, 1, &hours);
        assert_eq!(e.recent.len(), SERIES_HOURS);
        assert_eq!(e.recent.last().unwrap().jobs, 799);
        assert_eq!(e.last(2), (798 + 799, 0));
        let e = Evidence::new(pool, 10, 1, &hours[..3]);
        assert_eq!(e.recent.len(), 3);
        assert_eq!(e.last(72), (3, 0));
        assert_eq!(e.rate, 0.1);
    }
}
