//! A tolerant NDJSON reader for DataFusion: a [`FileFormat`] whose file opener skips and counts the
//! lines that are not valid events instead of failing the whole query.
//!
//! Arrow's JSON decoder rejects a whole object on one bad line (a truncated write, a stray byte). Here
//! each object, or each byte range of one when DataFusion splits big objects across cores, is decoded
//! in one go as usual; only when that fails are its lines checked one by one, the bad ones blanked out
//! by spaces (so every offset stays put), counted and logged once with the object key, and the rest
//! decoded. Clean objects cost nothing extra, and parallel byte-range scans stay on.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::json::ReaderBuilder;
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileOpenFuture, FileOpener, FileScanConfig, FileSource,
};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::PhysicalExpr;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExprs;
use datafusion_datasource::boundary_stream::AlignedBoundaryStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use pool_core::event::Event;

/// What the reader saw during one scan.
#[derive(Debug, Default)]
pub struct ReadStats {
    /// Objects opened (an object split into byte ranges counts once).
    pub objects: AtomicU64,
    /// Bytes fetched.
    pub bytes: AtomicU64,
    /// Lines skipped because they are not valid events.
    pub skipped_lines: AtomicU64,
    /// Objects (or byte ranges of one) that held such lines.
    pub objects_with_bad_lines: AtomicU64,
}

/// Told about an object's bad lines: `(key, object size, byte range start, bad lines)`.
pub type BadLinesHook = Arc<dyn Fn(&Path, u64, u64, u64) + Send + Sync>;

/// The tolerant NDJSON format. One per scan, so its [`ReadStats`] belong to that scan.
pub struct TolerantNdjson {
    inner: JsonFormat,
    stats: Arc<ReadStats>,
    on_bad_lines: BadLinesHook,
}

impl fmt::Debug for TolerantNdjson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TolerantNdjson").finish()
    }
}

impl TolerantNdjson {
    pub fn new(stats: Arc<ReadStats>, on_bad_lines: BadLinesHook) -> Self {
        Self {
            inner: JsonFormat::default(),
            stats,
            on_bad_lines,
        }
    }
}

#[async_trait]
impl FileFormat for TolerantNdjson {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(c)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        self.inner.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&table_schema))
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.create_physical_plan(state, conf).await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(TolerantSource {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            batch_size: None,
            metrics: ExecutionPlanMetricsSet::new(),
            stats: Arc::clone(&self.stats),
            on_bad_lines: Arc::clone(&self.on_bad_lines),
        })
    }
}

#[derive(Clone)]
struct TolerantSource {
    table_schema: TableSchema,
    batch_size: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
    projection: SplitProjection,
    stats: Arc<ReadStats>,
    on_bad_lines: BadLinesHook,
}

impl FileSource for TolerantSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let opener = Arc::new(TolerantOpener {
            batch_size: self.batch_size.unwrap_or(8192),
            schema: Arc::new(file_schema.project(&self.projection.file_indices)?),
            store: object_store,
            stats: Arc::clone(&self.stats),
            on_bad_lines: Arc::clone(&self.on_bad_lines),
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut s = self.clone();
        s.batch_size = Some(batch_size);
        Arc::new(s)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        let mut s = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        s.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(s)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "json"
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}

struct TolerantOpener {
    batch_size: usize,
    schema: SchemaRef,
    store: Arc<dyn ObjectStore>,
    stats: Arc<ReadStats>,
    on_bad_lines: BadLinesHook,
}

impl FileOpener for TolerantOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let schema = Arc::clone(&self.schema);
        let batch_size = self.batch_size;
        let stats = Arc::clone(&self.stats);
        let hook = Arc::clone(&self.on_bad_lines);
        Ok(Box::pin(async move {
            let meta = &file.object_meta;
            let range_start = file.range.as_ref().map_or(0, |r| r.start as u64);
            let (bytes, first) = match &file.range {
                Some(r) => {
                    let (start, end) = (r.start as u64, r.end as u64);
                    let chunks: Vec<Bytes> = AlignedBoundaryStream::new(
                        Arc::clone(&store),
                        meta.location.clone(),
                        start,
                        end,
                        meta.size,
                        b'\n',
                    )
                    .await?
                    .try_collect()
                    .await?;
                    (chunks.concat().into(), start == 0)
                }
                None => (store.get(&meta.location).await?.bytes().await?, true),
            };
            if first {
                stats.objects.fetch_add(1, Ordering::Relaxed);
            }
            stats.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let batches = match decode(&schema, batch_size, &bytes) {
                Ok(b) => b,
                Err(_) => {
                    let (clean, bad) = blank_bad_lines(&bytes);
                    if bad > 0 {
                        stats.skipped_lines.fetch_add(bad, Ordering::Relaxed);
                        stats.objects_with_bad_lines.fetch_add(1, Ordering::Relaxed);
                        hook(&meta.location, meta.size, range_start, bad);
                    }
                    decode(&schema, batch_size, &clean)?
                }
            };
            Ok(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
        }))
    }
}

/// Decode NDJSON bytes into batches of the projected schema.
fn decode(schema: &Arc<Schema>, batch_size: usize, bytes: &[u8]) -> Result<Vec<RecordBatch>> {
    let mut decoder = ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_size)
        .build_decoder()?;
    let mut batches = vec![];
    let mut rest = bytes;
    while !rest.is_empty() {
        let read = decoder.decode(rest)?;
        if read == 0 {
            break;
        }
        rest = &rest[read..];
        if let Some(b) = decoder.flush()? {
            batches.push(b);
        }
    }
    if let Some(b) = decoder.flush()? {
        batches.push(b);
    }
    if !rest.is_empty() {
        return Err(DataFusionError::Execution(
            "NDJSON decoder stopped before the end of the data".into(),
        ));
    }
    Ok(batches)
}

/// The bytes with every line that is not a valid event overwritten by spaces (same length, same
/// offsets), and how many lines that was.
pub fn blank_bad_lines(bytes: &[u8]) -> (Vec<u8>, u64) {
    let mut out = bytes.to_vec();
    let mut bad = 0;
    let mut start = 0;
    for line in bytes.split(|b| *b == b'\n') {
        let range = start..start + line.len();
        start = range.end + 1;
        let trimmed = line.trim_ascii();
        if !trimmed.is_empty() && Event::from_json(trimmed).is_err() {
            bad += 1;
            out[range].fill(b' ');
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_are_blanked_in_place() {
        let input = b"{\"finished_at\":\"2026-11-22T10:00:00Z\",\"job_id\":\"a\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"SUCCEEDED\",\"reason\":\"\"}\n\
{truncated\n\
\n\
{\"finished_at\":\"2026-11-22T10:00:00\",\"job_id\":\"b\",\"pool_id\":\"nope\",\"status\":\"SUCCEEDED\"}\n\
{\"finished_at\":\"2026-11-22T10:00:01.5\",\"job_id\":\"c\",\"pool_id\":\"pool-c6a.xlarge-us-east-1a\",\"status\":\"FAILED\",\"reason\":\"SPOT_INSTANCE_TERMINATION\"}";
        let (clean, bad) = blank_bad_lines(input);
        assert_eq!(bad, 2);
        assert_eq!(clean.len(), input.len(), "every offset is kept");
        let text = std::str::from_utf8(&clean).unwrap();
        let kept: Vec<_> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(kept.len(), 2);
        assert!(kept[1].contains("\"job_id\":\"c\""));
        let schema = crate::table::event_schema();
        assert!(decode(&schema, 1024, input).is_err());
        let batches = decode(&schema, 1024, &clean).unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);
    }
}
