//! The rollup format: per-pool counts of closed hours in Parquet, with the manifest of the raw objects
//! they were computed from in the file's own key-value metadata.
//!
//! Keys, under `<root>/_rollups/`:
//! * `dt=YYYY-MM-DD/hr=HH.parquet`: one closed hour;
//! * `dt=YYYY-MM-DD/day.parquet`: a closed day, replacing its hourly files (the hour is a column), so a
//!   year of history is a few hundred objects.
//!
//! Columns (one row per hour and pool): `hr`, `pool_id`, `jobs`, `spot_terminations`, `other_failures`,
//! `duplicates` (redelivered copies dropped), `first_finished_at`, `last_finished_at`, and `m1`…`m6` /
//! `t1`…`t6`, the power moments of the jobs' and the terminations' finishing times about the middle of
//! the hour (see `tally::Moments`), from which recency weights for any half-life of an hour or
//! more are recovered.
//!
//! The manifest travels inside the Parquet file rather than beside it: one object is written atomically,
//! so two compactors racing on the same hour can never leave counts from one listing under the manifest
//! of another. A reader trusts an hour of a rollup only when its manifest (keys, sizes, e-tags) equals
//! the raw objects present now.
//!
//! # Keyed digest
//!
//! With a [`SigningKey`] (`ROLLUP_HMAC_KEY`, a Secret only the compactor and the readers hold), the
//! compactor also writes an HMAC-SHA256 of the manifest and of every row (`MAC_KEY` in the same
//! key-value metadata), and readers decode a rollup only when that digest is there and matches, compared
//! in constant time. Whoever may write under `_rollups/` but lacks the key (an identity with a too-broad
//! S3 policy, a leaked writer credential) can then neither forge counts nor edit a manifest so that
//! forged counts pass for the raw objects': an unsigned or forged rollup is refused, and its hours are
//! read from the raw events.

use std::hash::{BuildHasher, Hash};
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    UInt8Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType, UInt8Type,
    UInt64Type,
};
use hmac::{Hmac, Mac};
use object_store::ObjectMeta;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use pool_core::event::{Partition, PoolId};

use crate::tally::{MOMENTS, PoolCount};

/// Folder of the rollups, under the events root.
pub(crate) const ROLLUPS_DIR: &str = "_rollups";
/// Key of the manifest in the Parquet key-value metadata.
pub(crate) const MANIFEST_KEY: &str = "pool_selector.rollup.manifest";
/// Key of the keyed digest (hex HMAC-SHA256, see [`SigningKey`]) in the Parquet key-value metadata.
pub(crate) const MAC_KEY: &str = "pool_selector.rollup.hmac_sha256";
const FORMAT_VERSION: u32 = 1;
/// What the keyed digest starts with: a rollup's digest can never be taken for another format's.
const MAC_DOMAIN: &[u8] = b"pool-selector rollup v1\n";

/// The secret that signs rollups (`ROLLUP_HMAC_KEY`): 32 bytes derived from the configured secret with
/// SHA-256, so any length of secret works and the value is small enough to copy around. Never printed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// The key derived from `secret`; `None` for an empty one (no signing, no checking).
    pub fn from_secret(secret: &[u8]) -> Option<Self> {
        use sha2::Digest;
        if secret.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let mut h = sha2::Sha256::new();
        h.update(b"pool-selector rollup signing key v1\0");
        h.update(secret);
        Some(Self(h.finalize().into()))
    }

    /// `ROLLUP_HMAC_KEY` as a command-line value parser: any non-empty secret.
    pub fn parse_arg(secret: &str) -> Result<Self, String> {
        Self::from_secret(secret.as_bytes()).ok_or_else(|| {
            "ROLLUP_HMAC_KEY is empty; unset it to run without signed rollups".into()
        })
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length")
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(…)")
    }
}

/// The keyed digest's input, written the same way by the writer and the reader: the domain, the
/// manifest's JSON exactly as stored, then each row's fields in file order, in fixed-width binary.
struct Digest(Hmac<Sha256>);

impl Digest {
    fn new(key: &SigningKey, manifest_json: &str) -> Self {
        let mut mac = key.mac();
        mac.update(MAC_DOMAIN);
        mac.update(&(manifest_json.len() as u64).to_le_bytes());
        mac.update(manifest_json.as_bytes());
        Self(mac)
    }

    fn row(&mut self, hour: u8, pool_id: &str, c: &PoolCount) {
        let m = &mut self.0;
        m.update(&[hour]);
        m.update(&(pool_id.len() as u32).to_le_bytes());
        m.update(pool_id.as_bytes());
        for n in [
            c.tally.jobs,
            c.tally.spot_terminations,
            c.tally.other_failures,
            c.duplicates,
        ] {
            m.update(&n.to_le_bytes());
        }
        m.update(&c.tally.first_event_micros.to_le_bytes());
        m.update(&c.tally.last_event_micros.to_le_bytes());
        for v in c.moments.jobs.iter().chain(c.moments.spot.iter()) {
            m.update(&v.to_bits().to_le_bytes());
        }
    }

    fn hex(self) -> String {
        self.0
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Constant-time comparison with the stored hex digest.
    fn verify(self, stored_hex: &str) -> bool {
        let Some(bytes) = from_hex(stored_hex) else {
            return false;
        };
        self.0.verify_slice(&bytes).is_ok()
    }
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    #[error("rollup {0}: {1}")]
    Format(String, String),
}

fn format_err(key: &str, e: impl ToString) -> RollupError {
    RollupError::Format(key.to_owned(), e.to_string())
}

/// One raw object a rollup covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ObjectEntry {
    pub key: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e_tag: Option<String>,
    pub last_modified: DateTime<Utc>,
}

impl From<&ObjectMeta> for ObjectEntry {
    fn from(m: &ObjectMeta) -> Self {
        Self {
            key: m.location.to_string(),
            size: m.size,
            e_tag: m.e_tag.clone(),
            last_modified: m.last_modified,
        }
    }
}

/// A stable-within-the-process fingerprint of a set of raw objects, to compare a manifest with a listing
/// without keeping either. Order-independent input: entries are sorted by key first.
pub(crate) fn digest<'a>(entries: impl IntoIterator<Item = &'a ObjectEntry>) -> u64 {
    let mut sorted: Vec<&ObjectEntry> = entries.into_iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let state = ahash::RandomState::with_seeds(0x70, 0x6f, 0x6f, 0x6c);
    let mut h = state.build_hasher();
    for e in sorted {
        e.key.hash(&mut h);
        e.size.hash(&mut h);
        match &e.e_tag {
            Some(tag) => tag.hash(&mut h),
            None => e.last_modified.timestamp_micros().hash(&mut h),
        }
    }
    std::hash::Hasher::finish(&h)
}

/// What one hour of a rollup was computed from, and what was skipped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HourManifest {
    pub hour: u8,
    pub objects: Vec<ObjectEntry>,
    /// Distinct valid events counted.
    pub rows: u64,
    pub duplicates: u64,
    pub invalid_rows: u64,
    pub skipped_lines: u64,
    /// Pools with events stamped outside this hour (a misbehaving writer). Such an hour is always read
    /// raw, because the rollup's cutoff and weighting assume every event lies inside its hour.
    pub misfiled_pools: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    Hour,
    Day,
}

/// What a rollup was computed from, hour by hour. Opaque outside the crate: a caller only hands the one
/// [`decode`] gave back to [`encode`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub(crate) version: u32,
    pub(crate) kind: Kind,
    pub(crate) date: NaiveDate,
    pub(crate) hours: Vec<HourManifest>,
}

/// One pool's counts in one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    pub hour: u8,
    pub pool_id: String,
    pub count: PoolCount,
}

/// The key of an hour's rollup.
pub(crate) fn hour_key(root: &object_store::path::Path, p: Partition) -> object_store::path::Path {
    rollup_path(
        root,
        &format!("{}/hr={}.parquet", Partition::day_folder(p.date), p.hr()),
    )
}

/// The key of a day's rollup.
pub(crate) fn day_key(
    root: &object_store::path::Path,
    date: NaiveDate,
) -> object_store::path::Path {
    rollup_path(
        root,
        &format!("{}/day.parquet", Partition::day_folder(date)),
    )
}

fn rollup_path(root: &object_store::path::Path, rel: &str) -> object_store::path::Path {
    if root.as_ref().is_empty() {
        object_store::path::Path::from(format!("{ROLLUPS_DIR}/{rel}"))
    } else {
        object_store::path::Path::from(format!("{root}/{ROLLUPS_DIR}/{rel}"))
    }
}

/// What a rollup key names, from its path relative to `_rollups/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RollupKey {
    Hour(Partition),
    Day(NaiveDate),
}

impl RollupKey {
    pub fn parse(rel: &str) -> Option<Self> {
        let (day, file) = rel.split_once('/')?;
        let date = NaiveDate::parse_from_str(day.strip_prefix("dt=")?, "%Y-%m-%d").ok()?;
        if file == "day.parquet" {
            return Some(RollupKey::Day(date));
        }
        let hr = file.strip_prefix("hr=")?.strip_suffix(".parquet")?;
        let hour: u32 = hr.parse().ok().filter(|h| *h < 24 && hr.len() == 2)?;
        Some(RollupKey::Hour(Partition { date, hour }))
    }
}

fn schema() -> SchemaRef {
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let mut fields = vec![
        Field::new("hr", DataType::UInt8, false),
        Field::new("pool_id", DataType::Utf8, false),
        Field::new("jobs", DataType::UInt64, false),
        Field::new("spot_terminations", DataType::UInt64, false),
        Field::new("other_failures", DataType::UInt64, false),
        Field::new("duplicates", DataType::UInt64, false),
        Field::new("first_finished_at", ts.clone(), false),
        Field::new("last_finished_at", ts, false),
    ];
    for k in 1..=MOMENTS {
        fields.push(Field::new(format!("m{k}"), DataType::Float64, false));
    }
    for k in 1..=MOMENTS {
        fields.push(Field::new(format!("t{k}"), DataType::Float64, false));
    }
    Arc::new(Schema::new(fields))
}

/// Encode a rollup, signed with `signing` when given (see [`SigningKey`]). Rows are sorted by hour and
/// pool, so the same input always gives the same bytes. Public, with [`decode`], for the tests that
/// forge a rollup the way an attacker with write access would (`tests/api/signed.rs`).
pub fn encode(
    manifest: &Manifest,
    rows: &mut [RollupRow],
    signing: Option<&SigningKey>,
) -> Result<Bytes, RollupError> {
    let key = format!("{:?} {}", manifest.kind, manifest.date);
    rows.sort_by(|a, b| (a.hour, &a.pool_id).cmp(&(b.hour, &b.pool_id)));
    let manifest_json = serde_json::to_string(manifest).map_err(|e| format_err(&key, e))?;
    let mut metadata = vec![KeyValue::new(
        MANIFEST_KEY.to_owned(),
        manifest_json.clone(),
    )];
    if let Some(signing) = signing {
        let mut digest = Digest::new(signing, &manifest_json);
        for r in rows.iter() {
            digest.row(r.hour, &r.pool_id, &r.count);
        }
        metadata.push(KeyValue::new(MAC_KEY.to_owned(), digest.hex()));
    }
    let u64s = |f: fn(&RollupRow) -> u64| -> ArrayRef {
        Arc::new(rows.iter().map(f).collect::<UInt64Array>())
    };
    let timestamps = |f: fn(&RollupRow) -> i64| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<i64>>())
                .with_timezone("UTC"),
        )
    };
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(rows.iter().map(|r| r.hour).collect::<UInt8Array>()),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.pool_id.as_str()),
        )),
        u64s(|r| r.count.tally.jobs),
        u64s(|r| r.count.tally.spot_terminations),
        u64s(|r| r.count.tally.other_failures),
        u64s(|r| r.count.duplicates),
        timestamps(|r| r.count.tally.first_event_micros),
        timestamps(|r| r.count.tally.last_event_micros),
    ];
    for k in 0..MOMENTS {
        columns.push(Arc::new(
            rows.iter()
                .map(|r| r.count.moments.jobs[k])
                .collect::<Float64Array>(),
        ));
    }
    for k in 0..MOMENTS {
        columns.push(Arc::new(
            rows.iter()
                .map(|r| r.count.moments.spot[k])
                .collect::<Float64Array>(),
        ));
    }
    let batch = RecordBatch::try_new(schema(), columns).map_err(|e| format_err(&key, e))?;
    // Readers decode every column of hundreds of small files on a cold start, so the per-column work is
    // kept low: no page statistics (nothing is pruned by them), no dictionaries for the unique floats.
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_dictionary_enabled(false)
        .set_column_dictionary_enabled(ColumnPath::from("pool_id"), true)
        .set_key_value_metadata(Some(metadata))
        .set_created_by("pool-selector compactor".to_owned())
        .build();
    let mut writer =
        ArrowWriter::try_new(Vec::new(), schema(), Some(props)).map_err(|e| format_err(&key, e))?;
    writer.write(&batch).map_err(|e| format_err(&key, e))?;
    let bytes = writer.into_inner().map_err(|e| format_err(&key, e))?;
    Ok(Bytes::from(bytes))
}

/// Decode a rollup fully (the compactor's day merge), checking its keyed digest with `verify` when
/// given.
pub fn decode(
    key: &str,
    bytes: Bytes,
    verify: Option<&SigningKey>,
) -> Result<(Manifest, Vec<RollupRow>), RollupError> {
    let mut rows = vec![];
    let manifest = read(key, bytes, verify, |hour, pool, count| {
        rows.push(RollupRow {
            hour,
            pool_id: pool.to_owned(),
            count: count.clone(),
        });
        Ok(())
    })?;
    Ok((manifest, rows))
}

/// Read a rollup: its manifest, and each row handed to `visit` as `(hour, pool_id, counts)` without
/// allocating (readers decode hundreds of these on a cold start). With `verify`, the file must carry a
/// keyed digest that matches its manifest and rows, or it is an error (whatever `visit` saw is then to
/// be thrown away).
fn read(
    key: &str,
    bytes: Bytes,
    verify: Option<&SigningKey>,
    mut visit: impl FnMut(u8, &str, &PoolCount) -> Result<(), RollupError>,
) -> Result<Manifest, RollupError> {
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| format_err(key, e))?;
    let metadata = |name: &str| {
        builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|e| e.key == name))
            .and_then(|e| e.value.clone())
    };
    let manifest_json = metadata(MANIFEST_KEY)
        .ok_or_else(|| format_err(key, "no manifest in the file metadata"))?;
    let mut digest = match verify {
        None => None,
        Some(signing) => {
            let stored = metadata(MAC_KEY).ok_or_else(|| {
                format_err(
                    key,
                    "unsigned: no keyed digest, and ROLLUP_HMAC_KEY is set (refused; its hours are read raw)",
                )
            })?;
            Some((Digest::new(signing, &manifest_json), stored))
        }
    };
    let manifest: Manifest =
        serde_json::from_str(&manifest_json).map_err(|e| format_err(key, e))?;
    if manifest.version != FORMAT_VERSION {
        return Err(format_err(
            key,
            format!(
                "format version {} is not {FORMAT_VERSION}",
                manifest.version
            ),
        ));
    }
    let reader = builder
        .with_batch_size(65_536)
        .build()
        .map_err(|e| format_err(key, e))?;
    let mut count = PoolCount::default();
    for batch in reader {
        let batch = batch.map_err(|e| format_err(key, e))?;
        if batch.schema().fields().len() != 8 + 2 * MOMENTS {
            return Err(format_err(key, "unexpected columns"));
        }
        let hr = batch.column(0).as_primitive::<UInt8Type>();
        let pool = batch.column(1).as_string::<i32>();
        let u = |i: usize| batch.column(i).as_primitive::<UInt64Type>();
        let (jobs, spot, other, dups) = (u(2), u(3), u(4), u(5));
        let first = batch.column(6).as_primitive::<TimestampMicrosecondType>();
        let last = batch.column(7).as_primitive::<TimestampMicrosecondType>();
        let f = |i: usize| batch.column(i).as_primitive::<Float64Type>();
        let m: Vec<_> = (0..MOMENTS).map(|k| f(8 + k)).collect();
        let t: Vec<_> = (0..MOMENTS).map(|k| f(8 + MOMENTS + k)).collect();
        for i in 0..batch.num_rows() {
            if pool.is_null(i) {
                return Err(format_err(key, "null pool_id"));
            }
            count.tally.jobs = jobs.value(i);
            count.tally.spot_terminations = spot.value(i);
            count.tally.other_failures = other.value(i);
            count.tally.first_event_micros = first.value(i);
            count.tally.last_event_micros = last.value(i);
            count.duplicates = dups.value(i);
            for k in 0..MOMENTS {
                count.moments.jobs[k] = m[k].value(i);
                count.moments.spot[k] = t[k].value(i);
            }
            if let Some((d, _)) = digest.as_mut() {
                d.row(hr.value(i), pool.value(i), &count);
            }
            visit(hr.value(i), pool.value(i), &count)?;
        }
    }
    if let Some((d, stored)) = digest
        && !d.verify(&stored)
    {
        return Err(format_err(
            key,
            "the keyed digest does not match its contents: forged, or signed with another \
             ROLLUP_HMAC_KEY (refused; its hours are read raw)",
        ));
    }
    Ok(manifest)
}

/// One pool's counts in one hour, compactly, as kept in memory by readers.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Index into [`Block::pools`].
    pub pool: u32,
    pub jobs: u32,
    pub spot: u32,
    pub other: u32,
    pub duplicates: u32,
    pub first_micros: i64,
    pub last_micros: i64,
    pub m: [f32; MOMENTS],
    pub t: [f32; MOMENTS],
}

/// One hour of a decoded rollup.
#[derive(Debug, Clone)]
pub(crate) struct BlockHour {
    pub partition: Partition,
    /// [`digest`] of the raw objects it was computed from.
    pub digest: u64,
    pub misfiled_pools: u64,
    pub rows: Range<usize>,
}

/// A decoded rollup object, as cached by readers.
#[derive(Debug)]
pub(crate) struct Block {
    pub hours: Vec<BlockHour>,
    pub pools: Vec<PoolId>,
    pub rows: Vec<Row>,
    /// One row per pool summing all its hours (moments left empty): what an unweighted query adds
    /// when it uses every hour of the block.
    pub totals: Vec<Row>,
}

impl Block {
    /// Decode a rollup into the reader's compact form, refusing it unless its keyed digest matches
    /// `verify` when given.
    pub fn from_bytes(
        key: &str,
        bytes: Bytes,
        verify: Option<&SigningKey>,
    ) -> Result<Self, RollupError> {
        let mut pools: Vec<PoolId> = vec![];
        let mut pool_index: std::collections::HashMap<String, u32> = Default::default();
        let mut out: Vec<Row> = Vec::new();
        let mut row_hours: Vec<u8> = Vec::new();
        let narrow = |n: u64| u32::try_from(n).map_err(|_| format_err(key, "count over 2³²"));
        let manifest = read(key, bytes, verify, |hour, pool_id, c| {
            let pool = match pool_index.get(pool_id) {
                Some(&i) => i,
                None => {
                    let id = pool_id.parse::<PoolId>().map_err(|e| format_err(key, e))?;
                    pools.push(id);
                    pool_index.insert(pool_id.to_owned(), pools.len() as u32 - 1);
                    pools.len() as u32 - 1
                }
            };
            row_hours.push(hour);
            out.push(Row {
                pool,
                jobs: narrow(c.tally.jobs)?,
                spot: narrow(c.tally.spot_terminations)?,
                other: narrow(c.tally.other_failures)?,
                duplicates: narrow(c.duplicates)?,
                first_micros: c.tally.first_event_micros,
                last_micros: c.tally.last_event_micros,
                m: c.moments.jobs.map(|v| v as f32),
                t: c.moments.spot.map(|v| v as f32),
            });
            Ok(())
        })?;
        let mut hours = Vec::with_capacity(manifest.hours.len());
        let mut next = 0;
        for hm in &manifest.hours {
            let start = next;
            while next < out.len() && row_hours[next] == hm.hour {
                next += 1;
            }
            hours.push(BlockHour {
                partition: Partition {
                    date: manifest.date,
                    hour: u32::from(hm.hour),
                },
                digest: digest(&hm.objects),
                misfiled_pools: hm.misfiled_pools,
                rows: start..next,
            });
        }
        if next != out.len() {
            return Err(format_err(
                key,
                "rows out of hour order or for hours without a manifest",
            ));
        }
        let mut totals: Vec<Row> = (0..pools.len() as u32)
            .map(|pool| Row {
                pool,
                jobs: 0,
                spot: 0,
                other: 0,
                duplicates: 0,
                first_micros: i64::MAX,
                last_micros: i64::MIN,
                m: [0.0; MOMENTS],
                t: [0.0; MOMENTS],
            })
            .collect();
        for r in &out {
            let t = &mut totals[r.pool as usize];
            t.jobs += r.jobs;
            t.spot += r.spot;
            t.other += r.other;
            t.duplicates += r.duplicates;
            t.first_micros = t.first_micros.min(r.first_micros);
            t.last_micros = t.last_micros.max(r.last_micros);
        }
        Ok(Self {
            hours,
            pools,
            rows: out,
            totals,
        })
    }

    /// Approximate bytes held, for the cache's bound.
    pub fn weight(&self) -> usize {
        std::mem::size_of::<Self>()
            + (self.rows.len() + self.totals.len()) * std::mem::size_of::<Row>()
            + self.hours.len() * std::mem::size_of::<BlockHour>()
            + self.pools.len() * (std::mem::size_of::<PoolId>() + 48)
    }

    pub fn hour(&self, hour: u32) -> Option<&BlockHour> {
        self.hours.iter().find(|h| h.partition.hour == hour)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(hour: u8, pool: &str, jobs: u64, spot: u64) -> RollupRow {
        let mut count = PoolCount::default();
        count.tally.jobs = jobs;
        count.tally.spot_terminations = spot;
        count.tally.first_event_micros = 10;
        count.tally.last_event_micros = 20;
        count.moments.jobs[0] = 0.25;
        count.moments.spot[5] = -0.125;
        RollupRow {
            hour,
            pool_id: pool.to_owned(),
            count,
        }
    }

    #[test]
    fn rollups_round_trip_and_encode_deterministically() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let entry = ObjectEntry {
            key: "events/dt=2026-11-22/hr=03/a.json".into(),
            size: 10,
            e_tag: Some("x".into()),
            last_modified: DateTime::from_timestamp(0, 0).unwrap(),
        };
        let hm = |hour| HourManifest {
            hour,
            objects: vec![entry.clone()],
            rows: 3,
            duplicates: 0,
            invalid_rows: 1,
            skipped_lines: 0,
            misfiled_pools: 0,
        };
        let manifest = Manifest {
            version: FORMAT_VERSION,
            kind: Kind::Day,
            date,
            hours: vec![hm(3), hm(4)],
        };
        let mut rows = vec![
            row(4, "pool-c6a.xlarge-us-east-1a", 5, 1),
            row(3, "pool-m6a.xlarge-us-east-1b", 7, 0),
            row(3, "pool-c6a.xlarge-us-east-1a", 2, 2),
        ];
        let a = encode(&manifest, &mut rows.clone(), None).unwrap();
        let b = encode(&manifest, &mut rows, None).unwrap();
        assert_eq!(a, b, "same input, same bytes");
        let (m, decoded) = decode("k", a.clone(), None).unwrap();
        assert_eq!(m, manifest);
        assert_eq!(decoded, rows);
        let block = Block::from_bytes("k", a, None).unwrap();
        assert_eq!(block.hours.len(), 2);
        assert_eq!(block.hours[0].rows, 0..2);
        assert_eq!(block.hours[1].rows, 2..3);
        assert_eq!(block.pools.len(), 2);
        assert_eq!(block.hours[0].digest, digest(&[entry]));
        assert!(decode("k", Bytes::from_static(b"not parquet"), None).is_err());
    }

    fn one_hour() -> (Manifest, Vec<RollupRow>) {
        let date = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let manifest = Manifest {
            version: FORMAT_VERSION,
            kind: Kind::Hour,
            date,
            hours: vec![HourManifest {
                hour: 3,
                objects: vec![ObjectEntry {
                    key: "events/dt=2026-11-22/hr=03/a.json".into(),
                    size: 10,
                    e_tag: Some("x".into()),
                    last_modified: DateTime::from_timestamp(0, 0).unwrap(),
                }],
                rows: 9,
                duplicates: 0,
                invalid_rows: 0,
                skipped_lines: 0,
                misfiled_pools: 0,
            }],
        };
        let rows = vec![
            row(3, "pool-c6a.xlarge-us-east-1a", 5, 1),
            row(3, "pool-m6a.xlarge-us-east-1b", 4, 0),
        ];
        (manifest, rows)
    }

    #[test]
    fn a_signed_rollup_is_read_only_with_its_key_and_unchanged() {
        let key = SigningKey::from_secret(b"rollup secret").unwrap();
        let other = SigningKey::from_secret(b"another secret").unwrap();
        assert!(SigningKey::from_secret(b"  ").is_none());
        assert_eq!(format!("{key:?}"), "SigningKey(…)", "never printed");
        let (manifest, mut rows) = one_hour();
        let signed = encode(&manifest, &mut rows, Some(&key)).unwrap();
        let unsigned = encode(&manifest, &mut rows, None).unwrap();

        assert!(Block::from_bytes("k", signed.clone(), Some(&key)).is_ok());
        assert!(decode("k", signed.clone(), Some(&key)).is_ok());
        // Readers without a key read signed rollups as before.
        assert!(Block::from_bytes("k", signed.clone(), None).is_ok());
        let e = Block::from_bytes("k", unsigned.clone(), Some(&key)).unwrap_err();
        assert!(e.to_string().contains("unsigned"), "{e}");
        let e = Block::from_bytes("k", signed.clone(), Some(&other)).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");

        // Forged counts under a copied digest: same manifest, one pool's terminations zeroed.
        let stored_mac = |bytes: &Bytes| {
            let b = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap();
            b.metadata()
                .file_metadata()
                .key_value_metadata()
                .unwrap()
                .iter()
                .find(|e| e.key == MAC_KEY)
                .and_then(|e| e.value.clone())
                .unwrap()
        };
        let mut forged_rows = rows.clone();
        forged_rows[0].count.tally.spot_terminations = 0;
        let forged = encode(&manifest, &mut forged_rows, Some(&other)).unwrap();
        assert_ne!(stored_mac(&forged), stored_mac(&signed));
        assert!(Block::from_bytes("k", forged, Some(&key)).is_err());
        // A manifest edited to claim other raw objects, rows untouched: refused too.
        let mut edited = manifest.clone();
        edited.hours[0].objects[0].size = 11;
        let edited = encode(&edited, &mut rows, Some(&other)).unwrap();
        assert!(decode("k", edited, Some(&key)).is_err());
    }

    #[test]
    fn keys_parse() {
        let root = object_store::path::Path::from("events");
        let p = Partition {
            date: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            hour: 5,
        };
        assert_eq!(
            hour_key(&root, p).as_ref(),
            "events/_rollups/dt=2026-01-02/hr=05.parquet"
        );
        assert_eq!(
            RollupKey::parse("dt=2026-01-02/hr=05.parquet"),
            Some(RollupKey::Hour(p))
        );
        assert_eq!(
            RollupKey::parse("dt=2026-01-02/day.parquet"),
            Some(RollupKey::Day(p.date))
        );
        for bad in [
            "dt=2026-01-02/hr=5.parquet",
            "x/day.parquet",
            "dt=2026-01-02/hr=24.parquet",
        ] {
            assert_eq!(RollupKey::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn digests_ignore_order_and_see_changes() {
        let e = |k: &str, size| ObjectEntry {
            key: k.into(),
            size,
            e_tag: None,
            last_modified: DateTime::from_timestamp(1, 0).unwrap(),
        };
        assert_eq!(
            digest(&[e("a", 1), e("b", 2)]),
            digest(&[e("b", 2), e("a", 1)])
        );
        assert_ne!(digest(&[e("a", 1)]), digest(&[e("a", 1), e("b", 2)]));
        assert_ne!(digest(&[e("a", 1)]), digest(&[e("a", 2)]));
    }
}
