//! `e2e` holds no code: it is the home of the workspace's cross-service tests
//! (`tests/pipeline/main.rs`), which run event-generator, intake, ingest-worker and pool-selector
//! together against the real test servers. They live in a crate of their own so that no service's
//! tests depend on another service: each service crate tests itself, and this crate checks that what a
//! producer sends is what the ranking counts.
