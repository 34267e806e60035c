//! Black-box tests of the relay: real pool-selector upstream, real Redis (the shared test server from
//! `TEST_REDIS_URL`, or a private redis-server where a test kills or freezes it). Each relay runs on a
//! manual clock, so entries age when a test says so (`helpers::TestRelay::advance`), never by sleeping.

mod backtest;
mod burst;
mod caching;
mod helpers;
mod redis_outage;
mod routes;
mod thompson;
