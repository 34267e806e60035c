//! launcher: places Spark jobs on the spot pool the ranking recommends and feeds each outcome back
//! through the intake, so the next ranking learns from it.
//!
//! * [`settings`]: flags with environment fallbacks (`LAUNCHER_TOKENS`, `LAUNCH_TEMPLATES`,
//!   `RELAY_URL`, `INTAKE_*`, `REDIS_URL`, `BACKEND`, `MAX_ATTEMPT_DURATION`, `SIMULATE_TRUTH`, …).
//! * [`auth`]: who is calling (`caller:token` pairs); a launch belongs to its caller.
//! * [`template`], [`size`], [`manifest`]: templates, size presets, the `SparkApplication` of an attempt.
//! * [`launch`]: launches and attempts, and the pure decisions (relaunch or end, submit a missing run
//!   or not).
//! * [`store`]: where launches live (Redis, or memory): compare-and-set writes, the active-launch bound
//!   and idempotency keys checked atomically, the outbox of unpublished outcomes, the retention.
//! * [`backend`]: where runs happen (`local` spark-submit, or `kubernetes` SparkApplications; `fake`
//!   for tests).
//! * [`clients`]: the relay (picks, checked against the request) and the intake (outcomes).
//! * [`simulate`]: spot reclaims drawn from the generator's truth file.
//! * [`service`]: launching, cancelling, the reconciler's step and the outbox.
//! * [`routes`], [`metrics`], [`startup`]: the HTTP service.

pub mod auth;
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
