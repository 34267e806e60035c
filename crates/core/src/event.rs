//! The Spark job event: one line of NDJSON per finished job.
//!
//! Parse, don't validate: the wire form ([`RawEvent`]) is turned into an [`Event`] exactly once, at the
//! edge (HTTP body, AMQP message, generator), and everything downstream works with types that cannot hold
//! an inconsistent value: a [`PoolId`] always has an instance type and an availability zone, and an
//! [`Outcome`] cannot be "succeeded with a spot termination".

pub mod ndjson;

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// The only failure reason that counts as losing the job to the spot market.
pub const SPOT_INSTANCE_TERMINATION: &str = "SPOT_INSTANCE_TERMINATION";

/// How far ahead of the server's clock an event's `finished_at` may be before it is refused at intake
/// and ignored by rankings (`MAX_CLOCK_SKEW`): room for hosts whose clocks drift, no room for forgery.
pub const DEFAULT_MAX_CLOCK_SKEW: std::time::Duration = std::time::Duration::from_secs(300);

/// Longest identifier (job id, reason, pool id) accepted, so one event cannot carry megabytes.
pub const MAX_FIELD_LEN: usize = 128;

/// Why a value is not a valid event (or part of one). The message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EventError {
    /// The offending field, e.g. `pool_id` or `instance_types`.
    pub field: &'static str,
    /// What was wrong, written for the person who sent it.
    pub message: String,
}

impl EventError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

fn shown(value: &str) -> String {
    const MAX_SHOWN: usize = 64;
    if value.chars().count() > MAX_SHOWN {
        let head: String = value.chars().take(MAX_SHOWN).collect();
        format!("{head:?}… ({} bytes)", value.len())
    } else {
        format!("{value:?}")
    }
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// An EC2 instance type, `family.size`: `c6a.xlarge`, `m7i-flex.large`, `c7i.metal-24xl`.
///
/// Lowercase letters, digits and inner dashes on both sides of exactly one dot. Anything else (quotes,
/// spaces, SQL) is refused here, long before it could reach a query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceType(String);

impl InstanceType {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part before the dot, e.g. `c6a`.
    pub fn family(&self) -> &str {
        self.0.split_once('.').map(|(f, _)| f).unwrap_or(&self.0)
    }
    /// The part after the dot, e.g. `xlarge`.
    pub fn size(&self) -> &str {
        self.0.split_once('.').map(|(_, s)| s).unwrap_or("")
    }
}

impl FromStr for InstanceType {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            EventError::new(
                "instance_type",
                format!(
                    "{} is not an EC2 instance type of the form family.size (e.g. c6a.xlarge)",
                    shown(s)
                ),
            )
        };
        if s.is_empty() || s.len() > 64 {
            return Err(bad());
        }
        let (family, size) = s.split_once('.').ok_or_else(bad)?;
        let family_ok = is_name_part(family) && family.as_bytes()[0].is_ascii_lowercase();
        if !family_ok || !is_name_part(size) {
            return Err(bad());
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for InstanceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An availability zone such as `us-east-1a`, `eu-central-1b` or the local zone `us-west-2-lax-1a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AvailabilityZone(String);

impl AvailabilityZone {
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The region the zone belongs to: `us-east-1a` → `us-east-1`.
    pub fn region(&self) -> &str {
        &self.0[..self.0.len() - 1]
    }
}

impl FromStr for AvailabilityZone {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        let ok = s.len() >= 6
            && s.len() <= 32
            && b[0].is_ascii_lowercase()
            && b[1].is_ascii_lowercase()
            && b[2] == b'-'
            && is_name_part(s)
            && b[b.len() - 1].is_ascii_lowercase()
            && b[b.len() - 2].is_ascii_digit();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(EventError::new(
                "availability_zone",
                format!(
                    "{} is not an availability zone such as us-east-1a",
                    shown(s)
                ),
            ))
        }
    }
}

impl fmt::Display for AvailabilityZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A spot pool: `pool-<instance type>-<availability zone>`, e.g. `pool-r6a.xlarge-us-east-1c`.
///
/// Both halves may hold dashes (`m7i-flex.large`, `c7i.metal-24xl`, `us-west-2-lax-1a`), so the split is
/// the first dash after the instance type's dot whose remainder is a valid zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PoolId {
    raw: String,
    instance_type: InstanceType,
    zone: AvailabilityZone,
}

impl PoolId {
    pub fn new(instance_type: InstanceType, zone: AvailabilityZone) -> Self {
        Self {
            raw: format!("pool-{instance_type}-{zone}"),
            instance_type,
            zone,
        }
    }
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn instance_type(&self) -> &InstanceType {
        &self.instance_type
    }
    pub fn availability_zone(&self) -> &AvailabilityZone {
        &self.zone
    }
}

impl FromStr for PoolId {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            EventError::new(
                "pool_id",
                format!(
                    "{} is not a pool id of the form pool-<family.size>-<zone> (e.g. pool-c6a.xlarge-us-east-1a)",
                    shown(s)
                ),
            )
        };
        if s.len() > MAX_FIELD_LEN {
            return Err(bad());
        }
        let rest = s.strip_prefix("pool-").ok_or_else(bad)?;
        let dot = rest.find('.').ok_or_else(bad)?;
        for (i, _) in rest[dot..].match_indices('-') {
            let split = dot + i;
            let (it, zone) = (&rest[..split], &rest[split + 1..]);
            if let (Ok(instance_type), Ok(zone)) = (it.parse(), zone.parse()) {
                return Ok(Self {
                    raw: s.to_owned(),
                    instance_type,
                    zone,
                });
            }
        }
        Err(bad())
    }
}

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Deserialising parses: a stored or received value is checked like any other input.
macro_rules! try_from_string {
    ($($t:ty),*) => {$(
        impl TryFrom<String> for $t {
            type Error = EventError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }
    )*};
}
try_from_string!(InstanceType, AvailabilityZone, PoolId);

impl From<PoolId> for String {
    fn from(p: PoolId) -> String {
        p.raw
    }
}

impl From<InstanceType> for String {
    fn from(t: InstanceType) -> String {
        t.0
    }
}

impl From<AvailabilityZone> for String {
    fn from(z: AvailabilityZone) -> String {
        z.0
    }
}

/// How a job ended, with `status` and `reason` already reconciled.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    Succeeded,
    /// `FAILED` with `SPOT_INSTANCE_TERMINATION`: the only outcome the ranking counts against a pool.
    SpotTermination,
    /// Any other failure (`TIMED_OUT`, `SPARK_EXECUTION_ERROR`, …): counted as a job, not as a spot loss.
    OtherFailure(String),
}

impl Outcome {
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Succeeded => "SUCCEEDED",
            _ => "FAILED",
        }
    }
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Succeeded => "",
            Outcome::SpotTermination => SPOT_INSTANCE_TERMINATION,
            Outcome::OtherFailure(r) => r,
        }
    }
    pub fn is_spot_termination(&self) -> bool {
        matches!(self, Outcome::SpotTermination)
    }

    /// Reconcile the two wire fields. A succeeded job has no reason; a failed job without a reason is an
    /// (unspecified) non-spot failure.
    pub fn from_parts(status: &str, reason: &str) -> Result<Self, EventError> {
        if reason.len() > MAX_FIELD_LEN {
            return Err(EventError::new(
                "reason",
                format!("longer than {MAX_FIELD_LEN} bytes"),
            ));
        }
        match status.to_ascii_uppercase().as_str() {
            "SUCCEEDED" if reason.is_empty() => Ok(Outcome::Succeeded),
            "SUCCEEDED" => Err(EventError::new(
                "reason",
                format!("a SUCCEEDED job has no reason, got {}", shown(reason)),
            )),
            "FAILED" if reason == SPOT_INSTANCE_TERMINATION => Ok(Outcome::SpotTermination),
            "FAILED" if reason.is_empty() => Ok(Outcome::OtherFailure("UNKNOWN".into())),
            "FAILED" => Ok(Outcome::OtherFailure(reason.to_owned())),
            _ => Err(EventError::new(
                "status",
                format!("{} is neither SUCCEEDED nor FAILED", shown(status)),
            )),
        }
    }
}

/// [`parse_timestamp`] as microseconds since the epoch, with a fast path for the fixed-width forms
/// every producer here writes (`2026-11-22T10:00:00.123`, optionally `Z` or `±HH:MM`, `T` or a space).
///
/// The ranking scan parses one timestamp per stored event, and the general parser is a large share of
/// a whole-history scan. The fast path accepts only what [`parse_timestamp`] accepts with the same
/// value (the tests compare them); anything else falls through to it.
pub fn parse_timestamp_micros(s: &str) -> Option<i64> {
    fast_timestamp_micros(s.as_bytes())
        .or_else(|| parse_timestamp(s).ok().map(|t| t.timestamp_micros()))
}

/// `1970-01-01` counted in days from `0001-01-01` (day 1), as `Datelike::num_days_from_ce` counts.
const UNIX_EPOCH_DAYS_FROM_CE: i64 = 719_163;

fn fast_timestamp_micros(b: &[u8]) -> Option<i64> {
    fn digits(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    }
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    // chrono validates the calendar (month lengths, leap years); the fast path only skips its
    // format-string machinery.
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month as u32, day as u32)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let [b'.', tail @ ..] = rest {
        let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        // Microseconds: keep six digits, pad shorter fractions (chrono truncates nanoseconds too).
        for i in 0..6 {
            micros = micros * 10
                + tail
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &tail[n..];
    }
    let offset_secs = match rest {
        [] => 0,
        [b'Z'] if b[10] == b'T' => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = h * 3600 + m * 60;
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let days = i64::from(date.num_days_from_ce()) - UNIX_EPOCH_DAYS_FROM_CE;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1_000_000 + micros)
}

/// Parse a timestamp with or without a zone. No zone means UTC (the seed generator's format,
/// `2026-11-22T10:00:00.123`). A space may stand for the `T`.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, EventError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(t) = DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%:z") {
        return Ok(t.with_timezone(&Utc));
    }
    Err(EventError::new(
        "finished_at",
        format!(
            "{} is not an ISO 8601 timestamp such as 2026-11-22T10:00:00.123 (UTC when no zone is given)",
            shown(s)
        ),
    ))
}

/// Format a timestamp the way the seed did: ISO 8601, milliseconds, no zone, UTC.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// An opaque job identifier (the seed used UUIDs; anything printable up to 128 bytes is accepted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for JobId {
    type Err = EventError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_FIELD_LEN || s.chars().any(|c| c.is_control()) {
            return Err(EventError::new(
                "job_id",
                format!(
                    "{} must be 1 to {MAX_FIELD_LEN} printable characters",
                    shown(s)
                ),
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

/// The wire form, exactly as the seed wrote it. Only used to (de)serialise [`Event`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RawEvent {
    pub finished_at: String,
    pub job_id: String,
    pub pool_id: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A finished Spark job. Constructed only through parsing, so every instance is consistent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawEvent", into = "RawEvent")]
pub struct Event {
    pub finished_at: DateTime<Utc>,
    pub job_id: JobId,
    pub pool_id: PoolId,
    pub outcome: Outcome,
}

impl Event {
    pub fn new(
        finished_at: DateTime<Utc>,
        job_id: JobId,
        pool_id: PoolId,
        outcome: Outcome,
    ) -> Self {
        Self {
            finished_at,
            job_id,
            pool_id,
            outcome,
        }
    }

    /// Parse one JSON document (one NDJSON line).
    pub fn from_json(bytes: &[u8]) -> Result<Self, EventError> {
        serde_json::from_slice::<RawEvent>(bytes)
            .map_err(|e| EventError::new("event", format!("not a JSON event object: {e}")))?
            .try_into()
    }

    /// One NDJSON line, without the trailing newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event always serialises")
    }

    /// The hourly partition the event belongs to.
    pub fn partition(&self) -> Partition {
        Partition::of(&self.finished_at)
    }
}

impl TryFrom<RawEvent> for Event {
    type Error = EventError;
    fn try_from(raw: RawEvent) -> Result<Self, Self::Error> {
        Ok(Event {
            finished_at: parse_timestamp(&raw.finished_at)?,
            job_id: raw.job_id.parse()?,
            pool_id: raw.pool_id.parse()?,
            outcome: Outcome::from_parts(&raw.status, raw.reason.as_deref().unwrap_or(""))?,
        })
    }
}

impl From<Event> for RawEvent {
    fn from(e: Event) -> Self {
        RawEvent {
            finished_at: format_timestamp(&e.finished_at),
            job_id: e.job_id.0,
            pool_id: e.pool_id.raw,
            status: e.outcome.status().to_owned(),
            reason: Some(e.outcome.reason().to_owned()),
        }
    }
}

/// An hourly hive partition, `dt=YYYY-MM-DD/hr=HH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub date: chrono::NaiveDate,
    pub hour: u32,
}

impl Partition {
    pub fn of(t: &DateTime<Utc>) -> Self {
        Self {
            date: t.date_naive(),
            hour: t.hour(),
        }
    }
    /// The `dt` partition value, `YYYY-MM-DD`.
    pub fn dt(&self) -> String {
        self.date.format("%Y-%m-%d").to_string()
    }
    /// The `hr` partition value, two digits.
    pub fn hr(&self) -> String {
        format!("{:02}", self.hour)
    }
    /// The relative folder, `dt=2026-11-22/hr=10`.
    pub fn path(&self) -> String {
        format!("{}/hr={}", Self::day_folder(self.date), self.hr())
    }
    /// The relative folder of a whole day, `dt=2026-11-22`: the parent of its 24 hourly partitions.
    pub fn day_folder(date: chrono::NaiveDate) -> String {
        format!("dt={}", date.format("%Y-%m-%d"))
    }
    /// The partition of an object key or folder holding `…/dt=YYYY-MM-DD/hr=HH/…`, if it has one.
    pub fn from_key(key: &str) -> Option<Self> {
        let mut parts = key.split('/');
        while let Some(part) = parts.next() {
            if let Some(dt) = part.strip_prefix("dt=") {
                let date = chrono::NaiveDate::parse_from_str(dt, "%Y-%m-%d").ok()?;
                let hr = parts.next()?.strip_prefix("hr=")?;
                if hr.len() != 2 {
                    return None;
                }
                let hour: u32 = hr.parse().ok().filter(|h| *h < 24)?;
                return Some(Self { date, hour });
            }
        }
        None
    }
    /// Start of the hour.
    pub fn start(&self) -> DateTime<Utc> {
        self.date
            .and_hms_opt(self.hour, 0, 0)
            .expect("hour < 24")
            .and_utc()
    }
    /// Start of the hour, microseconds since the epoch.
    pub fn start_micros(&self) -> i64 {
        self.start().timestamp_micros()
    }
    /// End of the hour (exclusive), microseconds since the epoch.
    pub fn end_micros(&self) -> i64 {
        self.start_micros() + 3_600_000_000
    }
    /// The next hour's partition.
    pub fn next(&self) -> Self {
        if self.hour < 23 {
            Self {
                date: self.date,
                hour: self.hour + 1,
            }
        } else {
            Self {
                date: self.date.succ_opt().expect("dates have a successor"),
                hour: 0,
            }
        }
    }
}

macro_rules! as_ref_str {
    ($($t:ty),*) => {$(
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    )*};
}
as_ref_str!(InstanceType, AvailabilityZone, PoolId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_parse_from_keys_and_step() {
        let p = Partition::from_key("events/dt=2026-11-22/hr=23/batch-1.json").unwrap();
        assert_eq!(p.path(), "dt=2026-11-22/hr=23");
        assert_eq!(p.next().path(), "dt=2026-11-23/hr=00");
        assert_eq!(p.end_micros() - p.start_micros(), 3_600_000_000);
        assert_eq!(p.next().start_micros(), p.end_micros());
        for bad in [
            "dt=2026-11-22/x.json",
            "dt=2026-13-01/hr=01/x",
            "dt=2026-11-22/hr=24/x",
            "a/b",
        ] {
            assert_eq!(Partition::from_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn fast_timestamps_agree_with_the_general_parser() {
        let cases = [
            "2026-11-22T10:00:00.123",
            "2026-11-22T10:00:00",
            "2026-11-22 10:00:00.5",
            "2026-11-22T10:00:00.123456789",
            "2026-11-22T10:00:00.1234567",
            "2026-11-22T10:00:00Z",
            "2026-11-22T10:00:00.123Z",
            "2026-11-22T10:00:00+02:00",
            "2026-11-22T10:00:00.250-05:30",
            "2026-11-22 10:00:00+00:00",
            "2024-02-29T23:59:59.999",
            "2000-03-01T00:00:00",
            "1969-12-31T23:59:59.9",
            "1970-01-01T00:00:00",
            "1600-01-01T00:00:00",
            "9999-12-31T23:59:59",
            // Not accepted by the fast path; the general parser decides.
            "2026-11-22T10:00:60",
            "2025-02-29T10:00:00",
            "2026-13-01T10:00:00",
            "2026-11-31T10:00:00",
            "2026-11-22T24:00:00",
            "2026-11-22T10:00:00.",
            "2026-11-22T10:00:00.1234567891",
            "2026-11-22 10:00:00Z",
            "2026-11-22T10:00:00+2:00",
            "2026-11-22T10:00:00+24:00",
            "2026-11-22T10:00",
            "2026-11-22",
            "+2026-11-22T10:00:00",
            "2026-11-22T10:00:00 ",
            "２026-11-22T10:00:00",
            "",
            "yesterday",
        ];
        for s in cases {
            let general = parse_timestamp(s).ok().map(|t| t.timestamp_micros());
            assert_eq!(parse_timestamp_micros(s), general, "{s:?}");
            if let Some(fast) = fast_timestamp_micros(s.as_bytes()) {
                assert_eq!(Some(fast), general, "fast path disagrees on {s:?}");
            }
        }
        // The fast path really is taken for the producers' format.
        assert!(fast_timestamp_micros(b"2026-11-22T10:00:00.123").is_some());
        assert!(fast_timestamp_micros(b"2026-11-22T10:00:00.123+01:00").is_some());
    }

    #[test]
    fn fast_timestamps_agree_on_every_day_of_four_centuries() {
        let mut day = chrono::NaiveDate::from_ymd_opt(1800, 1, 1).unwrap();
        let end = chrono::NaiveDate::from_ymd_opt(2200, 1, 1).unwrap();
        while day < end {
            let s = format!("{}T13:37:42.042", day.format("%Y-%m-%d"));
            let expected = day.and_hms_milli_opt(13, 37, 42, 42).unwrap().and_utc();
            assert_eq!(
                fast_timestamp_micros(s.as_bytes()),
                Some(expected.timestamp_micros()),
                "{s}"
            );
            day = day.succ_opt().unwrap();
        }
    }

    #[test]
    fn pool_id_splits_zone_with_dashes() {
        let p: PoolId = "pool-r6a.xlarge-us-east-1c".parse().unwrap();
        assert_eq!(p.instance_type().as_str(), "r6a.xlarge");
        assert_eq!(p.instance_type().family(), "r6a");
        assert_eq!(p.instance_type().size(), "xlarge");
        assert_eq!(p.availability_zone().as_str(), "us-east-1c");
        assert_eq!(p.availability_zone().region(), "us-east-1");
    }

    #[test]
    fn pool_id_with_dashes_in_the_instance_type_and_local_zone() {
        let p: PoolId = "pool-c7i.metal-24xl-us-west-2-lax-1a".parse().unwrap();
        assert_eq!(p.instance_type().as_str(), "c7i.metal-24xl");
        assert_eq!(p.availability_zone().as_str(), "us-west-2-lax-1a");
        let p: PoolId = "pool-m7i-flex.large-eu-central-1b".parse().unwrap();
        assert_eq!(p.instance_type().as_str(), "m7i-flex.large");
        assert_eq!(p.availability_zone().as_str(), "eu-central-1b");
    }

    #[test]
    fn bad_pool_ids_are_refused() {
        for bad in [
            "",
            "pool-",
            "c6a.xlarge-us-east-1a",
            "pool-c6a-us-east-1a",
            "pool-c6a.xlarge",
            "pool-c6a.xlarge-useast",
            "pool-C6A.xlarge-us-east-1a",
            "pool-c6a.xlarge-us-east-1a'; DROP TABLE x; --",
        ] {
            let err = bad.parse::<PoolId>().unwrap_err();
            assert_eq!(err.field, "pool_id", "{bad}");
        }
    }

    #[test]
    fn instance_types_are_family_dot_size() {
        assert!("c6a.xlarge".parse::<InstanceType>().is_ok());
        assert!("u-6tb1.metal".parse::<InstanceType>().is_ok());
        for bad in [
            "c6a",
            ".xlarge",
            "c6a.",
            "c6a.x.large",
            "c6a.xlarge' OR 1=1 --",
            "C6A.XLARGE",
            "1c.large",
            "c6a. xlarge",
            &"a".repeat(100),
        ] {
            assert!(bad.parse::<InstanceType>().is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_with_and_without_zone() {
        let naive = parse_timestamp("2026-11-22T10:00:00.123").unwrap();
        let zulu = parse_timestamp("2026-11-22T10:00:00.123Z").unwrap();
        let offset = parse_timestamp("2026-11-22T12:00:00.123+02:00").unwrap();
        let spaced = parse_timestamp("2026-11-22 10:00:00.123").unwrap();
        let whole = parse_timestamp("2026-11-22T10:00:00").unwrap();
        assert_eq!(naive, zulu);
        assert_eq!(naive, offset);
        assert_eq!(naive, spaced);
        assert_eq!(whole.timestamp_millis() + 123, naive.timestamp_millis());
        assert_eq!(format_timestamp(&naive), "2026-11-22T10:00:00.123");
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("2026-13-01T00:00:00").is_err());
    }

    #[test]
    fn status_and_reason_must_agree() {
        assert_eq!(
            Outcome::from_parts("SUCCEEDED", "").unwrap(),
            Outcome::Succeeded
        );
        assert_eq!(
            Outcome::from_parts("FAILED", SPOT_INSTANCE_TERMINATION).unwrap(),
            Outcome::SpotTermination
        );
        assert_eq!(
            Outcome::from_parts("FAILED", "TIMED_OUT").unwrap(),
            Outcome::OtherFailure("TIMED_OUT".into())
        );
        let err = Outcome::from_parts("SUCCEEDED", SPOT_INSTANCE_TERMINATION).unwrap_err();
        assert_eq!(err.field, "reason");
        assert_eq!(
            Outcome::from_parts("RUNNING", "").unwrap_err().field,
            "status"
        );
    }

    #[test]
    fn event_round_trips_in_the_seed_format() {
        let line = r#"{"finished_at":"2026-11-22T10:00:00.123","job_id":"j-1","pool_id":"pool-c6a.xlarge-us-east-1a","status":"FAILED","reason":"SPOT_INSTANCE_TERMINATION"}"#;
        let e = Event::from_json(line.as_bytes()).unwrap();
        assert!(e.outcome.is_spot_termination());
        assert_eq!(e.to_json(), line);
        assert_eq!(e.partition().path(), "dt=2026-11-22/hr=10");
    }

    #[test]
    fn missing_reason_on_success_is_fine_and_garbage_is_named() {
        let e = Event::from_json(
            br#"{"finished_at":"2026-11-22T10:00:00Z","job_id":"j","pool_id":"pool-c6a.xlarge-us-east-1a","status":"SUCCEEDED"}"#,
        )
        .unwrap();
        assert_eq!(e.outcome, Outcome::Succeeded);
        assert_eq!(Event::from_json(b"{not json").unwrap_err().field, "event");
        let err = Event::from_json(
            br#"{"finished_at":"2026-11-22T10:00:00Z","job_id":"","pool_id":"pool-c6a.xlarge-us-east-1a","status":"SUCCEEDED"}"#,
        )
        .unwrap_err();
        assert_eq!(err.field, "job_id");
    }
}
