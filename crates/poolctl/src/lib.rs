//! `poolctl`: the command line of Pool Selector. The binary (`main.rs`) only parses the command line,
//! runs a [`commands`] function and prints its [`commands::Outcome`]; everything else is here, as
//! functions the unit tests call without a terminal or a service.
//!
//! * [`cli`]: the flags, with environment fallbacks and the local stack's URLs as defaults.
//! * [`commands`]: each command: its input checked with `pool_core`'s grammar (the services' own), the
//!   request, the answer rendered.
//! * [`client`]: HTTP, a spinner for slow calls, and every failure turned into a message saying what to do.
//! * [`import`]: `events import`, a seed history streamed into the partitioned layout in batches.
//! * [`output`]: tables (aligned, with interval bars), JSON and NDJSON.
//! * [`model`]: the fields of the services' answers that the tables read.
//! * [`dlq`]: `dlq replay`, dead letters back to the events exchange (RabbitMQ, with confirms).
//! * [`error`]: exit codes (0 found, 1 no data, 2 usage, 3 service error).
//!
//! Modules depend one way: `commands` → `import` → `client`, `output` → `model`, `error`.

pub mod cli;
pub mod client;
pub mod commands;
#[cfg(feature = "amqp")]
pub mod dlq;
pub mod error;
pub mod import;
pub mod model;
pub mod output;

pub use error::{CliError, Exit};
