//! The caching logic: answer from the cache when possible, and make sure a burst of requests for the
//! same key sends one request upstream.
//!
//! * **Hit / stale.** An entry is looked up in the in-process cache, then in Redis. Fresh: served as a
//!   `HIT`. Past its TTL but inside the grace period: served as `STALE` at once, while one background
//!   fetch refreshes it. A failing upstream therefore never takes a stale answer away (stale-if-error).
//! * **Miss.** Concurrent misses for one key share one fetch: the first request becomes the leader and
//!   spawns the fetch as a task (so a client hanging up does not cancel it for the others); the others
//!   wait on the same shared future (`coalesced_waiters_total`).
//! * **Across replicas.** The leader looks in Redis once more, then takes a short Redis lock
//!   (`SET NX PX`). A leader that finds the lock taken waits for the holder's entry to appear in Redis,
//!   and asks the upstream itself only if none appears before the lock expires.
//! * **Redis unavailable.** The request still shares an in-process fetch with its peers, and is answered
//!   `BYPASS`; nothing is cached until Redis answers again.
//! * **Uncacheable.** A question whose every answer is meant to differ (an unseeded
//!   `strategy=thompson` ranking: one random draw per caller, see [`CacheKey::cacheable`]) is never
//!   looked up, stored or coalesced: each request sends its own upstream request (still within the
//!   connection bound and the timeout) and is answered `BYPASS` (`uncacheable_total`).
//! * **Per-client limit.** A request that would start an upstream request (a miss that is not joining
//!   a fetch in flight, or an uncacheable one) is charged to its client's bucket ([`crate::limit`]);
//!   past it, `429` with `Retry-After` (`limited_total`). Hits, stale answers, coalesced waiters and
//!   background refreshes are never charged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::entry::{CacheStatus, Entry, Freshness};
use actix_web::http::header::HeaderName;
use pool_core::clock::SharedClock;

use crate::key::CacheKey;
use crate::limit::{Admission, MissLimiter};
use crate::metrics::RelayMetrics;
use crate::store::{Lookup, Store, Unavailable};
use crate::upstream::{Upstream, UpstreamError};

/// How long answers are kept.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Freshness of a 200.
    pub ttl: Duration,
    /// Freshness of a 404 (no matching data).
    pub negative_ttl: Duration,
    /// How long past its freshness an entry is still served as `STALE`.
    pub grace: Duration,
    /// Longest hold of the cross-replica fetch lock.
    pub lock_timeout: Duration,
}

impl Policy {
    /// How long an upstream answer with `status` stays fresh; zero means it is not cached. Only 200 and
    /// 404 are cached: any other answer (a 400 for a bad parameter, a 5xx) is passed on and forgotten.
    pub fn freshness_of(&self, status: u16) -> Duration {
        match status {
            200 => self.ttl,
            404 => self.negative_ttl,
            _ => Duration::ZERO,
        }
    }
}

/// A fetch in flight, awaited by every request for its key.
type Flight = Shared<BoxFuture<'static, Result<Arc<Entry>, UpstreamError>>>;

/// The answer to one relayed request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub entry: Arc<Entry>,
    pub status: CacheStatus,
}

/// No answer could be obtained (and the cache held none to fall back on).
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: UpstreamError,
    pub status: CacheStatus,
}

pub struct Relay {
    store: Store,
    upstream: Upstream,
    policy: Policy,
    inflight: Mutex<HashMap<String, Flight>>,
    metrics: RelayMetrics,
    /// Decides whether an entry is fresh, stale or expired (the one the store and upstream use too).
    clock: SharedClock,
    /// Per-client budget of requests that start an upstream fetch (`None`: no limit).
    misses: Option<MissLimiter>,
    /// The header a trusted proxy in front sets to the client's address (`CLIENT_ADDRESS_HEADER`).
    client_header: Option<HeaderName>,
}

impl Relay {
    pub fn new(
        store: Store,
        upstream: Upstream,
        policy: Policy,
        metrics: RelayMetrics,
        clock: SharedClock,
    ) -> Self {
        Self {
            store,
            upstream,
            policy,
            inflight: Mutex::new(HashMap::new()),
            metrics,
            clock,
            misses: None,
            client_header: None,
        }
    }

    /// Limit each client's upstream fetches with `misses`, the client being named by `client_header`
    /// when set (else the peer address).
    pub fn with_miss_limit(
        mut self,
        misses: Option<MissLimiter>,
        client_header: Option<HeaderName>,
    ) -> Self {
        self.misses = misses;
        self.client_header = client_header;
        self
    }

    /// The standing of `req` with the per-client limit.
    pub fn admission(&self, req: &actix_web::HttpRequest) -> Admission {
        Admission::of(req, self.client_header.as_ref())
    }

    fn limited(&self, status: CacheStatus, wait: Duration) -> Failure {
        self.metrics.limited.inc();
        Failure {
            error: UpstreamError::Limited(wait),
            status,
        }
    }

    /// The relay's current time (ms since the epoch), against which entries' ages are measured.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Answer one request for `key`, charging `admission` if it has to start an upstream fetch.
    pub async fn serve(
        self: &Arc<Self>,
        key: &CacheKey,
        request_id: &str,
        admission: &Admission,
    ) -> Result<Answer, Failure> {
        if let Some(reason) = key.uncacheable_reason() {
            if let Err(wait) = admission.admit(self.misses.as_ref()) {
                return Err(self.limited(CacheStatus::Bypass, wait));
            }
            return self.forward(key, reason, request_id).await;
        }
        let k = key.to_string();
        let status = match self.store.get(&k).await {
            Lookup::Found(entry, from_l1) => {
                match entry.freshness(self.now_ms(), self.grace_ms()) {
                    Freshness::Fresh => {
                        return Ok(self.answer(entry, CacheStatus::Hit, from_l1));
                    }
                    Freshness::Stale => {
                        self.refresh(key, &k, request_id);
                        return Ok(self.answer(entry, CacheStatus::Stale, from_l1));
                    }
                    Freshness::Expired => CacheStatus::Miss,
                }
            }
            Lookup::Missing => CacheStatus::Miss,
            Lookup::Unavailable => CacheStatus::Bypass,
        };
        let joined = self.flight(key, &k, request_id, || {
            // A fetch that finished since the lookup left its answer in process: the new leader
            // will take it from there, not from upstream, so it costs nothing.
            if self.store.get_l1(&k).is_some_and(|e| self.is_fresh(&e)) {
                return Ok(());
            }
            admission.admit(self.misses.as_ref())
        });
        let (flight, leader) = match joined {
            Ok(f) => f,
            Err(wait) => return Err(self.limited(status, wait)),
        };
        if !leader {
            self.metrics.coalesced_waiters.inc();
        }
        self.metrics.result(status);
        match flight.await {
            Ok(entry) => Ok(Answer { entry, status }),
            Err(error) => Err(Failure { error, status }),
        }
    }

    /// Send `key` upstream on its own: no lookup, no shared fetch, nothing stored. Not spawned either:
    /// nobody else waits for this answer, so a client hanging up may cancel it.
    async fn forward(
        &self,
        key: &CacheKey,
        reason: &'static str,
        request_id: &str,
    ) -> Result<Answer, Failure> {
        let status = CacheStatus::Bypass;
        self.metrics.uncacheable(key.route(), reason);
        self.metrics.result(status);
        match self.upstream.fetch(key, request_id).await {
            Ok(entry) => Ok(Answer {
                entry: Arc::new(entry),
                status,
            }),
            Err(error) => Err(Failure { error, status }),
        }
    }

    fn answer(&self, entry: Arc<Entry>, status: CacheStatus, from_l1: bool) -> Answer {
        if from_l1 {
            self.metrics.l1_hits.inc();
        }
        self.metrics.result(status);
        Answer { entry, status }
    }

    fn grace_ms(&self) -> u64 {
        self.policy.grace.as_millis() as u64
    }

    fn is_fresh(&self, entry: &Entry) -> bool {
        entry.freshness(self.now_ms(), self.grace_ms()) == Freshness::Fresh
    }

    /// Start refreshing a stale entry unless a fetch for its key is already under way (the relay's own
    /// work: never charged to the client, who was answered from the cache).
    fn refresh(self: &Arc<Self>, key: &CacheKey, k: &str, request_id: &str) {
        if let Ok((_flight, true)) = self.flight(key, k, request_id, || Ok(())) {
            self.metrics.stale_refreshes.inc();
        }
    }

    /// Join the fetch in flight for `k`, or start one if `admit` allows it (asked only then: joining
    /// is free). `true` when this call started it; `Err` with how long to wait when `admit` refused.
    fn flight(
        self: &Arc<Self>,
        key: &CacheKey,
        k: &str,
        request_id: &str,
        admit: impl FnOnce() -> Result<(), Duration>,
    ) -> Result<(Flight, bool), Duration> {
        let mut inflight = self
            .inflight
            .lock()
            .expect("the in-flight map is never poisoned");
        if let Some(flight) = inflight.get(k) {
            return Ok((flight.clone(), false));
        }
        admit()?;
        let this = Arc::clone(self);
        let (key, k_owned, request_id) = (key.clone(), k.to_owned(), request_id.to_owned());
        // Spawned, so the fetch completes (and fills the cache) even if every waiting client hangs up.
        let task = tokio::spawn(async move {
            let _done = FlightDone(&this, &k_owned);
            this.lead(&key, &k_owned, &request_id).await
        });
        let flight: Flight = task
            .map(|joined| {
                joined.unwrap_or_else(|e| {
                    Err(UpstreamError::Broken(format!("fetch task failed: {e}")))
                })
            })
            .boxed()
            .shared();
        // Inserted while the lock is held: the task cannot remove its entry before it exists.
        inflight.insert(k.to_owned(), flight.clone());
        Ok((flight, true))
    }

    /// The leader's work: look again, take the cross-replica lock, fetch, store.
    async fn lead(
        &self,
        key: &CacheKey,
        k: &str,
        request_id: &str,
    ) -> Result<Arc<Entry>, UpstreamError> {
        // A leader that finished just before this one was created has filled the cache already.
        if let Some(e) = self.store.get_l1(k).filter(|e| self.is_fresh(e)) {
            return Ok(e);
        }
        match self.store.get_redis(k).await {
            Lookup::Found(e, _) if self.is_fresh(&e) => return Ok(e),
            Lookup::Unavailable => return self.fetch_and_store(key, k, request_id).await,
            _ => {}
        }
        let token = uuid::Uuid::new_v4().simple().to_string();
        match self
            .store
            .try_lock(k, &token, self.policy.lock_timeout)
            .await
        {
            Ok(true) => self.fetch_locked(key, k, request_id, &token).await,
            Ok(false) => {
                self.metrics.lock_waits.inc();
                self.wait_for_holder(key, k, request_id, &token).await
            }
            Err(Unavailable) => self.fetch_and_store(key, k, request_id).await,
        }
    }

    /// Another replica is fetching `k`: wait for its entry, take the lock over if it lets go, and ask
    /// the upstream ourselves if neither happens before the lock would have expired.
    async fn wait_for_holder(
        &self,
        key: &CacheKey,
        k: &str,
        request_id: &str,
        token: &str,
    ) -> Result<Arc<Entry>, UpstreamError> {
        const POLL: Duration = Duration::from_millis(20);
        let deadline = Instant::now() + self.policy.lock_timeout;
        while Instant::now() < deadline {
            tokio::time::sleep(POLL).await;
            match self.store.get_redis(k).await {
                Lookup::Found(e, _) if self.is_fresh(&e) => return Ok(e),
                Lookup::Unavailable => break,
                _ => {}
            }
            match self
                .store
                .try_lock(k, token, self.policy.lock_timeout)
                .await
            {
                Ok(true) => return self.fetch_locked(key, k, request_id, token).await,
                Ok(false) => {}
                Err(Unavailable) => break,
            }
        }
        self.fetch_and_store(key, k, request_id).await
    }

    async fn fetch_locked(
        &self,
        key: &CacheKey,
        k: &str,
        request_id: &str,
        token: &str,
    ) -> Result<Arc<Entry>, UpstreamError> {
        // The previous holder may have stored its answer and let go between our last look and our
        // taking the lock: look once more, under the lock, before asking the upstream.
        let result = match self.store.get_redis(k).await {
            Lookup::Found(e, _) if self.is_fresh(&e) => Ok(e),
            _ => self.fetch_and_store(key, k, request_id).await,
        };
        self.store.unlock(k, token).await;
        result
    }

    async fn fetch_and_store(
        &self,
        key: &CacheKey,
        k: &str,
        request_id: &str,
    ) -> Result<Arc<Entry>, UpstreamError> {
        let mut entry = self.upstream.fetch(key, request_id).await?;
        let fresh_for = if entry.no_store {
            // The upstream decided this answer is for its caller alone (see `Entry::no_store`).
            self.metrics.uncacheable(key.route(), "upstream_no_store");
            Duration::ZERO
        } else {
            self.policy.freshness_of(entry.status)
        };
        entry.fresh_for_ms = fresh_for.as_millis() as u64;
        let entry = Arc::new(entry);
        if !fresh_for.is_zero() {
            let _ = self
                .store
                .put(k, entry.clone(), fresh_for + self.policy.grace)
                .await;
        }
        Ok(entry)
    }
}

/// Removes a finished fetch from the in-flight map, also when the fetch panicked.
struct FlightDone<'a>(&'a Relay, &'a str);

impl Drop for FlightDone<'_> {
    fn drop(&mut self) {
        if let Ok(mut inflight) = self.0.inflight.lock() {
            inflight.remove(self.1);
        }
    }
}
