//! The pipeline across services, with real servers (`scripts/test-services.sh`): what producers send
//! (event-generator, the intake's `POST /events`) goes through RabbitMQ and the ingest-worker into
//! storage, and pool-selector's `GET /pools` counts exactly that, each event once (a redelivered copy
//! is dropped).
//!
//! * `producers`: event-generator and `POST /events` to the ranking; rankings served while the broker
//!   is down.
//! * `recovery`: events stored twice are counted once; a broker restart mid-stream loses nothing.
//! * `launches`: a launched Spark job's outcome reaches the ranking (the closed loop).
//! * `labels`: made-up methods and paths add no metric series on any HTTP service.

mod helpers;
mod labels;
mod launches;
mod producers;
mod recovery;
