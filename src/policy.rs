//! Node selection: (snapshot, slot, access) → node. Pure, so the DC-aware read policy can
//! replace it without touching the data path.

use crate::slot::Slot;
use crate::topology::{NodeId, Topology};

/// What a request does to its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The node a request for `slot` goes to. Reads and writes both go to the slot's master
/// until the read policy engine chooses among replicas.
pub fn select(topo: &Topology, slot: Slot, access: Access) -> Option<NodeId> {
    match access {
        Access::Read | Access::Write => topo.master_of(slot),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodeSpec, ShardSpec};

    #[test]
    fn both_accesses_use_the_master() {
        let topo = Topology::from_shards(vec![ShardSpec {
            master: NodeSpec {
                addr: "m:1".into(),
                id: String::new(),
            },
            replicas: vec![NodeSpec {
                addr: "r:1".into(),
                id: String::new(),
            }],
            slots: vec![(0, 16383)],
        }]);
        let s = Slot::new(42).unwrap();
        for access in [Access::Read, Access::Write] {
            assert_eq!(&*topo.node(select(&topo, s, access).unwrap()).addr, "m:1");
        }
    }
}
