//! One cached upstream answer and its life cycle: fresh, then stale for a grace period, then gone;
//! and how a given answer was obtained ([`CacheStatus`], the `X-Cache` header). The status lives here,
//! below both the caching logic that decides it and the metrics that count it, so neither of those
//! modules depends on the other.
//!
//! Times are milliseconds since the Unix epoch, read from the relay's [`crate::clock`].

use bytes::{BufMut, Bytes, BytesMut};

/// An upstream answer: what the relay needs to replay it (status, content type, body) and when it was
/// stored, plus how long it stays fresh, decided by the replica that stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
    /// When the upstream answered (ms since the epoch).
    pub stored_at_ms: u64,
    /// How long after `stored_at_ms` the entry is fresh (0 for an answer that is not cached).
    pub fresh_for_ms: u64,
    /// The upstream said `Cache-Control: no-store` (an unseeded Thompson draw when that is
    /// pool-selector's default strategy): passed on, never stored. Not part of the stored encoding.
    pub no_store: bool,
}

/// Where an entry is in its life at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Serve it as a hit.
    Fresh,
    /// Past its TTL but inside the grace period: serve it and refresh it in the background.
    Stale,
    /// Past the grace period: treat it as missing.
    Expired,
}

/// How the answer to one request was obtained: the `X-Cache` header, and the `result` label of
/// `relay_cache_requests_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Fresh from the cache.
    Hit,
    /// From the upstream (possibly through another request's fetch).
    Miss,
    /// From the cache past its TTL, inside the grace period; a refresh is under way.
    Stale,
    /// From the upstream, not cached: Redis being unavailable, or a question whose answers must not be
    /// shared (an unseeded thompson draw).
    Bypass,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
        }
    }
}

/// Format version of the stored bytes, so a future layout change can never be misread.
const FORMAT: u8 = 1;
const HEADER_LEN: usize = 1 + 2 + 8 + 8 + 2;

impl Entry {
    pub fn freshness(&self, now_ms: u64, grace_ms: u64) -> Freshness {
        let age = now_ms.saturating_sub(self.stored_at_ms);
        if age < self.fresh_for_ms {
            Freshness::Fresh
        } else if age < self.fresh_for_ms.saturating_add(grace_ms) {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Whole seconds since the upstream answered: the `Age` header.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms) / 1000
    }

    /// Compact binary form for Redis: version, status, stored_at, fresh_for, content type, body.
    pub fn encode(&self) -> Bytes {
        let ct = self.content_type.as_bytes();
        let ct_len = ct.len().min(u16::MAX as usize);
        let mut buf = BytesMut::with_capacity(HEADER_LEN + ct_len + self.body.len());
        buf.put_u8(FORMAT);
        buf.put_u16(self.status);
        buf.put_u64(self.stored_at_ms);
        buf.put_u64(self.fresh_for_ms);
        buf.put_u16(ct_len as u16);
        buf.put_slice(&ct[..ct_len]);
        buf.put_slice(&self.body);
        buf.freeze()
    }

    /// The inverse of [`Entry::encode`]; `None` for bytes it did not write (another format, a foreign
    /// value under our key), which the caller treats as a miss.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < HEADER_LEN || bytes[0] != FORMAT {
            return None;
        }
        let u16_at = |i: usize| u16::from_be_bytes([bytes[i], bytes[i + 1]]);
        let u64_at = |i: usize| u64::from_be_bytes(bytes[i..i + 8].try_into().expect("8 bytes"));
        let status = u16_at(1);
        let stored_at_ms = u64_at(3);
        let fresh_for_ms = u64_at(11);
        let ct_len = u16_at(19) as usize;
        let rest = &bytes[HEADER_LEN..];
        if rest.len() < ct_len || !(100..600).contains(&status) {
            return None;
        }
        let content_type = std::str::from_utf8(&rest[..ct_len]).ok()?.to_owned();
        Some(Self {
            status,
            content_type,
            body: Bytes::copy_from_slice(&rest[ct_len..]),
            stored_at_ms,
            fresh_for_ms,
            no_store: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            status: 200,
            content_type: "application/json".into(),
            body: Bytes::from_static(br#"{"pool_id":"pool-c6a.xlarge-us-east-1a"}"#),
            stored_at_ms: 1_000_000,
            fresh_for_ms: 30_000,
            no_store: false,
        }
    }

    #[test]
    fn round_trips() {
        let e = entry();
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        let empty = Entry {
            status: 404,
            content_type: String::new(),
            body: Bytes::new(),
            ..entry()
        };
        assert_eq!(Entry::decode(&empty.encode()), Some(empty));
    }

    #[test]
    fn foreign_bytes_are_not_entries() {
        assert_eq!(Entry::decode(b""), None);
        assert_eq!(Entry::decode(b"hello world, this is not an entry"), None);
        let mut bytes = entry().encode().to_vec();
        bytes[0] = 9;
        assert_eq!(Entry::decode(&bytes), None);
        let truncated = &entry().encode()[..HEADER_LEN + 3];
        assert_eq!(Entry::decode(truncated), None);
    }

    #[test]
    fn life_cycle() {
        let e = entry();
        let grace = 300_000;
        assert_eq!(e.freshness(1_000_000, grace), Freshness::Fresh);
        assert_eq!(e.freshness(1_029_999, grace), Freshness::Fresh);
        assert_eq!(e.freshness(1_030_000, grace), Freshness::Stale);
        assert_eq!(e.freshness(1_329_999, grace), Freshness::Stale);
        assert_eq!(e.freshness(1_330_000, grace), Freshness::Expired);
        // A clock that went backwards (another replica's) makes an entry fresh, not broken.
        assert_eq!(e.freshness(999_000, grace), Freshness::Fresh);
        assert_eq!(e.age_secs(1_012_345), 12);
        assert_eq!(e.age_secs(0), 0);
    }
}
