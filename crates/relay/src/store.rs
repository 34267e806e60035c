//! Where entries live: an in-process cache (L1) in front of Redis (L2, shared by every replica).
//!
//! Redis is optional at run time. Every command has a short timeout, and after a failure a breaker
//! makes requests skip Redis for `REDIS_RETRY` instead of each paying the timeout; then one request
//! probes it. The connection manager reconnects on its own when Redis comes back.
//!
//! Every entry the relay stores or reads from Redis is kept in process for its whole life (TTL plus
//! grace), and served from there in two ways:
//! * while Redis is up, as a **mirror** for `L1_TTL` only (short, so replicas never disagree for long);
//!   after that the lookup goes to Redis, the shared copy;
//! * while Redis is down (the breaker is open), for the rest of its life: losing Redis neither sends
//!   the request rate to pool-selector nor makes each key's next request a miss.
//!
//! Either way it is bounded by bytes (`L1_CAPACITY_BYTES`), least recently used first out.
//!
//! How long an in-process entry is served is decided with the relay's [`crate::clock`], like the
//! entries' freshness, so a test can move past `L1_TTL` without waiting. The cache's own expiry, on
//! real time, only reclaims the memory afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use pool_redis::ConnectionManager;
use redis::{FromRedisValue, RedisError};

use crate::entry::Entry;
use crate::metrics::RelayMetrics;
use pool_core::clock::{Clock, SharedClock, SystemClock};

/// Redis could not be used for this command (down, slow, or skipped by the breaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

/// The answer of a cache lookup.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Found, in the in-process cache (`true`) or in Redis (`false`).
    Found(Arc<Entry>, bool),
    Missing,
    /// Redis is unavailable and the in-process cache does not hold the key.
    Unavailable,
}

/// How the store talks to Redis.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// PEM CA bundle that signs a `rediss://` server's certificate (instead of the system roots).
    pub ca_file: Option<std::path::PathBuf>,
    pub timeout: Duration,
    pub retry: Duration,
    pub key_prefix: String,
}

/// An in-process entry and how long it stays.
#[derive(Clone)]
struct Held {
    entry: Arc<Entry>,
    keep: Duration,
    /// The relay's clock time (ms since the epoch) until which it is served while Redis is up.
    mirror_until_ms: u64,
    /// The end of its life: served until then while Redis is down.
    until_ms: u64,
}

impl Held {
    fn served_at(&self, now_ms: u64, redis_up: bool) -> bool {
        if redis_up {
            now_ms < self.mirror_until_ms.min(self.until_ms)
        } else {
            now_ms < self.until_ms
        }
    }
}

/// Each entry leaves the cache after its own `keep` of real time (by then the relay's clock has
/// stopped serving it too, in production where that clock is the real one).
struct HeldExpiry;

impl moka::Expiry<String, Held> for HeldExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        held: &Held,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(held.keep)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        held: &Held,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(held.keep)
    }
}

/// Approximate bytes an entry holds in process (key, body, content type, bookkeeping).
fn weight(key: &str, held: &Held) -> u32 {
    let bytes = key.len() + held.entry.body.len() + held.entry.content_type.len() + 128;
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

pub struct Store {
    l1: Cache<String, Held>,
    /// How long an in-process copy is served while Redis is up (zero: never; it is still kept, for
    /// when Redis goes).
    mirror_ttl: Duration,
    /// How long past its TTL an entry lives (served stale): with its TTL, an entry's life.
    grace: Duration,
    redis: ConnectionManager,
    prefix: String,
    timeout: Duration,
    retry_ms: u64,
    /// 0 while Redis is believed up; otherwise the time (ms since epoch) before which it is skipped.
    down_until_ms: AtomicU64,
    metrics: RelayMetrics,
    /// Decides how long in-process entries are served.
    clock: SharedClock,
}

/// Deletes the lock only if it still holds our token, so a holder whose lock expired cannot release
/// the lock another replica took since.
const UNLOCK_SCRIPT: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

impl Store {
    /// Prepare the store without connecting: the relay must start while Redis is down. Fails only on a
    /// malformed `REDIS_URL`. Must run inside a Tokio runtime (the manager's reconnection task lives there).
    pub fn new(
        redis: &RedisSettings,
        l1_ttl: Duration,
        grace: Duration,
        l1_capacity_bytes: u64,
        metrics: RelayMetrics,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        let manager = pool_redis::connect_lazy(&pool_redis::RedisOptions {
            url: redis.url.clone(),
            ca_file: redis.ca_file.clone(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: redis.timeout.max(Duration::from_millis(10)),
            reconnect: Some(pool_redis::Reconnect {
                retries: 1,
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
            }),
        })?;
        let l1 = Cache::builder()
            .max_capacity(l1_capacity_bytes)
            .weigher(|k: &String, v: &Held| weight(k, v))
            .expire_after(HeldExpiry)
            .build();
        metrics.redis_up.set(1);
        Ok(Self {
            l1,
            mirror_ttl: l1_ttl,
            grace,
            redis: manager,
            prefix: redis.key_prefix.clone(),
            timeout: redis.timeout,
            retry_ms: redis.retry.as_millis() as u64,
            down_until_ms: AtomicU64::new(0),
            metrics,
            clock,
        })
    }

    /// The in-process copy of `key`, if any is still to be served: for `L1_TTL` while Redis is up,
    /// for the rest of its life while it is down.
    pub fn get_l1(&self, key: &str) -> Option<Arc<Entry>> {
        let now = self.clock.now_ms();
        let redis_up = self.redis_up();
        self.l1
            .get(key)
            .filter(|h| h.served_at(now, redis_up))
            .map(|h| h.entry)
    }

    /// The time left in `entry`'s life (its TTL plus the grace period) at `now_ms`.
    fn life_left(&self, entry: &Entry, now_ms: u64) -> Duration {
        let end = entry
            .stored_at_ms
            .saturating_add(entry.fresh_for_ms)
            .saturating_add(self.grace.as_millis() as u64);
        Duration::from_millis(end.saturating_sub(now_ms))
    }

    /// Look `key` up in the in-process cache, then in Redis (filling the in-process cache on a find).
    /// When Redis turns out to be unavailable, the in-process copy is served for the rest of its
    /// life: the first request after Redis goes is answered from memory too.
    pub async fn get(&self, key: &str) -> Lookup {
        if let Some(e) = self.get_l1(key) {
            return Lookup::Found(e, true);
        }
        match self.get_redis(key).await {
            Lookup::Unavailable => match self.get_l1(key) {
                Some(e) => Lookup::Found(e, true),
                None => Lookup::Unavailable,
            },
            found_or_missing => found_or_missing,
        }
    }

    /// Look `key` up in Redis only (the fetch leader's second look, and lock waiters' polling).
    pub async fn get_redis(&self, key: &str) -> Lookup {
        let cmd = redis::cmd("GET").arg(self.entry_key(key)).to_owned();
        match self.query::<Option<Vec<u8>>>("get", &cmd).await {
            Ok(Some(bytes)) => match Entry::decode(&bytes) {
                Some(e) => {
                    let e = Arc::new(e);
                    self.offer_l1(key, &e, self.life_left(&e, self.clock.now_ms()));
                    Lookup::Found(e, false)
                }
                None => {
                    tracing::warn!(
                        key,
                        "value under the relay's key is not an entry; treated as a miss"
                    );
                    Lookup::Missing
                }
            },
            Ok(None) => Lookup::Missing,
            Err(Unavailable) => Lookup::Unavailable,
        }
    }

    /// Store `entry` in Redis for `keep` (its TTL plus the grace period) and keep it in process for as
    /// long. When Redis cannot take it (down, slow, breaker open), this replica goes on answering from
    /// its own copy until Redis is back.
    pub async fn put(
        &self,
        key: &str,
        entry: Arc<Entry>,
        keep: Duration,
    ) -> Result<(), Unavailable> {
        let cmd = redis::cmd("SET")
            .arg(self.entry_key(key))
            .arg(entry.encode().as_ref())
            .arg("PX")
            .arg(keep.as_millis().max(1) as u64)
            .to_owned();
        match self.query::<()>("set", &cmd).await {
            Ok(()) => {
                self.offer_l1(key, &entry, keep);
                Ok(())
            }
            Err(Unavailable) => {
                self.offer_l1(key, &entry, keep);
                self.metrics.l1_fallback_stores.inc();
                Err(Unavailable)
            }
        }
    }

    /// Put `entry` in the in-process cache unless it already holds a newer answer: a lookup that read
    /// Redis just before a refresh stored its result must not put the older entry back. An entry no
    /// longer served counts as absent.
    fn offer_l1(&self, key: &str, entry: &Arc<Entry>, keep: Duration) {
        use moka::ops::compute::Op;
        if keep.is_zero() {
            return;
        }
        let now = self.clock.now_ms();
        self.l1
            .entry_by_ref(key)
            .and_compute_with(|held| match held {
                Some(h)
                    if h.value().served_at(now, false)
                        && h.value().entry.stored_at_ms > entry.stored_at_ms =>
                {
                    Op::Nop
                }
                _ => Op::Put(Held {
                    entry: entry.clone(),
                    keep,
                    mirror_until_ms: now.saturating_add(self.mirror_ttl.as_millis() as u64),
                    until_ms: now.saturating_add(keep.as_millis() as u64),
                }),
            });
    }

    /// Take the cross-replica fetch lock for `key` for at most `ttl`. `Ok(false)`: another replica holds it.
    pub async fn try_lock(
        &self,
        key: &str,
        token: &str,
        ttl: Duration,
    ) -> Result<bool, Unavailable> {
        let cmd = redis::cmd("SET")
            .arg(self.lock_key(key))
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl.as_millis().max(1) as u64)
            .to_owned();
        self.query::<Option<String>>("lock", &cmd)
            .await
            .map(|r| r.is_some())
    }

    /// Release the lock taken with `token` (a no-op if it expired and someone else holds it now).
    pub async fn unlock(&self, key: &str, token: &str) {
        let cmd = redis::cmd("EVAL")
            .arg(UNLOCK_SCRIPT)
            .arg(1)
            .arg(self.lock_key(key))
            .arg(token)
            .to_owned();
        let _ = self.query::<i64>("unlock", &cmd).await;
    }

    /// Ask Redis directly, past the breaker (readiness). A success closes the breaker.
    pub async fn ping(&self) -> bool {
        let mut con = self.redis.clone();
        let cmd = redis::cmd("PING");
        match tokio::time::timeout(self.timeout, cmd.query_async::<String>(&mut con)).await {
            Ok(Ok(_)) => {
                self.succeeded();
                true
            }
            Ok(Err(e)) => {
                self.failed("ping", &e.to_string());
                false
            }
            Err(_) => {
                self.failed("ping", "timed out");
                false
            }
        }
    }

    /// Whether requests currently use Redis (the breaker is closed).
    pub fn redis_up(&self) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) == 0
    }

    fn entry_key(&self, key: &str) -> String {
        format!("{}e:{key}", self.prefix)
    }

    fn lock_key(&self, key: &str) -> String {
        format!("{}lock:{key}", self.prefix)
    }

    /// Run one command with the timeout and the breaker.
    async fn query<T: FromRedisValue>(
        &self,
        op: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, Unavailable> {
        if !self.may_try() {
            return Err(Unavailable);
        }
        let mut con = self.redis.clone();
        match tokio::time::timeout(self.timeout, cmd.query_async::<T>(&mut con)).await {
            Ok(Ok(v)) => {
                self.succeeded();
                Ok(v)
            }
            Ok(Err(e)) => {
                self.failed(op, &describe(&e));
                Err(Unavailable)
            }
            Err(_) => {
                self.failed(op, &format!("no answer within {:?}", self.timeout));
                Err(Unavailable)
            }
        }
    }

    /// Closed breaker: yes. Open: no, until the retry time, when exactly one caller gets to probe.
    /// The breaker paces probes of a real server, so it runs on the system's clock, not the cache's.
    fn may_try(&self) -> bool {
        let until = self.down_until_ms.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        let now = SystemClock.now_ms();
        now >= until
            && self
                .down_until_ms
                .compare_exchange(
                    until,
                    now + self.retry_ms,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn succeeded(&self) {
        if self.down_until_ms.swap(0, Ordering::AcqRel) != 0 {
            self.metrics.redis_up.set(1);
            tracing::info!("Redis answers again; caching resumes");
        }
    }

    fn failed(&self, op: &'static str, why: &str) {
        self.metrics.redis_error(op);
        let until = (SystemClock.now_ms() + self.retry_ms).max(1);
        if self.down_until_ms.swap(until, Ordering::AcqRel) == 0 {
            self.metrics.redis_up.set(0);
            tracing::warn!(
                op,
                "Redis unavailable ({why}); requests bypass the cache until it answers"
            );
        }
    }
}

fn describe(e: &RedisError) -> String {
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pool_core::clock::{Clock, ManualClock};

    fn entry(body_bytes: usize, stored_at_ms: u64) -> Arc<Entry> {
        Arc::new(Entry {
            status: 200,
            content_type: "application/json".into(),
            body: Bytes::from(vec![b'x'; body_bytes]),
            stored_at_ms,
            fresh_for_ms: 30_000,
            no_store: false,
        })
    }

    /// A store whose Redis never answers, on `clock`, mirroring for 1 s.
    async fn store(capacity_bytes: u64, clock: Arc<ManualClock>) -> Store {
        let metrics = RelayMetrics::register(&prometheus::Registry::new());
        let settings = RedisSettings {
            url: "redis://127.0.0.1:1".into(),
            ca_file: None,
            timeout: Duration::from_millis(50),
            retry: Duration::from_secs(60),
            key_prefix: "t:".into(),
        };
        Store::new(
            &settings,
            Duration::from_secs(1),
            Duration::from_secs(270),
            capacity_bytes,
            metrics,
            clock,
        )
        .unwrap()
    }

    #[tokio::test]
    async fn the_in_process_cache_is_bounded_by_bytes_not_entries() {
        let clock = Arc::new(ManualClock::starting_now());
        let s = store(64 * 1024, clock.clone()).await;
        for i in 0..200 {
            s.offer_l1(
                &format!("k{i}"),
                &entry(4 * 1024, clock.now_ms()),
                Duration::from_secs(60),
            );
        }
        s.l1.run_pending_tasks();
        assert!(
            s.l1.weighted_size() <= 64 * 1024,
            "{} bytes held",
            s.l1.weighted_size()
        );
        assert!(s.l1.entry_count() <= 16, "{} entries", s.l1.entry_count());
    }

    #[tokio::test]
    async fn an_answer_redis_refuses_is_kept_in_process_for_its_whole_life() {
        let clock = Arc::new(ManualClock::starting_now());
        let s = store(1 << 20, clock.clone()).await;
        let e = entry(10, clock.now_ms());
        // Redis is unreachable: the put fails, and the entry is held for `keep`, not `L1_TTL`.
        assert_eq!(
            s.put("k", e.clone(), Duration::from_secs(300)).await,
            Err(Unavailable)
        );
        let held = s.l1.get("k").expect("kept in process");
        assert_eq!(held.keep, Duration::from_secs(300));
        assert_eq!(s.get_l1("k"), Some(e.clone()));
        // An older answer never replaces a newer one.
        s.offer_l1("k", &entry(10, 1), Duration::from_secs(300));
        assert!(s.get_l1("k").unwrap().stored_at_ms > 1);
        // Served well past L1_TTL, up to the end of its life and no further.
        clock.advance(Duration::from_millis(299_999));
        assert_eq!(s.get_l1("k"), Some(e));
        clock.advance(Duration::from_millis(1));
        assert_eq!(s.get_l1("k"), None);
    }

    #[tokio::test]
    async fn while_redis_is_up_the_copy_is_served_for_l1_ttl_and_for_its_life_once_it_is_down() {
        let clock = Arc::new(ManualClock::starting_now());
        let s = store(1 << 20, clock.clone()).await;
        let e = entry(10, clock.now_ms());
        s.offer_l1("k", &e, Duration::from_secs(300));
        assert!(s.redis_up());
        clock.advance(Duration::from_millis(999));
        assert_eq!(s.get_l1("k"), Some(e.clone()));
        clock.advance(Duration::from_millis(1));
        assert_eq!(
            s.get_l1("k"),
            None,
            "past L1_TTL the shared copy in Redis is asked"
        );
        // Redis goes: the breaker opens, and the same copy is served for the rest of its life.
        assert!(matches!(s.get_redis("k").await, Lookup::Unavailable));
        assert!(!s.redis_up());
        assert_eq!(s.get_l1("k"), Some(e.clone()));
        clock.advance(Duration::from_millis(298_999));
        assert_eq!(s.get_l1("k"), Some(e));
        clock.advance(Duration::from_millis(1));
        assert_eq!(s.get_l1("k"), None, "not past its life");
        // A copy past its life does not keep an older answer out.
        s.offer_l1("k", &entry(10, 1), Duration::from_secs(300));
        assert_eq!(s.get_l1("k").unwrap().stored_at_ms, 1);
    }
}
