//! Hive-partitioned NDJSON objects in a local folder or an S3 prefix.
//!
//! Events are buffered per hourly partition (`dt=YYYY-MM-DD/hr=HH`, from each event's `finished_at`) and
//! a partition's buffer becomes one immutable object when it reaches [`ObjectSinkOptions::max_object_bytes`],
//! when all buffers together pass [`ObjectSinkOptions::max_buffered_bytes`] (the least recently written
//! partitions go first: in a time-ordered backfill those are the finished hours), when it is older than
//! [`ObjectSinkOptions::max_age`] (real-time streams, so data shows up while the generator runs), and at
//! [`Sink::finish`]. Few, large objects keep readers fast: a month of hourly partitions is ~720 objects.
//!
//! Object names are `<name_prefix>-<n>` with `n` counting flushes, and every flush decision except
//! `max_age` depends only on the events, so the same events give the same keys and bytes.

use std::collections::HashMap;
use std::time::Duration;

// Tokio's clock: the flush age follows the same clock as the stream's ticks.
use tokio::time::Instant;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use object_store::path::Path;
use pool_core::event::ndjson::Partitioned;
use pool_core::event::{Event, Partition};
use pool_storage::{Storage, StorageArgs};
use tokio::task::JoinSet;

use super::{Sink, SinkReport};

/// Buffering and naming of objects.
#[derive(Debug, Clone)]
pub struct ObjectSinkOptions {
    /// A partition's buffer is written once it holds this many bytes.
    pub max_object_bytes: usize,
    /// When all buffers together hold more, the least recently written are flushed down to half of it.
    pub max_buffered_bytes: usize,
    /// Flush a buffer once its oldest event has waited this long (checked on each send). `None` = never.
    pub max_age: Option<Duration>,
    /// Object names are `<name_prefix>-<counter>`.
    pub name_prefix: String,
    /// Uploads in flight at once.
    pub concurrency: usize,
}

impl Default for ObjectSinkOptions {
    fn default() -> Self {
        Self {
            max_object_bytes: 8 << 20,
            max_buffered_bytes: 256 << 20,
            max_age: None,
            name_prefix: format!("gen-{}", uuid::Uuid::new_v4().simple()),
            concurrency: 8,
        }
    }
}

/// When a partition's buffer was started and last written to (its lines live in `ObjectSink::buffers`).
struct Written {
    /// Sequence number of the last send that wrote here (least recently written goes first).
    last_send: u64,
    since: Instant,
}

/// Writes events as NDJSON objects under a [`Storage`] root.
pub struct ObjectSink {
    storage: Storage,
    opts: ObjectSinkOptions,
    buffers: Partitioned,
    written: HashMap<Partition, Written>,
    sends: u64,
    next_object: u64,
    uploads: JoinSet<Result<(), (Path, pool_storage::StorageError)>>,
    report: SinkReport,
}

impl ObjectSink {
    /// Open `url` (a folder, `file://DIR` or `s3://bucket/prefix`) with S3 settings from `args`.
    pub fn open(url: &str, args: &StorageArgs, opts: ObjectSinkOptions) -> anyhow::Result<Self> {
        let storage = Storage::open(url, args).with_context(|| format!("opening sink {url}"))?;
        if storage.single_object {
            anyhow::bail!(
                "--sink {url} names a single object; the generator writes partitioned objects under a \
                 folder or prefix (e.g. s3://bucket/events/ or ./data/events), and only the trickle \
                 (--trickle) appends to a single object"
            );
        }
        storage
            .ensure_local_root()
            .with_context(|| format!("creating sink folder {url}"))?;
        Ok(Self::new(storage, opts))
    }

    pub fn new(storage: Storage, opts: ObjectSinkOptions) -> Self {
        Self {
            storage,
            opts,
            buffers: Partitioned::default(),
            written: HashMap::new(),
            sends: 0,
            next_object: 0,
            uploads: JoinSet::new(),
            report: SinkReport::default(),
        }
    }

    /// Hand one partition's buffer to an upload task.
    async fn flush(&mut self, partition: Partition) -> anyhow::Result<()> {
        self.written.remove(&partition);
        let Some(buf) = self.buffers.remove(&partition) else {
            return Ok(());
        };
        let name = format!("{}-{:06}", self.opts.name_prefix, self.next_object);
        self.next_object += 1;
        let path = self.storage.object_path(&partition, &name);
        self.report.events += buf.events as u64;
        self.report.objects += 1;
        self.report.bytes += buf.bytes.len() as u64;
        tracing::debug!(object = %path, events = buf.events, bytes = buf.bytes.len(), "writing object");
        while self.uploads.len() >= self.opts.concurrency.max(1) {
            self.join_one().await?;
        }
        let storage = self.storage.clone();
        let bytes = Bytes::from(buf.bytes);
        self.uploads.spawn(async move {
            storage
                .put(&path, bytes)
                .await
                .map_err(|e| (path.clone(), e))
        });
        Ok(())
    }

    async fn join_one(&mut self) -> anyhow::Result<()> {
        match self.uploads.join_next().await {
            Some(Ok(Ok(()))) | None => Ok(()),
            Some(Ok(Err((path, e)))) => Err(anyhow::anyhow!(e))
                .with_context(|| format!("writing {}{path}", self.storage.store_url)),
            Some(Err(e)) => Err(anyhow::anyhow!("upload task failed: {e}")),
        }
    }

    /// Flush the least recently written partitions until at most half the memory budget is used.
    async fn shed(&mut self) -> anyhow::Result<()> {
        let mut order: Vec<(u64, Partition)> = self
            .written
            .iter()
            .map(|(p, w)| (w.last_send, *p))
            .collect();
        order.sort_unstable();
        for (_, p) in order {
            if self.buffers.bytes() <= self.opts.max_buffered_bytes / 2 {
                break;
            }
            self.flush(p).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for ObjectSink {
    async fn send(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
        self.sends += 1;
        for event in &events {
            let (partition, size) = self.buffers.push(event);
            self.written
                .entry(partition)
                .or_insert_with(|| Written {
                    last_send: 0,
                    since: Instant::now(),
                })
                .last_send = self.sends;
            if size >= self.opts.max_object_bytes {
                self.flush(partition).await?;
            }
        }
        if self.buffers.bytes() > self.opts.max_buffered_bytes {
            self.shed().await?;
        }
        if let Some(max_age) = self.opts.max_age {
            let mut old: Vec<Partition> = self
                .written
                .iter()
                .filter(|(_, w)| w.since.elapsed() >= max_age)
                .map(|(p, _)| *p)
                .collect();
            old.sort_unstable();
            for p in old {
                self.flush(p).await?;
            }
        }
        Ok(())
    }

    async fn finish(&mut self) -> anyhow::Result<SinkReport> {
        let rest: Vec<Partition> = self.buffers.partitions().map(|(p, _)| *p).collect();
        for p in rest {
            self.flush(p).await?;
        }
        while !self.uploads.is_empty() {
            self.join_one().await?;
        }
        Ok(self.report)
    }
}
