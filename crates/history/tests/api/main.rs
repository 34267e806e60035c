//! pool-history's one integration-test binary: the live view against raw events, compaction, against
//! real storage (a folder and the S3 test server).

mod live;
mod rollups;
mod signed;
