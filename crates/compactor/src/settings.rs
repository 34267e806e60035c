//! compactor's configuration: flags with environment fallbacks.

use std::time::Duration;

use clap::Parser;

use pool_core::duration::{
    parse_arg as parse_settle, parse_positive_arg as parse_positive_duration,
};
use pool_history::compact::Shard;
use pool_history::rollup::SigningKey;
use pool_service::config::{ListenArgs, TelemetryArgs};
use pool_storage::StorageArgs;

use crate::report::ReportFormat;

/// Port of `/health` and `/metrics` in `--every` mode.
pub const DEFAULT_PORT: u16 = 9107;

#[derive(Parser, Debug, Clone)]
#[command(
    name = "compactor",
    version,
    about = "Compacts closed hours of job events into rollups that pool-selector reads."
)]
pub struct Settings {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// One pass, then exit (a Kubernetes CronJob or Job).
    #[arg(long, conflicts_with = "every")]
    pub once: bool,
    /// With `--once`: print the pass's summary on standard output, as a sentence (`text`) or a JSON
    /// object (`json`).
    #[arg(long, value_enum, default_value_t = ReportFormat::None, requires = "once")]
    pub report: ReportFormat,
    /// A pass every this long (e.g. 5m), serving /health and /metrics meanwhile (a Deployment).
    #[arg(long, env = "COMPACT_EVERY", value_parser = parse_positive_duration)]
    pub every: Option<Duration>,
    /// How long after an hour ends it is compacted, so events still in flight land first.
    #[arg(long, env = "SETTLE", default_value = "10m", value_parser = parse_settle)]
    pub settle: Duration,
    /// This copy's share of the hours, I/N (e.g. an Indexed Job's `$(JOB_COMPLETION_INDEX)/4`).
    #[arg(long, env = "COMPACTOR_SHARD", default_value = "0/1")]
    pub shard: Shard,
    /// Hours compacted at once (default: one per core).
    #[arg(long, env = "COMPACTOR_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Secret that signs the rollups written, and that rollups read back (day merges) must be signed with (HMAC-SHA256 over each rollup's manifest and rows): set the same value
    /// (from a Secret) on the compactor and pool-selector. Unset: rollups are neither signed nor checked.
    #[arg(long, env = "ROLLUP_HMAC_KEY", hide_env_values = true, value_parser = SigningKey::parse_arg)]
    pub rollup_hmac_key: Option<SigningKey>,
}

impl Settings {
    /// Settings for tests and tools: one pass over `events_url`, no settle time, port 0 on 127.0.0.1.
    pub fn for_events_url(events_url: &str) -> Self {
        let mut s = Settings::parse_from(["compactor", "--once"]);
        s.listen = ListenArgs::new("127.0.0.1", 0);
        s.listen.workers = Some(1);
        s.storage = StorageArgs::for_url(events_url);
        s.settle = Duration::ZERO;
        s
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency.filter(|c| *c > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        })
    }
}
