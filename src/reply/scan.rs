//! The SCAN cursor meridian hands to clients, walking every master in turn.
//!
//! Encoding (decimal, like Redis cursors):
//! `client = (backend_cursor * 256 + node_tag) * 16384 + first_slot`, where `first_slot` is the
//! lowest slot of the shard being scanned, `backend_cursor` is that shard master's own cursor
//! and `node_tag` is a hash of the master's address. A shard is named by a slot, not by a
//! position in a node list, so a failover (a replica takes over the same slots) does not derail
//! the walk; but a backend cursor means nothing on another node (every server hashes with its
//! own seed), so when the tag shows that the node serving the shard changed, that shard is
//! scanned again from its start — SCAN allows duplicates, never misses. Cursors fit in a u64
//! while the backend cursor is below 2^42; larger ones still work (128-bit arithmetic), but a
//! client that parses cursors as u64 would see them overflow.

use crate::slot::{SLOT_COUNT, Slot};
use crate::topology::Topology;

/// A decoded client cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanCursor {
    /// A slot of the shard being scanned (its lowest slot when meridian made the cursor).
    pub slot: Slot,
    /// That shard's own cursor.
    pub backend: u128,
    /// Hash of the address of the node that made `backend`.
    pub tag: u8,
}

/// The tag of the node serving `slot` now.
pub fn node_tag(topo: &Topology, slot: Slot) -> u8 {
    let Some(master) = topo.master_of(slot) else {
        return 0;
    };
    let mut h: u32 = 0x811c_9dc5;
    for b in topo.node(master).addr.bytes() {
        h = (h ^ b as u32).wrapping_mul(0x0100_0193);
    }
    (h ^ (h >> 8) ^ (h >> 16) ^ (h >> 24)) as u8
}

/// A cursor that is not a number meridian could have made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ERR invalid cursor")]
pub struct BadCursor;

/// Parses a client cursor (`0` starts a scan).
pub fn decode(text: &[u8]) -> Result<ScanCursor, BadCursor> {
    let s = std::str::from_utf8(text).map_err(|_| BadCursor)?;
    let n: u128 = s.parse().map_err(|_| BadCursor)?;
    let slot = Slot::new((n % SLOT_COUNT as u128) as u16).ok_or(BadCursor)?;
    let rest = n / SLOT_COUNT as u128;
    Ok(ScanCursor {
        slot,
        backend: rest >> 8,
        tag: (rest & 0xff) as u8,
    })
}

/// Formats a client cursor.
pub fn encode(cursor: ScanCursor) -> String {
    (((cursor.backend << 8) | cursor.tag as u128) * SLOT_COUNT as u128 + cursor.slot.get() as u128)
        .to_string()
}

/// The lowest slot of each shard, ascending: the order in which shards are scanned.
pub fn shard_order(topo: &Topology) -> Vec<Slot> {
    let mut firsts: Vec<Slot> = topo
        .shards
        .iter()
        .filter_map(|s| s.slots.iter().map(|r| r.0).min())
        .filter_map(Slot::new)
        .collect();
    firsts.sort();
    firsts.dedup();
    firsts
}

/// Where a scan starts: cursor `0` means the first shard's start.
pub fn start(cursor: ScanCursor, topo: &Topology) -> ScanCursor {
    if cursor.backend == 0
        && cursor.slot.get() == 0
        && let Some(&first) = shard_order(topo).first()
    {
        return ScanCursor {
            slot: first,
            backend: 0,
            tag: node_tag(topo, first),
        };
    }
    let tag = node_tag(topo, cursor.slot);
    if cursor.tag != tag {
        // Another node serves the shard now: its own cursor space starts over.
        return ScanCursor {
            slot: cursor.slot,
            backend: 0,
            tag,
        };
    }
    cursor
}

/// The client cursor after a shard answered `backend_next`: the same shard while it has more,
/// else the next shard's start, else `0` (the scan is complete).
pub fn advance(current: ScanCursor, backend_next: u128, topo: &Topology) -> String {
    if backend_next != 0 {
        return encode(ScanCursor {
            slot: current.slot,
            backend: backend_next,
            tag: current.tag,
        });
    }
    // The shard now serving `current.slot` is done; continue at the next shard's first slot.
    let here = topo
        .shard_of(current.slot)
        .and_then(|s| s.slots.iter().map(|r| r.0).min())
        .unwrap_or(current.slot.get());
    match shard_order(topo).into_iter().find(|s| s.get() > here) {
        Some(next) => encode(ScanCursor {
            slot: next,
            backend: 0,
            tag: node_tag(topo, next),
        }),
        None => "0".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodeSpec, ShardSpec};

    fn topo(ranges: &[(u16, u16)]) -> Topology {
        Topology::from_shards(
            ranges
                .iter()
                .enumerate()
                .map(|(i, r)| ShardSpec {
                    master: NodeSpec {
                        addr: format!("m{i}:1"),
                        id: String::new(),
                    },
                    replicas: vec![],
                    slots: vec![*r],
                })
                .collect(),
        )
    }

    #[test]
    fn round_trips_including_huge_backend_cursors() {
        for backend in [0u128, 1, 12345, u64::MAX as u128, u64::MAX as u128 * 7] {
            let c = ScanCursor {
                slot: Slot::new(5461).unwrap(),
                backend,
                tag: 77,
            };
            assert_eq!(decode(encode(c).as_bytes()).unwrap(), c);
        }
        assert_eq!(decode(b"nope"), Err(BadCursor));
        assert_eq!(decode(b"-1"), Err(BadCursor));
    }

    #[test]
    fn walks_every_shard_in_order_then_ends() {
        let t = topo(&[(10923, 16383), (0, 5460), (5461, 10922)]);
        let c = start(decode(b"0").unwrap(), &t);
        assert_eq!(c.slot.get(), 0);
        let next = advance(c, 99, &t);
        assert_eq!(decode(next.as_bytes()).unwrap().backend, 99);
        let next = advance(c, 0, &t);
        let c2 = decode(next.as_bytes()).unwrap();
        assert_eq!((c2.slot.get(), c2.backend), (5461, 0));
        let c3 = decode(advance(c2, 0, &t).as_bytes()).unwrap();
        assert_eq!(c3.slot.get(), 10923);
        assert_eq!(advance(c3, 0, &t), "0");
    }

    #[test]
    fn survives_a_master_list_change() {
        // Same slots, different master addresses (a failover): the cursor still names the shard.
        let before = topo(&[(0, 8191), (8192, 16383)]);
        let c =
            decode(advance(start(decode(b"0").unwrap(), &before), 0, &before).as_bytes()).unwrap();
        let mut after = topo(&[(8192, 16383), (0, 8191)]);
        after.nodes[0].addr = "promoted:1".into();
        assert_eq!(c.slot.get(), 8192);
        assert_eq!(advance(c, 0, &after), "0");
    }
}
