//! Configuration: clap flags with environment fallbacks, validated once into [`MonitorConfig`].
//!
//! The common case is one scaled workload described by single variables (`AMQP_QUEUE`,
//! `MIN_REPLICAS`, …). Several workloads are given as a JSON array in `WORKLOADS`; a field an entry
//! leaves out takes the single-workload setting, so shared targets are written once.
//!
//! Everything that can be wrong is checked here, before a port is bound, and reported as a
//! [`ConfigError`] naming the variable: a monitor that starts with `MIN_REPLICAS > MAX_REPLICAS` would
//! publish nonsense to the HPA for as long as nobody reads its logs.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::{Args, Parser};
use pool_service::config::{ListenArgs, TelemetryArgs};
use serde::Deserialize;

use crate::decision::Policy;
use crate::source::{ManagementUrl, UrlError};

/// Port the monitor listens on when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8090;

pub use pool_core::duration::parse_arg as parse_interval;

/// Where the queue statistics come from.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// RabbitMQ management API base URL; credentials in it are sent as basic auth, never logged.
    #[arg(
        long,
        env = "RABBITMQ_MANAGEMENT_URL",
        default_value = "http://guest:guest@127.0.0.1:15672",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub rabbitmq_management_url: String,
    /// Virtual host of the queues (a workload in WORKLOADS may override it).
    #[arg(long, env = "RABBITMQ_VHOST", default_value = "/")]
    pub rabbitmq_vhost: String,
    /// How often the queues are read (e.g. 500ms, 5s).
    #[arg(long, env = "POLL_INTERVAL", default_value = "5s", value_parser = parse_interval)]
    pub poll_interval: Duration,
    /// Timeout of one management API request.
    #[arg(long, env = "SOURCE_TIMEOUT", default_value = "3s", value_parser = parse_interval)]
    pub source_timeout: Duration,
    /// PEM bundle of the CA that signs an `https://` management API's certificate (besides the
    /// system roots).
    #[arg(long = "management-ca-file", env = "TLS_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// The single scaled workload (or the defaults for entries of `WORKLOADS`).
#[derive(Args, Debug, Clone)]
pub struct WorkloadArgs {
    /// Name of the scaled workload (the `workload` label of the metrics).
    #[arg(long, env = "WORKLOAD_NAME", default_value = "ingest-worker")]
    pub workload_name: String,
    /// Queue whose backlog drives the workload (the same variable the ingest-worker consumes from).
    #[arg(long = "queue", env = "AMQP_QUEUE", default_value = pool_service::config::DEFAULT_QUEUE)]
    pub queue: String,
    /// Fewest replicas published (0 allows scale to zero).
    #[arg(long, env = "MIN_REPLICAS", default_value_t = 1)]
    pub min_replicas: u32,
    /// Most replicas published.
    #[arg(long, env = "MAX_REPLICAS", default_value_t = 10)]
    pub max_replicas: u32,
    /// Ready messages per worker (KEDA QueueLength value): backlog rule = ceil(ready / this).
    #[arg(long, env = "TARGET_BACKLOG_PER_WORKER", default_value_t = 1000)]
    pub target_backlog_per_worker: u64,
    /// Messages per second one worker handles; used until a saturated measurement exists.
    #[arg(long, env = "WORKER_CAPACITY_PER_SECOND")]
    pub worker_capacity_per_second: Option<f64>,
    /// Clear the backlog within this time on top of arrivals (seconds, or 90s, 2m).
    #[arg(long, env = "TARGET_DRAIN_SECONDS", default_value = "60", value_parser = parse_interval)]
    pub target_drain_seconds: Duration,
    /// Stay at MIN_REPLICAS until more than this many messages are ready.
    #[arg(long, env = "ACTIVATION_BACKLOG", default_value_t = 0)]
    pub activation_backlog: u64,
    /// Scale down only to the highest recommendation of this window (0 disables).
    #[arg(long, env = "SCALE_DOWN_STABILIZATION", default_value = "300s", value_parser = parse_interval)]
    pub scale_down_stabilization: Duration,
    /// Replicas published while the queue cannot be read (default: max(MIN_REPLICAS, 1)).
    #[arg(long, env = "FALLBACK_REPLICAS")]
    pub fallback_replicas: Option<u32>,
}

/// Everything the `monitor` binary reads from flags and the environment.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "monitor",
    version,
    about = "Publishes the desired ingest-worker scale from RabbitMQ queue statistics for the Kubernetes HPA."
)]
pub struct Settings {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    /// JSON array of workloads, e.g. [{"name":"ingest-worker","queue":"events.ingest","max_replicas":20}];
    /// omitted fields take the single-workload settings. Replaces the single workload.
    #[arg(long, env = "WORKLOADS")]
    pub workloads: Option<String>,
}

impl Settings {
    /// The built-in defaults (the same as the flags' defaults), ignoring the environment: the
    /// starting point for tests, which then change what they exercise.
    pub fn defaults() -> Self {
        Settings {
            listen: ListenArgs::new("127.0.0.1", 0),
            telemetry: TelemetryArgs::default(),
            source: SourceArgs {
                rabbitmq_management_url: "http://guest:guest@127.0.0.1:15672".into(),
                rabbitmq_vhost: "/".into(),
                poll_interval: Duration::from_secs(5),
                source_timeout: Duration::from_secs(3),
                ca_file: None,
            },
            workload: WorkloadArgs {
                workload_name: "ingest-worker".into(),
                queue: pool_service::config::DEFAULT_QUEUE.into(),
                min_replicas: 1,
                max_replicas: 10,
                target_backlog_per_worker: 1000,
                worker_capacity_per_second: None,
                target_drain_seconds: Duration::from_secs(60),
                activation_backlog: 0,
                scale_down_stabilization: Duration::from_secs(300),
                fallback_replicas: None,
            },
            workloads: None,
        }
    }

    /// Check everything and produce the configuration the application runs with.
    pub fn validate(&self) -> Result<MonitorConfig, ConfigError> {
        let url = ManagementUrl::parse(&self.source.rabbitmq_management_url)?;
        if self.source.poll_interval < Duration::from_millis(100) {
            return Err(ConfigError::invalid(
                "POLL_INTERVAL",
                "must be at least 100ms (the broker samples statistics every few seconds anyway)",
            ));
        }
        if self.source.source_timeout.is_zero() {
            return Err(ConfigError::invalid("SOURCE_TIMEOUT", "must be positive"));
        }
        if self.source.rabbitmq_vhost.is_empty() {
            return Err(ConfigError::invalid(
                "RABBITMQ_VHOST",
                "must not be empty (the default vhost is \"/\")",
            ));
        }
        let workloads = match &self.workloads {
            None => vec![workload_from_args(
                &self.workload,
                &self.source.rabbitmq_vhost,
                "",
            )?],
            Some(json) => {
                let specs: Vec<WorkloadSpec> = serde_json::from_str(json).map_err(|e| {
                    ConfigError::invalid("WORKLOADS", format!("not a JSON array of workloads: {e}"))
                })?;
                if specs.is_empty() {
                    return Err(ConfigError::invalid("WORKLOADS", "the array is empty"));
                }
                let mut out = Vec::with_capacity(specs.len());
                let mut names = BTreeSet::new();
                for (i, spec) in specs.into_iter().enumerate() {
                    let w = spec.merge(&self.workload, &self.source.rabbitmq_vhost, i)?;
                    if !names.insert(w.name.clone()) {
                        return Err(ConfigError::invalid(
                            "WORKLOADS",
                            format!("workload name {:?} appears twice", w.name),
                        ));
                    }
                    out.push(w);
                }
                out
            }
        };
        let management_ca = self
            .source
            .ca_file
            .as_deref()
            .map(pool_service::tls::read_ca_pem)
            .transpose()
            .map_err(|e| ConfigError::invalid("TLS_CA_FILE", e.to_string()))?;
        Ok(MonitorConfig {
            listen: self.listen.clone(),
            management_url: url,
            management_ca,
            poll_interval: self.source.poll_interval,
            source_timeout: self.source.source_timeout,
            workloads,
        })
    }
}

/// A start-up configuration error: which setting, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
}

impl ConfigError {
    fn invalid(setting: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// One scaled workload, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    pub name: String,
    pub vhost: String,
    pub queue: String,
    pub policy: Policy,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    pub listen: ListenArgs,
    pub management_url: ManagementUrl,
    /// PEM of the CA trusted for an `https://` management URL (TLS_CA_FILE).
    pub management_ca: Option<Vec<u8>>,
    pub poll_interval: Duration,
    pub source_timeout: Duration,
    pub workloads: Vec<WorkloadConfig>,
}

/// A duration in `WORKLOADS`: seconds as a number, or a string such as `"90s"` or `"5m"`.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum DurationSpec {
    Seconds(f64),
    Text(String),
}

impl DurationSpec {
    fn to_duration(&self, setting: &str) -> Result<Duration, ConfigError> {
        match self {
            DurationSpec::Seconds(s) if s.is_finite() && *s >= 0.0 && *s < 1e9 => {
                Ok(Duration::from_secs_f64(*s))
            }
            DurationSpec::Seconds(s) => Err(ConfigError::invalid(
                setting,
                format!("{s} is not a number of seconds"),
            )),
            DurationSpec::Text(t) => {
                parse_interval(t).map_err(|m| ConfigError::invalid(setting, m))
            }
        }
    }
}

/// One entry of `WORKLOADS`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct WorkloadSpec {
    name: String,
    queue: Option<String>,
    vhost: Option<String>,
    min_replicas: Option<u32>,
    max_replicas: Option<u32>,
    target_backlog_per_worker: Option<u64>,
    worker_capacity_per_second: Option<f64>,
    target_drain_seconds: Option<DurationSpec>,
    activation_backlog: Option<u64>,
    scale_down_stabilization: Option<DurationSpec>,
    fallback_replicas: Option<u32>,
}

impl WorkloadSpec {
    fn merge(
        self,
        d: &WorkloadArgs,
        vhost: &str,
        index: usize,
    ) -> Result<WorkloadConfig, ConfigError> {
        let prefix = format!("WORKLOADS[{index}].");
        let args = WorkloadArgs {
            workload_name: self.name,
            queue: self.queue.unwrap_or_else(|| d.queue.clone()),
            min_replicas: self.min_replicas.unwrap_or(d.min_replicas),
            max_replicas: self.max_replicas.unwrap_or(d.max_replicas),
            target_backlog_per_worker: self
                .target_backlog_per_worker
                .unwrap_or(d.target_backlog_per_worker),
            worker_capacity_per_second: self
                .worker_capacity_per_second
                .or(d.worker_capacity_per_second),
            target_drain_seconds: match self.target_drain_seconds {
                Some(s) => s.to_duration(&format!("{prefix}target_drain_seconds"))?,
                None => d.target_drain_seconds,
            },
            activation_backlog: self.activation_backlog.unwrap_or(d.activation_backlog),
            scale_down_stabilization: match self.scale_down_stabilization {
                Some(s) => s.to_duration(&format!("{prefix}scale_down_stabilization"))?,
                None => d.scale_down_stabilization,
            },
            // Unset here and in FALLBACK_REPLICAS: max(this entry's min_replicas, 1).
            fallback_replicas: self.fallback_replicas.or(d.fallback_replicas),
        };
        workload_from_args(&args, self.vhost.as_deref().unwrap_or(vhost), &prefix)
    }
}

/// Validate one workload. `prefix` is `""` for the single-workload variables and `WORKLOADS[i].` for
/// entries, so the error names the exact setting to fix.
fn workload_from_args(
    a: &WorkloadArgs,
    vhost: &str,
    prefix: &str,
) -> Result<WorkloadConfig, ConfigError> {
    let name = |env: &str, field: &str| {
        if prefix.is_empty() {
            env.to_owned()
        } else {
            format!("{prefix}{field}")
        }
    };
    if a.workload_name.trim().is_empty() {
        return Err(ConfigError::invalid(
            name("WORKLOAD_NAME", "name"),
            "must not be empty",
        ));
    }
    if a.queue.is_empty() {
        return Err(ConfigError::invalid(
            name("AMQP_QUEUE", "queue"),
            "must not be empty",
        ));
    }
    if vhost.is_empty() {
        return Err(ConfigError::invalid(
            name("RABBITMQ_VHOST", "vhost"),
            "must not be empty",
        ));
    }
    if a.max_replicas == 0 {
        return Err(ConfigError::invalid(
            name("MAX_REPLICAS", "max_replicas"),
            "must be at least 1",
        ));
    }
    if a.min_replicas > a.max_replicas {
        return Err(ConfigError::invalid(
            name("MIN_REPLICAS", "min_replicas"),
            format!(
                "{} is greater than {} {}",
                a.min_replicas,
                name("MAX_REPLICAS", "max_replicas"),
                a.max_replicas
            ),
        ));
    }
    if a.target_backlog_per_worker == 0 {
        return Err(ConfigError::invalid(
            name("TARGET_BACKLOG_PER_WORKER", "target_backlog_per_worker"),
            "must be at least 1 (it divides the backlog)",
        ));
    }
    if let Some(c) = a.worker_capacity_per_second
        && !(c.is_finite() && c > 0.0)
    {
        return Err(ConfigError::invalid(
            name("WORKER_CAPACITY_PER_SECOND", "worker_capacity_per_second"),
            format!("{c} is not a positive number of messages per second"),
        ));
    }
    if a.target_drain_seconds.is_zero() {
        return Err(ConfigError::invalid(
            name("TARGET_DRAIN_SECONDS", "target_drain_seconds"),
            "must be positive (it divides the backlog)",
        ));
    }
    let fallback = a.fallback_replicas.unwrap_or_else(|| a.min_replicas.max(1));
    if fallback < a.min_replicas || fallback > a.max_replicas {
        return Err(ConfigError::invalid(
            name("FALLBACK_REPLICAS", "fallback_replicas"),
            format!(
                "{fallback} is outside [{}, {}] (MIN_REPLICAS, MAX_REPLICAS)",
                a.min_replicas, a.max_replicas
            ),
        ));
    }
    Ok(WorkloadConfig {
        name: a.workload_name.trim().to_owned(),
        vhost: vhost.to_owned(),
        queue: a.queue.clone(),
        policy: Policy {
            min_replicas: a.min_replicas,
            max_replicas: a.max_replicas,
            target_backlog_per_worker: a.target_backlog_per_worker,
            worker_capacity_per_second: a.worker_capacity_per_second,
            target_drain: a.target_drain_seconds,
            activation_backlog: a.activation_backlog,
            scale_down_stabilization: a.scale_down_stabilization,
            fallback_replicas: fallback,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &Settings) -> String {
        s.validate().unwrap_err().to_string()
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_interval("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_interval("fast").is_err());
        assert!(parse_interval("-1s").is_err());
    }

    #[test]
    fn defaults_validate() {
        let c = Settings::defaults().validate().unwrap();
        assert_eq!(c.workloads.len(), 1);
        let w = &c.workloads[0];
        assert_eq!(
            (w.name.as_str(), w.queue.as_str(), w.vhost.as_str()),
            ("ingest-worker", "events.ingest", "/")
        );
        assert_eq!(w.policy.fallback_replicas, 1);
        assert_eq!(c.management_url.redacted(), "http://127.0.0.1:15672/");
    }

    #[test]
    fn min_above_max_names_both() {
        let mut s = Settings::defaults();
        s.workload.min_replicas = 5;
        s.workload.max_replicas = 3;
        assert_eq!(err(&s), "MIN_REPLICAS: 5 is greater than MAX_REPLICAS 3");
    }

    #[test]
    fn zero_targets_are_refused() {
        let mut s = Settings::defaults();
        s.workload.target_backlog_per_worker = 0;
        assert!(err(&s).starts_with("TARGET_BACKLOG_PER_WORKER: must be at least 1"));
        let mut s = Settings::defaults();
        s.workload.worker_capacity_per_second = Some(0.0);
        assert!(err(&s).starts_with("WORKER_CAPACITY_PER_SECOND:"));
        let mut s = Settings::defaults();
        s.workload.target_drain_seconds = Duration::ZERO;
        assert!(err(&s).starts_with("TARGET_DRAIN_SECONDS:"));
        let mut s = Settings::defaults();
        s.workload.max_replicas = 0;
        s.workload.min_replicas = 0;
        assert!(err(&s).starts_with("MAX_REPLICAS: must be at least 1"));
    }

    #[test]
    fn fallback_outside_limits_is_refused() {
        let mut s = Settings::defaults();
        s.workload.fallback_replicas = Some(11);
        assert!(err(&s).starts_with("FALLBACK_REPLICAS: 11 is outside [1, 10]"));
        let mut s = Settings::defaults();
        s.workload.min_replicas = 0;
        assert_eq!(
            s.validate().unwrap().workloads[0].policy.fallback_replicas,
            1
        );
    }

    #[test]
    fn bad_url_is_refused() {
        let mut s = Settings::defaults();
        s.source.rabbitmq_management_url = "ftp://u:pw@h".into();
        let e = err(&s);
        assert!(e.contains("use http:// or https://"), "{e}");
        assert!(!e.contains("pw"), "{e}");
    }

    #[test]
    fn workloads_json_inherits_single_settings() {
        let mut s = Settings::defaults();
        s.workload.max_replicas = 30;
        s.workload.worker_capacity_per_second = Some(200.0);
        s.workloads = Some(
            r#"[{"name":"ingest-worker","queue":"events.ingest"},
                {"name":"replayer","queue":"events.replay","vhost":"batch","min_replicas":0,
                 "max_replicas":4,"target_drain_seconds":"2m","scale_down_stabilization":30}]"#
                .into(),
        );
        let c = s.validate().unwrap();
        assert_eq!(c.workloads.len(), 2);
        assert_eq!(c.workloads[0].policy.max_replicas, 30);
        assert_eq!(
            c.workloads[0].policy.worker_capacity_per_second,
            Some(200.0)
        );
        let r = &c.workloads[1];
        assert_eq!(
            (r.vhost.as_str(), r.queue.as_str()),
            ("batch", "events.replay")
        );
        assert_eq!(r.policy.max_replicas, 4);
        assert_eq!(r.policy.min_replicas, 0);
        assert_eq!(r.policy.fallback_replicas, 1);
        assert_eq!(r.policy.target_drain, Duration::from_secs(120));
        assert_eq!(r.policy.scale_down_stabilization, Duration::from_secs(30));
    }

    #[test]
    fn workloads_json_errors_name_the_entry() {
        let mut s = Settings::defaults();
        s.workloads = Some(r#"[{"name":"a","min_replicas":9,"max_replicas":2}]"#.into());
        assert_eq!(
            err(&s),
            "WORKLOADS[0].min_replicas: 9 is greater than WORKLOADS[0].max_replicas 2"
        );
        s.workloads = Some(r#"[{"name":"a"},{"name":"a"}]"#.into());
        assert!(err(&s).contains("appears twice"));
        s.workloads = Some(r#"[{"name":"a","max_replica":3}]"#.into());
        assert!(
            err(&s).contains("unknown field `max_replica`"),
            "{}",
            err(&s)
        );
        s.workloads = Some("[]".into());
        assert!(err(&s).contains("empty"));
        s.workloads = Some(r#"[{"name":"a","target_backlog_per_worker":0}]"#.into());
        assert!(err(&s).starts_with("WORKLOADS[0].target_backlog_per_worker"));
    }
}
