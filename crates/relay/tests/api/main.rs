//! Black-box tests of the relay: real pool-selector upstream, real Redis (the shared test server from
//! `TEST_REDIS_URL`, or a private redis-server where a test kills or freezes it). Each relay runs on a
//! manual clock, so entries age when a test says so (`helpers::TestRelay::advance`), never by sleeping.
//! The ranking page is loaded in headless Chromium (`browser.rs`; screenshots in
//! `$CARGO_TARGET_DIR/test-artifacts/`).

mod backtest;
mod browser;
mod burst;
mod caching;
mod helpers;
mod limits;
mod page;
mod redis_outage;
mod routes;
mod thompson;
