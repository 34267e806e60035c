//! `pool-history`: the job-event history as the ranking reads it.
//!
//! * [`live`]: [`live::LiveView`], every pool's history held in memory and kept current (pool-selector
//!   answers from it).
//! * [`scan`]: [`EventSource`], DataFusion over raw NDJSON, tallied per pool; with rollups on, closed
//!   hours come from them and only the rest is scanned. The reference reader, and the compactor's.
//! * [`compact`]: writing hour and day rollups (the `compactor` service).
//! * [`rollup`]: the rollup format (Parquet with its manifest inside), its [`rollup::SigningKey`], and
//!   its decoded, cached form.
//!
//! Internal, with what callers need re-exported here: `query` (what a scan is asked, [`Query`], and
//! what it reports, [`ScanReport`]), `tally` (per-pool counts, [`Tally`]), `table` (which objects a
//! scan reads: explicit partition roots, or the whole table), `catalog` (what storage holds now, and
//! which hours of a query each rollup answers) and `ndjson` (the tolerant NDJSON reader, a DataFusion
//! `FileFormat` that skips and counts bad lines).

// Public: the modules other crates name items through (`compact::Shard`, `live::LiveView`,
// `rollup::SigningKey`, `scan::NoObserver`). Private: the machinery behind them; what of it appears in
// a public signature is re-exported below.
mod catalog;
pub mod compact;
pub mod live;
mod ndjson;
mod query;
pub mod rollup;
pub mod scan;
mod table;
mod tally;

pub use query::{Query, ScanReport};
pub use scan::{EventSource, QueryError, ScanObserver, SourceOptions, Tallies};
pub use tally::{HourCount, Tally};
