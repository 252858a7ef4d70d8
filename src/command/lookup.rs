//! Case-insensitive name → command index without allocation: the name is lower-cased eight
//! bytes at a time into a stack key, hashed, and compared word by word in an
//! open-addressing table.

/// Names up to this many bytes are kept inline in the buckets and compared as words; longer
/// (module) names still work, through a byte-wise comparison callback.
pub(crate) const INLINE: usize = WORDS * 8;
const WORDS: usize = 4;

/// Multiplier of the mixing step (a 64-bit odd constant with well-spread bits).
const K: u64 = 0x9E37_79B9_7F4A_7C15;
const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
const HIGH: u64 = 0x8080_8080_8080_8080;
/// The byte `|` in every lane: container|subcommand names are split at it.
const BARS: u64 = 0x7C7C_7C7C_7C7C_7C7C;

/// ASCII-lowercases the eight bytes of `w` at once; other bytes are unchanged.
#[inline]
fn lower_word(w: u64) -> u64 {
    let low = w & LOW7;
    // Per lane, with no carry between lanes since `low` < 0x80: the high bit says >= 'A'
    // (0x3F + 0x41 = 0x80) and > 'Z' (0x25 + 0x5B = 0x80).
    let at_least_a = low.wrapping_add(0x3F3F_3F3F_3F3F_3F3F);
    let above_z = low.wrapping_add(0x2525_2525_2525_2525);
    let upper = at_least_a & !above_z & !w & HIGH;
    w | (upper >> 2)
}

/// True when some byte of `w` is zero.
#[inline]
fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(0x0101_0101_0101_0101) & !w & HIGH != 0
}

/// Little-endian word of up to eight bytes, zero-padded. A shift loop rather than a
/// variable-length copy, which compiles to a `memcpy` call and a store-forwarding stall.
#[inline]
fn load(chunk: &[u8]) -> u64 {
    if let Ok(full) = <[u8; 8]>::try_from(chunk) {
        return u64::from_le_bytes(full);
    }
    chunk
        .iter()
        .enumerate()
        .fold(0, |w, (i, &b)| w | u64::from(b) << (8 * i))
}

/// A name prepared for lookup: lower-cased words of its first [`INLINE`] bytes, its length
/// and a hash of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    words: [u64; WORDS],
    len: usize,
    hash: u64,
    /// The name contains `|` (a `container|sub` name).
    pub(crate) has_bar: bool,
}

impl Key {
    /// The key of `name`; ASCII case does not matter.
    ///
    /// The hash covers the length and the first [`INLINE`] bytes only: longer names that share
    /// them collide and are told apart by the byte comparison. The words are computed in
    /// registers (no indexed stores): reading a key back right after storing it word by word
    /// stalls store forwarding, which once doubled the lookup time.
    #[inline(always)]
    pub(crate) fn new(name: &[u8]) -> Key {
        let len = name.len();
        let word = |i: usize| {
            let start = i * 8;
            if start >= len {
                return 0;
            }
            lower_word(load(&name[start..(start + 8).min(len)]))
        };
        // Spelled out so it stays in registers; a WORDS change fails to compile here.
        let words: [u64; WORDS] = [word(0), word(1), word(2), word(3)];
        let mut hash = (words[0] ^ (len as u64).wrapping_mul(K)).wrapping_mul(K);
        hash =
            (hash.rotate_left(29) ^ words[1] ^ words[2].rotate_left(21) ^ words[3].rotate_left(43))
                .wrapping_mul(K);
        // Lower-casing never creates or removes a '|', so the words can be searched for it;
        // zero padding never looks like one (0 ^ 0x7C != 0).
        let has_bar = words.iter().any(|w| has_zero_byte(w ^ BARS))
            || (len > INLINE && name[INLINE..].contains(&b'|'));
        Key {
            words,
            len,
            hash: hash ^ (hash >> 32),
            has_bar,
        }
    }

    /// The key of a subcommand name, scoped to its container's index.
    #[inline]
    pub(crate) fn scoped(mut self, container: usize) -> Key {
        self.hash =
            (self.hash ^ (container as u64).wrapping_mul(K).rotate_left(17)).wrapping_mul(K);
        self.hash ^= self.hash >> 32;
        self
    }

    /// True when the stored words equal ours. Only the words the name occupies are compared,
    /// one at a time: a whole-array compare reads the freshly written key with 16-byte loads
    /// that cannot forward from the 8-byte stores, a stall that doubled the lookup time.
    #[inline]
    fn same_words(&self, stored: &[u64; WORDS]) -> bool {
        let used = self.len.div_ceil(8).min(WORDS);
        let mut i = 0;
        while i < used {
            if self.words[i] != stored[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// True when the words alone decide equality (the name is short enough).
    fn inline(&self) -> bool {
        self.len <= INLINE
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    words: [u64; WORDS],
    tag: u32,
    len: u32,
    /// The stored value plus one; 0 marks an empty bucket.
    value: u32,
}

const EMPTY: Bucket = Bucket {
    words: [0; WORDS],
    tag: 0,
    len: 0,
    value: 0,
};

/// An open-addressing table from [`Key`] to a `u32` value.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    buckets: Box<[Bucket]>,
    mask: usize,
}

impl Index {
    /// An index for up to `entries` names, kept at most half full so probes stay short.
    pub(crate) fn with_capacity(entries: usize) -> Index {
        let size = (entries.saturating_mul(2)).next_power_of_two().max(8);
        Index {
            buckets: vec![EMPTY; size].into_boxed_slice(),
            mask: size - 1,
        }
    }

    /// Adds `value` under `key`. The caller has checked the key is absent. Returns false when
    /// the index is full or the value or length does not fit.
    pub(crate) fn insert(&mut self, key: &Key, value: u32) -> bool {
        let (Some(stored), Ok(len)) = (value.checked_add(1), u32::try_from(key.len)) else {
            return false;
        };
        let mut i = key.hash as usize & self.mask;
        for _ in 0..self.buckets.len() {
            if self.buckets[i].value == 0 {
                self.buckets[i] = Bucket {
                    words: key.words,
                    tag: (key.hash >> 32) as u32,
                    len,
                    value: stored,
                };
                return true;
            }
            i = (i + 1) & self.mask;
        }
        false
    }

    /// The value stored under `key`. `accept` gets the candidate value and must confirm it:
    /// for names longer than [`INLINE`] it compares the full names, and subcommand lookups
    /// use it to check the container.
    #[inline(always)]
    pub(crate) fn find(&self, key: &Key, mut accept: impl FnMut(u32) -> bool) -> Option<u32> {
        let tag = (key.hash >> 32) as u32;
        let mut i = key.hash as usize & self.mask;
        for _ in 0..self.buckets.len() {
            let b = &self.buckets[i];
            if b.value == 0 {
                return None;
            }
            if b.tag == tag
                && b.len as usize == key.len
                && key.same_words(&b.words)
                && accept(b.value - 1)
            {
                return Some(b.value - 1);
            }
            i = (i + 1) & self.mask;
        }
        None
    }
}

/// True when `stored` (a lowercase name) equals `query` ignoring ASCII case; callers use it
/// for names longer than [`INLINE`].
#[inline(always)]
pub(crate) fn long_eq(key: &Key, stored: &[u8], query: &[u8]) -> bool {
    key.inline() || stored.eq_ignore_ascii_case(query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_word_matches_ascii_lowercase_for_every_byte() {
        for b in 0..=255u8 {
            let w = u64::from_le_bytes([b, b'A', b'z', b'@', b'[', b'`', b'{', 0xC1]);
            let expect = u64::from_le_bytes([
                b.to_ascii_lowercase(),
                b'a',
                b'z',
                b'@',
                b'[',
                b'`',
                b'{',
                0xC1,
            ]);
            assert_eq!(lower_word(w), expect, "byte {b:#x}");
        }
    }

    #[test]
    fn keys_ignore_case_and_spot_bars() {
        assert_eq!(Key::new(b"GET"), Key::new(b"get"));
        assert_eq!(Key::new(b"ZunionStore"), Key::new(b"zunionstore"));
        assert_ne!(Key::new(b"get"), Key::new(b"set"));
        assert_ne!(Key::new(b"get").hash, Key::new(b"get\0").hash);
        let long = [b'X'; 40];
        assert_eq!(Key::new(&long).hash, Key::new(&[b'x'; 40]).hash);
        assert!(Key::new(b"object|encoding").has_bar);
        assert!(!Key::new(b"object_encoding").has_bar);
        assert_ne!(
            Key::new(b"help").scoped(1).hash,
            Key::new(b"help").scoped(2).hash
        );
    }

    #[test]
    fn insert_find_collisions_and_full_index() {
        let mut index = Index::with_capacity(4);
        let keys: Vec<Key> = (0..8u8).map(|i| Key::new(&[b'k', i])).collect();
        for (i, k) in keys.iter().enumerate() {
            assert!(index.insert(k, i as u32));
        }
        assert!(!index.insert(&Key::new(b"one more"), 9), "full");
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(index.find(k, |_| true), Some(i as u32));
        }
        assert_eq!(index.find(&keys[3], |_| false), None);
        assert_eq!(index.find(&Key::new(b"absent"), |_| true), None);
        assert!(!index.insert(&Key::new(b"x"), u32::MAX));
    }
}
