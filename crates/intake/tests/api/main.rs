//! The intake's black-box tests: the service in-process on a free port (`helpers::spawn_app`),
//! publishing to the real test RabbitMQ under exchange and queue names of each test's own (or to a
//! broker address where nothing listens).

mod helpers;
mod limits;
mod operations;
mod publishing;
