//! Sets of subscribed names by kind: what a client asked for (counted and confirmed as one
//! Redis would) and what each of its subscription connections holds.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};

use super::frame::{Kind, confirmation};

/// Channels, patterns and shard channels.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Names {
    pub channels: BTreeSet<Bytes>,
    pub patterns: BTreeSet<Bytes>,
    pub shards: BTreeSet<Bytes>,
}

impl Names {
    /// The names of one kind.
    pub fn set(&self, kind: Kind) -> &BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &self.channels,
            Kind::Pattern => &self.patterns,
            Kind::Shard => &self.shards,
        }
    }

    /// The names of one kind, to change.
    pub fn set_mut(&mut self, kind: Kind) -> &mut BTreeSet<Bytes> {
        match kind {
            Kind::Channel => &mut self.channels,
            Kind::Pattern => &mut self.patterns,
            Kind::Shard => &mut self.shards,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty() && self.patterns.is_empty() && self.shards.is_empty()
    }

    pub fn clear(&mut self) {
        *self = Names::default();
    }

    /// The count a confirmation of this kind shows: channels and patterns together for the
    /// classic commands, shard channels alone for the sharded ones (as Redis 7 counts them).
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.shards.len(),
            Kind::Channel | Kind::Pattern => self.channels.len() + self.patterns.len(),
        }
    }

    /// Applies one (un)subscribe command of `kind` for `names` (all of that kind when an
    /// unsubscribe names none), writes the confirmations one Redis would send, one per name
    /// in order with running counts, and returns the names it added.
    pub fn apply(
        &mut self,
        kind: Kind,
        on: bool,
        names: &[&[u8]],
        proto: u8,
        out: &mut BytesMut,
    ) -> Vec<Bytes> {
        let mut added = Vec::new();
        if on {
            for name in names {
                let name = Bytes::copy_from_slice(name);
                if self.set_mut(kind).insert(name.clone()) {
                    added.push(name.clone());
                }
                confirmation(out, kind, true, Some(&name), self.count(kind), proto);
            }
            return added;
        }
        let targets: Vec<Bytes> = if names.is_empty() {
            self.set(kind).iter().cloned().collect()
        } else {
            names.iter().map(|n| Bytes::copy_from_slice(n)).collect()
        };
        if targets.is_empty() {
            confirmation(out, kind, false, None, self.count(kind), proto);
        }
        for name in targets {
            self.set_mut(kind).remove(&name[..]);
            confirmation(out, kind, false, Some(&name), self.count(kind), proto);
        }
        added
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(names: &mut Names, kind: Kind, on: bool, args: &[&[u8]]) -> (String, usize) {
        let mut out = BytesMut::new();
        let added = names.apply(kind, on, args, 2, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), added.len())
    }

    #[test]
    fn counts_as_one_redis() {
        let mut n = Names::default();
        let (out, added) = run(&mut n, Kind::Channel, true, &[b"a", b"b", b"a"]);
        assert_eq!(added, 2);
        assert_eq!(
            out,
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
             *3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n\
             *3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"
        );
        let (out, _) = run(&mut n, Kind::Pattern, true, &[b"p*"]);
        assert!(out.ends_with(":3\r\n"), "{out}");
        let (out, _) = run(&mut n, Kind::Shard, true, &[b"x", b"y"]);
        assert!(out.ends_with("$1\r\ny\r\n:2\r\n"), "{out}");
        // Unsubscribing a name never subscribed still confirms it, count unchanged.
        let (out, _) = run(&mut n, Kind::Channel, false, &[b"nope"]);
        assert_eq!(out, "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnope\r\n:3\r\n");
        let (out, _) = run(&mut n, Kind::Channel, false, &[]);
        assert_eq!(
            out,
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:2\r\n\
             *3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:1\r\n"
        );
        let (out, _) = run(&mut n, Kind::Channel, false, &[]);
        assert_eq!(out, "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n");
        let (out, _) = run(&mut n, Kind::Pattern, false, &[]);
        assert_eq!(out, "*3\r\n$12\r\npunsubscribe\r\n$2\r\np*\r\n:0\r\n");
        assert!(!n.is_empty(), "shard channels are still subscribed");
        run(&mut n, Kind::Shard, false, &[]);
        assert!(n.is_empty());
    }
}
