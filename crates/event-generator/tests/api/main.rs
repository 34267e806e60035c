//! The generator's one integration-test binary: backfills and streams into folders, S3 and RabbitMQ,
//! and the scenario worlds, run the way the command line runs them.

mod folder;
mod helpers;
mod s3;
mod scenario;
