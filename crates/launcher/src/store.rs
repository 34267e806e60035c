//! Where launches are kept: Redis when `REDIS_URL` is set (they survive a restart and are shared by
//! replicas), otherwise memory.
//!
//! Writes are compare-and-set on the record's `version`, so two replicas (or a request and the
//! reconciler) never overwrite each other's change: the loser reads again and retries.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::ConnectionManager;

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

#[async_trait]
pub trait Store: Send + Sync {
    async fn get(&self, id: &str) -> Result<Option<Launch>, StoreError>;
    /// Write `launch` if the stored version is still `launch.version` (0: not stored yet). On success
    /// the record's version is bumped; `false` means someone else wrote first.
    async fn put(&self, launch: &mut Launch) -> Result<bool, StoreError>;
    /// Ids of launches the reconciler still has work for ([`Launch::needs_work`]).
    async fn active(&self) -> Result<Vec<String>, StoreError>;
    /// How many launches [`active`](Self::active) would list (`POST /launch` checks its bound with it).
    async fn active_count(&self) -> Result<usize, StoreError> {
        Ok(self.active().await?.len())
    }
    /// Newest first, at most `limit`, optionally in one state.
    async fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Launch>, StoreError>;
    /// Hold (or renew) the reconciler lease as `holder` for `ttl`: only one replica reconciles at a time.
    async fn lead(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// The store answers.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// In memory: for a single launcher whose launches may be forgotten when it stops.
#[derive(Default)]
pub struct MemoryStore {
    launches: Mutex<BTreeMap<String, Launch>>,
}

#[async_trait]
impl Store for MemoryStore {
    async fn get(&self, id: &str) -> Result<Option<Launch>, StoreError> {
        Ok(self.launches.lock().unwrap().get(id).cloned())
    }
    async fn put(&self, launch: &mut Launch) -> Result<bool, StoreError> {
        let mut all = self.launches.lock().unwrap();
        let stored = all.get(&launch.launch_id).map(|l| l.version).unwrap_or(0);
        if stored != launch.version {
            return Ok(false);
        }
        launch.version += 1;
        all.insert(launch.launch_id.clone(), launch.clone());
        Ok(true)
    }
    async fn active(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .launches
            .lock()
            .unwrap()
            .values()
            .filter(|l| l.needs_work())
            .map(|l| l.launch_id.clone())
            .collect())
    }
    async fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Launch>, StoreError> {
        // Ids are UUID v7: their order is their creation order.
        Ok(self
            .launches
            .lock()
            .unwrap()
            .values()
            .rev()
            .take(MAX_SCAN)
            .filter(|l| state.is_none_or(|s| l.state == s))
            .take(limit)
            .cloned()
            .collect())
    }
    async fn lead(&self, _holder: &str, _ttl: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// In Redis: `{prefix}launch:{id}` is a hash (`v` the version, `doc` the JSON), `{prefix}launches` a
/// sorted set of every id by creation time, `{prefix}active` the set of unfinished ids, and
/// `{prefix}leader` the reconciler lease. Finished launches expire after the retention.
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    retention: Duration,
    timeout: Duration,
}

/// Compare-and-set of one launch and its indexes, atomically.
/// KEYS: record, launches zset, active set. ARGV: expected version, new version, doc, id, created ms,
/// terminal (0/1), retention seconds.
const PUT: &str = r#"
local v = redis.call('HGET', KEYS[1], 'v')
if (v == false and ARGV[1] ~= '0') or (v ~= false and v ~= ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'doc', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
if ARGV[6] == '1' then
  redis.call('SREM', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[7])
else
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('PERSIST', KEYS[1])
end
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

impl RedisStore {
    /// Connect lazily: the launcher starts while Redis is down, and `/ready` says so.
    pub fn new(url: &str, prefix: &str, retention: Duration) -> Result<Self, StoreError> {
        pool_core::tls::install_crypto_provider();
        let shown = pool_core::redact::url(url);
        let client = redis::Client::open(url).map_err(|e| {
            StoreError::Unavailable(format!(
                "REDIS_URL {shown} cannot be used: {}",
                e.category()
            ))
        })?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let conn = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| StoreError::Unavailable(format!("REDIS_URL {shown}: {}", e.category())))?;
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

    async fn run<T>(
        &self,
        f: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, f).await {
            Ok(r) => r.map_err(unavailable),
            Err(_) => Err(StoreError::Unavailable("no answer in time".into())),
        }
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
            .map(|d| {
                serde_json::from_str::<Launch>(&d).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
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
        let mut launch: Launch =
            serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        launch.version = v
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("version {v:?}")))?;
        Ok(Some(launch))
    }

    async fn put(&self, launch: &mut Launch) -> Result<bool, StoreError> {
        let expected = launch.version;
        let mut next = launch.clone();
        next.version = expected + 1;
        let doc = serde_json::to_string(&next).expect("a launch serialises");
        let mut conn = self.conn.clone();
        let mut inv = redis::cmd("EVAL");
        inv.arg(PUT)
            .arg(3)
            .arg(self.key(&launch.launch_id))
            .arg(format!("{}launches", self.prefix))
            .arg(format!("{}active", self.prefix))
            .arg(expected)
            .arg(expected + 1)
            .arg(doc)
            .arg(&launch.launch_id)
            .arg(launch.created_at.timestamp_millis())
            .arg(if launch.needs_work() { 0 } else { 1 })
            .arg(self.retention.as_secs().max(1));
        let ok: i64 = self.run(inv.query_async(&mut conn)).await?;
        if ok == 1 {
            launch.version = expected + 1;
        }
        Ok(ok == 1)
    }

    async fn active(&self) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.clone();
        self.run(
            redis::cmd("SMEMBERS")
                .arg(format!("{}active", self.prefix))
                .query_async(&mut conn),
        )
        .await
    }

    async fn active_count(&self) -> Result<usize, StoreError> {
        let mut conn = self.conn.clone();
        self.run(
            redis::cmd("SCARD")
                .arg(format!("{}active", self.prefix))
                .query_async(&mut conn),
        )
        .await
    }

    async fn list(&self, state: Option<State>, limit: usize) -> Result<Vec<Launch>, StoreError> {
        let zset = format!("{}launches", self.prefix);
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
                let present: std::collections::HashSet<&str> =
                    docs.iter().map(|l| l.launch_id.as_str()).collect();
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

    async fn lead(&self, holder: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let mut inv = redis::cmd("EVAL");
        inv.arg(LEAD)
            .arg(1)
            .arg(format!("{}leader", self.prefix))
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
