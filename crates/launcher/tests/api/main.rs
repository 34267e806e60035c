//! The launcher's black-box tests: the launcher in-process (or as its binary, for the restart test)
//! with a real pool-selector as its ranking, a real intake publishing to the test RabbitMQ, real Redis
//! for its state, and real `spark-submit` runs (or runs simulated from a truth file, or a fake backend
//! that records calls, for the races).

mod helpers;
mod races;
mod relaunch;
mod requests;
mod spark;
mod store;
