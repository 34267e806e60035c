//! pool-selector's configuration: flags with environment fallbacks (the seed's variables included).

use std::time::Duration;

use clap::{ArgAction, Parser};

use pool_core::duration::{
    parse_arg as parse_duration, parse_positive_arg as parse_positive_duration,
};
use pool_core::request::parse_half_life;
use pool_core::window::Window;
use pool_history::live::ViewOptions;
use pool_history::rollup::SigningKey;
use pool_service::config::{ListenArgs, TelemetryArgs};
use pool_storage::StorageArgs;

use crate::inputs::{ModelInputArgs, ModelInputs};
use crate::ranking::Strategy;

/// Default port, as in the seed.
pub const DEFAULT_PORT: u16 = 5050;

fn parse_window(s: &str) -> Result<Window, String> {
    Window::parse("EVENT_FILTER_WINDOW", s).map_err(|e| e.to_string())
}

fn parse_confidence(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(c) if (0.5..=0.9999).contains(&c) => Ok(c),
        _ => Err(format!(
            "{s:?} is not a confidence level between 0.5 and 0.9999"
        )),
    }
}

fn parse_alpha(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(a) if (0.0001..=0.2).contains(&a) => Ok(a),
        _ => Err(format!(
            "{s:?} is not a false-alarm rate between 0.0001 and 0.2"
        )),
    }
}

fn parse_tolerance(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if (0.0..=1.0).contains(&t) => Ok(t),
        _ => Err(format!("{s:?} is not a tolerance between 0 and 1")),
    }
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "pool-selector",
    version,
    about = "Ranks EC2 spot pools by spot-termination risk."
)]
pub struct Settings {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    /// Default look-back window: seconds (the seed's meaning) or 24h/30m/7d; 0 = all history.
    /// The `window` query parameter overrides it per request.
    #[arg(long, env = "EVENT_FILTER_WINDOW", default_value = "0", value_parser = parse_window)]
    pub event_filter_window: Window,
    /// Default ranking strategy: pooled (an estimated hierarchy as the shared prior and change-point
    /// posteriors, the best by measured regret), thompson, wilson, bayes, naive or pooled-v1 (the
    /// previous pooled).
    #[arg(long, env = "RANKING_STRATEGY", default_value = "pooled", value_parser = |s: &str| s.parse::<Strategy>().map_err(|e| e.to_string()))]
    pub strategy: Strategy,
    /// Default recency half-life, at least 1h (e.g. 12h); unset = every job in the window weighs the
    /// same.
    #[arg(long, env = "RANKING_HALF_LIFE", value_parser = parse_half_life)]
    pub half_life: Option<Duration>,
    /// Default confidence level of the termination-rate interval.
    #[arg(long, env = "RANKING_CONFIDENCE", default_value = "0.95", value_parser = parse_confidence)]
    pub confidence: f64,
    /// An answer whose newest event, or the view's last refresh, is older than this says
    /// `stale: true` (e.g. 1h, 30m, 3600).
    #[arg(long, env = "STALE_AFTER", default_value = "1h", value_parser = parse_positive_duration)]
    pub stale_after: Duration,
    /// `degraded` when the posterior probability that a pool's rate now is higher than before its
    /// last change exceeds 1 − CHANGE_ALPHA (0.0001–0.2); also `pooled-v1`'s test level.
    #[arg(long, env = "CHANGE_ALPHA", default_value = "0.01", value_parser = parse_alpha)]
    pub change_alpha: f64,
    /// `k` > 1: an alternative within this much (termination-rate points, 0.01 = 1 point) of the next
    /// best score may be preferred for being in another zone or of another instance type.
    #[arg(long, env = "DIVERSITY_TOLERANCE", default_value = "0.01", value_parser = parse_tolerance)]
    pub diversity_tolerance: f64,
    /// Count each event once: a redelivered copy (same five fields) is dropped (the ingestion pipeline
    /// delivers at least once). The variable is named for its first form; the key is the whole event.
    #[arg(long, env = "DEDUP_JOB_IDS", default_value_t = true, action = ArgAction::Set)]
    pub dedup: bool,
    /// Load closed hours from the compactor's rollups (`<root>/_rollups/`) when their manifest
    /// matches the raw objects.
    #[arg(long, env = "USE_ROLLUPS", default_value_t = true, action = ArgAction::Set)]
    pub use_rollups: bool,
    /// Secret that rollups must be signed with to be used; an unsigned or forged rollup is refused and
    /// its hours are read from the raw events (HMAC-SHA256 over each rollup's manifest and rows): set the same value
    /// (from a Secret) on the compactor and pool-selector. Unset: rollups are neither signed nor checked.
    #[arg(long, env = "ROLLUP_HMAC_KEY", hide_env_values = true, value_parser = SigningKey::parse_arg)]
    pub rollup_hmac_key: Option<SigningKey>,
    /// How often the live view lists the open and recent hours and reads what is new (e.g. 1s).
    #[arg(long, env = "REFRESH_INTERVAL", default_value = "1s", value_parser = parse_positive_duration)]
    pub refresh_interval: Duration,
    /// How often the rollups are listed: a rollup rewritten after a late object replaces the hour it
    /// changed (e.g. 10s).
    #[arg(long, env = "ROLLUP_RECHECK", default_value = "10s", value_parser = parse_positive_duration)]
    pub rollup_recheck: Duration,
    /// How often the whole history is listed: a late object written into an old hour counts within
    /// about this long (e.g. 60s).
    #[arg(long, env = "RELIST_INTERVAL", default_value = "60s", value_parser = parse_positive_duration)]
    pub relist_interval: Duration,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub inputs: ModelInputArgs,
    /// The inputs once read ([`crate::inputs::load`], at startup).
    #[arg(skip)]
    pub model_inputs: ModelInputs,
}

/// The bounds that keep cheap requests from causing unbounded work.
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Backtests replaying at once (each is CPU work per request); past it a request gets
    /// `503 {"error":"busy"}` with `Retry-After`. Default: the number of cores.
    #[arg(long, env = "MAX_CONCURRENT_BACKTESTS")]
    pub max_concurrent_backtests: Option<usize>,
    /// Events stamped further ahead of this server's clock are ignored by rankings.
    #[arg(long, env = "MAX_CLOCK_SKEW", default_value = "5m", value_parser = parse_duration)]
    pub max_clock_skew: Duration,
    /// Pools `/pools` returns when the request sets no `limit` (`total_pools` tells how many matched).
    #[arg(long, env = "POOLS_DEFAULT_LIMIT", default_value_t = 100,
          value_parser = clap::value_parser!(u64).range(1..=pool_core::request::MAX_POOLS_LIMIT as u64))]
    pub pools_default_limit: u64,
}

impl Settings {
    /// Settings for tests and tools: listen on 127.0.0.1, a free port, over `events_url`.
    pub fn for_events_url(events_url: &str) -> Self {
        let mut s = Settings::parse_from(["pool-selector"]);
        s.listen = ListenArgs::new("127.0.0.1", 0);
        s.listen.workers = Some(2);
        s.storage = StorageArgs::for_url(events_url);
        s.event_filter_window = Window::ALL;
        s
    }

    pub fn port(&self) -> u16 {
        self.listen.port.unwrap_or(DEFAULT_PORT)
    }

    /// How the live view reads and refreshes the history.
    pub fn view_options(&self) -> ViewOptions {
        ViewOptions {
            dedup: self.dedup,
            use_rollups: self.use_rollups,
            max_clock_skew: self.limits.max_clock_skew,
            rollup_recheck: self.rollup_recheck,
            relist_interval: self.relist_interval,
            rollup_key: self.rollup_hmac_key,
            ..ViewOptions::default()
        }
    }
}
