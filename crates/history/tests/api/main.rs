//! pool-history's one integration-test binary: rollups and compaction against real storage.

mod rollups;
