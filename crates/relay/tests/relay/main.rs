//! Black-box tests of the relay: real pool-selector upstream, real Redis (the shared test server from
//! `TEST_REDIS_URL`, or a private redis-server where a test kills or freezes it).

mod backtest;
mod burst;
mod caching;
mod redis_outage;
mod routes;
mod support;
mod thompson;
