//! Command line and environment: every flag has a `GENERATOR_*` variable, and S3 settings come from
//! pool-core's [`StorageArgs`] (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use clap::Parser;
use pool_core::duration::parse_arg as parse_flush;
use pool_core::event::{PoolId, parse_timestamp};
use pool_service::telemetry::TelemetryArgs;
use pool_storage::StorageArgs;

use crate::sink::{ObjectSinkOptions, SinkSettings, SinkUrl};
use pool_scenario::pools::PoolChoice;
use pool_scenario::{self as scenario, RateModel, ScenarioKind};

/// Longest backfill accepted: ten years.
pub const MAX_HOURS: f64 = 10.0 * 366.0 * 24.0;
/// Pools drawn from the catalogue when neither `--pools` nor `--pool-list` is given.
pub const DEFAULT_POOLS: usize = 32;
/// Backfill length when `--hours` is not given.
pub const DEFAULT_HOURS: f64 = 24.0;
/// Events of a backfill or a stream when `--events` is not given (a trickle runs until stopped).
pub const DEFAULT_EVENTS: u64 = 100_000;

/// Synthetic Spark job events with a hidden per-pool spot termination probability.
///
/// Without --rate it backfills: --events jobs whose finish times are spread uniformly over the --hours
/// before --end (default now). With --rate R > 0 it streams R events per second stamped with the current
/// time until --events have been written (0 = until Ctrl-C/SIGTERM). Output: hive-partitioned NDJSON
/// objects dt=YYYY-MM-DD/hr=HH/<name>.json; a one-line JSON summary goes to stdout.
///
/// With --scenario NAME a backfill simulates a world whose truth changes over time instead: its pools,
/// their traffic and their (time-varying) termination probabilities come from the scenario and the
/// seed, and jobs are drawn hour by hour (Poisson per pool and hour) over the --hours (default 336 = 14
/// days, whole hours) before --end. --events is then ignored (the world decides how many jobs there
/// are); --pools, --pool-list and --skew cannot be combined with it, nor can --rate.
///
/// With --trickle it does what seed 000's generator did: one random event stamped now, then a pause of
/// 0 to --trickle-max-gap (2 s), for ever (or until --events). Into a single object (s3://bucket/
/// events.json, ./events.json, or the seed's S3_BUCKET_NAME with S3_FILE_NAME=events.json) each event is
/// appended to it, as the seed did; that sink implies --trickle.
#[derive(Parser, Debug, Clone)]
#[command(name = "event-generator", version)]
pub struct Args {
    /// Where to write: a folder, file://DIR, s3://bucket/prefix or amqp://user:pass@host:port/vhost
    /// (RabbitMQ; names from the AMQP_* variables). Default: the storage location (EVENTS_URL, else
    /// ./data/events).
    #[arg(long, env = "GENERATOR_SINK", value_parser = clap::value_parser!(SinkUrl))]
    pub sink: Option<SinkUrl>,

    /// Number of events (0 = unbounded, streams and trickles only; default 100000, a trickle until
    /// stopped). Ignored with --scenario.
    #[arg(long, env = "GENERATOR_EVENTS")]
    pub events: Option<u64>,

    /// Events per second for a real-time stream stamped "now"; 0 = a backfill as fast as possible.
    #[arg(long, env = "GENERATOR_RATE", default_value_t = 0.0)]
    pub rate: f64,

    /// Backfill length: finish times are spread uniformly over the last H hours (default 24). With
    /// --scenario: a whole number of hours (default 336 = 14 days).
    #[arg(long, env = "GENERATOR_HOURS")]
    pub hours: Option<f64>,

    /// End of the backfill window (RFC 3339, or ISO 8601 without a zone = UTC). Default: now. Fix it
    /// (with --seed) for reproducible output.
    #[arg(long, env = "GENERATOR_END", value_parser = parse_end)]
    pub end: Option<DateTime<Utc>>,

    /// Random seed: the same seed and --end give byte-identical objects and keys. Default: random
    /// (printed in the summary).
    #[arg(long, env = "GENERATOR_SEED")]
    pub seed: Option<u64>,

    /// Number of pools drawn from the catalogue of instance types × zones.
    #[arg(long, env = "GENERATOR_POOLS", conflicts_with = "pool_list")]
    pub pools: Option<usize>,

    /// Explicit pool ids, comma separated (e.g. pool-c6a.xlarge-us-east-1a,pool-m6a.large-us-west-2b).
    #[arg(long, env = "GENERATOR_POOL_LIST", value_delimiter = ',', value_parser = parse_pool)]
    pub pool_list: Vec<PoolId>,

    /// Traffic skew: the k-th busiest pool gets a share proportional to 1/k^skew (0 = even).
    #[arg(long, env = "GENERATOR_SKEW", default_value_t = 1.0)]
    pub skew: f64,

    /// Probability that a job fails for a reason other than a spot termination.
    #[arg(long, env = "GENERATOR_OTHER_FAILURE_RATE", default_value_t = 0.02)]
    pub other_failure_rate: f64,

    /// Simulate a world whose truth changes over time (backfills only): stationary (150 pools, constant
    /// rates), long-tail (all 432 catalogue pools, most with a handful of jobs), regime-change (a quarter
    /// of the pools get 3-8x better or worse in the last 3 days), cold-start (30% of the pools only
    /// appear in the last 2 days), zone-outage (one zone's pools get 5x worse in the last day), outages
    /// (one region's and one family's pools 5x worse in the last day), spikes (transient 2-8 hour
    /// spikes anywhere), drift (slow log-linear drift) or seasonality (a daily cycle on the busiest
    /// pools).
    #[arg(
        long,
        env = "GENERATOR_SCENARIO",
        value_parser = scenario_parser(),
        conflicts_with_all = ["pools", "pool_list", "skew"],
    )]
    pub scenario: Option<ScenarioKind>,

    /// With --scenario: how the pools' base rates are drawn: structured (family x zone x pool noise,
    /// the default), unstructured (pool noise only), idiosyncratic (large pool noise), two-kinds (good
    /// and bad pools), size-effect (plus a size effect within each family), interaction (plus a family
    /// x zone effect) or bad-traffic (the busiest pools are the worst).
    #[arg(
        long,
        env = "GENERATOR_RATE_MODEL",
        default_value = "structured",
        value_parser = rate_model_parser(),
        requires = "scenario"
    )]
    pub rate_model: RateModel,

    /// Write the hidden per-pool parameters and the generated counts to this JSON file (with
    /// --scenario: each pool's rate over time as segments, with the counts generated in each).
    #[arg(long, env = "GENERATOR_TRUTH")]
    pub truth: Option<PathBuf>,

    /// Seed 000's endless trickle: one event stamped now, then a random pause of 0 to
    /// --trickle-max-gap, until stopped (or --events). Implied when the sink is a single object
    /// (`…/events.json`), which each event is appended to.
    #[arg(long, env = "GENERATOR_TRICKLE", conflicts_with = "scenario")]
    pub trickle: bool,

    /// Longest pause between two trickled events (pauses are uniform between 0 and this).
    #[arg(long, env = "GENERATOR_TRICKLE_MAX_GAP", default_value = "2s",
          value_parser = pool_core::duration::parse_positive_arg)]
    pub trickle_max_gap: Duration,

    /// Largest object written, in bytes (a partition's buffer is flushed when it reaches this size).
    #[arg(long, env = "GENERATOR_MAX_OBJECT_BYTES", default_value_t = 8 << 20)]
    pub max_object_bytes: usize,

    /// Streams only: flush a partition's buffer once it is this old, so readers see data while the
    /// generator runs (seconds, or 500ms / 5s / 1m).
    #[arg(long, env = "GENERATOR_FLUSH_INTERVAL", default_value = "5s", value_parser = parse_flush)]
    pub flush_interval: Duration,

    #[command(flatten)]
    pub storage: StorageArgs,

    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

fn parse_end(s: &str) -> Result<DateTime<Utc>, String> {
    parse_timestamp(s).map_err(|e| e.message)
}

fn scenario_parser() -> impl clap::builder::TypedValueParser<Value = ScenarioKind> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(ScenarioKind::ALL.map(ScenarioKind::as_str)).map(|s| {
        s.parse::<ScenarioKind>()
            .expect("the possible values are scenario names")
    })
}

fn rate_model_parser() -> impl clap::builder::TypedValueParser<Value = RateModel> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(RateModel::ALL.map(RateModel::as_str)).map(|s| {
        s.parse::<RateModel>()
            .expect("the possible values are rate model names")
    })
}

fn parse_pool(s: &str) -> Result<PoolId, String> {
    s.trim().parse::<PoolId>().map_err(|e| e.message)
}

/// A flag combination or value that does not make sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// How finish times are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Uniformly over `[start, end)`, as fast as possible.
    Backfill {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    /// `rate` events per second, stamped with the current time.
    Stream { rate: f64, started: DateTime<Utc> },
    /// Seed 000's trickle: one event stamped now, then a pause drawn uniformly from `[0, max_gap)`.
    Trickle { max_gap: Duration },
}

/// A checked run description.
#[derive(Debug, Clone)]
pub struct Plan {
    pub sink: SinkUrl,
    pub mode: Mode,
    /// `None` = until stopped (streams), or as many as the scenario draws (`scenario` set).
    pub events: Option<u64>,
    pub seed: u64,
    pub pools: PoolChoice,
    pub skew: f64,
    /// A backfill simulating this scenario's world over `mode`'s window (whole hours); `pools`,
    /// `skew` and `events` are then unused.
    pub scenario: Option<ScenarioKind>,
    /// How the scenario's base rates are drawn.
    pub rate_model: RateModel,
    pub other_failure_rate: f64,
    pub truth: Option<PathBuf>,
    pub settings: SinkSettings,
}

impl Args {
    /// Check the flags and resolve defaults (`now` stands for the current time).
    pub fn plan(&self, now: DateTime<Utc>) -> Result<Plan, ConfigError> {
        self.check_numbers()?;
        let (sink, single_object) = self.open_sink()?;
        let mode = self.mode(&sink, single_object, now)?;
        let pools = if self.pool_list.is_empty() {
            PoolChoice::Count(self.pools.unwrap_or(DEFAULT_POOLS))
        } else {
            PoolChoice::List(self.pool_list.clone())
        };
        let seed = self.seed.unwrap_or_else(rand::random);
        let requested = match mode {
            Mode::Trickle { .. } => self.events.unwrap_or(0),
            _ => self.events.unwrap_or(DEFAULT_EVENTS),
        };
        let events = (requested > 0 && self.scenario.is_none()).then_some(requested);
        let object = self.object_options(&mode, events, &pools, seed);
        let trickle = matches!(mode, Mode::Trickle { .. });
        Ok(Plan {
            sink,
            mode,
            events,
            seed,
            pools,
            skew: self.skew,
            scenario: self.scenario,
            rate_model: self.rate_model,
            other_failure_rate: self.other_failure_rate,
            truth: self.truth.clone(),
            settings: SinkSettings {
                storage: self.storage.clone(),
                object,
                #[cfg(feature = "amqp")]
                amqp: None,
                append: trickle,
            },
        })
    }

    /// The numeric flags each within its range, before anything is opened.
    fn check_numbers(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if !self.rate.is_finite() || self.rate < 0.0 {
            return bad(format!(
                "--rate must be a number of events per second >= 0, got {}",
                self.rate
            ));
        }
        if !self.skew.is_finite() || !(0.0..=10.0).contains(&self.skew) {
            return bad(format!(
                "--skew must be between 0 and 10, got {}",
                self.skew
            ));
        }
        if !(0.0..=0.5).contains(&self.other_failure_rate) {
            return bad(format!(
                "--other-failure-rate must be between 0 and 0.5, got {}",
                self.other_failure_rate
            ));
        }
        if self.max_object_bytes < 1024 {
            return bad(format!(
                "--max-object-bytes must be at least 1024, got {}",
                self.max_object_bytes
            ));
        }
        Ok(())
    }

    /// Where the events go (`--sink`, else the storage settings' URL), and whether it names a single
    /// object (the storage says so when opened).
    fn open_sink(&self) -> Result<(SinkUrl, bool), ConfigError> {
        let sink = self
            .sink
            .clone()
            .map(Ok)
            .unwrap_or_else(|| self.storage.resolved_url().parse::<SinkUrl>())
            .map_err(|e| ConfigError(e.to_string()))?;
        let single_object = match &sink {
            SinkUrl::Object(url) => {
                pool_storage::Storage::open(url, &self.storage)
                    .map_err(|e| ConfigError(format!("--sink {url}: {e}")))?
                    .single_object
            }
            SinkUrl::Amqp(_) => false,
        };
        Ok((sink, single_object))
    }

    /// The run: the trickle (asked for, or implied by a single object and nothing else asked), a
    /// real-time stream (`--rate > 0`), or a backfill over the past; flags of two kinds of run are
    /// refused.
    fn mode(
        &self,
        sink: &SinkUrl,
        single_object: bool,
        now: DateTime<Utc>,
    ) -> Result<Mode, ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        let past = self.hours.is_some() || self.end.is_some() || self.scenario.is_some();
        // A single object is the seed's events.json: only the trickle appends to it, and it implies it.
        let trickle = self.trickle || (single_object && self.rate == 0.0 && !past);
        if single_object && !trickle {
            return bad(format!(
                "--sink {sink} names a single object, which only the trickle (--trickle, seed 000's \
                 generator) appends to; backfills and --rate streams write partitioned objects under a \
                 folder or prefix (e.g. s3://bucket/events/ or ./data/events)"
            ));
        }
        if trickle && (self.rate > 0.0 || past) {
            return bad(
                "--trickle writes events stamped now at random pauses; --rate, --hours, --end and \
                 --scenario make other runs: give one or the other"
                    .into(),
            );
        }
        if let Some(kind) = self.scenario
            && self.rate > 0.0
        {
            return bad(format!(
                "--scenario {kind} simulates a backfill over the past, --rate > 0 a real-time stream \
                 stamped now: give one or the other"
            ));
        }
        if trickle {
            Ok(Mode::Trickle {
                max_gap: self.trickle_max_gap,
            })
        } else if self.rate > 0.0 {
            if self.hours.is_some() || self.end.is_some() {
                return bad(
                    "--hours/--end make a backfill over the past, --rate > 0 a real-time stream stamped \
                     now: give one or the other"
                        .into(),
                );
            }
            Ok(Mode::Stream {
                rate: self.rate,
                started: now,
            })
        } else {
            self.backfill(now)
        }
    }

    /// A backfill's window: `--hours` (default per scenario or not) ending at `--end` (default
    /// `now`), in whole milliseconds.
    fn backfill(&self, now: DateTime<Utc>) -> Result<Mode, ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        let hours = self.hours.unwrap_or(match self.scenario {
            Some(_) => f64::from(scenario::DEFAULT_HOURS),
            None => DEFAULT_HOURS,
        });
        if !hours.is_finite() || hours <= 0.0 || hours > MAX_HOURS {
            return bad(format!(
                "--hours must be more than 0 and at most {MAX_HOURS}, got {hours}"
            ));
        }
        if let Some(kind) = self.scenario
            && hours.fract() != 0.0
        {
            return bad(format!(
                "--scenario {kind} simulates whole hours: --hours must be a whole number, got {hours}"
            ));
        }
        if self.events == Some(0) && self.scenario.is_none() {
            return bad(
                "--events 0 (unbounded) needs a stream (--rate > 0); a backfill needs a count"
                    .into(),
            );
        }
        // Whole milliseconds: the event format's precision, so output depends on --end only.
        let end = Utc
            .timestamp_millis_opt(self.end.unwrap_or(now).timestamp_millis())
            .single()
            .ok_or_else(|| ConfigError("--end is out of range".into()))?;
        let start = end - chrono::Duration::milliseconds((hours * 3_600_000.0) as i64);
        Ok(Mode::Backfill { start, end })
    }

    /// The object sink's options. Object names carry the seed and a hash of everything else that
    /// shapes the run's events, so two different runs of one seed do not overwrite each other.
    fn object_options(
        &self,
        mode: &Mode,
        events: Option<u64>,
        pools: &PoolChoice,
        seed: u64,
    ) -> ObjectSinkOptions {
        let mut run_key = format!(
            "{mode:?}|{events:?}|{pools:?}|{}|{}|{}",
            self.skew, self.other_failure_rate, self.max_object_bytes
        );
        if let Some(kind) = self.scenario {
            // Only then: runs without a scenario keep their object names.
            run_key.push_str(&format!("|scenario={kind}"));
            if self.rate_model != RateModel::Structured {
                run_key.push_str(&format!("|rate_model={}", self.rate_model));
            }
        }
        ObjectSinkOptions {
            max_object_bytes: self.max_object_bytes,
            max_age: matches!(mode, Mode::Stream { .. } | Mode::Trickle { .. })
                .then_some(self.flush_interval),
            name_prefix: format!("gen-{seed}-{:08x}", fnv1a32(run_key.as_bytes())),
            ..ObjectSinkOptions::default()
        }
    }
}

/// A short, stable fingerprint of the run's parameters for object names: runs with the same seed but
/// different parameters must not overwrite each other's objects, while an identical run rewrites the
/// same keys with the same bytes.
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("event-generator").chain(args.iter().copied()))
    }

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:30:00Z".parse().unwrap()
    }

    #[test]
    fn backfill_defaults() {
        let plan = parse(&["--sink", "/tmp/x", "--seed", "3"])
            .unwrap()
            .plan(now())
            .unwrap();
        assert_eq!(plan.seed, 3);
        assert_eq!(plan.events, Some(100_000));
        assert_eq!(plan.pools, PoolChoice::Count(DEFAULT_POOLS));
        assert_eq!(
            plan.mode,
            Mode::Backfill {
                start: "2026-11-21T10:30:00Z".parse().unwrap(),
                end: now(),
            }
        );
        assert!(plan.settings.object.name_prefix.starts_with("gen-3-"));
        assert_eq!(plan.settings.object.max_age, None);
    }

    #[test]
    fn streams_and_conflicts() {
        let plan = parse(&["--sink", "/tmp/x", "--rate", "50", "--events", "0"])
            .unwrap()
            .plan(now())
            .unwrap();
        assert!(matches!(plan.mode, Mode::Stream { rate, .. } if rate == 50.0));
        assert_eq!(plan.events, None);
        assert_eq!(plan.settings.object.max_age, Some(Duration::from_secs(5)));
        for bad in [
            &["--rate", "5", "--hours", "2"][..],
            &["--rate=-1"],
            &["--hours", "0"],
            &["--events", "0"],
            &["--skew", "NaN"],
        ] {
            let err = parse(bad).unwrap().plan(now()).unwrap_err();
            assert!(!err.0.is_empty(), "{bad:?}");
        }
        assert!(parse(&["--pools", "3", "--pool-list", "pool-c6a.large-us-east-1a"]).is_err());
        assert!(parse(&["--pool-list", "pool-c6a.large-us-east-1a,nonsense"]).is_err());
        assert!(parse(&["--sink", "ftp://x/y"]).is_err());
        assert!(parse(&["--end", "yesterday"]).is_err());
    }

    #[test]
    fn pool_list_and_end() {
        let plan = parse(&[
            "--sink",
            "s3://b/p",
            "--pool-list",
            "pool-c6a.large-us-east-1a, pool-r6a.xlarge-eu-west-1c",
            "--end",
            "2026-01-01T00:00:00",
            "--hours",
            "1.5",
        ])
        .unwrap()
        .plan(now())
        .unwrap();
        match plan.pools {
            PoolChoice::List(l) => assert_eq!(l.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plan.mode,
            Mode::Backfill {
                start: "2025-12-31T22:30:00Z".parse().unwrap(),
                end: "2026-01-01T00:00:00Z".parse().unwrap(),
            }
        );
    }

    #[test]
    fn scenarios_are_backfills_of_whole_hours() {
        let plan = parse(&[
            "--sink",
            "/tmp/x",
            "--scenario",
            "regime-change",
            "--seed",
            "4",
        ])
        .unwrap()
        .plan(now())
        .unwrap();
        assert_eq!(plan.scenario, Some(ScenarioKind::RegimeChange));
        assert_eq!(
            plan.events, None,
            "the world decides how many jobs there are"
        );
        assert_eq!(
            plan.mode,
            Mode::Backfill {
                start: now() - chrono::Duration::days(14),
                end: now(),
            }
        );
        let plan = parse(&["--scenario", "cold-start", "--hours", "48", "--events", "0"])
            .unwrap()
            .plan(now())
            .unwrap();
        assert!(
            matches!(plan.mode, Mode::Backfill { start, end } if end - start == chrono::Duration::hours(48))
        );
        assert_eq!(plan.scenario, Some(ScenarioKind::ColdStart));
        assert_eq!(plan.rate_model, RateModel::Structured);
        let plan = parse(&["--scenario", "spikes", "--rate-model", "two-kinds"])
            .unwrap()
            .plan(now())
            .unwrap();
        assert_eq!(plan.scenario, Some(ScenarioKind::Spikes));
        assert_eq!(plan.rate_model, RateModel::TwoKinds);
        assert!(
            parse(&["--rate-model", "two-kinds"]).is_err(),
            "needs --scenario"
        );

        let err = parse(&["--scenario", "zone-outage", "--rate", "10"])
            .unwrap()
            .plan(now())
            .unwrap_err();
        assert!(
            err.0.contains("--scenario zone-outage") && err.0.contains("--rate"),
            "{err}"
        );
        let err = parse(&["--scenario", "stationary", "--hours", "1.5"])
            .unwrap()
            .plan(now())
            .unwrap_err();
        assert!(err.0.contains("whole number"), "{err}");
        for conflicting in [
            &["--pools", "3"][..],
            &["--pool-list", "pool-c6a.large-us-east-1a"],
            &["--skew", "0.5"],
        ] {
            let mut args = vec!["--scenario", "long-tail"];
            args.extend_from_slice(conflicting);
            assert!(parse(&args).is_err(), "{conflicting:?}");
        }
        assert!(parse(&["--scenario", "nonsense"]).is_err());
        // Without a scenario the plan has none (and the defaults above are untouched).
        assert_eq!(parse(&[]).unwrap().plan(now()).unwrap().scenario, None);
    }

    #[test]
    fn the_trickle_is_seed_000s_generator() {
        let plan = parse(&["--sink", "/tmp/x", "--trickle", "--seed", "2"])
            .unwrap()
            .plan(now())
            .unwrap();
        assert_eq!(
            plan.mode,
            Mode::Trickle {
                max_gap: Duration::from_secs(2)
            }
        );
        assert_eq!(plan.events, None, "for ever unless --events says otherwise");
        assert_eq!(plan.settings.object.max_age, Some(Duration::from_secs(5)));
        assert!(plan.settings.append);

        // The seed's variables name its single object, which implies the trickle.
        for args in [
            &["--sink", "s3://spark-events/events.json"][..],
            &[
                "--s3-bucket-name",
                "spark-events",
                "--s3-file-name",
                "events.json",
            ],
        ] {
            let plan = parse(args).unwrap().plan(now()).unwrap();
            assert!(matches!(plan.mode, Mode::Trickle { .. }), "{args:?}");
            assert_eq!(
                plan.sink,
                SinkUrl::Object("s3://spark-events/events.json".into())
            );
        }
        let plan = parse(&[
            "--sink",
            "/tmp/seed/events.json",
            "--events",
            "7",
            "--trickle-max-gap",
            "250ms",
        ])
        .unwrap()
        .plan(now())
        .unwrap();
        assert_eq!(plan.events, Some(7));
        assert_eq!(
            plan.mode,
            Mode::Trickle {
                max_gap: Duration::from_millis(250)
            }
        );

        for (bad, says) in [
            (
                &["--sink", "s3://b/events.json", "--rate", "5"][..],
                "--trickle",
            ),
            (
                &["--sink", "s3://b/events.json", "--hours", "2"],
                "--trickle",
            ),
            (&["--trickle", "--rate", "5"], "give one or the other"),
            (
                &["--trickle", "--end", "2026-01-01T00:00:00Z"],
                "give one or the other",
            ),
        ] {
            let err = parse(bad).unwrap().plan(now()).unwrap_err();
            assert!(err.0.contains(says), "{bad:?}: {err}");
        }
        assert!(parse(&["--trickle", "--scenario", "stationary"]).is_err());
        assert!(parse(&["--trickle", "--trickle-max-gap", "0"]).is_err());
    }

    #[test]
    fn run_fingerprint_depends_on_parameters() {
        let prefix = |extra: &[&str]| {
            let mut args = vec![
                "--sink",
                "/tmp/x",
                "--seed",
                "1",
                "--end",
                "2026-01-01T00:00:00Z",
            ];
            args.extend_from_slice(extra);
            parse(&args)
                .unwrap()
                .plan(now())
                .unwrap()
                .settings
                .object
                .name_prefix
        };
        assert_eq!(prefix(&[]), prefix(&[]));
        assert_ne!(prefix(&[]), prefix(&["--events", "5"]));
        assert_ne!(prefix(&[]), prefix(&["--hours", "3"]));
        assert_ne!(
            prefix(&["--scenario", "stationary", "--hours", "24"]),
            prefix(&["--scenario", "long-tail", "--hours", "24"])
        );
    }
}
