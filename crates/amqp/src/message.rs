//! The message format on the wire besides the NDJSON body (see the crate docs): the headers and the
//! properties every published message carries. In one place because the publisher and the ingest
//! worker (when it dead-letters a message) write them and the dead-letter replay reads them.

use std::time::{SystemTime, UNIX_EPOCH};

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, ShortString};

use pool_core::event::ndjson::CONTENT_TYPE_NDJSON;

/// Header on a dead-lettered message saying why it was rejected.
pub const REJECTION_REASON_HEADER: &str = "x-rejection-reason";
/// Header with the number of events in a message (informational; consumers count lines themselves).
pub const EVENT_COUNT_HEADER: &str = "x-event-count";

/// The properties of a message of `events_in_message` events published by `app_id`: persistent
/// (`delivery_mode` 2, so a confirmed message survives a broker restart), NDJSON, a time-ordered message
/// id, the publish time and the event count.
pub(crate) fn properties(app_id: &str, events_in_message: usize) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        EVENT_COUNT_HEADER.into(),
        AMQPValue::LongLongInt(events_in_message as i64),
    );
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(CONTENT_TYPE_NDJSON.into())
        .with_message_id(uuid::Uuid::now_v7().to_string().into())
        .with_timestamp(now)
        .with_app_id(
            ShortString::try_new(app_id.to_owned()).unwrap_or_else(|_| "pool-selector".into()),
        )
        .with_headers(headers)
}
