//! launcher: places Spark jobs on the spot pool the ranking recommends and feeds each outcome back
//! through the intake, so the next ranking learns from it.
//!
//! * [`settings`]: flags with environment fallbacks (`LAUNCH_TEMPLATES`, `RELAY_URL`, `INTAKE_*`,
//!   `REDIS_URL`, `BACKEND`, `SIMULATE_TRUTH`, …).
//! * [`template`], [`size`], [`manifest`]: templates, size presets, the `SparkApplication` of an attempt.
//! * [`launch`]: launches and attempts, and the pure decision after an attempt (relaunch or end).
//! * [`store`]: where launches live (Redis, or memory), written with compare-and-set.
//! * [`backend`]: where runs happen (`local` spark-submit, or `kubernetes` SparkApplications).
//! * [`clients`]: the relay (picks) and the intake (outcomes).
//! * [`simulate`]: spot reclaims drawn from the generator's truth file.
//! * [`service`]: launching, cancelling, and the reconciler's step.
//! * [`routes`], [`metrics`], [`startup`]: the HTTP service.

pub mod backend;
pub mod clients;
pub mod launch;
pub mod manifest;
pub mod metrics;
pub mod routes;
pub mod service;
pub mod settings;
pub mod simulate;
pub mod size;
pub mod startup;
pub mod store;
pub mod template;

pub use settings::Settings;
pub use startup::Application;
