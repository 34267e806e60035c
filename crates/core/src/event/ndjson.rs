//! The NDJSON body format: events one per line, as they travel in AMQP messages and in `POST /events`
//! bodies, and as they are stored. A reader also accepts one JSON object or a JSON array of them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use std::collections::BTreeMap;

use super::{Event, EventError, Partition, RawEvent, format_timestamp};

/// Content type of a body holding one event per line.
pub const CONTENT_TYPE_NDJSON: &str = "application/x-ndjson";

/// Most bad lines listed in an [`InvalidEvents`] error; the rest are only counted.
pub const MAX_LISTED_ERRORS: usize = 100;
// ---------------------------------------------------------------------------------------------------

/// Pack events into NDJSON message bodies of at most `max_events` events and about `max_bytes` bytes
/// (a single larger event still gets a message of its own). Every line ends with `\n`.
pub fn encode_messages(events: &[Event], max_events: usize, max_bytes: usize) -> Vec<Vec<u8>> {
    let max_events = max_events.max(1);
    let mut out = Vec::new();
    let mut body = Vec::new();
    let mut count = 0;
    for event in events {
        let line = event.to_json();
        if count > 0 && (count >= max_events || body.len() + line.len() + 1 > max_bytes) {
            out.push(std::mem::take(&mut body));
            count = 0;
        }
        body.extend_from_slice(line.as_bytes());
        body.push(b'\n');
        count += 1;
    }
    if count > 0 {
        out.push(body);
    }
    out
}

/// Events grouped by hourly [`Partition`] as NDJSON bodies: what a writer turns into one object per
/// hour. The generator's object sink, the ingest worker's batches and the test fixtures all build
/// their objects with it, so every stored object has the same canonical lines.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Partitioned {
    parts: BTreeMap<Partition, Body>,
    bytes: usize,
    events: usize,
}

/// One partition's NDJSON lines and how many events they hold.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub events: usize,
}

impl Partitioned {
    /// Group `events` by partition.
    pub fn of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Self {
        let mut p = Self::default();
        for e in events {
            p.push(e);
        }
        p
    }

    /// Append `event` as one line of its partition's body; returns the partition and that body's size.
    pub fn push(&mut self, event: &Event) -> (Partition, usize) {
        let partition = event.partition();
        let body = self.parts.entry(partition).or_default();
        let before = body.bytes.len();
        serde_json::to_writer(&mut body.bytes, event).expect("an event always serialises");
        body.bytes.push(b'\n');
        body.events += 1;
        self.bytes += body.bytes.len() - before;
        self.events += 1;
        (partition, body.bytes.len())
    }

    /// Take one partition's body out.
    pub fn remove(&mut self, partition: &Partition) -> Option<Body> {
        let body = self.parts.remove(partition)?;
        self.bytes -= body.bytes.len();
        self.events -= body.events;
        Some(body)
    }

    /// The partitions held, oldest first.
    pub fn partitions(&self) -> impl Iterator<Item = (&Partition, &Body)> {
        self.parts.iter()
    }

    /// NDJSON bytes held, all partitions together.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn events(&self) -> usize {
        self.events
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }
}

impl IntoIterator for Partitioned {
    type Item = (Partition, Body);
    type IntoIter = std::collections::btree_map::IntoIter<Partition, Body>;
    fn into_iter(self) -> Self::IntoIter {
        self.parts.into_iter()
    }
}

/// One invalid event in a body: where it is (`line` for NDJSON, 1-based; `index` for a JSON array,
/// 0-based) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The field at fault, or `event`/`body` when the whole thing is unreadable.
    pub field: String,
    pub message: String,
}

impl BadEvent {
    fn at_line(line: usize, field: &str, message: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            index: None,
            field: field.into(),
            message: message.into(),
        }
    }
    fn at_index(index: usize, field: &str, message: impl Into<String>) -> Self {
        Self {
            line: None,
            index: Some(index),
            field: field.into(),
            message: message.into(),
        }
    }
    fn body(message: impl Into<String>) -> Self {
        Self {
            line: None,
            index: None,
            field: "body".into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for BadEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.index) {
            (Some(l), _) => write!(f, "line {l}: {}", self.message),
            (_, Some(i)) => write!(f, "index {i}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

/// A body with at least one invalid event. Lists the first [`MAX_LISTED_ERRORS`] and counts all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{total} invalid event(s), first: {}", .listed.first().map(|b| b.to_string()).unwrap_or_default())]
pub struct InvalidEvents {
    pub listed: Vec<BadEvent>,
    pub total: usize,
}

impl InvalidEvents {
    fn push(&mut self, bad: BadEvent) {
        if self.listed.len() < MAX_LISTED_ERRORS {
            self.listed.push(bad);
        }
        self.total += 1;
    }
    fn one(bad: BadEvent) -> Self {
        Self {
            listed: vec![bad],
            total: 1,
        }
    }
}

/// Parse a body holding events: one JSON object, a JSON array of objects, or NDJSON (one object per
/// line; blank lines ignored). All or nothing: any invalid event makes the whole body invalid, and the
/// error names every bad line or index. An empty body is invalid too (it carries no event).
pub fn parse_events(body: &[u8]) -> Result<Vec<Event>, InvalidEvents> {
    parse_events_with(body, None)
}

/// [`parse_events`] for a front door: an event stamped after `horizon` (the server's clock plus the
/// allowed skew) is invalid too, naming `finished_at`. A job reports its end after it ended, so such a
/// stamp is a broken clock or a forgery, and it would keep full weight in every ranking for ever.
pub fn parse_events_before(
    body: &[u8],
    horizon: DateTime<Utc>,
) -> Result<Vec<Event>, InvalidEvents> {
    parse_events_with(body, Some(horizon))
}

fn parse_events_with(
    body: &[u8],
    horizon: Option<DateTime<Utc>>,
) -> Result<Vec<Event>, InvalidEvents> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() {
        return Err(InvalidEvents::one(BadEvent::body(
            "the body holds no events",
        )));
    }
    if trimmed[0] == b'[' {
        return parse_array(trimmed, horizon);
    }
    // A pretty-printed single object spans several lines; NDJSON never has an object across lines.
    if trimmed[0] == b'{'
        && trimmed.contains(&b'\n')
        && let Ok(value) = serde_json::from_slice::<serde_json::Value>(trimmed)
    {
        return event_from_value(value, horizon)
            .map(|e| vec![e])
            .map_err(|(field, message)| InvalidEvents::one(BadEvent::at_line(1, field, message)));
    }
    let mut events = Vec::with_capacity(trimmed.len() / 150 + 1);
    let mut bad = InvalidEvents {
        listed: Vec::new(),
        total: 0,
    };
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match Event::from_json(line).and_then(|e| not_after(e, horizon)) {
            Ok(e) => events.push(e),
            Err(e) => bad.push(BadEvent::at_line(i + 1, e.field, e.to_string())),
        }
    }
    if bad.total > 0 { Err(bad) } else { Ok(events) }
}

fn not_after(e: Event, horizon: Option<DateTime<Utc>>) -> Result<Event, EventError> {
    match horizon {
        Some(h) if e.finished_at > h => Err(EventError::new(
            "finished_at",
            format!(
                "{} is in the future (later than {}, the server's clock plus MAX_CLOCK_SKEW); \
                 send an event after its job finished",
                format_timestamp(&e.finished_at),
                format_timestamp(&h)
            ),
        )),
        _ => Ok(e),
    }
}

fn event_from_value(
    value: serde_json::Value,
    horizon: Option<DateTime<Utc>>,
) -> Result<Event, (&'static str, String)> {
    let raw: RawEvent = serde_json::from_value(value)
        .map_err(|e| ("event", format!("event: not a JSON event object: {e}")))?;
    Event::try_from(raw)
        .and_then(|e| not_after(e, horizon))
        .map_err(|e| (e.field, e.to_string()))
}

/// Parse a JSON array one element at a time: each element is decoded, checked and dropped before the
/// next, so a body of 16 MiB of `[0,0,…]` costs a counter, not millions of `serde_json::Value`s.
fn parse_array(body: &[u8], horizon: Option<DateTime<Utc>>) -> Result<Vec<Event>, InvalidEvents> {
    use serde::de::{Deserializer as _, SeqAccess, Visitor};

    struct Elements<'a> {
        horizon: Option<DateTime<Utc>>,
        events: &'a mut Vec<Event>,
        bad: &'a mut InvalidEvents,
    }
    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = usize;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an array of event objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
            let mut n = 0;
            while let Some(v) = seq.next_element::<serde_json::Value>()? {
                if !v.is_object() && self.bad.listed.len() >= MAX_LISTED_ERRORS {
                    // Never an event, and its message would not be listed: count it, build nothing.
                    self.bad.total += 1;
                    n += 1;
                    continue;
                }
                match event_from_value(v, self.horizon) {
                    Ok(e) => self.events.push(e),
                    Err((field, message)) => self.bad.push(BadEvent::at_index(n, field, message)),
                }
                n += 1;
            }
            Ok(n)
        }
    }

    let mut events = Vec::with_capacity(body.len() / 150 + 1);
    let mut bad = InvalidEvents {
        listed: Vec::new(),
        total: 0,
    };
    let malformed = |e: serde_json::Error| {
        InvalidEvents::one(BadEvent::body(format!("malformed JSON array: {e}")))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let n = (&mut de)
        .deserialize_seq(Elements {
            horizon,
            events: &mut events,
            bad: &mut bad,
        })
        .map_err(malformed)?;
    de.end().map_err(malformed)?;
    if n == 0 {
        return Err(InvalidEvents::one(BadEvent::body(
            "the array holds no events",
        )));
    }
    if bad.total > 0 { Err(bad) } else { Ok(events) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: usize) -> Event {
        Event::from_json(
            format!(
                r#"{{"finished_at":"2026-11-22T10:00:00.123","job_id":"job-{i}","pool_id":"pool-c6a.xlarge-us-east-1a","status":"SUCCEEDED","reason":""}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn messages_hold_bounded_batches_and_round_trip() {
        let events: Vec<Event> = (0..2500).map(event).collect();
        let bodies = encode_messages(&events, 1000, usize::MAX);
        assert_eq!(bodies.len(), 3);
        let back: Vec<Event> = bodies
            .iter()
            .flat_map(|b| parse_events(b).unwrap())
            .collect();
        assert_eq!(back, events);

        let line = events[0].to_json().len() + 1;
        let bodies = encode_messages(&events[..10], 1000, line * 3);
        assert_eq!(bodies.len(), 4, "3 + 3 + 3 + 1 by bytes");
        assert!(bodies.iter().all(|b| b.len() <= line * 3));
        // One event larger than the limit still travels, alone.
        assert_eq!(encode_messages(&events[..2], 1000, 10).len(), 2);
        assert!(encode_messages(&[], 10, 10).is_empty());
    }

    #[test]
    fn bodies_may_be_an_object_an_array_or_ndjson() {
        let one = event(1).to_json();
        assert_eq!(parse_events(one.as_bytes()).unwrap(), vec![event(1)]);
        let pretty = serde_json::to_string_pretty(&event(1)).unwrap();
        assert!(pretty.contains('\n'));
        assert_eq!(parse_events(pretty.as_bytes()).unwrap(), vec![event(1)]);
        let array = format!("[{}, {}]", event(1).to_json(), event(2).to_json());
        assert_eq!(parse_events(array.as_bytes()).unwrap().len(), 2);
        let ndjson = format!("{}\r\n\n{}\n", event(1).to_json(), event(2).to_json());
        assert_eq!(parse_events(ndjson.as_bytes()).unwrap().len(), 2);
    }

    #[test]
    fn every_bad_line_or_index_is_named() {
        let ndjson = format!(
            "{}\nnot json\n{}\n{}\n",
            event(1).to_json(),
            event(2).to_json().replace("pool-c6a", "pool-C6A"),
            event(3).to_json()
        );
        let err = parse_events(ndjson.as_bytes()).unwrap_err();
        assert_eq!(err.total, 2);
        assert_eq!(err.listed[0].line, Some(2));
        assert_eq!(err.listed[0].field, "event");
        assert_eq!(err.listed[1].line, Some(3));
        assert_eq!(err.listed[1].field, "pool_id");

        let array = format!(r#"[{}, {{"job_id": "x"}}, 7]"#, event(1).to_json());
        let err = parse_events(array.as_bytes()).unwrap_err();
        assert_eq!(err.total, 2);
        assert_eq!(err.listed[0].index, Some(1));
        assert!(err.listed[0].message.contains("missing field"), "{err:?}");
        assert_eq!(err.listed[1].index, Some(2));

        assert_eq!(parse_events(b"  \n").unwrap_err().listed[0].field, "body");
        assert_eq!(parse_events(b"[]").unwrap_err().listed[0].field, "body");
        assert_eq!(parse_events(b"[1, 2").unwrap_err().listed[0].field, "body");

        let many: String = (0..250).map(|_| "nope\n").collect();
        let err = parse_events(many.as_bytes()).unwrap_err();
        assert_eq!(err.total, 250);
        assert_eq!(err.listed.len(), MAX_LISTED_ERRORS);
    }

    #[test]
    fn partitioned_groups_canonical_lines_by_hour() {
        let mut later = event(2);
        later.finished_at += chrono::Duration::hours(1);
        let events = [event(1), later.clone(), event(3)];
        let mut p = Partitioned::of(&events);
        assert_eq!((p.events(), p.partitions().count()), (3, 2));
        let first = p.remove(&event(1).partition()).unwrap();
        assert_eq!(first.events, 2);
        assert_eq!(
            parse_events(&first.bytes).unwrap(),
            vec![event(1), event(3)]
        );
        assert_eq!(p.bytes(), later.to_json().len() + 1);
        let rest: Vec<_> = p.into_iter().collect();
        assert_eq!(rest[0].0, later.partition());
    }
}
