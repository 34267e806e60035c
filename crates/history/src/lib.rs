//! `pool-history`: the job-event history as the ranking reads it.
//!
//! * [`scan`]: [`EventSource`], DataFusion over raw NDJSON, tallied per pool ([`tally`]); with rollups on,
//!   closed hours come from them and only the rest is scanned.
//! * [`table`]: which objects a scan reads (explicit partition roots, or the whole table).
//! * [`rollup`]: the rollup format (Parquet with its manifest inside) and its decoded, cached form.
//! * [`catalog`]: what storage holds now, and which hours of a query each rollup answers.
//! * [`compact`]: writing hour and day rollups (the `compactor` service).
//! * [`scan_store`]: the object-store decorator that counts bytes and quarantines malformed objects.

pub mod catalog;
pub mod compact;
pub mod rollup;
pub mod scan;
pub mod scan_store;
pub mod table;
pub mod tally;

pub use scan::{EventSource, Query, QueryError, ScanObserver, ScanReport, SourceOptions, Tallies};
pub use tally::Tally;
