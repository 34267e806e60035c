//! What can go wrong talking to the broker, and how a broker refusal is told apart from a broker that
//! is down. The two error types differ on purpose: [`AmqpError`] (connecting, declaring, checking) may
//! be fatal, while every [`PublishError`] means "not stored, try again", which is all a front end needs
//! to answer 503. The refusal classifiers live here so the topology (quorum refused, topology missing)
//! and callers that log in with restricted users ([`is_access_refused`]) read AMQP reply codes alike.

use std::time::Duration;

use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};

/// What went wrong talking to the broker (other than publishing, see [`PublishError`]).
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    #[error("cannot connect to RabbitMQ at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("declaring {what} on RabbitMQ failed: {source}")]
    Declare {
        what: String,
        #[source]
        source: lapin::Error,
    },
    #[error(
        "RabbitMQ has no {what}: declare the topology first, once, as an identity allowed to configure \
         it (`pool-amqp declare`), or set AMQP_DECLARE_TOPOLOGY=true on a single-user development broker"
    )]
    Missing { what: String },
    #[error(
        "RabbitMQ refused queue {queue:?} as a quorum queue ({reason}): a classic queue of that name \
         exists, or the broker has no quorum queues; the queue must be a quorum queue (delete or migrate \
         the classic one), it is never silently declared as another type"
    )]
    QueueTypeRefused { queue: String, reason: String },
    #[error("RabbitMQ channel error: {0}")]
    Channel(#[from] lapin::Error),
}

impl AmqpError {
    /// True for errors that retrying cannot fix: the configuration or the broker's state must change
    /// (a queue of the wrong type). A missing topology is not one: the declaring step may run later.
    pub fn is_fatal(&self) -> bool {
        matches!(self, AmqpError::QueueTypeRefused { .. })
    }
}

/// Why events were not accepted. Every variant means "not stored, try again later": an HTTP front
/// end answers 503.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("RabbitMQ is unavailable: {0}")]
    Unavailable(String),
    #[error("the connection to RabbitMQ was lost while publishing: {0}")]
    ConnectionLost(String),
    #[error("RabbitMQ did not confirm the messages within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("RabbitMQ refused (nack) a message")]
    Nacked,
    #[error(
        "RabbitMQ returned a message as unroutable: exchange {exchange:?} has no bound queue ({reply})"
    )]
    Unroutable { exchange: String, reply: String },
}

impl PublishError {
    /// A stable short code for JSON errors and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            PublishError::Unavailable(_) => "broker_unavailable",
            PublishError::ConnectionLost(_) => "broker_connection_lost",
            PublishError::ConfirmTimeout(_) => "broker_confirm_timeout",
            PublishError::Nacked => "broker_nack",
            PublishError::Unroutable { .. } => "broker_unroutable",
        }
    }
}

fn protocol_kind(e: &lapin::Error) -> Option<&AMQPErrorKind> {
    match e.kind() {
        lapin::ErrorKind::ProtocolError(p) => Some(p.kind()),
        _ => None,
    }
}

pub(crate) fn is_soft(e: &lapin::Error, code: AMQPSoftError) -> bool {
    matches!(protocol_kind(e), Some(AMQPErrorKind::Soft(c)) if *c == code)
}

/// True when `e` is the broker refusing a quorum queue: PRECONDITION_FAILED (a queue of that name exists
/// with another type or other arguments) or NOT_IMPLEMENTED/COMMAND_INVALID (no quorum queues).
pub(crate) fn refuses_quorum(e: &lapin::Error) -> bool {
    matches!(
        protocol_kind(e),
        Some(AMQPErrorKind::Soft(AMQPSoftError::PRECONDITIONFAILED))
            | Some(AMQPErrorKind::Hard(AMQPHardError::NOTIMPLEMENTED))
            | Some(AMQPErrorKind::Hard(AMQPHardError::COMMANDINVALID))
    )
}

/// True when `e` is the broker refusing an operation for want of permission (ACCESS_REFUSED), or a
/// login (the connection closed with ACCESS_REFUSED / NOT_ALLOWED for the vhost).
pub fn is_access_refused(e: &lapin::Error) -> bool {
    matches!(
        protocol_kind(e),
        Some(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED))
            | Some(AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED))
    )
}
