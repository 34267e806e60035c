//! What is in storage now (raw objects per hour, rollups: a [`Snapshot`]) and which rollup hour covers
//! a listed hour. Decoded rollups are cached by key and e-tag, bounded by bytes. Used by the compactor
//! (which hours still need a rollup, day merges) and the live view (what to load from rollups).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::NaiveDate;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStoreExt};

use pool_core::event::Partition;
use pool_storage::Storage;

use crate::rollup::{self, Block, BlockHour, ObjectEntry, ROLLUPS_DIR, RollupKey, SigningKey};

/// The raw objects of one hourly partition.
#[derive(Debug, Clone)]
pub struct HourListing {
    pub digest: u64,
    pub objects: Vec<ObjectMeta>,
}

/// The rollup objects of one day.
#[derive(Debug, Clone, Default)]
pub struct DayRollups {
    pub day: Option<ObjectMeta>,
    pub hours: BTreeMap<u32, ObjectMeta>,
}

/// One listing of the root.
#[derive(Debug)]
pub struct Snapshot {
    pub hours: BTreeMap<Partition, HourListing>,
    pub rollups: BTreeMap<NaiveDate, DayRollups>,
    /// Rollups decoded for this listing, so a pass neither looks each one up in the cache nor builds
    /// its key again. Lives as long as the listing.
    resolved: std::sync::Mutex<Arc<HashMap<Path, Arc<Block>>>>,
}

/// Cache key of a decoded rollup: its key plus what changes when it is rewritten.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BlockKey {
    path: Path,
    size: u64,
    e_tag: Option<String>,
    modified_micros: i64,
}

struct Inner {
    storage: Storage,
    blocks: moka::sync::Cache<BlockKey, Arc<Block>>,
    /// Rollups are decoded only when signed with this key (`ROLLUP_HMAC_KEY`), when set.
    key: Option<SigningKey>,
}

/// Storage's contents and the decoded-rollup cache. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

impl Catalog {
    /// A catalog that decodes a rollup only when its keyed digest matches `key` (when given): an
    /// unsigned or forged one is an error from [`Catalog::block`], so its hours are read raw.
    pub fn with_key(storage: Storage, cache_bytes: u64, key: Option<SigningKey>) -> Self {
        let blocks = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_: &BlockKey, b: &Arc<Block>| b.weight().try_into().unwrap_or(u32::MAX))
            .build();
        Self {
            inner: Arc::new(Inner {
                storage,
                blocks,
                key,
            }),
        }
    }

    fn storage(&self) -> &Storage {
        &self.inner.storage
    }

    /// List the root now.
    pub async fn list_now(&self) -> Result<Arc<Snapshot>, object_store::Error> {
        let storage = self.storage();
        let root = storage.root.as_ref().to_owned();
        let prefix_len = if root.is_empty() { 0 } else { root.len() + 1 };
        // One listing per top-level folder (each day, and the rollups), several at once: on S3 a
        // listing is a sequence of 1,000-key pages, so a year of days listed one after the other
        // would be slow; locally each walk runs on its own blocking thread.
        let top = storage
            .store
            .list_with_delimiter(Some(&storage.root))
            .await?;
        let mut objects: Vec<ObjectMeta> = top.objects;
        let per_folder: Vec<Vec<ObjectMeta>> = futures::stream::iter(top.common_prefixes)
            .map(|prefix| async move {
                storage
                    .store
                    .list(Some(&prefix))
                    .try_collect::<Vec<_>>()
                    .await
            })
            .buffer_unordered(8)
            .try_collect()
            .await?;
        objects.extend(per_folder.into_iter().flatten());
        let mut hours: BTreeMap<Partition, Vec<ObjectMeta>> = BTreeMap::new();
        let mut rollups: BTreeMap<NaiveDate, DayRollups> = BTreeMap::new();
        for meta in objects {
            let key = meta.location.as_ref();
            let Some(rel) = key.get(prefix_len..) else {
                continue;
            };
            if let Some(r) = rel
                .strip_prefix(ROLLUPS_DIR)
                .and_then(|r| r.strip_prefix('/'))
            {
                match RollupKey::parse(r) {
                    Some(RollupKey::Day(d)) => rollups.entry(d).or_default().day = Some(meta),
                    Some(RollupKey::Hour(p)) => {
                        rollups
                            .entry(p.date)
                            .or_default()
                            .hours
                            .insert(p.hour, meta);
                    }
                    None => {}
                }
                continue;
            }
            if !rel.ends_with(".json") {
                continue;
            }
            if let Some(p) = Partition::from_key(rel) {
                hours.entry(p).or_default().push(meta);
            }
        }
        let hours = hours
            .into_iter()
            .map(|(p, objects)| {
                let entries: Vec<ObjectEntry> = objects.iter().map(ObjectEntry::from).collect();
                let digest = rollup::digest(&entries);
                (p, HourListing { digest, objects })
            })
            .collect();
        Ok(Arc::new(Snapshot {
            hours,
            rollups,
            resolved: Default::default(),
        }))
    }

    /// A decoded rollup, from the cache or storage; an error when it cannot be read or, with a key, is
    /// not signed with it.
    pub async fn block(&self, meta: &ObjectMeta) -> Result<Arc<Block>, object_store::Error> {
        let key = BlockKey {
            path: meta.location.clone(),
            size: meta.size,
            e_tag: meta.e_tag.clone(),
            modified_micros: meta.last_modified.timestamp_micros(),
        };
        if let Some(b) = self.inner.blocks.get(&key) {
            return Ok(b);
        }
        let bytes = self
            .storage()
            .store
            .get(&meta.location)
            .await?
            .bytes()
            .await?;
        let name = meta.location.to_string();
        let signing = self.inner.key;
        let block =
            tokio::task::spawn_blocking(move || Block::from_bytes(&name, bytes, signing.as_ref()))
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "rollup",
                    source: Box::new(e),
                })?
                .map_err(|e| object_store::Error::Generic {
                    store: "rollup",
                    source: Box::new(e),
                })?;
        let block = Arc::new(block);
        self.inner.blocks.insert(key, Arc::clone(&block));
        Ok(block)
    }

    /// The rollups that may cover hours of `days`, decoded (missing or unreadable ones are skipped with
    /// a warning: those hours are read raw).
    pub(crate) async fn blocks_for(
        &self,
        snapshot: &Snapshot,
        days: impl Iterator<Item = NaiveDate>,
    ) -> Arc<HashMap<Path, Arc<Block>>> {
        let known = Arc::clone(&snapshot.resolved.lock().expect("poisoned"));
        let missing: Vec<ObjectMeta> = days
            .filter_map(|d| snapshot.rollups.get(&d))
            .flat_map(|r| r.day.iter().chain(r.hours.values()))
            .filter(|m| !known.contains_key(&m.location))
            .cloned()
            .collect();
        if missing.is_empty() {
            return known;
        }
        let loaded: Vec<(Path, Arc<Block>)> = futures::stream::iter(missing)
            .map(|meta| async move {
                let r = self.block(&meta).await;
                (meta.location, r)
            })
            .buffer_unordered(16)
            .filter_map(|(path, r)| async move {
                match r {
                    Ok(b) => Some((path, b)),
                    Err(e) => {
                        tracing::warn!(rollup = %path, error = %e, "unreadable rollup; its hours are read raw");
                        None
                    }
                }
            })
            .collect()
            .await;
        let mut guard = snapshot.resolved.lock().expect("poisoned");
        Arc::make_mut(&mut guard).extend(loaded);
        Arc::clone(&guard)
    }

    /// The rollup hour that answers partition `p` as listed, if any.
    pub fn covering<'a>(
        snapshot: &Snapshot,
        blocks: &'a HashMap<Path, Arc<Block>>,
        p: Partition,
        listing: &HourListing,
    ) -> Option<(&'a Arc<Block>, &'a BlockHour)> {
        let day = snapshot.rollups.get(&p.date)?;
        day.hours
            .get(&p.hour)
            .into_iter()
            .chain(day.day.iter())
            .filter_map(|meta| blocks.get(&meta.location))
            .find_map(|b| {
                b.hour(p.hour)
                    .filter(|h| h.digest == listing.digest)
                    .map(|h| (b, h))
            })
    }
}
