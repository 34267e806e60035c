//! The generator's one integration-test binary: backfills, streams and seed 000's trickle into folders,
//! S3 (a prefix or the seed's single object) and RabbitMQ, and the scenario worlds, run the way the
//! command line runs them.

mod folder;
mod helpers;
mod s3;
mod scenario;
mod trickle;
