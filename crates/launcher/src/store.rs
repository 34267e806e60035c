//! Where launches are kept: Redis when `REDIS_URL` is set (they survive a restart and are shared by
//! replicas), otherwise memory. Both stores keep the same promises:
//!
//! * Writes are compare-and-set on the record's `version`, so two replicas (or a request and the
//!   reconciler) never overwrite each other's change: the loser reads again and retries, or gives up
//!   the effect it meant to have (a relaunch it could not save is never submitted).
//! * [`Store::create`] is one atomic step: the active-launch bound (`MAX_ACTIVE_LAUNCHES`, counted over
//!   launches that hold a slot, [`Launch::holds_slot`]) and the `Idempotency-Key` are checked and the
//!   launch saved together, so N parallel requests never pass a bound of N − 1, and two requests with one
//!   key make one launch.
//! * [`Store::put`] enqueues the outcome events of the attempts it finishes in the same step
//!   (the outbox), so a finished attempt and its unpublished outcome are never one without the other,
//!   and a launch frees its slot when its run ends, published or not.
//! * Finished launches leave after `LAUNCH_RETENTION`, with their index entries ([`Store::prune`]);
//!   idempotency keys after the same time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use pool_redis::ConnectionManager;
use serde::{Deserialize, Serialize};

use crate::launch::{Launch, State};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the launch store (Redis) cannot be reached: {0}")]
    Unavailable(String),
    #[error("a stored launch cannot be read: {0}")]
    Corrupt(String),
}

/// Most records a listing reads, whatever its filter: a cheap request never scans the whole store.
pub const MAX_SCAN: usize = 10_000;

/// Most index entries one [`Store::prune`] pass looks at per index.
const PRUNE_BATCH: usize = 500;

/// One outcome event waiting for the intake: its NDJSON line fixed when the attempt ended (so every
/// retry sends the same bytes), and when to try next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub job_id: String,
    pub launch_id: String,
    pub attempt: u32,
    /// The event, one JSON line without its newline.
    pub event: String,
    pub enqueued_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    /// Publications tried so far.
    #[serde(default)]
    pub tries: u32,
    /// Why the last one failed (a bounded reason, `PublishFailure::label`).
    #[serde(default)]
    pub last_error: Option<String>,
}

/// The `Idempotency-Key` of a new launch: its caller's key and the request's fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    pub caller: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a str,
}

/// A key already used: by which launch, for which request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentHit {
    pub launch_id: String,
    pub fingerprint: String,
}

impl IdempotentHit {
    fn encode(fingerprint: &str, launch_id: &str) -> String {
        format!("{fingerprint} {launch_id}")
    }
    fn decode(value: &str) -> Option<Self> {
        let (fingerprint, launch_id) = value.split_once(' ')?;
        Some(Self {
            launch_id: launch_id.to_owned(),
            fingerprint: fingerprint.to_owned(),
        })
    }
}

/// What [`Store::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    Created,
    /// `active` launches hold a slot: the bound is reached; nothing was saved.
    Busy {
        active: usize,
    },
    /// The key was used before; nothing was saved.
    Duplicate(IdempotentHit),
}

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<Launch>, StoreError>;
    /// Save a new launch (version 0, becoming 1), atomically with the bound (fewer than `limit`
    /// launches hold a slot) and its idempotency key (not used yet).
    async fn create(
        &self,
        launch: &mut Launch,
        limit: usize,
        key: Option<IdempotencyKey<'_>>,
    ) -> Result<Created, StoreError>;
    /// The launch a caller's key made, if any.
    async fn idempotent(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotentHit>, StoreError>;
    /// Write `launch` if the stored version is still `launch.version`, with `outbox` entries enqueued in
    /// the same step (an entry already queued for its job is left as it is). On success the version is
    /// bumped; `false` means someone else wrote first (or the record is gone).
    async fn put(&self, launch: &mut Launch, outbox: &[OutboxEntry]) -> Result<bool, StoreError>;
    /// Ids of launches the reconciler has work for ([`Launch::needs_work`]).
    async fn work(&self) -> Result<Vec<String>, StoreError>;
    /// How many launches hold a slot ([`Launch::holds_slot`]).
    async fn slots(&self) -> Result<usize, StoreError>;
    /// Newest first, at most `limit`, only `caller`'s (all with `None`), optionally in one state.
    async fn list(
        &self,
        caller: Option<&str>,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Launch>, StoreError>;
    /// Outbox entries due at `now`, at most `limit`, earliest first.
    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The entry was published (or given up): it leaves the outbox.
    async fn outbox_remove(&self, job_id: &str) -> Result<(), StoreError>;
    /// Save a failed entry's next try (only while it is still in the outbox).
    async fn outbox_reschedule(&self, entry: &OutboxEntry) -> Result<(), StoreError>;
    async fn outbox_depth(&self) -> Result<usize, StoreError>;
    /// Forget what is past the retention at `now`; returns how many entries went.
    async fn prune(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Hold (or renew) the reconciler lease as `holder` for `ttl`: only one replica reconciles at a time.
    async fn lead(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// The store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

fn retention_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// In memory: for a single launcher whose launches may be forgotten when it stops.
pub struct MemoryStore {
    inner: Mutex<Memory>,
    retention: Duration,
}

#[derive(Default)]
struct Memory {
    launches: BTreeMap<String, Launch>,
    slots: HashSet<String>,
    work: HashSet<String>,
    /// (caller, key) → the launch it made, and when (keys leave after the retention).
    keys: HashMap<(String, String), (IdempotentHit, DateTime<Utc>)>,
    outbox: BTreeMap<String, OutboxEntry>,
}

impl Memory {
    fn index(&mut self, launch: &Launch) {
        let id = &launch.launch_id;
        if launch.holds_slot() {
            self.slots.insert(id.clone());
        } else {
            self.slots.remove(id);
        }
        if launch.needs_work() {
            self.work.insert(id.clone());
        } else {
            self.work.remove(id);
        }
    }
}

impl MemoryStore {
    pub fn new(retention: Duration) -> Self {
        Self {
            inner: Mutex::new(Memory::default()),
            retention,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Duration::from_secs(7 * 24 * 3600))
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, id: &str) -> Result<Option<Launch>, StoreError> {
        Ok(self.lock().launches.get(id).cloned())
    }

    async fn create(
        &self,
        launch: &mut Launch,
        limit: usize,
        key: Option<IdempotencyKey<'_>>,
    ) -> Result<Created, StoreError> {
        let mut m = self.lock();
        if let Some(k) = key
            && let Some((hit, _)) = m.keys.get(&(k.caller.to_owned(), k.key.to_owned()))
        {
            return Ok(Created::Duplicate(hit.clone()));
        }
        if m.slots.len() >= limit {
            return Ok(Created::Busy {
                active: m.slots.len(),
            });
        }
        if m.launches.contains_key(&launch.launch_id) {
            return Err(StoreError::Corrupt(format!(
                "launch {} exists already",
                launch.launch_id
            )));
        }
        launch.version = 1;
        m.index(launch);
        m.launches.insert(launch.launch_id.clone(), launch.clone());
        if let Some(k) = key {
            let hit = IdempotentHit {
                launch_id: launch.launch_id.clone(),
                fingerprint: k.fingerprint.to_owned(),
            };
            m.keys.insert(
                (k.caller.to_owned(), k.key.to_owned()),
                (hit, launch.created_at),
            );
        }
        Ok(Created::Created)
    }

    async fn idempotent(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotentHit>, StoreError> {
        Ok(self
            .lock()
            .keys
            .get(&(caller.to_owned(), key.to_owned()))
            .map(|(hit, _)| hit.clone()))
    }

    async fn put(&self, launch: &mut Launch, outbox: &[OutboxEntry]) -> Result<bool, StoreError> {
        let mut m = self.lock();
        match m.launches.get(&launch.launch_id) {
            Some(stored) if stored.version == launch.version => {}
            _ => return Ok(false),
        }
        launch.version += 1;
        m.index(launch);
        m.launches.insert(launch.launch_id.clone(), launch.clone());
        for e in outbox {
            m.outbox
                .entry(e.job_id.clone())
                .or_insert_with(|| e.clone());
        }
        Ok(true)
    }

    async fn work(&self) -> Result<Vec<String>, StoreError> {
        let mut ids: Vec<String> = self.lock().work.iter().cloned().collect();
        ids.sort();
        Ok(ids)
    }

    async fn slots(&self) -> Result<usize, StoreError> {
        Ok(self.lock().slots.len())
    }

    async fn list(
        &self,
        caller: Option<&str>,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Launch>, StoreError> {
        // Ids are UUID v7: their order is their creation order.
        Ok(self
            .lock()
            .launches
            .values()
            .rev()
            .filter(|l| caller.is_none_or(|c| l.caller == c))
            .take(MAX_SCAN)
            .filter(|l| state.is_none_or(|s| l.state == s))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut due: Vec<OutboxEntry> = self
            .lock()
            .outbox
            .values()
            .filter(|e| e.due_at <= now)
            .cloned()
            .collect();
        due.sort_by_key(|e| e.due_at);
        due.truncate(limit);
        Ok(due)
    }

    async fn outbox_remove(&self, job_id: &str) -> Result<(), StoreError> {
        self.lock().outbox.remove(job_id);
        Ok(())
    }

    async fn outbox_reschedule(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        if let Some(e) = self.lock().outbox.get_mut(&entry.job_id) {
            *e = entry.clone();
        }
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<usize, StoreError> {
        Ok(self.lock().outbox.len())
    }

    async fn prune(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = now - retention_of(self.retention);
        let mut m = self.lock();
        let before = m.launches.len() + m.keys.len();
        m.launches
            .retain(|_, l| l.needs_work() || !l.state.is_terminal() || l.updated_at > cutoff);
        m.keys.retain(|_, (_, created)| *created > cutoff);
        Ok(before - m.launches.len() - m.keys.len())
    }

    async fn lead(&self, _holder: &str, _ttl: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// In Redis, under `REDIS_KEY_PREFIX`:
///
/// | key | type | holds |
/// | --- | --- | --- |
/// | `launch:{id}` | hash | `v` the version, `doc` the JSON; expires `LAUNCH_RETENTION` after the launch ended |
/// | `launches` | sorted set | every id by creation time (admin's listing) |
/// | `caller:{name}` | sorted set | a caller's ids by creation time (its listing) |
/// | `callers` | set | the callers that have launched (whose indexes `prune` visits) |
/// | `slots` | set | launches holding a slot (the bound counts them) |
/// | `active` | set | launches the reconciler has work for |
/// | `outbox`, `outbox:entries` | sorted set, hash | unpublished outcomes by due time, and each entry |
/// | `idem:{caller}:{key}` | string | `{fingerprint} {launch id}`; expires after `LAUNCH_RETENTION` |
/// | `leader` | string | the reconciler lease |
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    retention: Duration,
    timeout: Duration,
}

/// A new launch, atomically with the bound and its idempotency key.
/// KEYS: record, launches zset, caller zset, slots, active, idem key, callers.
/// ARGV: doc, id, created ms, limit, has key (0/1), key value, retention seconds, caller.
const CREATE: &str = r#"
if ARGV[5] == '1' then
  local prior = redis.call('GET', KEYS[6])
  if prior then return {'duplicate', prior} end
end
local n = redis.call('SCARD', KEYS[4])
if n >= tonumber(ARGV[4]) then return {'busy', tostring(n)} end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', ''} end
redis.call('HSET', KEYS[1], 'v', '1', 'doc', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
redis.call('SADD', KEYS[7], ARGV[8])
redis.call('SADD', KEYS[4], ARGV[2])
redis.call('SADD', KEYS[5], ARGV[2])
if ARGV[5] == '1' then redis.call('SET', KEYS[6], ARGV[6], 'EX', ARGV[7]) end
return {'created', ''}
"#;

/// Compare-and-set of one launch, its indexes and its new outbox entries, atomically.
/// KEYS: record, slots, active, outbox zset, outbox hash.
/// ARGV: expected version, new version, doc, id, holds slot (0/1), needs work (0/1), terminal (0/1),
/// retention seconds, then (job id, entry JSON, due ms) per outbox entry.
const PUT: &str = r#"
local v = redis.call('HGET', KEYS[1], 'v')
if v == false or v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3])
if ARGV[5] == '1' then redis.call('SADD', KEYS[2], ARGV[4]) else redis.call('SREM', KEYS[2], ARGV[4]) end
if ARGV[6] == '1' then redis.call('SADD', KEYS[3], ARGV[4]) else redis.call('SREM', KEYS[3], ARGV[4]) end
if ARGV[7] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[8]) else redis.call('PERSIST', KEYS[1]) end
for i = 9, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[5], ARGV[i], ARGV[i + 1]) == 1 then
    redis.call('ZADD', KEYS[4], ARGV[i + 2], ARGV[i])
  end
end
return 1
"#;

/// A failed outbox entry's next try, only while it is still queued.
/// KEYS: outbox zset, outbox hash. ARGV: job id, entry JSON, due ms.
const RESCHEDULE: &str = r#"
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
"#;

/// Take or renew the lease. KEYS: leader. ARGV: holder, ttl ms.
const LEAD: &str = r#"
local h = redis.call('GET', KEYS[1])
if h == false or h == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"#;

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl RedisStore {
    /// Connect lazily: the launcher starts while Redis is down, and `/ready` says so.
    pub fn new(
        redis: &pool_redis::RedisOptions,
        prefix: &str,
        retention: Duration,
    ) -> Result<Self, StoreError> {
        let conn =
            pool_redis::connect_lazy(redis).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
            retention,
            timeout: Duration::from_secs(5),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}launch:{id}", self.prefix)
    }
    fn k(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
    fn caller_index(&self, caller: &str) -> String {
        format!("{}caller:{caller}", self.prefix)
    }
    fn idem(&self, caller: &str, key: &str) -> String {
        format!("{}idem:{caller}:{key}", self.prefix)
    }
    fn retention_secs(&self) -> u64 {
        self.retention.as_secs().max(1)
    }

    async fn run<T>(
        &self,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        pool_redis::bounded(self.timeout, f)
            .await
            .map_err(unavailable)
    }

    async fn docs(&self, ids: &[String]) -> Result<Vec<Launch>, StoreError> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.hget(self.key(id), "doc");
        }
        let mut conn = self.conn.clone();
        let docs: Vec<Option<String>> = self.run(pipe.query_async(&mut conn)).await?;
        docs.into_iter()
            .flatten()
            .map(|d| serde_json::from_str::<Launch>(&d).map_err(corrupt))
            .collect()
    }

    /// Drop the ids of `index` (a sorted set by creation time) created before `cutoff` whose record
    /// has expired. Records expire `LAUNCH_RETENTION` after their launch ended, so an id younger than
    /// the retention cannot be stale.
    async fn prune_index(&self, index: &str, cutoff_ms: i64) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = self
            .run(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(index)
                    .arg("-inf")
                    .arg(cutoff_ms)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(PRUNE_BATCH)
                    .query_async(&mut conn),
            )
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.exists(self.key(id));
        }
        let exists: Vec<bool> = self.run(pipe.query_async(&mut conn)).await?;
        let gone: Vec<&String> = ids
            .iter()
            .zip(exists)
            .filter(|(_, e)| !e)
            .map(|(id, _)| id)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let _: i64 = self
            .run(
                redis::cmd("ZREM")
                    .arg(index)
                    .arg(&gone)
                    .query_async(&mut conn),
            )
            .await?;
        Ok(gone.len())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn get(&self, id: &str) -> Result<Option<Launch>, StoreError> {
        let mut conn = self.conn.clone();
        let got: HashMap<String, String> = self
            .run(
                redis::cmd("HGETALL")
                    .arg(self.key(id))
                    .query_async(&mut conn),
            )
            .await?;
        let (Some(v), Some(doc)) = (got.get("v"), got.get("doc")) else {
            return Ok(None);
        };
        let mut launch: Launch = serde_json::from_str(doc).map_err(corrupt)?;
        launch.version = v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("version {v:?}")))?;
        Ok(Some(launch))
    }

    async fn create(
        &self,
        launch: &mut Launch,
        limit: usize,
        key: Option<IdempotencyKey<'_>>,
    ) -> Result<Created, StoreError> {
        let mut next = launch.clone();
        next.version = 1;
        let doc = serde_json::to_string(&next).expect("a launch serialises");
        let (idem_key, idem_value) = match key {
            Some(k) => (
                self.idem(k.caller, k.key),
                IdempotentHit::encode(k.fingerprint, &launch.launch_id),
            ),
            None => (self.k("idem:-"), String::new()),
        };
        let mut inv = redis::cmd("EVAL");
        inv.arg(CREATE)
            .arg(7)
            .arg(self.key(&launch.launch_id))
            .arg(self.k("launches"))
            .arg(self.caller_index(&launch.caller))
            .arg(self.k("slots"))
            .arg(self.k("active"))
            .arg(idem_key)
            .arg(self.k("callers"))
            .arg(doc)
            .arg(&launch.launch_id)
            .arg(launch.created_at.timestamp_millis())
            .arg(limit)
            .arg(if key.is_some() { 1 } else { 0 })
            .arg(idem_value)
            .arg(self.retention_secs())
            .arg(&launch.caller);
        let mut conn = self.conn.clone();
        let answer: Vec<String> = self.run(inv.query_async(&mut conn)).await?;
        match answer.first().map(String::as_str) {
            Some("created") => {
                launch.version = 1;
                Ok(Created::Created)
            }
            Some("busy") => Ok(Created::Busy {
                active: answer.get(1).and_then(|n| n.parse().ok()).unwrap_or(limit),
            }),
            Some("duplicate") => answer
                .get(1)
                .and_then(|v| IdempotentHit::decode(v))
                .map(Created::Duplicate)
                .ok_or_else(|| corrupt("an idempotency key without its launch")),
            _ => Err(corrupt(format!(
                "launch {} exists already",
                launch.launch_id
            ))),
        }
    }

    async fn idempotent(
        &self,
        caller: &str,
        key: &str,
    ) -> Result<Option<IdempotentHit>, StoreError> {
        let mut conn = self.conn.clone();
        let v: Option<String> = self
            .run(
                redis::cmd("GET")
                    .arg(self.idem(caller, key))
                    .query_async(&mut conn),
            )
            .await?;
        Ok(v.as_deref().and_then(IdempotentHit::decode))
    }

    async fn put(&self, launch: &mut Launch, outbox: &[OutboxEntry]) -> Result<bool, StoreError> {
        let expected = launch.version;
        let mut next = launch.clone();
        next.version = expected + 1;
        let doc = serde_json::to_string(&next).expect("a launch serialises");
        let mut inv = redis::cmd("EVAL");
        inv.arg(PUT)
            .arg(5)
            .arg(self.key(&launch.launch_id))
            .arg(self.k("slots"))
            .arg(self.k("active"))
            .arg(self.k("outbox"))
            .arg(self.k("outbox:entries"))
            .arg(expected)
            .arg(expected + 1)
            .arg(doc)
            .arg(&launch.launch_id)
            .arg(if launch.holds_slot() { 1 } else { 0 })
            .arg(if launch.needs_work() { 1 } else { 0 })
            .arg(if launch.state.is_terminal() { 1 } else { 0 })
            .arg(self.retention_secs());
        for e in outbox {
            inv.arg(&e.job_id)
                .arg(serde_json::to_string(e).expect("an outbox entry serialises"))
                .arg(e.due_at.timestamp_millis());
        }
        let mut conn = self.conn.clone();
        let ok: i64 = self.run(inv.query_async(&mut conn)).await?;
        if ok == 1 {
            launch.version = expected + 1;
        }
        Ok(ok == 1)
    }

    async fn work(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        self.run(
            redis::cmd("SMEMBERS")
                .arg(self.k("active"))
                .query_async(&mut conn),
        )
        .await
    }

    async fn slots(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        self.run(
            redis::cmd("SCARD")
                .arg(self.k("slots"))
                .query_async(&mut conn),
        )
        .await
    }

    async fn list(
        &self,
        caller: Option<&str>,
        state: Option<State>,
        limit: usize,
    ) -> Result<Vec<Launch>, StoreError> {
        let zset = match caller {
            Some(c) => self.caller_index(c),
            None => self.k("launches"),
        };
        let mut out = Vec::new();
        let mut start = 0usize;
        const PAGE: usize = 200;
        while out.len() < limit && start < MAX_SCAN {
            let mut conn = self.conn.clone();
            let ids: Vec<String> = self
                .run(
                    redis::cmd("ZREVRANGE")
                        .arg(&zset)
                        .arg(start)
                        .arg(start + PAGE - 1)
                        .query_async(&mut conn),
                )
                .await?;
            if ids.is_empty() {
                break;
            }
            start += ids.len();
            let docs = self.docs(&ids).await?;
            // Ids whose record expired (finished launches past the retention) leave the index.
            if docs.len() < ids.len() {
                let present: HashSet<&str> = docs.iter().map(|l| l.launch_id.as_str()).collect();
                let gone: Vec<&String> = ids
                    .iter()
                    .filter(|i| !present.contains(i.as_str()))
                    .collect();
                let mut conn = self.conn.clone();
                let _: Result<i64, _> = self
                    .run(
                        redis::cmd("ZREM")
                            .arg(&zset)
                            .arg(gone)
                            .query_async(&mut conn),
                    )
                    .await;
                start -= ids.len() - docs.len();
            }
            out.extend(
                docs.into_iter()
                    .filter(|l| state.is_none_or(|s| l.state == s)),
            );
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn outbox_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let mut conn = self.conn.clone();
        let jobs: Vec<String> = self
            .run(
                redis::cmd("ZRANGEBYSCORE")
                    .arg(self.k("outbox"))
                    .arg("-inf")
                    .arg(now.timestamp_millis())
                    .arg("LIMIT")
                    .arg(0)
                    .arg(limit)
                    .query_async(&mut conn),
            )
            .await?;
        if jobs.is_empty() {
            return Ok(vec![]);
        }
        let docs: Vec<Option<String>> = self
            .run(
                redis::cmd("HMGET")
                    .arg(self.k("outbox:entries"))
                    .arg(&jobs)
                    .query_async(&mut conn),
            )
            .await?;
        let mut out = Vec::with_capacity(jobs.len());
        for (job, doc) in jobs.iter().zip(docs) {
            match doc.map(|d| serde_json::from_str::<OutboxEntry>(&d)) {
                Some(Ok(e)) => out.push(e),
                // An index entry without its entry (or an unreadable one) cannot be published.
                _ => {
                    tracing::warn!(job_id = %job, "outbox entry unreadable; dropped");
                    self.outbox_remove(job).await?;
                }
            }
        }
        Ok(out)
    }

    async fn outbox_remove(&self, job_id: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zrem(self.k("outbox"), job_id)
            .ignore()
            .hdel(self.k("outbox:entries"), job_id)
            .ignore();
        let mut conn = self.conn.clone();
        self.run(pipe.query_async::<()>(&mut conn)).await
    }

    async fn outbox_reschedule(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let mut inv = redis::cmd("EVAL");
        inv.arg(RESCHEDULE)
            .arg(2)
            .arg(self.k("outbox"))
            .arg(self.k("outbox:entries"))
            .arg(&entry.job_id)
            .arg(serde_json::to_string(entry).expect("an outbox entry serialises"))
            .arg(entry.due_at.timestamp_millis());
        let mut conn = self.conn.clone();
        let _: i64 = self.run(inv.query_async(&mut conn)).await?;
        Ok(())
    }

    async fn outbox_depth(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        self.run(
            redis::cmd("ZCARD")
                .arg(self.k("outbox"))
                .query_async(&mut conn),
        )
        .await
    }

    async fn prune(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = (now - retention_of(self.retention)).timestamp_millis();
        let mut conn = self.conn.clone();
        let callers: Vec<String> = self
            .run(
                redis::cmd("SMEMBERS")
                    .arg(self.k("callers"))
                    .query_async(&mut conn),
            )
            .await?;
        let mut gone = self.prune_index(&self.k("launches"), cutoff).await?;
        for c in callers {
            gone += self.prune_index(&self.caller_index(&c), cutoff).await?;
        }
        Ok(gone)
    }

    async fn lead(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let mut inv = redis::cmd("EVAL");
        inv.arg(LEAD)
            .arg(1)
            .arg(self.k("leader"))
            .arg(holder)
            .arg(ttl.as_millis() as u64);
        let ok: i64 = self.run(inv.query_async(&mut conn)).await?;
        Ok(ok == 1)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = self.run(redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::launch::{Claim, Defaults, LaunchRequest};
    use pool_core::event::Outcome;

    fn launch(caller: &str, now: DateTime<Utc>) -> Launch {
        let defaults = Defaults::new("astronauts", &["c6a.xlarge".into()], 3).unwrap();
        let spec = LaunchRequest::default().parse(|_| true, &defaults).unwrap();
        Launch::new(
            caller,
            spec,
            "pool-c6a.xlarge-us-east-1a".parse().unwrap(),
            now,
            Claim::new(now, Duration::from_secs(30)),
        )
    }

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[tokio::test]
    async fn the_memory_store_bounds_keys_and_compares_versions() {
        let store = MemoryStore::new(Duration::from_secs(3600));
        let mut a = launch("alice", t0());
        let key = IdempotencyKey {
            caller: "alice",
            key: "k1",
            fingerprint: "f1",
        };
        assert_eq!(
            store.create(&mut a, 2, Some(key)).await.unwrap(),
            Created::Created
        );
        assert_eq!(a.version, 1);
        let mut again = launch("alice", t0());
        assert_eq!(
            store.create(&mut again, 2, Some(key)).await.unwrap(),
            Created::Duplicate(IdempotentHit {
                launch_id: a.launch_id.clone(),
                fingerprint: "f1".into()
            })
        );
        // Another caller's key of the same name is its own.
        let mut b = launch("bob", t0());
        let bob_key = IdempotencyKey {
            caller: "bob",
            ..key
        };
        assert_eq!(
            store.create(&mut b, 2, Some(bob_key)).await.unwrap(),
            Created::Created
        );
        let mut c = launch("bob", t0());
        assert_eq!(
            store.create(&mut c, 2, None).await.unwrap(),
            Created::Busy { active: 2 }
        );
        assert_eq!(store.slots().await.unwrap(), 2);
        assert_eq!(store.list(Some("bob"), None, 10).await.unwrap().len(), 1);
        assert_eq!(store.list(None, None, 10).await.unwrap().len(), 2);

        // A stale version loses; the winner's outcome is queued with its write, once.
        let mut stale = a.clone();
        a.finish_attempt(&Outcome::Succeeded, t0());
        a.end(State::Completed, t0());
        let entry = OutboxEntry {
            job_id: a.current().job_id.clone(),
            launch_id: a.launch_id.clone(),
            attempt: 1,
            event: "{}".into(),
            enqueued_at: t0(),
            due_at: t0(),
            tries: 0,
            last_error: None,
        };
        assert!(
            store
                .put(&mut a, std::slice::from_ref(&entry))
                .await
                .unwrap()
        );
        assert!(!store.put(&mut stale, &[]).await.unwrap());
        assert!(
            store
                .put(&mut a, std::slice::from_ref(&entry))
                .await
                .unwrap()
        );
        assert_eq!(store.outbox_depth().await.unwrap(), 1);
        assert_eq!(
            store.slots().await.unwrap(),
            1,
            "a finished launch frees its slot"
        );
        assert!(!store.work().await.unwrap().contains(&a.launch_id));

        // Past the retention, the finished launch and the keys go; the running one stays.
        assert_eq!(
            store
                .prune(t0() + chrono::Duration::minutes(30))
                .await
                .unwrap(),
            0
        );
        let later = t0() + chrono::Duration::hours(2);
        assert!(store.prune(later).await.unwrap() >= 1);
        assert!(store.get(&a.launch_id).await.unwrap().is_none());
        assert!(store.get(&b.launch_id).await.unwrap().is_some());
        assert!(store.idempotent("alice", "k1").await.unwrap().is_none());
    }
}
