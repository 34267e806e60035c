//! The monitor's one integration-test binary.
//!
//! * [`broker`]: against a real RabbitMQ with the management plugin (backlog, throughput, activation,
//!   stabilisation on a clock the test advances, several workloads, an outage, https).
//! * [`startup`]: what needs no broker: configuration errors (library and binary), the fallback when
//!   nothing answers, readiness, credentials kept out of every output, the HTTP surface, SIGTERM.
//! * [`hpa_replay`]: the Kubernetes HPA algorithm replayed over the monitor's decision.

mod broker;
mod helpers;
mod hpa_replay;
mod startup;
