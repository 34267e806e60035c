//! The command line: flags with environment fallbacks (`poolctl --help`, `poolctl <command> --help`).
//! Every URL defaults to the local stack (`make up`, ports in deploy/stack.toml), so after `make up`
//! no setting is needed.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::output::Format;

/// The relay of the local stack (`make up`): STACK_RELAY_PORT.
pub const DEFAULT_RELAY_URL: &str = "http://127.0.0.1:16080";
/// The monitor of the local stack: STACK_MONITOR_PORT.
pub const DEFAULT_MONITOR_URL: &str = "http://127.0.0.1:16095";
/// The intake of the local stack: STACK_INTAKE_PORT.
pub const DEFAULT_INTAKE_URL: &str = "http://127.0.0.1:16098";
/// The local stack's intake token (STACK_INTAKE_TOKEN's default).
pub const DEFAULT_INTAKE_TOKEN: &str = "dev-token";
/// The launcher of the local stack: STACK_LAUNCHER_PORT.
pub const DEFAULT_LAUNCHER_URL: &str = "http://127.0.0.1:16099";
/// The local stack's launcher token (STACK_LAUNCHER_TOKEN's default; caller `dev`).
pub const DEFAULT_LAUNCHER_TOKEN: &str = "dev-launcher-token";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "poolctl",
    version,
    about = "Ask Pool Selector which EC2 spot pool to run on, and more",
    long_about = "Ask Pool Selector which EC2 spot pool is least likely to lose a Spark job to a spot \
                  termination; see the ranking, the ingest workers' desired scale, send job events, and \
                  launch Spark applications on the best pool.\n\n\
                  Exit codes: 0 found, 1 no data, 2 usage error, 3 service error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every command shares.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The relay (or a pool-selector): where rankings are asked.
    #[arg(long = "url", env = "POOL_SELECTOR_URL", default_value = DEFAULT_RELAY_URL, global = true)]
    pub relay_url: String,
    /// The monitor: where `scale` reads the desired worker scale.
    #[arg(long, env = "MONITOR_URL", default_value = DEFAULT_MONITOR_URL, global = true)]
    pub monitor_url: String,
    /// The intake: where `events send` posts.
    #[arg(long, env = "INTAKE_URL", default_value = DEFAULT_INTAKE_URL, global = true)]
    pub intake_url: String,
    /// Bearer token for the intake (one of its INTAKE_TOKENS).
    #[arg(
        long,
        env = "INTAKE_TOKEN",
        default_value = DEFAULT_INTAKE_TOKEN,
        hide_env_values = true,
        global = true
    )]
    pub intake_token: String,
    /// The launcher: where `launch`, `launches` and `cancel` go.
    #[arg(long, env = "LAUNCHER_URL", default_value = DEFAULT_LAUNCHER_URL, global = true)]
    pub launcher_url: String,
    /// Bearer token for the launcher (one of its LAUNCHER_TOKENS; its caller owns the launches).
    #[arg(
        long,
        env = "LAUNCHER_TOKEN",
        default_value = DEFAULT_LAUNCHER_TOKEN,
        hide_env_values = true,
        global = true
    )]
    pub launcher_token: String,
    /// How the answer is printed.
    #[arg(short, long, env = "POOLCTL_OUTPUT", value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    /// Longest wait for one answer (e.g. 30s, 2m).
    #[arg(long, env = "POOLCTL_TIMEOUT", default_value = "30s",
          value_parser = pool_core::duration::parse_positive_arg, global = true)]
    pub timeout: Duration,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// The best pool for a job, with its evidence (and alternatives with -k).
    #[command(name = "get-pool")]
    GetPool {
        #[command(flatten)]
        filters: Filters,
        /// Answer with the pick and up to k − 1 alternatives in other zones or instance types (1–20).
        #[arg(short = 'k', long)]
        k: Option<String>,
        /// Pools never to pick, comma-separated (a retry after a termination goes elsewhere).
        #[arg(long, value_name = "POOL_IDS")]
        exclude: Option<String>,
    },
    /// The ranking, best first, each pool's interval drawn as a bar.
    Pools {
        #[command(flatten)]
        filters: Filters,
        /// At most this many pools (1–10000).
        #[arg(short, long)]
        limit: Option<String>,
    },
    /// The monitor's desired ingest-worker scale, per workload.
    Scale {
        /// Only this workload.
        #[arg(short, long)]
        workload: Option<String>,
    },
    /// Job events.
    Events {
        #[command(subcommand)]
        command: EventsCommand,
    },
    /// Launch a Spark application on the best pool (the launcher retries elsewhere after a spot
    /// termination).
    Launch(LaunchArgs),
    /// The launcher's launches, newest first; with an id, that launch and its attempts.
    Launches {
        /// One launch's id.
        id: Option<String>,
        /// Only launches in this state.
        #[arg(short, long, value_enum)]
        state: Option<LaunchState>,
        /// At most this many launches.
        #[arg(short, long)]
        limit: Option<u32>,
    },
    /// Cancel a launch.
    Cancel {
        /// The launch's id.
        id: String,
    },
    /// The dead-letter queue: `poolctl dlq replay [--limit N] [--dry-run]`.
    #[cfg(feature = "amqp")]
    Dlq {
        #[command(subcommand)]
        command: crate::dlq::DlqCommand,
    },
    /// Print a shell completion script: `poolctl completions bash > /etc/bash_completion.d/poolctl`.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Subcommand, Debug, Clone)]
pub enum EventsCommand {
    /// Send job events to the intake: a file (or `-` for stdin) of NDJSON, a JSON array or one JSON
    /// object. They are checked here first, with the intake's own rules.
    Send {
        /// The file, or `-` for standard input.
        file: PathBuf,
    },
    /// Migrate a seed history: stream the seed's single NDJSON object (events.json, a file or
    /// s3://bucket/key) into the hourly partitioned layout, in batches, through the intake (--via
    /// intake) or straight to storage (--to URL); resumable (--state FILE) and idempotent.
    Import(Box<crate::import::ImportArgs>),
}

/// Which pools a ranking considers, and how it ranks them.
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// Instance types, comma-separated `family.size` (e.g. c6a.xlarge,m6a.xlarge). Default: all.
    #[arg(short = 't', long)]
    pub instance_types: Option<String>,
    /// Availability zones, comma-separated (e.g. us-east-1a,us-east-1b). Default: all.
    #[arg(short = 'z', long = "zones", visible_alias = "availability-zones")]
    pub zones: Option<String>,
    /// Look-back window: 24h, 7d, 30m, seconds; 0 = all history. Default: the server's.
    #[arg(short, long)]
    pub window: Option<String>,
    /// pooled, thompson, wilson, bayes or naive. Default: the server's (pooled).
    #[arg(short, long)]
    pub strategy: Option<String>,
    /// Ignore pools with fewer jobs in the window.
    #[arg(long)]
    pub min_jobs: Option<String>,
    /// `thompson` only: seed of the draws, for a reproducible answer.
    #[arg(long)]
    pub seed: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct LaunchArgs {
    /// The application (a template of the launcher, e.g. astronauts).
    pub application: String,
    /// Instance types the job may run on, comma-separated.
    #[arg(short = 't', long, required = true)]
    pub instance_types: String,
    /// Availability zones, comma-separated. Default: any.
    #[arg(short = 'z', long = "zones", visible_alias = "availability-zones")]
    pub zones: Option<String>,
    /// Driver and executor sizing.
    #[arg(long, value_enum)]
    pub size: Option<Size>,
    /// Attempts at most (a spot termination relaunches on the next best pool).
    #[arg(long)]
    pub max_attempts: Option<u32>,
    /// Ranking strategy used to pick each attempt's pool.
    #[arg(short, long)]
    pub strategy: Option<String>,
    /// Look-back window of the ranking.
    #[arg(short, long)]
    pub window: Option<String>,
    /// Wait until the launch has finished (exit 0 when it completed, 3 otherwise).
    #[arg(long)]
    pub wait: bool,
    /// Makes the launch safe to retry: the same key and request return the first launch instead of
    /// starting another (1-255 visible ASCII characters, e.g. a UUID).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Arguments passed to the application, after `--`.
    #[arg(last = true)]
    pub arguments: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Size {
    Small,
    Medium,
    Large,
}

impl Size {
    pub fn as_str(self) -> &'static str {
        match self {
            Size::Small => "small",
            Size::Medium => "medium",
            Size::Large => "large",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "UPPER")]
pub enum LaunchState {
    Submitted,
    Running,
    Completed,
    Failed,
    Cancelled,
}

impl LaunchState {
    pub fn as_str(self) -> &'static str {
        match self {
            LaunchState::Submitted => "SUBMITTED",
            LaunchState::Running => "RUNNING",
            LaunchState::Completed => "COMPLETED",
            LaunchState::Failed => "FAILED",
            LaunchState::Cancelled => "CANCELLED",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_parse() {
        let cli = Cli::try_parse_from([
            "poolctl",
            "get-pool",
            "-t",
            "c6a.xlarge,m6a.xlarge",
            "-z",
            "us-east-1a",
            "--window",
            "24h",
            "-k",
            "3",
            "-o",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.global.output, Format::Json);
        match cli.command {
            Command::GetPool { filters, k, .. } => {
                assert_eq!(
                    filters.instance_types.as_deref(),
                    Some("c6a.xlarge,m6a.xlarge")
                );
                assert_eq!(filters.window.as_deref(), Some("24h"));
                assert_eq!(k.as_deref(), Some("3"));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from([
            "poolctl",
            "launch",
            "astronauts",
            "-t",
            "c6a.xlarge",
            "--",
            "--rows",
            "10",
        ])
        .unwrap();
        match cli.command {
            Command::Launch(a) => assert_eq!(a.arguments, ["--rows", "10"]),
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from(["poolctl", "launches", "--state", "RUNNING"]).is_ok());
        assert!(Cli::try_parse_from(["poolctl", "--timeout", "0s", "scale"]).is_err());
    }
}
