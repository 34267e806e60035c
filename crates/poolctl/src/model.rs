//! The parts of the services' answers the tables show. JSON output prints the answers as they came
//! (every field); these types only read what a table needs, and ignore the rest, so a field added to
//! a service never breaks the command line.

use serde::Deserialize;

pub use pool_core::view::{Choice, Pool, Ranking};

/// One workload's decision from the monitor (`/workloads`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Scale {
    #[serde(rename = "desired-worker-scale")]
    pub desired: u32,
    pub workload: String,
    pub queue: String,
    pub decided_by: String,
    pub recommendation: u32,
    #[serde(default)]
    pub fallback: bool,
    #[serde(default)]
    pub source_up: bool,
    #[serde(default)]
    pub inputs: Option<QueueStats>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub observed_at: String,
}

/// The queue reading a scale decision used.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct QueueStats {
    pub messages_ready: u64,
    pub messages_unacknowledged: u64,
    pub consumers: u64,
    #[serde(default)]
    pub publish_rate: f64,
    #[serde(default)]
    pub ack_rate: f64,
}

/// A launch record of the launcher (`POST /launch`, `GET /launches`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Launch {
    pub launch_id: String,
    pub application: String,
    pub state: String,
    #[serde(default)]
    pub pool_id: Option<String>,
    #[serde(default)]
    pub size: Option<String>,
    #[serde(default)]
    pub max_attempts: Option<u32>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
}

impl Launch {
    /// No more attempts will be made.
    pub fn is_finished(&self) -> bool {
        matches!(self.state.as_str(), "COMPLETED" | "FAILED" | "CANCELLED")
    }
}

/// One attempt of a launch, on one pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Attempt {
    pub attempt: u32,
    #[serde(default)]
    pub pool_id: String,
    pub state: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub submitted_at: String,
    #[serde(default)]
    pub finished_at: Option<String>,
}

/// `GET /launches`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Launches {
    pub launches: Vec<Launch>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_ignored_and_optional_ones_default() {
        let c: Choice = serde_json::from_str(
            r#"{"pool_id":"pool-c6a.xlarge-us-east-1a","instance_type":"c6a.xlarge",
                "availability_zone":"us-east-1a","jobs":10,"spot_terminations":1,
                "termination_rate":0.1,"ci_low":0.01,"ci_high":0.3,"score":0.12,
                "strategy":"pooled","window_seconds":0,"candidates":3,"probability_best":0.5,
                "something_new":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(c.pool.jobs, 10);
        assert!(c.alternatives.is_empty());
        assert_eq!(c.margin, None);
    }

    #[test]
    fn a_launch_knows_when_it_is_over() {
        let l: Launch = serde_json::from_str(
            r#"{"launch_id":"x","application":"astronauts","state":"RUNNING","attempts":[]}"#,
        )
        .unwrap();
        assert!(!l.is_finished());
    }
}
