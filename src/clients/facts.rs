//! What a session publishes about its client for CLIENT LIST / INFO on any worker: buffer
//! sizes, transaction and subscription state, flags. One writer (the owning session), relaxed
//! stores, read rarely; fields may be a moment apart from each other.

use std::sync::atomic::{AtomicU64, Ordering};

/// In a transaction (`x`).
pub const FLAG_MULTI: u8 = 1;
/// Subscribed (`P`).
pub const FLAG_PUBSUB: u8 = 2;
/// Closes once its replies are written (`c`).
pub const FLAG_CLOSING: u8 = 4;
/// CLIENT NO-EVICT on (`e`).
pub const FLAG_NO_EVICT: u8 = 8;

/// One client's state as its session last published it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Channels, patterns and shard channels subscribed to.
    pub sub: u64,
    pub psub: u64,
    pub ssub: u64,
    /// Commands queued in MULTI, -1 outside one.
    pub multi: i64,
    /// Bytes of the commands queued in MULTI.
    pub multi_mem: u64,
    /// Bytes read and not yet parsed, and the room left in the read buffer.
    pub qbuf: u64,
    pub qbuf_free: u64,
    /// Read buffer size and its peak use over the last few seconds.
    pub rbs: u64,
    pub rbp: u64,
    /// Bytes gathered for the socket and not yet written.
    pub obl: u64,
    /// Replies in, waiting for their turn or the socket, and their bytes.
    pub oll: u64,
    pub omem: u64,
    /// Waiting for the socket to take more.
    pub writing: bool,
    /// RESP version.
    pub resp: u8,
}

/// The published [`Facts`] of one client.
#[derive(Debug)]
pub struct LiveFacts {
    words: [AtomicU64; WORDS],
}

const WORDS: usize = 15;

impl Default for LiveFacts {
    fn default() -> LiveFacts {
        let live = LiveFacts {
            words: std::array::from_fn(|_| AtomicU64::new(0)),
        };
        live.publish(&Facts {
            multi: -1,
            resp: 2,
            ..Facts::default()
        });
        live
    }
}

impl LiveFacts {
    fn to_words(f: &Facts) -> [u64; WORDS] {
        [
            u64::from(f.flags),
            f.sub,
            f.psub,
            f.ssub,
            f.multi as u64,
            f.multi_mem,
            f.qbuf,
            f.qbuf_free,
            f.rbs,
            f.rbp,
            f.obl,
            f.oll,
            f.omem,
            u64::from(f.writing),
            u64::from(f.resp),
        ]
    }

    /// Publishes `facts` (only the owning session calls this).
    pub fn publish(&self, facts: &Facts) {
        for (slot, v) in self.words.iter().zip(Self::to_words(facts)) {
            slot.store(v, Ordering::Relaxed);
        }
    }

    /// The last published facts.
    pub fn load(&self) -> Facts {
        let w: [u64; WORDS] = std::array::from_fn(|i| self.words[i].load(Ordering::Relaxed));
        Facts {
            flags: w[0] as u8,
            sub: w[1],
            psub: w[2],
            ssub: w[3],
            multi: w[4] as i64,
            multi_mem: w[5],
            qbuf: w[6],
            qbuf_free: w[7],
            rbs: w[8],
            rbp: w[9],
            obl: w[10],
            oll: w[11],
            omem: w[12],
            writing: w[13] != 0,
            resp: w[14] as u8,
        }
    }
}

/// The `flags=` letters, in the order Redis writes them; `N` for none.
pub fn flag_letters(flags: u8, blocked: bool) -> String {
    let mut s = String::new();
    for (on, letter) in [
        (flags & FLAG_PUBSUB != 0, 'P'),
        (flags & FLAG_MULTI != 0, 'x'),
        (blocked, 'b'),
        (flags & FLAG_CLOSING != 0, 'c'),
        (flags & FLAG_NO_EVICT != 0, 'e'),
    ] {
        if on {
            s.push(letter);
        }
    }
    if s.is_empty() {
        s.push('N');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_round_trip() {
        let live = LiveFacts::default();
        assert_eq!(live.load().multi, -1);
        let f = Facts {
            flags: FLAG_MULTI | FLAG_NO_EVICT,
            sub: 4,
            psub: 1,
            ssub: 2,
            multi: 3,
            multi_mem: 40,
            qbuf: 5,
            qbuf_free: 6,
            rbs: 7,
            rbp: 8,
            obl: 9,
            oll: 10,
            omem: 11,
            writing: true,
            resp: 3,
        };
        live.publish(&f);
        assert_eq!(live.load(), f);
    }

    #[test]
    fn flags_in_redis_order() {
        assert_eq!(flag_letters(0, false), "N");
        assert_eq!(flag_letters(FLAG_MULTI | FLAG_NO_EVICT, false), "xe");
        assert_eq!(flag_letters(FLAG_PUBSUB, true), "Pb");
    }
}
