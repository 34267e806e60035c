//! RabbitMQ: the one topology of the ingestion path, who may do what on it, the message format, and a
//! publisher that reports an event as accepted only once the broker has confirmed it.
//!
//! # Topology
//!
//! ```text
//!  producers ──► exchange `events` (fanout, durable)
//!                    │
//!                    ▼
//!               queue `events.ingest` (quorum, durable, x-dead-letter-exchange = events.dlx)
//!                    │ ingest-worker
//!                    ▼ (a message that can never be stored is republished with a reason header)
//!               exchange `events.dlx` (fanout, durable) ──► queue `events.dead` (quorum, durable)
//! ```
//!
//! Every name comes from [`AmqpArgs`] (flags or `AMQP_*` variables), so tests and parallel stacks use
//! their own. The topology is declared once, by an identity allowed to configure it ([`Topology::declare`],
//! the `pool-amqp declare` command); services only check on connect that what they use exists
//! ([`Topology::check`], passive declarations, which need no permission), so each service's user needs
//! exactly the rights of its role and no `configure` right ([`access`]). On a single-user development
//! broker `AMQP_DECLARE_TOPOLOGY=true` lets services declare it themselves. Queues are *quorum* queues
//! (replicated Raft log, fsync before the publisher confirm); a broker that refuses one is an error,
//! never a silent fall back to a classic queue.
//!
//! # Message format
//!
//! One message carries a small batch of events as NDJSON (`application/x-ndjson`, one event per line,
//! at most [`AmqpArgs::message_max_events`] events and [`AmqpArgs::message_max_bytes`] bytes). Why not
//! one event per message: an event is ~150 bytes, while a message costs the broker a routing decision,
//! a Raft log entry, a confirm and an ack, and the consumer a delivery frame and a tag. At 50,000
//! events/s one event per message would be 50,000 quorum-queue messages/s plus as many confirms on a
//! 2-core machine; batching a few hundred events per message cuts that to a few hundred messages/s
//! with the same guarantees (a message is confirmed, stored and acknowledged as a unit). Consumers also
//! accept a JSON array or a single JSON object per message (`application/json`), so a foreign producer
//! sending one event per message still works. See [`pool_core::event::ndjson`].
//!
//! # Guarantees
//!
//! Messages are persistent (`delivery_mode` 2) and published with `mandatory` on a confirm channel:
//! [`Publisher::publish_confirmed`] returns only after the broker acknowledged every message, and any
//! nack, return, timeout or lost connection is an error, so nothing half published is reported as
//! accepted. [`Publisher::publish_reliably`] reconnects with exponential backoff and resends exactly the
//! messages that were not confirmed (a message whose confirm was lost in a broker restart may be stored
//! twice; readers count each event once).

// Where things live (all re-exported below; the modules themselves are private, so the crate's paths
// stay `pool_amqp::X`): `settings` (AmqpArgs), `connection` (connect, TLS), `topology` (declare and
// check), `message` (headers and properties), `publisher` (publish with confirms), `errors` (the two
// error types and the reply-code classifiers). `access` is public: its items are used by path.

pub mod access;
mod connection;
mod errors;
mod message;
mod publisher;
mod settings;
mod topology;

pub use connection::connect;
pub use errors::{AmqpError, PublishError, is_access_refused};
pub use message::{EVENT_COUNT_HEADER, REJECTION_REASON_HEADER};
pub use pool_service::config::{
    DEFAULT_DEAD_LETTER_EXCHANGE, DEFAULT_DEAD_LETTER_QUEUE, DEFAULT_EXCHANGE, DEFAULT_QUEUE,
};
pub use publisher::Publisher;
pub use settings::{AmqpArgs, DEFAULT_AMQP_URL};
pub use topology::{Needs, Topology, ready_messages};
