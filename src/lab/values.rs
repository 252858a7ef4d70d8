//! What the drill load writes and how every read is judged.
//!
//! The load of each gateway is a writer that owns its keys, with at most one write of a key in
//! flight; a value names its writer, key and a sequence number, so a read tells exactly what it
//! saw: the last write acknowledged before the read was sent, a later one, or one whose outcome
//! is unknown (all fine); an older one (stale: a replica behind, or a write lost in a failover,
//! which Redis' asynchronous replication allows); or something no write of this key could have
//! produced (another key's value: a reply for another request; garbage; a sequence never
//! issued). Only the last kind breaks an invariant.

use std::collections::VecDeque;

/// Unknown-outcome writes remembered per key (older ones are forgotten).
const MAX_UNKNOWN: usize = 64;
/// Length of every value (the tag plus padding), so replies have some body.
const VALUE_LEN: usize = 48;

/// The writer of one gateway's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Writer {
    /// Index of the gateway it writes through.
    pub gateway: usize,
}

impl Writer {
    /// The key `k` of this writer in drill run `run`.
    pub fn key(&self, run: u32, k: usize) -> String {
        format!("lab:{run:08x}:g{}:k{k}", self.gateway)
    }

    /// The value written as sequence `seq` of key `k`.
    pub fn value(&self, k: usize, seq: u64) -> String {
        let mut v = format!("g{}:k{k}:s{seq}:", self.gateway);
        while v.len() < VALUE_LEN {
            v.push('.');
        }
        v
    }
}

/// What a value says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag {
    gateway: usize,
    key: usize,
    seq: u64,
}

fn parse_tag(value: &[u8]) -> Option<Tag> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.split(':');
    let gateway = parts.next()?.strip_prefix('g')?.parse().ok()?;
    let key = parts.next()?.strip_prefix('k')?.parse().ok()?;
    let seq = parts.next()?.strip_prefix('s')?.parse().ok()?;
    Some(Tag { gateway, key, seq })
}

/// The verdict on one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadCheck {
    /// The last write acknowledged before the read was sent, or one whose outcome is unknown.
    Exact,
    /// A later write: acknowledged, or still in flight, while the read was on its way.
    Ahead,
    /// An older write, or nothing after writes were acknowledged.
    Stale,
    /// A value of another key or writer: the reply belongs to another request.
    Crossed(String),
    /// A value no write of this key could have produced.
    Wrong(String),
}

/// What one writer knows about one of its keys.
#[derive(Debug, Clone, Default)]
pub struct KeyTrack {
    issued: u64,
    acked: Option<u64>,
    unknown: VecDeque<u64>,
}

impl KeyTrack {
    /// The sequence number of a new write.
    pub fn issue(&mut self) -> u64 {
        self.issued += 1;
        self.issued
    }

    /// Write `seq` was acknowledged (+OK).
    pub fn acked(&mut self, seq: u64) {
        if self.acked.is_none_or(|a| seq > a) {
            self.acked = Some(seq);
        }
    }

    /// Write `seq` failed or timed out: it may or may not have been applied.
    pub fn unknown(&mut self, seq: u64) {
        if self.unknown.len() == MAX_UNKNOWN {
            self.unknown.pop_front();
        }
        self.unknown.push_back(seq);
    }

    /// The last acknowledged write, to remember when a read is sent (its floor).
    pub fn floor(&self) -> Option<u64> {
        self.acked
    }

    /// Judges a read of key `key` of `writer` that returned `value` (`None`: nil or empty);
    /// `floor` is [`KeyTrack::floor`] as it was when the read was sent.
    pub fn check(
        &self,
        writer: Writer,
        key: usize,
        value: Option<&[u8]>,
        floor: Option<u64>,
    ) -> ReadCheck {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            return if floor.is_none() {
                ReadCheck::Exact
            } else {
                ReadCheck::Stale
            };
        };
        let shown = || String::from_utf8_lossy(&value[..value.len().min(64)]).into_owned();
        let Some(tag) = parse_tag(value) else {
            return ReadCheck::Wrong(format!("`{}` is not a value the load writes", shown()));
        };
        if (tag.gateway, tag.key) != (writer.gateway, key) {
            return ReadCheck::Crossed(format!(
                "read of g{}:k{key} returned `{}`",
                writer.gateway,
                shown()
            ));
        }
        if tag.seq == 0 || tag.seq > self.issued {
            return ReadCheck::Wrong(format!(
                "`{}` has sequence {} but only {} were written",
                shown(),
                tag.seq,
                self.issued
            ));
        }
        if Some(tag.seq) == floor || self.unknown.contains(&tag.seq) {
            ReadCheck::Exact
        } else if floor.is_some_and(|f| tag.seq < f) {
            ReadCheck::Stale
        } else {
            ReadCheck::Ahead
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Writer = Writer { gateway: 1 };

    #[test]
    fn values_name_writer_key_and_sequence() {
        assert_eq!(W.key(0xab, 7), "lab:000000ab:g1:k7");
        let v = W.value(7, 42);
        assert!(v.starts_with("g1:k7:s42:") && v.len() == VALUE_LEN);
        let tag = parse_tag(v.as_bytes()).unwrap();
        assert_eq!((tag.gateway, tag.key, tag.seq), (1, 7, 42));
    }

    #[test]
    fn judges_reads_against_the_floor() {
        let mut t = KeyTrack::default();
        assert_eq!(t.check(W, 7, None, t.floor()), ReadCheck::Exact);
        let s1 = t.issue();
        t.acked(s1);
        let s2 = t.issue();
        t.unknown(s2);
        let s3 = t.issue();
        t.acked(s3);
        let floor = t.floor();
        let s4 = t.issue();
        let read = |seq| W.value(7, seq);
        assert_eq!(
            t.check(W, 7, Some(read(3).as_bytes()), floor),
            ReadCheck::Exact
        );
        assert_eq!(
            t.check(W, 7, Some(read(2).as_bytes()), floor),
            ReadCheck::Exact
        );
        assert_eq!(
            t.check(W, 7, Some(read(1).as_bytes()), floor),
            ReadCheck::Stale
        );
        assert_eq!(
            t.check(W, 7, Some(read(s4).as_bytes()), floor),
            ReadCheck::Ahead
        );
        // Acknowledged while the read was in flight: the read may see either.
        t.acked(s4);
        assert_eq!(
            t.check(W, 7, Some(read(3).as_bytes()), floor),
            ReadCheck::Exact
        );
        assert_eq!(t.check(W, 7, None, floor), ReadCheck::Stale);
        assert_eq!(t.check(W, 7, Some(b""), floor), ReadCheck::Stale);
        assert!(matches!(
            t.check(W, 7, Some(read(9).as_bytes()), floor),
            ReadCheck::Wrong(_)
        ));
        assert!(matches!(
            t.check(W, 7, Some(b"OK"), floor),
            ReadCheck::Wrong(_)
        ));
        let other = Writer { gateway: 2 }.value(7, 1);
        assert!(matches!(
            t.check(W, 7, Some(other.as_bytes()), floor),
            ReadCheck::Crossed(_)
        ));
        assert!(matches!(
            t.check(W, 8, Some(read(1).as_bytes()), floor),
            ReadCheck::Crossed(_)
        ));
    }

    #[test]
    fn forgets_old_unknown_writes() {
        let mut t = KeyTrack::default();
        for _ in 0..MAX_UNKNOWN + 1 {
            let s = t.issue();
            t.unknown(s);
        }
        assert_eq!(
            t.check(W, 7, Some(W.value(7, 1).as_bytes()), None),
            ReadCheck::Ahead
        );
        assert_eq!(
            t.check(W, 7, Some(W.value(7, 2).as_bytes()), None),
            ReadCheck::Exact
        );
    }
}
