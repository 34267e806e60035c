//! One NDJSON object that every event is appended to: seed 000's `events.json` (`s3://bucket/events.json`
//! or a local `./events.json`), written by the trickle (`--trickle`) the way the seed's generator wrote
//! it.
//!
//! A local file is opened for appending and synced after each write. S3 has no append: the object is
//! read, extended and written back whole (the seed did the same), so a reader always sees a complete
//! object, and the memory used is the object's size. One writer at a time, as with the seed: two
//! appenders to the same S3 object would overwrite each other's events.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use bytes::Bytes;
use object_store::ObjectStoreExt;
use pool_core::event::Event;
use pool_storage::Storage;

use super::{Sink, SinkReport};

/// Appends events to a single object.
pub struct AppendSink {
    storage: Storage,
    report: SinkReport,
}

impl AppendSink {
    /// `storage` must name a single object ([`Storage::single_object`]).
    pub fn new(storage: Storage) -> Self {
        Self {
            storage,
            report: SinkReport::default(),
        }
    }

    fn local_path(&self) -> Option<PathBuf> {
        (self.storage.store_url.scheme() == "file")
            .then(|| PathBuf::from(format!("/{}", self.storage.root)))
    }

    async fn append(&self, lines: Vec<u8>) -> anyhow::Result<()> {
        if let Some(path) = self.local_path() {
            return tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?;
                file.write_all(&lines)?;
                file.sync_data()?;
                Ok(())
            })
            .await?;
        }
        let root = &self.storage.root;
        let mut whole = match self.storage.store.get(root).await {
            Ok(existing) => existing.bytes().await?.to_vec(),
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if !whole.is_empty() && !whole.ends_with(b"\n") {
            // A last line without its newline (a writer cut short) stays a line of its own.
            whole.push(b'\n');
        }
        whole.extend_from_slice(&lines);
        self.storage.put(root, Bytes::from(whole)).await?;
        Ok(())
    }
}

#[async_trait]
impl Sink for AppendSink {
    async fn send(&mut self, events: Vec<Event>) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(events.len() * 160);
        for e in &events {
            serde_json::to_writer(&mut lines, e)?;
            lines.push(b'\n');
        }
        let bytes = lines.len() as u64;
        self.append(lines)
            .await
            .map_err(|e| e.context(format!("appending to {}", self.storage.root_url())))?;
        self.report.events += events.len() as u64;
        self.report.objects = 1;
        self.report.bytes += bytes;
        Ok(())
    }

    async fn finish(&mut self) -> anyhow::Result<SinkReport> {
        Ok(self.report)
    }
}
