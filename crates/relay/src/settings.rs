//! The relay's settings: flags with environment fallbacks (`relay --help` lists them all).

use std::time::Duration;

use clap::Parser;
use pool_service::config::{ListenArgs, TelemetryArgs};

/// Port the relay listens on when `PORT` is not set.
pub const DEFAULT_PORT: u16 = 8080;

/// Port of the operations listener (`/metrics`, `/docs`, `/openapi.json`) when `ADMIN_PORT` is not set.
pub const DEFAULT_ADMIN_PORT: u16 = 9108;

pub use pool_core::duration::parse_arg as parse_duration;

/// Everything the relay needs to run.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "relay",
    version,
    about = "Redis-cached front door to pool-selector"
)]
pub struct Settings {
    #[command(flatten)]
    pub listen: ListenArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,

    /// Base URL of pool-selector.
    #[arg(long, env = "UPSTREAM_URL", default_value = "http://127.0.0.1:5050")]
    pub upstream_url: String,
    /// How long to wait for pool-selector's answer before answering 504.
    #[arg(long, env = "UPSTREAM_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,
    /// Most requests to pool-selector at once (one per distinct key: identical requests share one);
    /// a fetch waits for a free connection within UPSTREAM_TIMEOUT.
    #[arg(long, env = "UPSTREAM_MAX_CONNECTIONS", default_value_t = 32)]
    pub upstream_max_connections: usize,
    /// Largest pool-selector answer the relay reads and caches; a larger one is a 502.
    #[arg(long, env = "UPSTREAM_MAX_BODY_BYTES", default_value_t = 4 << 20)]
    pub upstream_max_body_bytes: usize,

    /// Port of the operations listener: `/metrics`, `/docs`, `/openapi.json` (and `/health`). Kept
    /// off the public port so users of the relay never see them.
    #[arg(long, env = "ADMIN_PORT")]
    pub admin_port: Option<u16>,

    /// Redis holding the shared cache, `redis://` or `rediss://` (TLS). The relay starts and serves
    /// without it (from its in-process cache).
    #[arg(
        long,
        env = "REDIS_URL",
        default_value = "redis://127.0.0.1:6379",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub redis_url: String,
    /// PEM bundle of the CA that signs a `rediss://` server's certificate (default: system roots).
    #[arg(long, env = "TLS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Longest wait for one Redis command; past it the request goes on without the cache.
    #[arg(long, env = "REDIS_TIMEOUT", default_value = "100ms", value_parser = parse_duration)]
    pub redis_timeout: Duration,
    /// After a Redis failure, how long requests skip Redis before one of them probes it again.
    #[arg(long, env = "REDIS_RETRY", default_value = "1s", value_parser = parse_duration)]
    pub redis_retry: Duration,
    /// Prefix of every key the relay writes, so several deployments can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "relay:v1:")]
    pub redis_key_prefix: String,
    /// How long the cross-replica fetch lock is held at most (the other replicas wait up to this long
    /// for the holder's answer before asking the upstream themselves). Never less than
    /// UPSTREAM_TIMEOUT plus 2 s, so no second replica rescans a slow key while the first still waits.
    #[arg(long, env = "REDIS_LOCK_TIMEOUT", default_value = "12s", value_parser = parse_duration)]
    pub redis_lock_timeout: Duration,

    /// How long a 200 answer is served as a hit.
    #[arg(long, env = "CACHE_TTL_SECONDS", default_value_t = 30)]
    pub cache_ttl_seconds: u64,
    /// How long a 404 answer ("no matching data") is served as a hit.
    #[arg(long, env = "NEGATIVE_TTL_SECONDS", default_value_t = 5)]
    pub negative_ttl_seconds: u64,
    /// How long past its TTL an entry is still served (STALE) while it is refreshed, or while the
    /// upstream fails.
    #[arg(long, env = "STALE_GRACE_SECONDS", default_value_t = 300)]
    pub stale_grace_seconds: u64,

    /// How long the in-process copy of an entry is served while Redis is up (0: no copies): bounds how
    /// much older than Redis an answer of this replica can be. Copies are kept for the entry's whole
    /// TTL plus grace, and served that long while Redis is unavailable.
    #[arg(long, env = "L1_TTL", default_value = "1s", value_parser = parse_duration)]
    pub l1_ttl: Duration,
    /// Memory of the in-process cache, in bytes (least recently used entries leave first).
    #[arg(long, env = "L1_CAPACITY_BYTES", default_value_t = 64 << 20)]
    pub l1_capacity_bytes: u64,

    /// Requests per second, per client address, that the cache cannot answer (each costs pool-selector
    /// a scan); past it and `MISS_BURST_PER_CLIENT`, `429` with `Retry-After`. Hits, stale answers
    /// and requests joining a fetch already in flight are never limited. 0: no limit.
    #[arg(long, env = "MISS_RATE_PER_CLIENT", default_value_t = 5.0, value_parser = parse_rate)]
    pub miss_rate_per_client: f64,
    /// Cache misses a client may make at once above its steady `MISS_RATE_PER_CLIENT`.
    #[arg(long, env = "MISS_BURST_PER_CLIENT", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub miss_burst_per_client: u32,
    /// Behind a proxy: the header it sets to the client's address (e.g. `X-Forwarded-For`; its last
    /// address is used, the one the proxy appended). Unset: the connection's peer address. Never set
    /// it without such a proxy: clients could then name themselves.
    #[arg(long, env = "CLIENT_ADDRESS_HEADER")]
    pub client_address_header: Option<String>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1e6).contains(&r) => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate between 0 (no limit) and 1000000 per second"
        )),
    }
}

impl Settings {
    /// The cross-replica lock's hold time actually used: at least the upstream timeout plus 2 s.
    pub fn effective_lock_timeout(&self) -> Duration {
        self.redis_lock_timeout
            .max(self.upstream_timeout + Duration::from_secs(2))
    }
}

impl Settings {
    /// Settings for a test or a benchmark: listens on 127.0.0.1 port 0 in front of `upstream_url`,
    /// with Redis at `redis_url`, defaults elsewhere.
    pub fn for_upstream(upstream_url: &str, redis_url: &str) -> Self {
        let mut s = Self::parse_from(["relay"]);
        s.listen = ListenArgs::new("127.0.0.1", 0);
        s.listen.workers = Some(2);
        s.admin_port = Some(0);
        s.upstream_url = upstream_url.to_owned();
        s.redis_url = redis_url.to_owned();
        // Tests and benchmarks send bursts of misses from one address on purpose; the limit's own
        // tests turn it on.
        s.miss_rate_per_client = 0.0;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fetch_lock_outlives_the_upstream_timeout() {
        let mut s = Settings::parse_from(["relay"]);
        assert!(s.effective_lock_timeout() > s.upstream_timeout);
        s.redis_lock_timeout = Duration::from_secs(1);
        s.upstream_timeout = Duration::from_secs(30);
        assert_eq!(s.effective_lock_timeout(), Duration::from_secs(32));
        s.redis_lock_timeout = Duration::from_secs(60);
        assert_eq!(s.effective_lock_timeout(), Duration::from_secs(60));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
        // The workspace's one duration grammar (`pool_core::duration`) takes fractions, not commas.
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("1,5s").is_err());
    }

    #[test]
    fn misses_are_limited_per_client_by_default() {
        let s = Settings::parse_from(["relay"]);
        assert_eq!((s.miss_rate_per_client, s.miss_burst_per_client), (5.0, 50));
        assert!(s.client_address_header.is_none());
        assert!(Settings::try_parse_from(["relay", "--miss-rate-per-client", "-1"]).is_err());
        assert_eq!(
            Settings::for_upstream("http://x", "redis://y").miss_rate_per_client,
            0.0
        );
    }

    #[test]
    fn clap_definition_is_valid() {
        use clap::CommandFactory;
        Settings::command().debug_assert();
    }
}
