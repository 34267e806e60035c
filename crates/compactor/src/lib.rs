//! compactor: writes the rollups pool-selector reads closed hours from.
//!
//! * [`settings`]: flags with environment fallbacks (the same storage settings as pool-selector).
//! * [`startup`]: `--once` (a CronJob) or `--every 5m` (a Deployment serving `/health` and `/metrics`).
//! * [`report`]: the pass summary `--once --report text|json` prints on standard output.
//! * [`metrics`]: hours compacted, days merged, lag behind the newest closed hour, errors.
//!
//! The compaction itself lives in `pool_history::compact`, beside the reader it must agree with.

pub mod metrics;
pub mod report;
pub mod settings;
pub mod startup;

pub use settings::Settings;
pub use startup::Application;
