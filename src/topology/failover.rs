//! Failovers seen between two cluster maps: a slot range whose master is another node now,
//! while the old master is no master any more (a slot migrated between two live masters is a
//! resharding, not a failover). Pure; the refresher records what it returns as events.

use std::sync::Arc;

use super::Topology;
use crate::slot::Slot;

/// A slot range that changed master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterChange {
    /// First slot of the range in the new map.
    pub slot: u16,
    pub from: Arc<str>,
    pub to: Arc<str>,
    /// The new master was a replica of the same shard in the old map (a promotion).
    pub promoted: bool,
}

/// Every slot range of `new` whose master differs from the one `old` had for it. An empty
/// `old` (the first map) reports nothing.
pub fn master_changes(old: &Topology, new: &Topology) -> Vec<MasterChange> {
    let mut out = Vec::new();
    for shard in &new.shards {
        let to = &new.node(shard.master).addr;
        for &(lo, _) in &shard.slots {
            let Some(slot) = Slot::new(lo) else { continue };
            let Some(old_master) = old.master_of(slot) else {
                continue;
            };
            let old_node = old.node(old_master);
            let still_master = new
                .node_by_addr(&old_node.addr)
                .is_some_and(|id| new.node(id).role == super::Role::Master);
            if old_node.addr == *to || still_master {
                continue;
            }
            let promoted = old.node_by_addr(to).is_some_and(|id| {
                let n = old.node(id);
                n.shard == old_node.shard && n.role == super::Role::Replica
            });
            out.push(MasterChange {
                slot: lo,
                from: old_node.addr.clone(),
                to: to.clone(),
                promoted,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NodeSpec, ShardSpec};

    fn spec(addr: &str) -> NodeSpec {
        NodeSpec {
            addr: addr.into(),
            id: String::new(),
        }
    }

    fn map(shards: &[(&str, &[&str], (u16, u16))]) -> Topology {
        Topology::from_shards(
            shards
                .iter()
                .map(|(m, r, range)| ShardSpec {
                    master: spec(m),
                    replicas: r.iter().map(|a| spec(a)).collect(),
                    slots: vec![*range],
                })
                .collect(),
        )
    }

    #[test]
    fn a_promoted_replica_is_a_failover() {
        let old = map(&[("a:1", &["b:1"], (0, 8191)), ("c:1", &[], (8192, 16383))]);
        let new = map(&[("b:1", &["a:1"], (0, 8191)), ("c:1", &[], (8192, 16383))]);
        let got = master_changes(&old, &new);
        assert_eq!(
            got,
            [MasterChange {
                slot: 0,
                from: "a:1".into(),
                to: "b:1".into(),
                promoted: true
            }]
        );
        assert!(master_changes(&new, &new).is_empty());
        // A slot range migrated from a master that stays one: a resharding.
        let resharded = map(&[("a:1", &["b:1"], (0, 99)), ("c:1", &[], (100, 16383))]);
        assert!(master_changes(&old, &resharded).is_empty());
        // A master that left the map, its slots now on another shard's node.
        let taken = map(&[("c:1", &[], (0, 16383))]);
        let got = master_changes(&old, &taken);
        assert_eq!(got.len(), 1);
        assert!(!got[0].promoted && &*got[0].from == "a:1");
        assert!(master_changes(&Topology::empty(), &new).is_empty());
    }
}
