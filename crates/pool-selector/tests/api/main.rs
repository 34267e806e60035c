//! pool-selector's black-box tests: the service in-process on a free port (`helpers::spawn_app`),
//! over local folders and the real S3 test server.

mod helpers;
mod learning;
mod ranking;
mod s3;
