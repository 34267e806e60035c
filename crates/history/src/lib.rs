//! `pool-history`: the job-event history as the ranking reads it.
//!
//! * [`scan`]: [`EventSource`], DataFusion over raw NDJSON, tallied per pool ([`tally`]); with rollups on,
//!   closed hours come from them and only the rest is scanned.
//! * [`query`]: what a scan is asked and what it reports.
//! * [`table`]: which objects a scan reads (explicit partition roots, or the whole table).
//! * [`rollup`]: the rollup format (Parquet with its manifest inside) and its decoded, cached form.
//! * [`catalog`]: what storage holds now, and which hours of a query each rollup answers.
//! * [`compact`]: writing hour and day rollups (the `compactor` service).
//! * [`ndjson`]: the tolerant NDJSON reader (a DataFusion `FileFormat`) that skips and counts bad lines.

pub mod catalog;
pub mod compact;
pub mod live;
pub mod ndjson;
pub mod query;
pub mod rollup;
pub mod scan;
pub mod table;
pub mod tally;

pub use scan::{EventSource, Query, QueryError, ScanObserver, ScanReport, SourceOptions, Tallies};
pub use tally::{HourCount, Tally};
