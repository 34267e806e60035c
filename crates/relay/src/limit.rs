//! Per-client limits on cache misses: every request the cache cannot answer costs pool-selector a
//! scan, so each client (its address) gets a token bucket of misses (`MISS_RATE_PER_CLIENT` per second,
//! bursts of `MISS_BURST_PER_CLIENT`); past it the answer is `429` with `Retry-After`.
//!
//! Only the requests that would start an upstream request are charged: hits and stale answers are never
//! limited, a request that joins a fetch already in flight for its key (coalesced) costs nothing, and a
//! background refresh of a stale entry is the relay's own. A view of the ranking page, which fetches the
//! ranking and the backtest chart, is charged once ([`Admission`] is shared by both fetches).
//!
//! The client is the connection's peer address, or, behind a proxy that sets it, the last address of
//! `CLIENT_ADDRESS_HEADER` (the one that proxy appended; earlier ones are the client's to forge). IPv6
//! clients are counted per /64.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often (in checks) buckets that are full again are dropped, so the map holds recent clients only.
const RETAIN_EVERY: u64 = 4096;

/// Token buckets of cache misses, one per client.
pub struct MissLimiter {
    buckets: DefaultKeyedRateLimiter<IpAddr>,
    checks: AtomicU64,
}

impl MissLimiter {
    /// `rate` misses per second per client, bursts of `burst`; `None` when `rate` is 0 (no limit).
    pub fn new(rate: f64, burst: u32) -> Option<Self> {
        if rate <= 0.0 {
            return None;
        }
        let period = Duration::from_secs_f64(1.0 / rate);
        let quota = Quota::with_period(period)?.allow_burst(NonZeroU32::new(burst.max(1))?);
        Some(Self {
            buckets: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        })
    }

    /// Take one miss from `client`'s bucket, or say how long until one is there.
    pub fn check(&self, client: IpAddr) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % RETAIN_EVERY == RETAIN_EVERY - 1 {
            self.buckets.retain_recent();
            self.buckets.shrink_to_fit();
        }
        self.buckets
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// One request's standing with the limit: who it is, and — once a fetch had to be started — whether the
/// limit let it. Shared by every fetch a request makes (the ranking page's two), so it pays once.
pub struct Admission {
    client: Option<IpAddr>,
    verdict: OnceLock<Result<(), Duration>>,
}

impl Admission {
    /// A request from `client` (`None`: unknown, never limited).
    pub fn new(client: Option<IpAddr>) -> Self {
        Self {
            client: client.map(client_key),
            verdict: OnceLock::new(),
        }
    }

    /// The client of `req`: the last address of `header` when one is configured and present, else
    /// the peer address.
    pub fn of(req: &HttpRequest, header: Option<&HeaderName>) -> Self {
        let forwarded = header
            .and_then(|h| req.headers().get(h))
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        Self::new(forwarded.or_else(|| req.peer_addr().map(|a| a.ip())))
    }

    /// How long the client must wait, when the limit refused this request a fetch.
    pub fn refused(&self) -> Option<Duration> {
        self.verdict.get().and_then(|v| v.err())
    }

    /// Whether this request may start an upstream fetch: charged on the first call only.
    pub fn admit(&self, limiter: Option<&MissLimiter>) -> Result<(), Duration> {
        *self.verdict.get_or_init(|| match (limiter, self.client) {
            (Some(l), Some(c)) => l.check(c),
            _ => Ok(()),
        })
    }
}

/// The bucket key of an address: itself, its IPv4 form when v4-mapped, or its /64 for IPv6.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits_and_pays_once_per_request() {
        let limiter = MissLimiter::new(0.001, 2).unwrap();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limiter.check(a).is_ok());
        // One request making two fetches pays once.
        let page = Admission::new(Some(a));
        assert!(page.admit(Some(&limiter)).is_ok());
        assert!(page.admit(Some(&limiter)).is_ok());
        let wait = Admission::new(Some(a))
            .admit(Some(&limiter))
            .expect_err("the burst is spent");
        assert!(wait > Duration::from_secs(100), "{wait:?}");
        // Another client, an unknown one, and no limiter at all are not limited.
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok());
        assert!(Admission::new(None).admit(Some(&limiter)).is_ok());
        assert!(Admission::new(Some(a)).admit(None).is_ok());
        assert!(MissLimiter::new(0.0, 10).is_none(), "rate 0: no limit");
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let k = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2::1"), k("2001:db8:1:2:abcd::7"));
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.1"), k("192.0.2.1"));
    }
}
