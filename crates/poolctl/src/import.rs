//! `poolctl events import`: migrate a seed history (seed 000's single NDJSON object, `events.json`, in a
//! bucket or a local file) into the partitioned layout the services read.
//!
//! The object is streamed (never held whole) and cut into batches of `--batch-size` lines. Each batch
//! goes either through the intake (`--via intake`: `POST /events` with the token, waiting out 429 and
//! 503 as `Retry-After` says) or straight to storage (`--to URL`, default `EVENTS_URL`): one object
//! per hourly partition per batch, written by `pool_storage` like the ingest-worker writes, in canonical
//! NDJSON.
//!
//! **Resumable.** With `--state FILE` a checkpoint (byte offset, line, counts) is written after every
//! batch, atomically; the same command with the same file goes on from there (after `--max-batches`,
//! Ctrl-C, a crash or a failure). **Idempotent.** Batch `k` always holds the source's lines
//! `k·N + 1 … (k+1)·N` and its objects are named `import-<fingerprint of the source and N>-<k>`, so a
//! batch written again (a crash between the write and the checkpoint, or a whole re-run) lands on the
//! same keys with the same bytes; a batch sent through the intake twice is stored twice and counted
//! once, because pool-selector counts identical events once.
//!
//! Lines that are not valid events (the intake's own rules, `pool_core::event`) are skipped, counted and
//! the first few reported with their line numbers; they do not stop the import.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, ValueEnum};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use pool_core::event::Event;
use pool_core::event::ndjson::{CONTENT_TYPE_NDJSON, Partitioned};
use pool_storage::{Storage, StorageArgs};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Service, refusal};
use crate::commands::{Context, Outcome};
use crate::error::{CliError, Exit};
use crate::output::{self, Format};

/// Default `--batch-size`: a `POST /events` of about 1 MiB, well inside the intake's body limit.
pub const DEFAULT_BATCH_SIZE: u64 = 5_000;
/// Longest line read; a longer one is not an event (they are ~200 bytes) and is skipped unread.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Invalid lines listed in the report (all are counted).
const LISTED_BAD_LINES: usize = 5;
/// Objects of one batch written at once.
const WRITE_CONCURRENCY: usize = 8;
/// Attempts at one batch through the intake (429, 503, unreachable) before giving up.
const INTAKE_ATTEMPTS: u32 = 12;
/// Longest wait between two attempts, whatever `Retry-After` says.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(60);

/// `poolctl events import`'s flags.
#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// The seed history: a local NDJSON file, file:///path, or s3://bucket/key. Default: the seed's
    /// object, s3://$S3_BUCKET_NAME/$S3_FILE_NAME.
    pub source: Option<String>,
    /// Write straight to storage here: a folder or s3://bucket/prefix/ (the services' EVENTS_URL, its
    /// default). One object per hourly partition per batch.
    #[arg(long, value_name = "URL", conflicts_with = "via")]
    pub to: Option<String>,
    /// Send through a service instead: `intake` posts each batch to POST /events (INTAKE_URL with
    /// INTAKE_TOKEN), waiting as its 429 and 503 answers ask.
    #[arg(long, value_enum)]
    pub via: Option<Via>,
    /// Lines of the source per batch (one request, or one object per hour): 1–100000.
    #[arg(long, env = "IMPORT_BATCH_SIZE", default_value_t = DEFAULT_BATCH_SIZE,
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub batch_size: u64,
    /// Checkpoint file, written after every batch: the same command with the same file continues where
    /// the last run stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Stop after this many batches (an import in slices; continue with the same --state).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_batches: Option<u64>,
    /// Where the source and the destination live (the services' settings: AWS_ENDPOINT_URL, the seed's
    /// S3_BUCKET_NAME, S3_FILE_NAME, LOCALSTACK_URL, AWS_KEY_ID, …).
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// The services an import can go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// The intake's `POST /events`.
    Intake,
}

/// Where the import has got to, saved after every batch (`--state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The source's URL, the destination and the batch size: a checkpoint is only valid for them.
    pub source: String,
    pub destination: String,
    pub batch_size: u64,
    /// Byte offset of the next line to import (0, or just after a newline).
    pub offset: u64,
    /// Lines before `offset` (blank and invalid ones included).
    pub lines: u64,
    /// Totals over every run so far.
    pub events: u64,
    pub skipped: u64,
    pub batches: u64,
}

impl Checkpoint {
    fn new(source: &str, destination: &str, batch_size: u64) -> Self {
        Self {
            source: source.to_owned(),
            destination: destination.to_owned(),
            batch_size,
            offset: 0,
            lines: 0,
            events: 0,
            skipped: 0,
            batches: 0,
        }
    }

    /// The checkpoint in `path`, or a fresh one when the file does not exist yet.
    pub fn load(
        path: &Path,
        source: &str,
        destination: &str,
        batch_size: u64,
    ) -> Result<Self, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::new(source, destination, batch_size));
            }
            Err(e) => {
                return Err(CliError::usage(format!(
                    "cannot read the state file {}: {e}",
                    path.display()
                )));
            }
        };
        let saved: Self = serde_json::from_str(&text).map_err(|e| {
            CliError::usage(format!(
                "{} is not an import checkpoint ({e}); give another --state file",
                path.display()
            ))
        })?;
        let mismatch = |what: &str, saved: &str, now: &str| {
            CliError::usage(format!(
                "{} is the checkpoint of another import ({what} {saved}, not {now}); give another \
                 --state file, or delete it to start over",
                path.display()
            ))
        };
        if saved.source != source {
            return Err(mismatch("source", &saved.source, source));
        }
        if saved.destination != destination {
            return Err(mismatch("destination", &saved.destination, destination));
        }
        if saved.batch_size != batch_size {
            return Err(mismatch(
                "--batch-size",
                &saved.batch_size.to_string(),
                &batch_size.to_string(),
            ));
        }
        Ok(saved)
    }

    /// Write to `path` atomically (a temporary file renamed over it).
    pub fn save(&self, path: &Path) -> Result<(), CliError> {
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_string_pretty(self).expect("a checkpoint serialises") + "\n";
        std::fs::write(&tmp, text)
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| {
                CliError::service(format!(
                    "cannot write the state file {}: {e}",
                    path.display()
                ))
            })
    }
}

/// Where batches go.
enum Destination {
    Storage {
        storage: Storage,
        name_prefix: String,
    },
    Intake {
        base: String,
        token: String,
    },
}

impl Destination {
    fn describe(&self) -> String {
        match self {
            Destination::Storage { storage, .. } => storage.root_url(),
            Destination::Intake { base, .. } => format!("intake {}", base.trim_end_matches('/')),
        }
    }
}

/// The lines of one batch, parsed.
#[derive(Debug, Default)]
struct Batch {
    /// Its number: lines `index·N + 1 …` of the source when it starts on a batch boundary.
    index: u64,
    lines: u64,
    events: Vec<Event>,
    skipped: u64,
    /// Byte offset just after its last line.
    end: u64,
}

/// What a run did, for the report.
#[derive(Debug, Default)]
struct Progress {
    batches: u64,
    lines: u64,
    events: u64,
    skipped: u64,
    objects: u64,
    retries: u64,
    bad_lines: Vec<String>,
}

/// A short, stable fingerprint of the source and the batch size, for object names: another source or
/// batch size never writes over this import's objects, the same one always writes the same keys.
pub fn fingerprint(source: &str, batch_size: u64) -> String {
    let h = format!("{source}\n{batch_size}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{h:016x}")
}

/// The name of batch `index`'s objects (one per hourly partition: `dt=…/hr=…/<name>.json`).
pub fn object_name(prefix: &str, index: u64) -> String {
    format!("{prefix}-{index:08}")
}

fn storage_error(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::service(format!("{what}: {e}"))
}

/// The seed history to read: the SOURCE argument, else the seed's S3_BUCKET_NAME and S3_FILE_NAME.
fn open_source(args: &ImportArgs) -> Result<Storage, CliError> {
    let url = match args
        .source
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(u) => u.to_owned(),
        None => {
            let seed = StorageArgs {
                events_url: None,
                ..args.storage.clone()
            };
            let named = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.trim().is_empty());
            if !named(&seed.s3_bucket_name) || !named(&seed.s3_file_name) {
                return Err(CliError::usage(
                    "name the seed history to import: poolctl events import SOURCE (a file, or \
                     s3://bucket/events.json), or set S3_BUCKET_NAME and S3_FILE_NAME as the seed did",
                ));
            }
            seed.resolved_url()
        }
    };
    let storage = Storage::open(&url, &args.storage)
        .map_err(|e| CliError::usage(format!("SOURCE {url}: {e}")))?;
    if storage.store_url.scheme() == "file" && PathBuf::from(format!("/{}", storage.root)).is_dir()
    {
        return Err(CliError::usage(format!(
            "SOURCE {url} is a folder: import reads one NDJSON object (the seed's events.json)"
        )));
    }
    if storage.root.as_ref().is_empty() {
        return Err(CliError::usage(format!(
            "SOURCE {url} names a bucket, not an object: give s3://bucket/events.json"
        )));
    }
    Ok(storage)
}

fn open_destination(
    ctx: &Context,
    args: &ImportArgs,
    source: &Storage,
) -> Result<Destination, CliError> {
    if args.via == Some(Via::Intake) {
        return Ok(Destination::Intake {
            base: ctx.global.intake_url.clone(),
            token: ctx.global.intake_token.clone(),
        });
    }
    let url = args
        .to
        .clone()
        .or_else(|| args.storage.events_url.clone())
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            CliError::usage(
                "say where the events go: --to URL (a folder or s3://bucket/prefix/; EVENTS_URL by \
                 default) or --via intake",
            )
        })?;
    let storage = Storage::open(&url, &args.storage)
        .map_err(|e| CliError::usage(format!("--to {url}: {e}")))?;
    if storage.single_object {
        return Err(CliError::usage(format!(
            "--to {url} names a single object; give the folder or prefix the services read \
             (e.g. s3://bucket/events/), where each batch becomes one object per hour"
        )));
    }
    storage
        .ensure_local_root()
        .map_err(|e| storage_error(&format!("--to {url}"), e))?;
    let name_prefix = format!(
        "import-{}",
        fingerprint(&source.root_url(), args.batch_size)
    );
    Ok(Destination::Storage {
        storage,
        name_prefix,
    })
}

/// Run `poolctl events import`.
pub async fn run(ctx: &Context, args: &ImportArgs) -> Result<Outcome, CliError> {
    let source = open_source(args)?;
    let destination = open_destination(ctx, args, &source)?;
    let source_url = source.root_url();
    let dest_url = destination.describe();
    let mut checkpoint = match &args.state {
        Some(path) => Checkpoint::load(path, &source_url, &dest_url, args.batch_size)?,
        None => Checkpoint::new(&source_url, &dest_url, args.batch_size),
    };
    let started_at_line = checkpoint.lines;

    let meta = source.store.head(&source.root).await.map_err(|e| match e {
        object_store::Error::NotFound { .. } => {
            CliError::usage(format!("SOURCE {source_url}: no such object"))
        }
        e => storage_error(&format!("SOURCE {source_url}"), e),
    })?;
    check_resume_point(&source, &checkpoint, meta.size, args.state.as_deref()).await?;

    let mut progress = Progress::default();
    let ended = import_until_signal(
        ctx,
        args,
        &source,
        &destination,
        &mut checkpoint,
        meta.size,
        &mut progress,
    )
    .await?;

    let report = json!({
        "source": source_url,
        "destination": dest_url,
        "batch_size": args.batch_size,
        "resumed_from_line": started_at_line,
        "batches": progress.batches,
        "lines": progress.lines,
        "events": progress.events,
        "skipped": progress.skipped,
        "objects": progress.objects,
        "retries": progress.retries,
        "complete": ended == Ended::Complete,
        "state": args.state.as_ref().map(|p| p.display().to_string()),
    });
    let stdout = match ctx.global.output {
        Format::Json => output::json(&report),
        Format::Ndjson => output::ndjson([&report]),
        Format::Table => summary_text(&progress, &source_url, &dest_url, started_at_line),
    };
    let (notes, exit) = notes_and_exit(
        args,
        &destination,
        &source_url,
        &progress,
        &checkpoint,
        ended,
    );
    Ok(Outcome {
        stdout,
        exit,
        note: (!notes.is_empty()).then(|| notes.join("\n")),
    })
}

/// [`import_from`] with a progress bar, until done or until SIGINT/SIGTERM (the batch in flight is
/// finished and checkpointed first).
async fn import_until_signal(
    ctx: &Context,
    args: &ImportArgs,
    source: &Storage,
    destination: &Destination,
    checkpoint: &mut Checkpoint,
    size: u64,
    progress: &mut Progress,
) -> Result<Ended, CliError> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let listener = tokio::spawn(async move {
        pool_service::shutdown::signal().await;
        flag.store(true, Ordering::Relaxed);
    });
    let bar = progress_bar(size, checkpoint.offset);
    let result = import_from(
        ctx,
        args,
        source,
        destination,
        checkpoint,
        size,
        &stop,
        &bar,
        progress,
    )
    .await;
    listener.abort();
    bar.finish_and_clear();
    result
}

/// What the user should know after the import (lines skipped, a source under its own destination,
/// how to continue one that stopped early), and the exit status: an interrupted import is a
/// failure, one stopped by `--max-batches` is not.
fn notes_and_exit(
    args: &ImportArgs,
    destination: &Destination,
    source_url: &str,
    progress: &Progress,
    checkpoint: &Checkpoint,
    ended: Ended,
) -> (Vec<String>, Exit) {
    let mut notes = Vec::new();
    if !progress.bad_lines.is_empty() {
        notes.push(format!(
            "skipped {} line(s) that are not valid events, first:\n  {}",
            progress.skipped,
            progress.bad_lines.join("\n  ")
        ));
    }
    if let Destination::Storage { storage, .. } = destination
        && source_url.starts_with(&storage.root_url())
    {
        notes.push(format!(
            "warning: the source lies under the destination {}: readers of that root count the seed \
             object too; move it out of the way once the import is done",
            storage.root_url()
        ));
    }
    let again = match &args.state {
        Some(p) => format!("run the same command (--state {}) to continue", p.display()),
        None => "run it again (with --state FILE to skip what is done)".to_owned(),
    };
    let exit = match ended {
        Ended::Complete => Exit::Found,
        Ended::MaxBatches => {
            notes.push(format!(
                "stopped after {} batch(es) (--max-batches) at line {}; {again}",
                progress.batches, checkpoint.lines
            ));
            Exit::Found
        }
        Ended::Interrupted => {
            notes.push(format!(
                "interrupted after {} batch(es), at line {}; {again}",
                progress.batches, checkpoint.lines
            ));
            Exit::Service
        }
    };
    (notes, exit)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Complete,
    MaxBatches,
    Interrupted,
}

fn summary_text(p: &Progress, source: &str, dest: &str, from_line: u64) -> String {
    let from = if from_line > 0 {
        format!(", resumed after line {from_line}")
    } else {
        String::new()
    };
    let mut s = format!(
        "imported {} events ({} lines, {} skipped) from {source} into {dest} in {} batch(es){from}",
        p.events, p.lines, p.skipped, p.batches
    );
    if p.objects > 0 {
        s.push_str(&format!(", {} objects written", p.objects));
    }
    if p.retries > 0 {
        s.push_str(&format!(", {} request(s) retried", p.retries));
    }
    s.push('\n');
    s
}

fn progress_bar(size: u64, offset: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(size);
    if let Ok(style) =
        ProgressStyle::with_template("importing {bar:30} {bytes}/{total_bytes} ({eta} left)")
    {
        bar.set_style(style);
    }
    bar.set_position(offset);
    bar
}

/// A checkpoint must point just after a newline of the source as it is now (an object that was
/// replaced or shortened since cannot be continued).
async fn check_resume_point(
    source: &Storage,
    checkpoint: &Checkpoint,
    size: u64,
    state: Option<&Path>,
) -> Result<(), CliError> {
    if checkpoint.offset == 0 {
        return Ok(());
    }
    let state = state.map(|p| p.display().to_string()).unwrap_or_default();
    let changed = || {
        CliError::usage(format!(
            "{} changed since the checkpoint {state} was written (it no longer has a line ending at \
             byte {}); delete the state file to import it from the start (objects already written \
             are rewritten with the same names)",
            checkpoint.source, checkpoint.offset
        ))
    };
    if checkpoint.offset > size {
        return Err(changed());
    }
    let before = source
        .store
        .get_range(&source.root, checkpoint.offset - 1..checkpoint.offset)
        .await
        .map_err(|e| storage_error(&format!("SOURCE {}", checkpoint.source), e))?;
    if before.as_ref() != b"\n" {
        return Err(changed());
    }
    Ok(())
}

/// Stream the source from the checkpoint on, batch by batch, until its end, `--max-batches` or a stop.
#[allow(clippy::too_many_arguments)]
async fn import_from(
    ctx: &Context,
    args: &ImportArgs,
    source: &Storage,
    destination: &Destination,
    checkpoint: &mut Checkpoint,
    size: u64,
    stop: &AtomicBool,
    bar: &ProgressBar,
    progress: &mut Progress,
) -> Result<Ended, CliError> {
    let n = args.batch_size;
    let new_batch = |c: &Checkpoint| Batch {
        index: c.batches,
        end: c.offset,
        ..Batch::default()
    };
    let mut batch = new_batch(&*checkpoint);
    if checkpoint.offset < size {
        let read_error = |e: object_store::Error| {
            storage_error(&format!("reading SOURCE {}", checkpoint.source), e)
        };
        let mut stream = source
            .store
            .get_opts(
                &source.root,
                GetOptions {
                    range: Some(GetRange::Offset(checkpoint.offset)),
                    ..GetOptions::default()
                },
            )
            .await
            .map_err(read_error)?
            .into_stream();
        let mut line = LineBuffer::default();
        let mut position = checkpoint.offset;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk
                .map_err(|e| storage_error(&format!("reading SOURCE {}", checkpoint.source), e))?;
            let mut rest = &chunk[..];
            while let Some(newline) = rest.iter().position(|b| *b == b'\n') {
                line.push(&rest[..newline]);
                position += newline as u64 + 1;
                rest = &rest[newline + 1..];
                add_line(&mut batch, progress, checkpoint, line.take(), position);
                if batch.lines == n {
                    deliver(ctx, destination, &batch, progress).await?;
                    advance(checkpoint, &batch, true, args.state.as_deref())?;
                    progress.batches += 1;
                    bar.set_position(position);
                    batch = new_batch(&*checkpoint);
                    if args.max_batches.is_some_and(|m| progress.batches >= m) {
                        return Ok(Ended::MaxBatches);
                    }
                    if stop.load(Ordering::Relaxed) {
                        return Ok(Ended::Interrupted);
                    }
                }
            }
            line.push(rest);
            position += rest.len() as u64;
        }
        // A last line without its newline still counts.
        if !line.is_empty() {
            add_line(&mut batch, progress, checkpoint, line.take(), position);
        }
    }
    if batch.lines > 0 {
        deliver(ctx, destination, &batch, progress).await?;
        // A short last batch is written, but the checkpoint stays at its start when its objects' names
        // depend on it: should the source grow, the next run writes batch `index` again, whole, over
        // the same keys. Through the intake nothing is named after it: the checkpoint moves on.
        let whole = matches!(destination, Destination::Intake { .. });
        advance(checkpoint, &batch, whole, args.state.as_deref())?;
        progress.batches += 1;
    }
    bar.set_position(size);
    Ok(Ended::Complete)
}

/// A line being assembled from chunks, bounded by [`MAX_LINE_BYTES`].
#[derive(Default)]
struct LineBuffer {
    bytes: Vec<u8>,
    /// Bytes of the line beyond the bound (not kept).
    dropped: usize,
}

impl LineBuffer {
    fn push(&mut self, part: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.bytes.len());
        let kept = part.len().min(room);
        self.bytes.extend_from_slice(&part[..kept]);
        self.dropped += part.len() - kept;
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.dropped == 0
    }

    fn take(&mut self) -> Line {
        let line = Line {
            bytes: std::mem::take(&mut self.bytes),
            too_long: self.dropped > 0,
        };
        self.dropped = 0;
        line
    }
}

struct Line {
    bytes: Vec<u8>,
    too_long: bool,
}

/// Count one line into the batch: an event, a blank line or a skipped one.
fn add_line(
    batch: &mut Batch,
    progress: &mut Progress,
    checkpoint: &Checkpoint,
    line: Line,
    end: u64,
) {
    batch.lines += 1;
    batch.end = end;
    let number = checkpoint.lines + batch.lines;
    let text = line.bytes.trim_ascii();
    let why = if line.too_long {
        format!("longer than {MAX_LINE_BYTES} bytes")
    } else if text.is_empty() {
        return;
    } else {
        match Event::from_json(text) {
            Ok(e) => {
                batch.events.push(e);
                return;
            }
            Err(e) if e.message.starts_with(e.field) => e.message,
            Err(e) => format!("{}: {}", e.field, e.message),
        }
    };
    batch.skipped += 1;
    if progress.bad_lines.len() < LISTED_BAD_LINES {
        progress.bad_lines.push(format!("line {number}: {why}"));
    }
}

/// Record a delivered batch in the checkpoint (and its file). `whole`: the checkpoint moves past it;
/// otherwise only the counts of this run move (a short last batch, see [`import_from`]).
fn advance(
    checkpoint: &mut Checkpoint,
    batch: &Batch,
    whole: bool,
    state: Option<&Path>,
) -> Result<(), CliError> {
    if whole {
        checkpoint.offset = batch.end;
        checkpoint.lines += batch.lines;
        checkpoint.events += batch.events.len() as u64;
        checkpoint.skipped += batch.skipped;
        checkpoint.batches += 1;
        if let Some(path) = state {
            checkpoint.save(path)?;
        }
    }
    Ok(())
}

/// Send one batch where it goes; returns once it is stored (or acknowledged by the intake).
async fn deliver(
    ctx: &Context,
    destination: &Destination,
    batch: &Batch,
    progress: &mut Progress,
) -> Result<(), CliError> {
    progress.lines += batch.lines;
    progress.skipped += batch.skipped;
    if batch.events.is_empty() {
        return Ok(());
    }
    match destination {
        Destination::Storage {
            storage,
            name_prefix,
        } => {
            let name = object_name(name_prefix, batch.index);
            progress.objects += write_objects(storage, &name, &batch.events).await?;
        }
        Destination::Intake { base, token } => {
            progress.retries += post_events(ctx, base, token, &batch.events).await?;
        }
    }
    progress.events += batch.events.len() as u64;
    Ok(())
}

/// One object per hourly partition, named `name`, written durably (a local file and its folders are
/// synced, as the ingest-worker does). Returns the number of objects.
async fn write_objects(storage: &Storage, name: &str, events: &[Event]) -> Result<u64, CliError> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut written = 0;
    for (partition, body) in Partitioned::of(events) {
        while tasks.len() >= WRITE_CONCURRENCY {
            written += joined(tasks.join_next().await)?;
        }
        let storage = storage.clone();
        let path = storage.object_path(&partition, name);
        tasks.spawn(async move {
            storage
                .put(&path, body.bytes.into())
                .await
                .map_err(|e| format!("writing {}{path}: {e}", storage.store_url))?;
            if storage.store_url.scheme() == "file" {
                let file = PathBuf::from(format!("/{path}"));
                tokio::task::spawn_blocking(move || sync_with_parents(&file, 3))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("syncing /{path}: {e}"))?;
            }
            Ok::<_, String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        written += joined(Some(done))?;
    }
    Ok(written)
}

fn joined(
    done: Option<Result<Result<(), String>, tokio::task::JoinError>>,
) -> Result<u64, CliError> {
    match done {
        None => Ok(0),
        Some(Ok(Ok(()))) => Ok(1),
        Some(Ok(Err(e))) => Err(CliError::service(e)),
        Some(Err(e)) => Err(CliError::service(format!("a write task failed: {e}"))),
    }
}

/// fsync `file`, then its folder and `levels - 1` further ancestors (new `hr=`/`dt=` folders).
fn sync_with_parents(file: &Path, levels: usize) -> std::io::Result<()> {
    std::fs::File::open(file)?.sync_all()?;
    let mut dir = file.parent();
    for _ in 0..levels {
        let Some(d) = dir else { break };
        std::fs::File::open(d)?.sync_all()?;
        dir = d.parent();
    }
    Ok(())
}

/// How long to wait before attempt `attempt + 1` (1-based): `Retry-After` when the intake said, else
/// 0.5 s doubling, at most [`MAX_RETRY_WAIT`].
pub fn retry_wait(attempt: u32, retry_after: Option<&str>) -> Duration {
    let said = retry_after
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64);
    let backoff =
        Duration::from_millis(500).saturating_mul(1u32 << attempt.saturating_sub(1).min(8));
    said.unwrap_or(backoff).min(MAX_RETRY_WAIT)
}

/// `POST /events` with the batch as NDJSON until the intake answers 202. 429 and 503 (and an intake
/// that cannot be reached) are retried after `Retry-After` or a backoff, [`INTAKE_ATTEMPTS`] times;
/// anything else is an error. Returns the number of retries.
async fn post_events(
    ctx: &Context,
    base: &str,
    token: &str,
    events: &[Event],
) -> Result<u64, CliError> {
    let mut body = Vec::with_capacity(events.len() * 200);
    for e in events {
        serde_json::to_writer(&mut body, e).expect("an event serialises");
        body.push(b'\n');
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let sent = ctx
            .client
            .send(
                Service::Intake,
                base,
                Method::POST,
                "/events",
                Some((CONTENT_TYPE_NDJSON, body.clone())),
                Some(token),
            )
            .await;
        let (error, retry_after) = match sent {
            Ok(reply) if reply.status.is_success() => return Ok(u64::from(attempt - 1)),
            Ok(reply) if matches!(reply.status.as_u16(), 429 | 503) => {
                (refusal(Service::Intake, base, &reply), reply.retry_after)
            }
            Ok(reply) => return Err(refusal(Service::Intake, base, &reply)),
            Err(e) if e.exit == Exit::Service => (e, None),
            Err(e) => return Err(e),
        };
        if attempt >= INTAKE_ATTEMPTS {
            return Err(CliError::service(format!(
                "{} (gave up after {attempt} attempts)",
                error.message
            )));
        }
        tokio::time::sleep(retry_wait(attempt, retry_after.as_deref())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_tell_sources_apart() {
        let a = fingerprint("s3://seed/events.json", 5000);
        assert_eq!(a, fingerprint("s3://seed/events.json", 5000));
        assert_eq!(a.len(), 16);
        assert_ne!(a, fingerprint("s3://seed/events.json", 4000));
        assert_ne!(a, fingerprint("s3://other/events.json", 5000));
        assert_eq!(object_name("import-ab", 7), "import-ab-00000007");
    }

    #[test]
    fn waits_follow_retry_after_then_back_off() {
        assert_eq!(retry_wait(1, Some("2")), Duration::from_secs(2));
        assert_eq!(retry_wait(3, Some("0.5")), Duration::from_millis(500));
        assert_eq!(retry_wait(1, None), Duration::from_millis(500));
        assert_eq!(retry_wait(2, None), Duration::from_secs(1));
        assert_eq!(retry_wait(4, Some("soon")), Duration::from_secs(4));
        assert_eq!(retry_wait(30, None), MAX_RETRY_WAIT);
        assert_eq!(retry_wait(1, Some("3600")), MAX_RETRY_WAIT);
    }

    #[test]
    fn long_lines_are_cut_and_flagged() {
        let mut b = LineBuffer::default();
        assert!(b.is_empty());
        b.push(&vec![b'x'; MAX_LINE_BYTES - 1]);
        b.push(b"yz");
        let line = b.take();
        assert!(line.too_long);
        assert_eq!(line.bytes.len(), MAX_LINE_BYTES);
        assert!(b.is_empty());
        b.push(b"{}");
        assert!(!b.take().too_long);
    }

    #[test]
    fn a_checkpoint_belongs_to_one_import() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let fresh = Checkpoint::load(&path, "s3://a/events.json", "s3://b/events/", 10).unwrap();
        assert_eq!(fresh.offset, 0);
        let mut saved = fresh.clone();
        saved.offset = 1234;
        saved.lines = 10;
        saved.batches = 1;
        saved.save(&path).unwrap();
        assert_eq!(
            Checkpoint::load(&path, "s3://a/events.json", "s3://b/events/", 10).unwrap(),
            saved
        );
        for (src, dst, n, says) in [
            ("s3://x/events.json", "s3://b/events/", 10, "source"),
            ("s3://a/events.json", "intake http://x", 10, "destination"),
            ("s3://a/events.json", "s3://b/events/", 20, "--batch-size"),
        ] {
            let e = Checkpoint::load(&path, src, dst, n).unwrap_err();
            assert_eq!(e.exit, Exit::Usage);
            assert!(e.message.contains(says), "{e}");
        }
        std::fs::write(&path, "not json").unwrap();
        assert!(
            Checkpoint::load(&path, "s3://a/events.json", "s3://b/events/", 10)
                .unwrap_err()
                .message
                .contains("not an import checkpoint")
        );
    }
}
