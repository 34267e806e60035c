//! `ingest-worker`: drains the RabbitMQ ingest queue into the event store.
//!
//! Messages (NDJSON batches of job events, see [`pool_amqp`]) are consumed with a prefetch
//! window and gathered into a [`batch::Batch`] until it holds `BATCH_MAX_EVENTS` events or
//! `BATCH_MAX_BYTES` bytes, or is `BATCH_MAX_AGE` old. The batch is then split by the hour of each
//! event's `finished_at`, and each hour becomes **one new immutable object**
//! `<EVENTS_URL>/dt=YYYY-MM-DD/hr=HH/<uuid v7>.json`, the layout pool-selector reads.
//!
//! Nothing accepted is lost: the messages of a batch are acknowledged (one `basic.ack` with
//! `multiple`) only after every object of the batch is durably written (S3 `PUT` returned; on a local
//! folder the file and its folder are fsynced). Storage errors are retried with exponential backoff,
//! and never acknowledged around. A crash between the write and the ack makes the broker redeliver the
//! batch, which is then stored a second time under new keys: delivery is at least once, and readers
//! count each event once (pool-selector deduplicates at read time; the key is the whole event).
//!
//! A message that can never be stored (not JSON, not an event, an inconsistent event, or a body larger
//! than `MAX_MESSAGE_BYTES`, which is not even parsed) is republished, with the reason in an
//! `x-rejection-reason` header, to the dead-letter exchange; once the broker has confirmed that copy,
//! the original is acknowledged with the rest of its batch.
//!
//! Bounds (see [`consumer`] and [`settings::LimitArgs`]):
//! * **Bytes in flight**: the basic.qos prefetch is `min(PREFETCH, MAX_INFLIGHT_BYTES /
//!   MAX_MESSAGE_BYTES)` (at least 2), so the broker never pushes more than `MAX_INFLIGHT_BYTES` of
//!   accepted messages ahead; a batch counts the bytes it holds (NDJSON and dead-letter bodies) against
//!   `BATCH_MAX_BYTES`. Set RabbitMQ's `max_message_size` to `MAX_MESSAGE_BYTES` so that the broker
//!   refuses larger messages at publish time, before anyone buffers them.
//! * **A store that refuses writes for good** (4xx such as access denied or no such bucket): after
//!   `WRITE_MAX_ATTEMPTS` the partition's events go to the dead-letter exchange (reason
//!   `storage refused the write: …`, header `x-partition`), confirmed before the messages are
//!   acknowledged. Transient errors (5xx, timeouts) are retried for as long as it takes.
//! * **A dead letter the broker will not take** (exchange missing, unroutable, nacked, unconfirmed):
//!   after `DEAD_LETTER_MAX_ATTEMPTS` failures, counted per message across redeliveries, the message
//!   is rejected without requeue (to the queue's own `x-dead-letter-exchange`) and the queue moves on.
//!
//! `/metrics` and `/health` are served on `METRICS_PORT` (default 9091).

pub mod batch;
pub mod consumer;
pub mod metrics;
pub mod settings;
pub mod startup;
pub mod writer;

pub use settings::Settings;
pub use startup::Application;
