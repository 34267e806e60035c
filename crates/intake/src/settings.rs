//! The intake's configuration: flags with environment fallbacks.

use std::time::Duration;

use clap::{Args, Parser};

use pool_amqp::AmqpArgs;
use pool_core::duration::{
    parse_arg as parse_duration, parse_positive_arg as parse_positive_duration,
};
use pool_service::config::{ListenArgs, TelemetryArgs};

/// Port the intake listens on when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8000;

/// Default largest accepted body: 16 MiB, about 100,000 events.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Default `MAX_CLOCK_SKEW`.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (1e-6..=1e6).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate between 0.000001 and 1000000 per second"
        )),
    }
}

/// Everything the `intake` binary reads from flags and the environment.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "intake",
    version,
    about = "Accepts job events over HTTP (POST /events) and publishes them to RabbitMQ with publisher confirms."
)]
pub struct Settings {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// RabbitMQ, where `POST /events` publishes (AMQP_URL, AMQP_EXCHANGE, …; see pool_amqp).
    #[command(flatten)]
    pub amqp: AmqpArgs,
    #[command(flatten)]
    pub intake: IntakeArgs,
    /// Largest `POST /events` body in bytes (larger ones get a 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Events stamped further ahead of this server's clock are refused by `POST /events` (a 400
    /// naming `finished_at`): a producer's skewed or forged clock must not write the future.
    #[arg(long, env = "MAX_CLOCK_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub max_clock_skew: Duration,
    /// After SIGTERM: how long requests in flight get to finish (a publish waits up to
    /// `AMQP_CONFIRM_TIMEOUT` for its confirm). Must be longer than `AMQP_CONFIRM_TIMEOUT`, or an
    /// accepted request could be cut off before its answer; default `AMQP_CONFIRM_TIMEOUT` + 5s. On
    /// Kubernetes, `terminationGracePeriodSeconds` must cover the preStop pause plus this.
    #[arg(long, env = "SHUTDOWN_GRACE", value_parser = parse_positive_duration)]
    pub shutdown_grace: Option<Duration>,
}

/// Who may `POST /events`, and how much.
#[derive(Args, Debug, Clone)]
pub struct IntakeArgs {
    /// Bearer tokens allowed to `POST /events`, comma-separated (mount them from a Secret). Unset:
    /// the intake is off and `POST /events` answers 404.
    #[arg(
        long,
        env = "INTAKE_TOKENS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub intake_tokens: Vec<String>,
    /// Requests per second each token may make, steady (fractions allowed, e.g. 0.5); bursts up to
    /// `INTAKE_BURST`; past it, 429 with `Retry-After`.
    #[arg(long, env = "INTAKE_RATE_PER_SECOND", default_value_t = 50.0, value_parser = parse_rate)]
    pub intake_rate_per_second: f64,
    /// Requests a token may make at once above its steady rate.
    #[arg(long, env = "INTAKE_BURST", default_value_t = 100)]
    pub intake_burst: u32,
    /// Request bodies read at once; past it, `503 {"error":"busy"}` with `Retry-After`.
    #[arg(long, env = "INTAKE_MAX_CONCURRENT", default_value_t = 8)]
    pub intake_max_concurrent: usize,
    /// Longest time to receive one request body; a slower client gets a 408.
    #[arg(long, env = "INTAKE_BODY_TIMEOUT", default_value = "30s", value_parser = parse_positive_duration)]
    pub intake_body_timeout: Duration,
    /// Requests with a missing or wrong token one client address may send within
    /// `INTAKE_AUTH_FAILURE_WINDOW`; past it, every `POST /events` from that address is a 429 with
    /// `Retry-After` until the window (counted from its first failure) ends.
    #[arg(long, env = "INTAKE_AUTH_FAILURES", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub intake_auth_failures: u32,
    /// See `INTAKE_AUTH_FAILURES`.
    #[arg(long, env = "INTAKE_AUTH_FAILURE_WINDOW", default_value = "10m", value_parser = parse_positive_duration)]
    pub intake_auth_failure_window: Duration,
}

impl Default for IntakeArgs {
    /// The flags' defaults, with no token (the intake off).
    fn default() -> Self {
        Self {
            intake_tokens: vec![],
            intake_rate_per_second: 50.0,
            intake_burst: 100,
            intake_max_concurrent: 8,
            intake_body_timeout: Duration::from_secs(30),
            intake_auth_failures: 10,
            intake_auth_failure_window: Duration::from_secs(600),
        }
    }
}

impl Settings {
    /// Settings for tests and tools: the built-in defaults (the environment is not read), listening on
    /// 127.0.0.1 on a free port, publishing with `amqp`.
    pub fn for_amqp(amqp: AmqpArgs) -> Self {
        let mut listen = ListenArgs::new("127.0.0.1", 0);
        listen.workers = Some(2);
        Self {
            listen,
            telemetry: TelemetryArgs::default(),
            amqp,
            intake: IntakeArgs::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            shutdown_grace: None,
        }
    }

    pub fn port(&self) -> u16 {
        self.listen.port.unwrap_or(DEFAULT_PORT)
    }

    /// How long requests in flight get after SIGTERM: `SHUTDOWN_GRACE`, or the confirm timeout plus
    /// [`SHUTDOWN_MARGIN`]. An error when it is not longer than `AMQP_CONFIRM_TIMEOUT`: a request
    /// waiting for its confirm would be cut off and its producer left not knowing.
    pub fn shutdown_grace(&self) -> Result<Duration, String> {
        let confirm = self.amqp.confirm_timeout;
        match self.shutdown_grace {
            None => Ok(confirm + SHUTDOWN_MARGIN),
            Some(g) if g > confirm => Ok(g),
            Some(g) => Err(format!(
                "SHUTDOWN_GRACE ({g:?}) must be longer than AMQP_CONFIRM_TIMEOUT ({confirm:?}): a \
                 request waiting for its confirm would be cut off at shutdown"
            )),
        }
    }
}

/// What the default shutdown grace adds to the confirm timeout.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_settings_are_the_flags_defaults() {
        let parsed = Settings::try_parse_from(["intake"]).unwrap();
        let built = Settings::for_amqp(AmqpArgs::default());
        let (p, b) = (&parsed.intake, &built.intake);
        assert_eq!(p.intake_rate_per_second, b.intake_rate_per_second);
        assert_eq!(p.intake_burst, b.intake_burst);
        assert_eq!(p.intake_max_concurrent, b.intake_max_concurrent);
        assert_eq!(p.intake_body_timeout, b.intake_body_timeout);
        assert_eq!(parsed.max_body_bytes, built.max_body_bytes);
        assert_eq!(parsed.max_clock_skew, built.max_clock_skew);
        assert_eq!(p.intake_auth_failures, b.intake_auth_failures);
        assert_eq!(p.intake_auth_failure_window, b.intake_auth_failure_window);
        assert_eq!(parsed.shutdown_grace, built.shutdown_grace);
    }

    #[test]
    fn the_shutdown_grace_outlasts_the_confirm_timeout() {
        let s = Settings::try_parse_from(["intake"]).unwrap();
        assert_eq!(s.amqp.confirm_timeout, Duration::from_secs(30));
        assert_eq!(s.shutdown_grace(), Ok(Duration::from_secs(35)));
        let s = Settings::try_parse_from(["intake", "--amqp-confirm-timeout", "90s"]).unwrap();
        assert_eq!(s.shutdown_grace(), Ok(Duration::from_secs(95)));
        let s = Settings::try_parse_from(["intake", "--shutdown-grace", "60s"]).unwrap();
        assert_eq!(s.shutdown_grace(), Ok(Duration::from_secs(60)));
        let s = Settings::try_parse_from(["intake", "--shutdown-grace", "30s"]).unwrap();
        assert!(
            s.shutdown_grace().is_err(),
            "not longer than the confirm timeout"
        );
    }

    #[test]
    fn tokens_and_limits_parse_from_flags() {
        let s = Settings::try_parse_from([
            "intake",
            "--intake-tokens",
            "a,b",
            "--intake-rate-per-second",
            "0.5",
            "--intake-body-timeout",
            "2s",
            "--max-clock-skew",
            "90s",
            "--port",
            "9000",
        ])
        .unwrap();
        assert_eq!(s.intake.intake_tokens, ["a", "b"]);
        assert_eq!(s.intake.intake_rate_per_second, 0.5);
        assert_eq!(s.intake.intake_body_timeout, Duration::from_secs(2));
        assert_eq!(s.max_clock_skew, Duration::from_secs(90));
        assert_eq!(s.port(), 9000);
        assert!(Settings::try_parse_from(["intake", "--intake-rate-per-second", "0"]).is_err());
        assert!(Settings::try_parse_from(["intake", "--intake-body-timeout", "0s"]).is_err());
    }
}
