//! Cluster slot hashing: CRC16 (XMODEM) of the key or of its hash tag, modulo 16384.

/// Number of hash slots in a Redis Cluster.
pub const SLOT_COUNT: usize = 16384;

/// A hash slot, always below [`SLOT_COUNT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slot(u16);

impl Slot {
    /// The slot of `n`, or `None` when `n` is not a valid slot number.
    pub fn new(n: u16) -> Option<Slot> {
        ((n as usize) < SLOT_COUNT).then_some(Slot(n))
    }

    /// The slot of any 16-bit number, keeping its low 14 bits.
    pub fn from_bits(n: u16) -> Slot {
        Slot(n & (SLOT_COUNT as u16 - 1))
    }

    /// The slot number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// The slot as an index into per-slot tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The part of `key` that is hashed: the content of the first `{...}` when it is non-empty,
/// else the whole key (the rule Redis Cluster applies).
pub fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = find_byte(b'{', key)
        && let Some(len) = find_byte(b'}', &key[open + 1..])
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// The first position of `needle` in `hay`, eight bytes per step: every key of every request
/// is searched for `{`, and most have none. (The `memchr` crate's vector code only pays off on
/// longer inputs than keys usually are: measured slower on 16-byte keys.)
#[inline]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = ONES * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // Lanes equal to `needle` become zero; the lowest flagged lane is always a real one.
        let w = u64::from_le_bytes(word) ^ pattern;
        let zero = w.wrapping_sub(ONES) & !w & HIGH;
        if zero != 0 {
            return Some(at + (zero.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let rest = chunks.remainder().iter().position(|&b| b == needle);
    rest.map(|i| at + i)
}

/// The slot a key belongs to.
#[inline]
pub fn key_slot(key: &[u8]) -> Slot {
    Slot(crc16_xmodem(hash_tag(key)) & (SLOT_COUNT as u16 - 1))
}

/// CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster hashes keys
/// with. Written here rather than taken from a crate because it runs once per key of every
/// request: one table lookup per byte with no bounds check (the index is a byte) came to about
/// a third of the instructions of the generic crate's loop. Checked against the crc16 crate in
/// the tests.
#[inline]
fn crc16_xmodem(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from((crc >> 8) as u8 ^ b)]
    })
}

/// CRC16/XMODEM of every byte value, built at compile time.
static CRC16_TABLE: [u16; 256] = crc16_table();

const fn crc16_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_byte_finds_the_first_occurrence_anywhere() {
        for len in 0..40usize {
            let hay: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            assert_eq!(find_byte(b'{', &hay), None);
            for at in 0..len {
                let mut h = hay.clone();
                h[at] = b'{';
                if at + 3 < len {
                    h[at + 3] = b'{';
                }
                assert_eq!(find_byte(b'{', &h), Some(at), "len {len} at {at}");
            }
        }
        // Bytes just above and below the needle never match (no borrow across lanes).
        assert_eq!(find_byte(b'{', b"zzzz|||||zzz"), None);
        assert_eq!(find_byte(0x80, &[0x00, 0x7f, 0x81, 0xff, 0x80]), Some(4));
        assert_eq!(find_byte(0, &[1, 1, 1, 1, 1, 1, 1, 1, 1, 0]), Some(9));
    }

    #[test]
    fn crc_matches_the_crc16_crate() {
        // Keys of every length up to 300 bytes, with every byte value in some position.
        let mut key = Vec::new();
        for n in 0..300u32 {
            key.push((n.wrapping_mul(2_654_435_761) >> 13) as u8);
            let ours = crc16_xmodem(&key);
            let theirs = crc16::State::<crc16::XMODEM>::calculate(&key);
            assert_eq!(ours, theirs, "key of {} bytes", key.len());
        }
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
    }

    #[test]
    fn golden_slots_match_redis_cluster_keyslot() {
        // Values from `CLUSTER KEYSLOT` on a real Redis 7.0 node.
        let cases: &[(&[u8], u16)] = &[
            (b"", 0),
            (b"foo", 12182),
            (b"bar", 5061),
            (b"key", 12539),
            (b"123456789", 12739),
            (b"{user1000}.following", 3443),
            (b"{user1000}.followers", 3443),
            (b"foo{}{bar}", 8363),
            (b"foo{{bar}}zap", 4015),
            (b"foo{bar}{zap}", 5061),
            (b"{}", 15257),
            (b"{", 4092),
            (b"}", 12090),
        ];
        for (key, slot) in cases {
            assert_eq!(
                key_slot(key).get(),
                *slot,
                "key {:?}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn hash_tag_rules() {
        assert_eq!(hash_tag(b"a{b}c"), b"b");
        assert_eq!(hash_tag(b"a{}c"), b"a{}c");
        assert_eq!(hash_tag(b"a{b"), b"a{b");
        assert_eq!(hash_tag(b"{{b}}"), b"{b");
        assert_eq!(hash_tag(b"a}b{c}"), b"c");
    }

    #[test]
    fn slot_bounds() {
        assert!(Slot::new(16383).is_some());
        assert!(Slot::new(16384).is_none());
    }
}
