//! Reassembling split requests: the parts of a multi-key command (one per slot) or of a
//! fan-out come back in any order and are combined into the one reply a single Redis would give.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use std::sync::Arc;

use super::info::{self, InfoPiece};
use super::queue::{ReplyQueue, Seq};
use super::scan::{self, ScanCursor};
use crate::resp::encode;
use crate::resp::reply::aggregate_elements;
use crate::topology::Topology;

/// How parts combine.
#[derive(Debug, Clone)]
pub enum MergeKind {
    /// MGET: element `i` of the result is element `pos[i].1` of part `pos[i].0`.
    Gather { positions: Vec<(u32, u32)> },
    /// MSET and friends: `+OK` when every part said so.
    AllOk,
    /// DEL, UNLINK, EXISTS, TOUCH: the sum of the parts' integers.
    SumInts,
    /// INFO: meridian's own text with sections folded from every master's INFO.
    Info { pieces: Vec<InfoPiece>, proto: u8 },
    /// SCRIPT KILL, FUNCTION KILL: `+OK` if any part said so; else the first error that is
    /// not `NOTBUSY` (a script that cannot be killed, a failed node); else the `NOTBUSY`.
    AnyOk,
    /// LASTSAVE: the smallest of the parts' integers.
    MinInt,
    /// PUBSUB NUMPAT: the largest of the parts' integers (every master holds the same
    /// patterns of meridian's clients).
    MaxInt,
    /// PUBSUB CHANNELS: the parts' arrays with duplicates removed.
    Union,
    /// PUBSUB SHARDNUMSUB: `[name, count, ...]` pairs with counts summed per name, in order.
    SumPairs,
    /// PUBSUB NUMSUB: pair `i` of the reply is pair `i` of part `from[i]` (the master of the
    /// channel's slot, the node PUBLISH goes to).
    PickPairs { from: Vec<usize> },
    /// KEYS: the parts' arrays concatenated.
    Concat,
    /// RANDOMKEY: the first part that is not nil.
    FirstNonNil,
    /// SCRIPT EXISTS: element-wise AND of the parts' 0/1 arrays.
    AndInts,
    /// SCRIPT LOAD, FUNCTION LOAD: every part must succeed; the first part's reply.
    First,
    /// CONFIG GET: one master's parameters (asked in RESP2), then meridian's own settings.
    ConfigGet {
        own: Vec<(String, String)>,
        proto: u8,
    },
    /// CONFIG SET / RESETSTAT / REWRITE on every node: `+OK`, or an error naming the nodes
    /// that refused (`addrs[i]` is part `i`).
    EveryNode {
        command: &'static str,
        addrs: Vec<Arc<str>>,
    },
    /// SCAN on one shard: the reply with the shard's cursor replaced by a client cursor.
    Scan {
        current: ScanCursor,
        topo: Arc<Topology>,
    },
}

/// An in-progress split request.
pub struct Merge {
    queue: Rc<ReplyQueue>,
    seq: Seq,
    kind: MergeKind,
    parts: RefCell<Vec<Option<Bytes>>>,
    remaining: Cell<usize>,
    /// Runs once the reply is complete (closes connections opened for this request alone).
    done: RefCell<Option<Box<dyn FnOnce()>>>,
}

/// Nesting accepted when looking inside a part's reply.
const MAX_DEPTH: usize = 128;

impl Merge {
    pub fn new(queue: Rc<ReplyQueue>, seq: Seq, kind: MergeKind, parts: usize) -> Rc<Merge> {
        Rc::new(Merge {
            queue,
            seq,
            kind,
            parts: RefCell::new(vec![None; parts]),
            remaining: Cell::new(parts),
            done: RefCell::new(None),
        })
    }

    /// Runs `f` once every part is in.
    pub fn on_done(&self, f: Box<dyn FnOnce()>) {
        *self.done.borrow_mut() = Some(f);
    }

    /// Records part `part`'s reply; the last one completes the client's reply.
    pub fn part_done(&self, part: usize, reply: Bytes) {
        {
            let mut parts = self.parts.borrow_mut();
            match parts.get_mut(part) {
                Some(slot @ None) => *slot = Some(reply),
                _ => return,
            }
        }
        let left = self.remaining.get() - 1;
        self.remaining.set(left);
        if left == 0 {
            let parts: Vec<Bytes> = self.parts.borrow_mut().drain(..).flatten().collect();
            let merged = combine(&self.kind, &parts);
            self.queue.fill(self.seq, merged);
            let done = self.done.borrow_mut().take();
            if let Some(done) = done {
                done();
            }
        }
    }
}

/// Combines complete part replies. The first error among the parts wins: a failed part is
/// never turned into a nil or a zero.
pub fn combine(kind: &MergeKind, parts: &[Bytes]) -> Bytes {
    match kind {
        MergeKind::AnyOk => return any_ok(parts),
        MergeKind::EveryNode { command, addrs } => {
            return super::config::every_node(command, addrs, parts);
        }
        _ => {}
    }
    if let Some(err) = parts
        .iter()
        .find(|p| p.first() == Some(&b'-') || p.first() == Some(&b'!'))
    {
        return err.clone();
    }
    match kind {
        MergeKind::Gather { positions } => gather(positions, parts),
        MergeKind::AllOk => Bytes::from_static(b"+OK\r\n"),
        MergeKind::SumInts => {
            let mut sum: i64 = 0;
            for p in parts {
                match parse_int_reply(p) {
                    Some(n) => sum = sum.saturating_add(n),
                    None => return protocol_mismatch(),
                }
            }
            let mut out = BytesMut::with_capacity(24);
            encode::integer(&mut out, sum);
            out.freeze()
        }
        MergeKind::Info { pieces, proto } => info::render(pieces, parts, *proto),
        MergeKind::AnyOk => any_ok(parts),
        MergeKind::MinInt => extreme_int(parts, i64::min),
        MergeKind::MaxInt => extreme_int(parts, i64::max),
        MergeKind::Concat => concat(parts),
        MergeKind::Union => union(parts),
        MergeKind::SumPairs => sum_pairs(parts),
        MergeKind::PickPairs { from } => pick_pairs(from, parts),
        MergeKind::FirstNonNil => parts
            .iter()
            .find(|p| !is_nil(p))
            .or(parts.first())
            .cloned()
            .unwrap_or_else(protocol_mismatch),
        MergeKind::AndInts => and_ints(parts),
        MergeKind::First => parts.first().cloned().unwrap_or_else(protocol_mismatch),
        MergeKind::Scan { current, topo } => scan_page(*current, topo, parts),
        MergeKind::ConfigGet { own, proto } => {
            super::config::config_get(own, parts.first(), *proto)
        }
        MergeKind::EveryNode { .. } => protocol_mismatch(),
    }
}

/// The parts' integers folded with `pick` (min or max).
fn extreme_int(parts: &[Bytes], pick: fn(i64, i64) -> i64) -> Bytes {
    let mut acc: Option<i64> = None;
    for p in parts {
        match parse_int_reply(p) {
            Some(n) => acc = Some(acc.map_or(n, |m| pick(m, n))),
            None => return protocol_mismatch(),
        }
    }
    let mut out = BytesMut::with_capacity(24);
    encode::integer(&mut out, acc.unwrap_or(0));
    out.freeze()
}

fn pick_pairs(from: &[usize], parts: &[Bytes]) -> Bytes {
    let mut split = Vec::with_capacity(parts.len());
    for p in parts {
        match elements_of(p) {
            Some(ranges) if ranges.len() == from.len() * 2 => split.push(ranges),
            _ => return protocol_mismatch(),
        }
    }
    let mut out = BytesMut::new();
    encode::array_header(&mut out, from.len() * 2);
    for (i, &part) in from.iter().enumerate() {
        let (Some(p), Some(ranges)) = (parts.get(part), split.get(part)) else {
            return protocol_mismatch();
        };
        let Some(pair) = ranges.get(2 * i..2 * i + 2) else {
            return protocol_mismatch();
        };
        for r in pair {
            out.extend_from_slice(&p[r.clone()]);
        }
    }
    out.freeze()
}

fn any_ok(parts: &[Bytes]) -> Bytes {
    if let Some(ok) = parts.iter().find(|p| p.starts_with(b"+")) {
        return ok.clone();
    }
    parts
        .iter()
        .find(|p| !p.starts_with(b"-NOTBUSY"))
        .or(parts.first())
        .cloned()
        .unwrap_or_else(protocol_mismatch)
}

fn is_nil(p: &[u8]) -> bool {
    p == b"$-1\r\n" || p == b"_\r\n" || p == b"*-1\r\n"
}

fn elements_of(p: &Bytes) -> Option<Vec<std::ops::Range<usize>>> {
    aggregate_elements(p, MAX_DEPTH).ok().flatten()
}

fn concat(parts: &[Bytes]) -> Bytes {
    let mut all = Vec::new();
    for p in parts {
        match elements_of(p) {
            Some(ranges) => all.extend(ranges.into_iter().map(|r| &p[r])),
            None => return protocol_mismatch(),
        }
    }
    let mut out = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 16);
    encode::array_header(&mut out, all.len());
    for e in all {
        out.extend_from_slice(e);
    }
    out.freeze()
}

fn union(parts: &[Bytes]) -> Bytes {
    let mut seen: Vec<&[u8]> = Vec::new();
    for p in parts {
        let Some(ranges) = elements_of(p) else {
            return protocol_mismatch();
        };
        for r in ranges {
            let e = &p[r];
            if !seen.contains(&e) {
                seen.push(e);
            }
        }
    }
    let mut out = BytesMut::new();
    encode::array_header(&mut out, seen.len());
    for e in seen {
        out.extend_from_slice(e);
    }
    out.freeze()
}

fn sum_pairs(parts: &[Bytes]) -> Bytes {
    let mut pairs: Vec<(&[u8], i64)> = Vec::new();
    for p in parts {
        let Some(ranges) = elements_of(p) else {
            return protocol_mismatch();
        };
        for chunk in ranges.chunks(2) {
            let [name, count] = chunk else {
                return protocol_mismatch();
            };
            let Some(n) = parse_int_reply(&p[count.clone()]) else {
                return protocol_mismatch();
            };
            let name = &p[name.clone()];
            match pairs.iter_mut().find(|(k, _)| *k == name) {
                Some(entry) => entry.1 += n,
                None => pairs.push((name, n)),
            }
        }
    }
    let mut out = BytesMut::new();
    encode::array_header(&mut out, pairs.len() * 2);
    for (name, n) in pairs {
        out.extend_from_slice(name);
        encode::integer(&mut out, n);
    }
    out.freeze()
}

fn and_ints(parts: &[Bytes]) -> Bytes {
    let mut acc: Option<Vec<bool>> = None;
    for p in parts {
        let Some(ranges) = elements_of(p) else {
            return protocol_mismatch();
        };
        let flags: Option<Vec<bool>> = ranges
            .iter()
            .map(|r| parse_int_reply(&p[r.clone()]).map(|n| n != 0))
            .collect();
        let Some(flags) = flags else {
            return protocol_mismatch();
        };
        acc = Some(match acc {
            None => flags,
            Some(prev) if prev.len() == flags.len() => {
                prev.iter().zip(&flags).map(|(a, b)| *a && *b).collect()
            }
            Some(_) => return protocol_mismatch(),
        });
    }
    let flags = acc.unwrap_or_default();
    let mut out = BytesMut::new();
    encode::array_header(&mut out, flags.len());
    for f in flags {
        encode::integer(&mut out, i64::from(f));
    }
    out.freeze()
}

fn scan_page(current: ScanCursor, topo: &Topology, parts: &[Bytes]) -> Bytes {
    let Some(p) = parts.first() else {
        return protocol_mismatch();
    };
    let Some(ranges) = elements_of(p) else {
        return protocol_mismatch();
    };
    let (Some(cursor), Some(keys)) = (ranges.first(), ranges.get(1)) else {
        return protocol_mismatch();
    };
    let next: Option<u128> = std::str::from_utf8(info::payload(&p[cursor.clone()]))
        .ok()
        .and_then(|s| s.parse().ok());
    let Some(next) = next else {
        return protocol_mismatch();
    };
    let client_cursor = scan::advance(current, next, topo);
    let mut out = BytesMut::with_capacity(p.len() + 24);
    encode::array_header(&mut out, 2);
    encode::bulk(&mut out, client_cursor.as_bytes());
    out.extend_from_slice(&p[keys.clone()]);
    out.freeze()
}

fn protocol_mismatch() -> Bytes {
    Bytes::from_static(b"-ERR meridian: unexpected reply from a backend while merging\r\n")
}

fn parse_int_reply(p: &[u8]) -> Option<i64> {
    let body = p.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    crate::resp::int::string2ll(body)
}

fn gather(positions: &[(u32, u32)], parts: &[Bytes]) -> Bytes {
    let mut elements = Vec::with_capacity(parts.len());
    for p in parts {
        match aggregate_elements(p, MAX_DEPTH) {
            Ok(Some(ranges)) => elements.push(ranges),
            _ => return protocol_mismatch(),
        }
    }
    let mut out = BytesMut::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + 16);
    encode::array_header(&mut out, positions.len());
    for &(part, idx) in positions {
        let Some(range) = elements
            .get(part as usize)
            .and_then(|e| e.get(idx as usize))
        else {
            return protocol_mismatch();
        };
        out.extend_from_slice(&parts[part as usize][range.clone()]);
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn gather_puts_elements_back_in_key_order() {
        let parts = vec![b("*2\r\n$1\r\na\r\n$-1\r\n"), b("*1\r\n$1\r\nc\r\n")];
        let positions = vec![(0, 0), (1, 0), (0, 1)];
        let out = combine(&MergeKind::Gather { positions }, &parts);
        assert_eq!(&out[..], b"*3\r\n$1\r\na\r\n$1\r\nc\r\n$-1\r\n");
    }

    #[test]
    fn an_error_part_is_the_reply() {
        let parts = vec![b(":1\r\n"), b("-MOVED 1 x:1\r\n")];
        assert_eq!(
            &combine(&MergeKind::SumInts, &parts)[..],
            b"-MOVED 1 x:1\r\n"
        );
        let parts = vec![b("*1\r\n$1\r\na\r\n"), b("-ERR boom\r\n")];
        let out = combine(
            &MergeKind::Gather {
                positions: vec![(0, 0), (1, 0)],
            },
            &parts,
        );
        assert_eq!(&out[..], b"-ERR boom\r\n");
    }

    #[test]
    fn sums_and_oks() {
        let parts = vec![b(":2\r\n"), b(":3\r\n")];
        assert_eq!(&combine(&MergeKind::SumInts, &parts)[..], b":5\r\n");
        let parts = vec![b("+OK\r\n"), b("+OK\r\n")];
        assert_eq!(&combine(&MergeKind::AllOk, &parts)[..], b"+OK\r\n");
        let parts = vec![b("$1\r\nx\r\n")];
        assert!(combine(&MergeKind::SumInts, &parts).starts_with(b"-ERR meridian"));
    }

    #[test]
    fn fanout_merges() {
        let parts = vec![
            b("*1\r\n$1\r\na\r\n"),
            b("*0\r\n"),
            b("*2\r\n$1\r\nb\r\n$1\r\nc\r\n"),
        ];
        assert_eq!(
            &combine(&MergeKind::Concat, &parts)[..],
            b"*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
        );
        let parts = vec![b("$-1\r\n"), b("$1\r\nk\r\n")];
        assert_eq!(
            &combine(&MergeKind::FirstNonNil, &parts)[..],
            b"$1\r\nk\r\n"
        );
        let parts = vec![b("$-1\r\n"), b("_\r\n")];
        assert_eq!(&combine(&MergeKind::FirstNonNil, &parts)[..], b"$-1\r\n");
        let parts = vec![b("*2\r\n:1\r\n:1\r\n"), b("*2\r\n:1\r\n:0\r\n")];
        assert_eq!(
            &combine(&MergeKind::AndInts, &parts)[..],
            b"*2\r\n:1\r\n:0\r\n"
        );
    }

    #[test]
    fn pubsub_counts_pick_the_owner_or_the_largest() {
        let parts = vec![b(":2\r\n"), b(":5\r\n"), b(":1\r\n")];
        assert_eq!(&combine(&MergeKind::MaxInt, &parts)[..], b":5\r\n");
        assert_eq!(&combine(&MergeKind::MinInt, &parts)[..], b":1\r\n");
        let parts = vec![
            b("*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n:7\r\n"),
            b("*4\r\n$1\r\na\r\n:3\r\n$1\r\nb\r\n:0\r\n"),
        ];
        let pick = MergeKind::PickPairs { from: vec![1, 0] };
        assert_eq!(
            &combine(&pick, &parts)[..],
            b"*4\r\n$1\r\na\r\n:3\r\n$1\r\nb\r\n:7\r\n"
        );
        let short = vec![b("*2\r\n$1\r\na\r\n:1\r\n"), b("*0\r\n")];
        assert!(combine(&pick, &short).starts_with(b"-ERR meridian"));
    }

    #[test]
    fn scan_page_rewrites_the_cursor() {
        use crate::slot::Slot;
        use crate::topology::{NodeSpec, ShardSpec};
        let topo = Arc::new(Topology::from_shards(vec![ShardSpec {
            master: NodeSpec {
                addr: "m:1".into(),
                id: String::new(),
            },
            replicas: vec![],
            slots: vec![(0, 16383)],
        }]));
        let current = ScanCursor {
            slot: Slot::new(0).unwrap(),
            backend: 0,
            tag: crate::reply::scan::node_tag(&topo, Slot::new(0).unwrap()),
        };
        let parts = vec![b("*2\r\n$2\r\n17\r\n*1\r\n$1\r\nk\r\n")];
        let out = combine(
            &MergeKind::Scan {
                current,
                topo: topo.clone(),
            },
            &parts,
        );
        let expected = crate::reply::scan::encode(ScanCursor {
            backend: 17,
            ..current
        });
        let mut want = BytesMut::new();
        encode::array_header(&mut want, 2);
        encode::bulk(&mut want, expected.as_bytes());
        want.extend_from_slice(b"*1\r\n$1\r\nk\r\n");
        assert_eq!(&out[..], &want[..]);
        let parts = vec![b("*2\r\n$1\r\n0\r\n*0\r\n")];
        let out = combine(&MergeKind::Scan { current, topo }, &parts);
        assert_eq!(&out[..], b"*2\r\n$1\r\n0\r\n*0\r\n");
    }

    #[test]
    fn kill_replies_ok_if_any_node_killed_one() {
        let notbusy = b("-NOTBUSY No scripts in execution right now.\r\n");
        let parts = vec![notbusy.clone(), b("+OK\r\n"), notbusy.clone()];
        assert_eq!(&combine(&MergeKind::AnyOk, &parts)[..], b"+OK\r\n");
        let parts = vec![notbusy.clone(), notbusy.clone()];
        assert_eq!(combine(&MergeKind::AnyOk, &parts), notbusy);
        let unkillable = b("-UNKILLABLE Sorry\r\n");
        let parts = vec![notbusy.clone(), unkillable.clone()];
        assert_eq!(combine(&MergeKind::AnyOk, &parts), unkillable);
    }

    #[test]
    fn merge_fills_the_client_slot_when_the_last_part_arrives() {
        let q = Rc::new(ReplyQueue::new());
        let seq = q.reserve();
        let m = Merge::new(q.clone(), seq, MergeKind::SumInts, 2);
        m.part_done(1, b(":1\r\n"));
        m.part_done(1, b(":9\r\n"));
        let mut out = BytesMut::new();
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 0);
        m.part_done(0, b(":4\r\n"));
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 1);
        assert_eq!(&out[..], b":5\r\n");
    }
}
