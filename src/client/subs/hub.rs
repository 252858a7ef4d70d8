//! A client's subscriptions as a whole: the connections it holds (one per master it needs)
//! and the placement that decides which master holds which name:
//!
//! - a channel on the master of its slot, so that PUBLISH (sent there) counts it;
//! - a shard channel on the master of its slot (SSUBSCRIBE is refused elsewhere);
//! - a pattern on every master, so that PUBLISH counts it wherever the channel lives; the
//!   copies of a published message are cut to one by [`super::conn`];
//! - keyspace-notification channels (`__keyspace@…`, `__keyevent@…`) on every master, as each
//!   node only notifies about its own keys.
//!
//! [`Hub::reconcile`] makes the connections hold exactly that for a given map; it runs for
//! every client command and whenever the map changes or a connection was lost.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::backend::env::Env;
use crate::reply::queue::ReplyQueue;
use crate::slot::key_slot;
use crate::topology::{NodeId, Topology};

use super::conn::Sub;
use super::frame::{Kind, is_node_local};
use super::join::{Join, Undo};
use super::names::Names;
use super::outlet::Outlet;

/// A client's subscriptions and their connections.
pub struct Hub {
    out: Rc<Outlet>,
    conns: RefCell<Vec<Rc<Sub>>>,
    /// The task that follows the map is running.
    following: Cell<bool>,
    /// The protocol the client speaks, which its connections speak too.
    proto: Cell<u8>,
}

/// Where each wanted name belongs: per master (in map order), the names it must hold; and
/// whether some name has no master in this map.
fn placement(wanted: &Names, topo: &Topology) -> (Vec<(Arc<str>, Names)>, bool) {
    let masters: Vec<NodeId> = topo.masters().collect();
    let index: HashMap<NodeId, usize> = masters.iter().enumerate().map(|(i, &m)| (m, i)).collect();
    let mut plan: Vec<(Arc<str>, Names)> = masters
        .iter()
        .map(|&m| (topo.node(m).addr.clone(), Names::default()))
        .collect();
    let mut homeless = false;
    let owner = |name: &[u8]| {
        topo.master_of(key_slot(name))
            .and_then(|m| index.get(&m).copied())
    };
    for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
        for name in wanted.set(kind) {
            let everywhere =
                kind == Kind::Pattern || (kind == Kind::Channel && is_node_local(name));
            if everywhere {
                homeless |= plan.is_empty();
                for (_, names) in plan.iter_mut() {
                    names.set_mut(kind).insert(name.clone());
                }
                continue;
            }
            match owner(name).and_then(|i| plan.get_mut(i)) {
                Some((_, names)) => {
                    names.set_mut(kind).insert(name.clone());
                }
                None => homeless = true,
            }
        }
    }
    (plan, homeless)
}

impl Hub {
    /// Subscriptions of the client whose replies go to `queue`.
    pub fn new(env: &Rc<Env>, queue: &Rc<ReplyQueue>) -> Rc<Hub> {
        Rc::new(Hub {
            out: Rc::new(Outlet::new(env, queue)),
            conns: RefCell::new(Vec::new()),
            following: Cell::new(false),
            proto: Cell::new(2),
        })
    }

    /// True while the client has any subscription (RESP2 subscribed mode).
    pub fn is_subscribed(&self) -> bool {
        !self.out.wanted.borrow().is_empty()
    }

    /// How many channels, patterns and shard channels the client wants.
    pub fn counts(&self) -> (usize, usize, usize) {
        let wanted = self.out.wanted.borrow();
        (
            wanted.set(Kind::Channel).len(),
            wanted.set(Kind::Pattern).len(),
            wanted.set(Kind::Shard).len(),
        )
    }

    /// Applies a client's (un)subscribe command to what it wants; returns the confirmations
    /// one Redis would send and, for a subscribe, what undoes it if a node refuses it.
    pub fn apply(&self, kind: Kind, on: bool, names: &[&[u8]], proto: u8) -> (Bytes, Option<Undo>) {
        let mut out = BytesMut::new();
        let added = self
            .out
            .wanted
            .borrow_mut()
            .apply(kind, on, names, proto, &mut out);
        let undo: Option<Undo> = (!added.is_empty()).then(|| {
            let outlet = self.out.clone();
            Box::new(move || {
                let mut wanted = outlet.wanted.borrow_mut();
                for name in &added {
                    wanted.set_mut(kind).remove(name);
                }
                drop(wanted);
                // What other masters accepted is taken back by the next placement.
                outlet.dirty.set(true);
                outlet.wake.notify();
            }) as Undo
        });
        (out.freeze(), undo)
    }

    /// The protocol the client speaks now (its connections follow at the next placement).
    pub fn set_proto(&self, proto: u8) {
        self.proto.set(proto);
    }

    /// Makes the connections hold what `topo` says they should; the requests it sends are
    /// parts of `join` when given. Connections to nodes that are no longer masters, that were
    /// lost, or that speak another protocol than the client are closed (and replaced).
    pub fn reconcile(&self, topo: &Arc<Topology>, join: Option<&Rc<Join>>) {
        let out = &self.out;
        let proto = self.proto.get();
        if out.closed.get() {
            return;
        }
        *out.topo.borrow_mut() = topo.clone();
        let (plan, homeless) = placement(&out.wanted.borrow(), topo);
        out.dirty.set(homeless);
        let mut conns = self.conns.borrow_mut();
        conns.retain(|sub| {
            let keep = !sub.is_gone()
                && sub.proto() == proto
                && plan.iter().any(|(addr, _)| addr == sub.addr());
            if !keep {
                sub.close();
            }
            keep
        });
        for (addr, names) in &plan {
            let sub = match conns.iter().find(|s| s.addr() == addr) {
                Some(sub) => sub.clone(),
                None if names.is_empty() => continue,
                None => {
                    let sub = Sub::open(out, addr, proto);
                    conns.push(sub.clone());
                    sub
                }
            };
            sub.converge(names, join);
        }
        conns.retain(|sub| {
            let idle = sub.is_idle();
            if idle {
                sub.close();
            }
            !idle
        });
    }

    /// Sends a sync token on every connection as part of `join` (a PING in RESP2 subscribed
    /// mode: answered once every message sent before it was passed on).
    pub fn sync_all(&self, join: &Rc<Join>) {
        for sub in self.conns.borrow().iter().filter(|s| !s.is_gone()) {
            sub.send_gated(b"", Some(join), None);
        }
    }

    /// True when the placement must run: the map changed or something waits to be placed.
    /// A connection that holds nothing and waits for nothing is closed by it too.
    pub fn needs_reconcile(&self, topo: &Arc<Topology>) -> bool {
        self.out.dirty.get()
            || !Arc::ptr_eq(topo, &self.out.topo.borrow())
            || self
                .conns
                .borrow()
                .iter()
                .any(|s| s.is_idle() || s.is_gone())
    }

    /// Nothing wanted and no connection left: the follower may stop.
    pub fn is_idle(&self) -> bool {
        !self.is_subscribed() && self.conns.borrow().is_empty()
    }

    pub fn is_closed(&self) -> bool {
        self.out.closed.get()
    }

    /// Whether placement waits for a failure to pass, and how long.
    pub fn backoff(&self) -> Option<Duration> {
        self.out.dirty.get().then(|| self.out.backoff())
    }

    /// Resolves when placement work may be waiting (a lost connection, a refused request).
    pub async fn woken(&self) {
        self.out.wake.notified().await
    }

    /// Marks the map-following task as running; false if it already was.
    pub fn start_following(&self) -> bool {
        !self.following.replace(true)
    }

    pub fn stop_following(&self) {
        self.following.set(false);
    }

    /// Open subscription connections.
    pub fn connections(&self) -> usize {
        self.conns.borrow().len()
    }

    /// The client left or reset: every connection closes, nothing is wanted any more.
    pub fn close(&self) {
        self.out.closed.set(true);
        self.out.wanted.borrow_mut().clear();
        let conns: Vec<Rc<Sub>> = self.conns.borrow_mut().drain(..).collect();
        for sub in conns {
            sub.close();
        }
        self.out.wake.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodeSpec, ShardSpec};

    fn topo() -> Topology {
        let shard = |port: u16, slots: (u16, u16)| ShardSpec {
            master: NodeSpec {
                addr: format!("127.0.0.1:{port}"),
                id: format!("n{port}"),
            },
            replicas: Vec::new(),
            slots: vec![slots],
        };
        Topology::from_shards(vec![shard(7000, (0, 8191)), shard(7001, (8192, 16383))])
    }

    fn names(channels: &[&str], patterns: &[&str], shards: &[&str]) -> Names {
        let set = |v: &[&str]| {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        Names {
            channels: set(channels),
            patterns: set(patterns),
            shards: set(shards),
        }
    }

    #[test]
    fn places_by_slot_and_everywhere() {
        // "a" is in slot 15495, "b" in 3300.
        let wanted = names(&["a", "b", "__keyevent@0__:expired"], &["p*"], &["{b}s"]);
        let (plan, homeless) = placement(&wanted, &topo());
        assert!(!homeless);
        assert_eq!(plan.len(), 2);
        assert_eq!(&*plan[0].0, "127.0.0.1:7000");
        assert_eq!(
            plan[0].1,
            names(&["__keyevent@0__:expired", "b"], &["p*"], &["{b}s"])
        );
        assert_eq!(
            plan[1].1,
            names(&["__keyevent@0__:expired", "a"], &["p*"], &[])
        );
    }

    #[test]
    fn an_empty_map_places_nothing() {
        let (plan, homeless) = placement(&names(&["a"], &[], &[]), &Topology::empty());
        assert!(plan.is_empty());
        assert!(homeless);
        let (_, homeless) = placement(&Names::default(), &Topology::empty());
        assert!(!homeless);
    }
}
