//! An object store decorator between DataFusion and the real store. It does two jobs:
//!
//! * **Accounting.** Every object DataFusion reads is counted (objects, bytes) for the scan's report and
//!   the Prometheus counters.
//! * **Quarantine.** Arrow's JSON reader fails a whole query on one malformed line. Objects are immutable
//!   (the writers only ever add new keys), so once an object is known to be malformed it is *quarantined*:
//!   it is served with each bad line overwritten by spaces, byte for byte, so its size and every line's
//!   offset stay as listed and DataFusion's parallel byte-range scans still split it correctly; its bad
//!   lines are counted and logged once with the object key. Clean objects pass straight through
//!   untouched, so the common case costs nothing.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
    PutResult,
};

use pool_core::event::Event;

/// A malformed object's usable content.
#[derive(Debug)]
pub struct Quarantined {
    /// Size of the original object (a re-written object under the same key would differ).
    pub original_size: u64,
    pub bad_lines: u64,
    pub good_lines: u64,
    /// The object with every bad line blanked out by spaces (same length as the original).
    pub sanitized: Bytes,
}

/// What is known about objects across queries. Keyed by (path, size): objects are immutable, and the size
/// guards against someone overwriting a key in place. Both halves are bounded by bytes: forgetting a bad
/// object only costs one failed scan that finds it again, and forgetting a good one a re-check.
pub struct Quarantine {
    bad: moka::sync::Cache<Path, Arc<Quarantined>>,
    good: moka::sync::Cache<(Path, u64), ()>,
}

impl fmt::Debug for Quarantine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Quarantine")
            .field("bad", &self.bad.entry_count())
            .field("good", &self.good.entry_count())
            .finish()
    }
}

/// Bytes of quarantined object bodies kept.
const BAD_BYTES: u64 = 64 << 20;
/// Bytes of keys of objects known to be clean.
const GOOD_BYTES: u64 = 16 << 20;

impl Default for Quarantine {
    fn default() -> Self {
        Self {
            bad: moka::sync::Cache::builder()
                .max_capacity(BAD_BYTES)
                .weigher(|p: &Path, q: &Arc<Quarantined>| {
                    (p.as_ref().len() + q.sanitized.len() + 64)
                        .try_into()
                        .unwrap_or(u32::MAX)
                })
                .build(),
            good: moka::sync::Cache::builder()
                .max_capacity(GOOD_BYTES)
                .weigher(|k: &(Path, u64), _: &()| (k.0.as_ref().len() + 48) as u32)
                .build(),
        }
    }
}

impl Quarantine {
    pub fn get(&self, path: &Path) -> Option<Arc<Quarantined>> {
        self.bad.get(path)
    }
    pub fn is_known_good(&self, path: &Path, size: u64) -> bool {
        self.good.contains_key(&(path.clone(), size))
    }
    pub fn mark_good(&self, path: Path, size: u64) {
        self.good.insert((path, size), ());
    }
    pub fn insert(&self, path: Path, q: Quarantined) {
        self.bad.insert(path, Arc::new(q));
    }
}

/// Result of checking one object's lines.
pub struct Sanitized {
    pub quarantined: Quarantined,
    /// Up to a few `(line number, reason)` pairs for the log.
    pub examples: Vec<(usize, String)>,
}

impl Quarantine {
    /// Split `bytes` into lines and blank out (with spaces, keeping every offset) the ones that are not
    /// valid events.
    pub fn sanitize(bytes: &[u8]) -> Sanitized {
        let mut out = bytes.to_vec();
        let (mut bad, mut good) = (0u64, 0u64);
        let mut examples = Vec::new();
        let mut start = 0;
        for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let range = start..start + line.len();
            start = range.end + 1;
            if line.trim_ascii().is_empty() {
                continue;
            }
            match Event::from_json(line.trim_ascii()) {
                Ok(_) => good += 1,
                Err(err) => {
                    bad += 1;
                    out[range].fill(b' ');
                    if examples.len() < 5 {
                        examples.push((i + 1, err.to_string()));
                    }
                }
            }
        }
        Sanitized {
            quarantined: Quarantined {
                original_size: bytes.len() as u64,
                bad_lines: bad,
                good_lines: good,
                sanitized: Bytes::from(out),
            },
            examples,
        }
    }
}

/// Per-scan counters.
#[derive(Debug, Default)]
pub struct ScanStats {
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
    pub quarantined_objects: AtomicU64,
    pub skipped_lines: AtomicU64,
}

/// The decorator. One is made per query so its [`ScanStats`] belong to that query alone.
#[derive(Debug)]
pub struct ScanStore {
    inner: Arc<dyn ObjectStore>,
    quarantine: Arc<Quarantine>,
    pub stats: Arc<ScanStats>,
}

impl ScanStore {
    pub fn new(inner: Arc<dyn ObjectStore>, quarantine: Arc<Quarantine>) -> Self {
        Self {
            inner,
            quarantine,
            stats: Arc::default(),
        }
    }
}

impl fmt::Display for ScanStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScanStore({})", self.inner)
    }
}

fn slice_for(range: &Option<GetRange>, len: u64) -> Range<u64> {
    match range {
        None => 0..len,
        Some(GetRange::Bounded(r)) => r.start.min(len)..r.end.min(len),
        Some(GetRange::Offset(o)) => (*o).min(len)..len,
        Some(GetRange::Suffix(n)) => len.saturating_sub(*n)..len,
    }
}

#[async_trait]
impl ObjectStore for ScanStore {
    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if let Some(q) = self.quarantine.get(location) {
            let meta = self.inner.head(location).await?;
            if meta.size != q.original_size {
                // Rewritten in place since it was checked: serve what is there now; a bad line will
                // fail the scan and have it checked again.
                return self.inner.get_opts(location, options).await;
            }
            let range = slice_for(&options.range, meta.size);
            if !options.head {
                self.stats.objects.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .quarantined_objects
                    .fetch_add(1, Ordering::Relaxed);
                self.stats
                    .skipped_lines
                    .fetch_add(q.bad_lines, Ordering::Relaxed);
                self.stats
                    .bytes
                    .fetch_add(range.end - range.start, Ordering::Relaxed);
            }
            let body = q.sanitized.slice(range.start as usize..range.end as usize);
            return Ok(GetResult {
                payload: GetResultPayload::Stream(Box::pin(futures::stream::once(async move {
                    Ok(body)
                }))),
                meta,
                range,
                attributes: Default::default(),
            });
        }
        let head = options.head;
        let result = self.inner.get_opts(location, options).await?;
        if !head {
            self.stats.objects.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes
                .fetch_add(result.range.end - result.range.start, Ordering::Relaxed);
        }
        Ok(result)
    }

    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_blanks_bad_lines_in_place() {
        let input = b"{\"finished_at\":\"2026-11-22T10:00:00Z\",\"job_id\":\"a\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\",\"reason\":\"\"}\n\
{truncated\n\
\n\
{\"finished_at\":\"2026-11-22T10:00:00\",\"job_id\":\"b\",\"pool_id\":\"nope\",\"status\":\"SUCCEEDED\"}\n\
{\"finished_at\":\"2026-11-22T10:00:01.5\",\"job_id\":\"c\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"FAILED\",\"reason\":\"SPOT_INSTANCE_TERMINATION\"}";
        let s = Quarantine::sanitize(input);
        assert_eq!(s.quarantined.good_lines, 2);
        assert_eq!(s.quarantined.bad_lines, 2);
        assert_eq!(s.examples[0].0, 2);
        assert_eq!(s.examples[1].0, 4);
        let text = std::str::from_utf8(&s.quarantined.sanitized).unwrap();
        assert_eq!(text.len(), input.len(), "every offset is kept");
        let kept: Vec<_> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(kept.len(), 2);
        assert!(kept[1].contains("\"finished_at\":\"2026-11-22T10:00:01.5\""));
        for (a, b) in text
            .lines()
            .zip(std::str::from_utf8(input).unwrap().lines())
        {
            assert_eq!(a.len(), b.len());
        }
    }

    #[test]
    fn ranges_are_clamped() {
        assert_eq!(slice_for(&None, 10), 0..10);
        assert_eq!(slice_for(&Some(GetRange::Bounded(2..50)), 10), 2..10);
        assert_eq!(slice_for(&Some(GetRange::Suffix(3)), 10), 7..10);
        assert_eq!(slice_for(&Some(GetRange::Offset(12)), 10), 10..10);
    }
}
