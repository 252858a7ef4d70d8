//! The cluster map: which shard owns each slot, and each node's address, role and DC.
//!
//! A `Topology` is immutable once built; changes produce a new snapshot that is published
//! through [`crate::snapshot::Published`], so the request path reads it without a lock.

pub mod dc_hosts;
pub mod failover;
pub mod parse;
pub mod refresh;
pub mod resolve;

use std::sync::Arc;

use crate::slot::{SLOT_COUNT, Slot};

/// Index of a node inside one topology snapshot.
pub type NodeId = u16;

/// Marker in the slot table for a slot no shard serves.
const UNASSIGNED: u16 = u16::MAX;

/// What a node does in its shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

impl Role {
    /// The name INFO shows.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "slave",
        }
    }
}

/// One backend node as seen in a snapshot.
#[derive(Debug, Clone)]
pub struct Node {
    /// `ip:port` exactly as the cluster announces it; the key of backend connections.
    pub addr: Arc<str>,
    /// The cluster node id (40 hex chars), empty when unknown.
    pub id: String,
    pub role: Role,
    /// Index of the shard this node belongs to.
    pub shard: u16,
    /// Datacenter name, when the config places the node.
    pub dc: Option<Arc<str>>,
    /// Listed in the configured seeds (a "static" node, as opposed to a discovered one).
    pub is_static: bool,
}

/// A master and its replicas.
#[derive(Debug, Clone)]
pub struct Shard {
    pub master: NodeId,
    pub replicas: Vec<NodeId>,
    /// Inclusive slot ranges served by this shard.
    pub slots: Vec<(u16, u16)>,
}

/// An immutable snapshot of the cluster map.
#[derive(Debug, Clone)]
pub struct Topology {
    pub nodes: Vec<Node>,
    pub shards: Vec<Shard>,
    slot_shard: Box<[u16]>,
}

impl Default for Topology {
    fn default() -> Self {
        Topology::empty()
    }
}

impl Topology {
    /// A map with no nodes: every slot unassigned.
    pub fn empty() -> Topology {
        Topology {
            nodes: Vec::new(),
            shards: Vec::new(),
            slot_shard: vec![UNASSIGNED; SLOT_COUNT].into_boxed_slice(),
        }
    }

    /// Builds a snapshot from shards given as (master, replicas, slot ranges) addresses.
    pub fn from_shards(shards: Vec<ShardSpec>) -> Topology {
        let mut topo = Topology::empty();
        for spec in shards {
            let shard_idx = topo.shards.len() as u16;
            let master = topo.push_node(&spec.master, Role::Master, shard_idx);
            let replicas = spec
                .replicas
                .iter()
                .map(|r| topo.push_node(r, Role::Replica, shard_idx))
                .collect();
            for &(lo, hi) in &spec.slots {
                for s in lo..=hi.min(SLOT_COUNT as u16 - 1) {
                    topo.slot_shard[s as usize] = shard_idx;
                }
            }
            topo.shards.push(Shard {
                master,
                replicas,
                slots: spec.slots,
            });
        }
        topo
    }

    fn push_node(&mut self, n: &NodeSpec, role: Role, shard: u16) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.nodes.push(Node {
            addr: Arc::from(n.addr.as_str()),
            id: n.id.clone(),
            role,
            shard,
            dc: None,
            is_static: false,
        });
        id
    }

    /// The shard serving `slot`, if any.
    pub fn shard_of(&self, slot: Slot) -> Option<&Shard> {
        let idx = self.slot_shard[slot.index()];
        self.shards.get(idx as usize)
    }

    /// Index into `shards` of the shard serving `slot`.
    pub fn shard_index(&self, slot: Slot) -> Option<usize> {
        let idx = self.slot_shard[slot.index()] as usize;
        (idx < self.shards.len()).then_some(idx)
    }

    /// The master node serving `slot`, if any.
    pub fn master_of(&self, slot: Slot) -> Option<NodeId> {
        self.shard_of(slot).map(|s| s.master)
    }

    /// The node with this address.
    pub fn node_by_addr(&self, addr: &str) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| &*n.addr == addr)
            .map(|i| i as NodeId)
    }

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    /// Master node ids, one per shard.
    pub fn masters(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.shards.iter().map(|s| s.master)
    }

    /// Number of slots some shard serves.
    pub fn covered_slots(&self) -> usize {
        self.slot_shard.iter().filter(|&&s| s != UNASSIGNED).count()
    }

    /// A copy in which `slot` is served by the master at `addr` (a MOVED reply). When no shard
    /// has that master yet, a new shard is added for it.
    pub fn with_moved(&self, slot: Slot, addr: &str) -> Topology {
        let mut next = self.clone();
        let shard_idx = match next
            .shards
            .iter()
            .position(|s| &*next.nodes[s.master as usize].addr == addr)
        {
            Some(i) => i as u16,
            None => {
                let shard_idx = next.shards.len() as u16;
                let master = next.push_node(
                    &NodeSpec {
                        addr: addr.to_string(),
                        id: String::new(),
                    },
                    Role::Master,
                    shard_idx,
                );
                next.shards.push(Shard {
                    master,
                    replicas: Vec::new(),
                    slots: Vec::new(),
                });
                shard_idx
            }
        };
        next.slot_shard[slot.index()] = shard_idx;
        next
    }

    /// Places every node in a DC and marks static nodes, using the given lookups.
    pub fn annotate(
        &mut self,
        dc_of: impl Fn(&str) -> Option<Arc<str>>,
        is_static: impl Fn(&str) -> bool,
    ) {
        for n in &mut self.nodes {
            n.dc = dc_of(&n.addr);
            n.is_static = is_static(&n.addr);
        }
    }

    /// True when both snapshots route every slot to the same addresses with the same replicas.
    pub fn same_routes(&self, other: &Topology) -> bool {
        if self.nodes.len() != other.nodes.len() {
            return false;
        }
        let same_nodes = self.nodes.iter().zip(&other.nodes).all(|(a, b)| {
            // The DC and seed flag steer reads too: a reload of the DC map (or a DC host
            // name that resolves elsewhere now) must reach the workers.
            a.addr == b.addr
                && a.role == b.role
                && a.shard == b.shard
                && a.dc == b.dc
                && a.is_static == b.is_static
        });
        same_nodes && self.slot_shard == other.slot_shard
    }
}

/// A node address and id, input to [`Topology::from_shards`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub addr: String,
    pub id: String,
}

/// One shard, input to [`Topology::from_shards`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSpec {
    pub master: NodeSpec,
    pub replicas: Vec<NodeSpec>,
    pub slots: Vec<(u16, u16)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(master: &str, replicas: &[&str], slots: &[(u16, u16)]) -> ShardSpec {
        ShardSpec {
            master: NodeSpec {
                addr: master.into(),
                id: String::new(),
            },
            replicas: replicas
                .iter()
                .map(|r| NodeSpec {
                    addr: (*r).into(),
                    id: String::new(),
                })
                .collect(),
            slots: slots.to_vec(),
        }
    }

    fn slot(n: u16) -> Slot {
        Slot::new(n).unwrap()
    }

    #[test]
    fn slots_map_to_their_master() {
        let t = Topology::from_shards(vec![
            spec("a:1", &["b:1"], &[(0, 8191)]),
            spec("c:1", &[], &[(8192, 16383)]),
        ]);
        assert_eq!(&*t.node(t.master_of(slot(0)).unwrap()).addr, "a:1");
        assert_eq!(&*t.node(t.master_of(slot(16383)).unwrap()).addr, "c:1");
        assert_eq!(t.shard_of(slot(5)).unwrap().replicas.len(), 1);
        assert_eq!(t.covered_slots(), 16384);
    }

    #[test]
    fn moved_updates_one_slot_and_adds_unknown_master() {
        let t = Topology::from_shards(vec![spec("a:1", &[], &[(0, 16383)])]);
        let t2 = t.with_moved(slot(7), "z:9");
        assert_eq!(&*t2.node(t2.master_of(slot(7)).unwrap()).addr, "z:9");
        assert_eq!(&*t2.node(t2.master_of(slot(8)).unwrap()).addr, "a:1");
        assert!(!t.same_routes(&t2));
        let t3 = t2.with_moved(slot(8), "z:9");
        assert_eq!(t3.shards.len(), 2, "known master reused");
    }

    #[test]
    fn unassigned_slots_have_no_master() {
        let t = Topology::from_shards(vec![spec("a:1", &[], &[(0, 99)])]);
        assert!(t.master_of(slot(100)).is_none());
        assert_eq!(t.covered_slots(), 100);
    }
}
