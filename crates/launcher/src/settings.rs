//! The launcher's configuration: flags with environment fallbacks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use pool_core::duration::parse_positive_arg as parse_positive_duration;
use pool_service::config::{ListenArgs, TelemetryArgs};

/// Port the launcher listens on when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8100;

/// Most attempts a launch may ask for: each one is a whole Spark run.
pub const MAX_ATTEMPTS_LIMIT: u32 = 10;

/// What `POST /launch` with no `instance_types` (the seed's bare `curl -X POST .../launch`) runs on:
/// x86 general-purpose, compute and memory families at xlarge, the sizes the ranking sees most.
pub const DEFAULT_INSTANCE_TYPES: &str = "c6a.xlarge,m6a.xlarge,r6a.xlarge,c6i.xlarge,m6i.xlarge,r6i.xlarge,c7i.xlarge,m7i.xlarge,r7i.xlarge";

/// Where runs happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// `spark-submit --master local[*]` on this machine (the embedded default).
    Local,
    /// `SparkApplication` objects for the Spark Operator, through the Kubernetes API.
    Kubernetes,
}

/// Everything the `launcher` binary reads from flags and the environment.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "launcher",
    version,
    about = "Places Spark jobs on the recommended spot pool and feeds each outcome back through the intake."
)]
pub struct Settings {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Who may call the launch routes: comma-separated `caller:token` pairs (mount them from a Secret).
    /// A launch belongs to its caller; `admin` sees and cancels every launch. Unset: the launch routes
    /// answer 401.
    #[arg(
        long,
        env = "LAUNCHER_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub launcher_tokens: Vec<String>,
    /// Folder of launch templates: `<name>.yaml` (a SparkApplication) with its job file beside it.
    #[arg(
        long,
        env = "LAUNCH_TEMPLATES",
        default_value = "deploy/launch-templates",
        global = true
    )]
    pub templates: PathBuf,
    /// Where the pool is asked for (`GET /get-pool`): the relay, or pool-selector itself.
    #[arg(long, env = "RELAY_URL", default_value = "http://127.0.0.1:8080")]
    pub relay_url: String,
    /// Where outcomes go (`POST /events`).
    #[arg(long, env = "INTAKE_URL", default_value = "http://127.0.0.1:8000")]
    pub intake_url: String,
    /// Bearer token for the intake (mount it from a Secret).
    #[arg(long, env = "INTAKE_TOKEN", hide_env_values = true)]
    pub intake_token: Option<String>,
    /// Timeout of each call to the relay or the intake.
    #[arg(long, env = "HTTP_CLIENT_TIMEOUT", default_value = "10s", value_parser = parse_positive_duration)]
    pub http_client_timeout: Duration,
    /// Durable launch state. Unset: state is kept in memory and lost when the launcher stops.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PEM bundle of the CA that signs a `rediss://` server's certificate (default: system roots).
    #[arg(long, env = "TLS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Prefix of every Redis key the launcher writes.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "launcher:")]
    pub redis_key_prefix: String,
    /// How long finished launches are kept (and listed).
    #[arg(long, env = "LAUNCH_RETENTION", default_value = "7d", value_parser = parse_positive_duration)]
    pub launch_retention: Duration,
    /// Where runs happen.
    #[arg(long, env = "BACKEND", value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,
    #[command(flatten)]
    pub local: LocalArgs,
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    /// How often running attempts are checked.
    #[arg(long, env = "POLL_INTERVAL", default_value = "1s", value_parser = parse_positive_duration)]
    pub poll_interval: Duration,
    /// Attempts of a launch that does not say (`max_attempts`), 1–10.
    #[arg(long, env = "DEFAULT_MAX_ATTEMPTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=MAX_ATTEMPTS_LIMIT as i64))]
    pub default_max_attempts: u32,
    /// Launches not yet finished at once; past it, `POST /launch` answers 429.
    #[arg(long, env = "MAX_ACTIVE_LAUNCHES", default_value_t = 100)]
    pub max_active_launches: usize,
    /// Longest an attempt may take from its submission; past it, its run is stopped and the attempt
    /// ends FAILED with reason TIMED_OUT (a run stuck pending does not hold a slot for ever).
    #[arg(long, env = "MAX_ATTEMPT_DURATION", default_value = "6h", value_parser = parse_positive_duration)]
    pub max_attempt_duration: Duration,
    /// The template a `POST /launch` without `application` runs (the seed's astronaut job).
    #[arg(long, env = "DEFAULT_APPLICATION", default_value = "astronauts")]
    pub default_application: String,
    /// Instance types of a `POST /launch` without `instance_types`, comma-separated.
    #[arg(
        long,
        env = "DEFAULT_INSTANCE_TYPES",
        value_delimiter = ',',
        default_value = DEFAULT_INSTANCE_TYPES
    )]
    pub default_instance_types: Vec<String>,
}

/// The `local` backend.
#[derive(Args, Debug, Clone)]
pub struct LocalArgs {
    /// The `spark-submit` to run (PySpark's, from `scripts/install-deps.sh`, is `.venv/bin/spark-submit`).
    #[arg(long, env = "SPARK_SUBMIT", default_value = "spark-submit")]
    pub spark_submit: String,
    /// Folder of the runs (one folder per attempt: its log, pid and exit code).
    #[arg(long, env = "SPARK_WORK_DIR", default_value = "data/launcher")]
    pub spark_work_dir: PathBuf,
    /// The generator's truth file: a local run on pool P ends as a spot termination with P's true
    /// probability (there is no spot market on a laptop).
    #[arg(long, env = "SIMULATE_TRUTH")]
    pub simulate_truth: Option<PathBuf>,
    /// With SIMULATE_TRUTH: do not run spark-submit; each attempt ends at once with its simulated outcome.
    #[arg(long, env = "SIMULATE_ONLY", default_value_t = false, action = clap::ArgAction::Set)]
    pub simulate_only: bool,
}

/// The `kubernetes` backend (the cluster comes from the in-cluster config or KUBECONFIG).
#[derive(Args, Debug, Clone)]
pub struct KubernetesArgs {
    /// Namespace the SparkApplications are created in.
    #[arg(long, env = "SPARK_NAMESPACE", default_value = "spark-jobs")]
    pub spark_namespace: String,
    /// ServiceAccount of the Spark driver (it creates the executor pods; k8s/base/spark-jobs.yaml makes
    /// `spark-driver`).
    #[arg(long, env = "SPARK_SERVICE_ACCOUNT", default_value = "spark-driver")]
    pub spark_service_account: String,
}

#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Print, as a JSON array, every SparkApplication the kubernetes backend would create for the
    /// templates: each template in each size, on a sample pool. For offline validation.
    Render {
        /// Pool the sample manifests target.
        #[arg(long, default_value = "pool-c6a.xlarge-us-east-1a")]
        pool: String,
    },
}

impl Settings {
    /// Settings for a test or an embedding: defaults, listening on `127.0.0.1:0`.
    pub fn for_tests(templates: PathBuf, relay_url: &str, intake_url: &str) -> Self {
        let mut s = Settings::parse_from(["launcher"]);
        s.listen = ListenArgs::new("127.0.0.1", 0);
        s.templates = templates;
        s.relay_url = relay_url.to_owned();
        s.intake_url = intake_url.to_owned();
        s
    }

    pub fn port(&self) -> u16 {
        DEFAULT_PORT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_lists_parse() {
        let s = Settings::try_parse_from(["launcher"]).unwrap();
        assert!(s.launcher_tokens.is_empty());
        assert_eq!(s.kubernetes.spark_service_account, "spark-driver");
        assert_eq!(s.default_application, "astronauts");
        assert_eq!(s.default_instance_types.len(), 9);
        assert_eq!(s.max_attempt_duration, Duration::from_secs(6 * 3600));
        let s = Settings::try_parse_from([
            "launcher",
            "--launcher-tokens",
            "alice:a,admin:b",
            "--default-instance-types",
            "c6a.xlarge",
            "--max-attempt-duration",
            "30m",
        ])
        .unwrap();
        assert_eq!(s.launcher_tokens, ["alice:a", "admin:b"]);
        assert_eq!(s.default_instance_types, ["c6a.xlarge"]);
        assert_eq!(s.max_attempt_duration, Duration::from_secs(1800));
        assert!(Settings::try_parse_from(["launcher", "--max-attempt-duration", "0s"]).is_err());
    }
}
