//! A worker's shared backend connections: one per (node address, protocol), found by address
//! or by node id of the current topology snapshot; the connections of nodes that left the
//! cluster are retired.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use tracing::debug;

use crate::topology::{NodeId, Role, Topology};

use super::Backend;
use super::env::Env;

fn proto_index(proto: u8) -> usize {
    usize::from(proto == 3)
}

/// The shared connections of one worker.
pub struct Registry {
    env: Rc<Env>,
    /// Topology version `by_node` was built for.
    version: u64,
    /// Backends of the current snapshot's nodes, per protocol (index 0: RESP2, 1: RESP3).
    by_node: Vec<[Option<Rc<Backend>>; 2]>,
    /// Every live backend by (address, protocol).
    by_addr: HashMap<(Arc<str>, u8), Rc<Backend>>,
}

impl Registry {
    pub fn new(env: Rc<Env>) -> Registry {
        Registry {
            env,
            version: 0,
            by_node: Vec::new(),
            by_addr: HashMap::new(),
        }
    }

    /// The environment the connections were made with.
    pub fn env(&self) -> &Rc<Env> {
        &self.env
    }

    /// Follows topology snapshot `version`: the per-node table is rebuilt and the connections
    /// of nodes that left the cluster finish what they have pending, then close.
    pub fn sync(&mut self, topo: &Topology, version: u64) {
        if self.version == version {
            return;
        }
        self.version = version;
        self.by_node = vec![[None, None]; topo.nodes.len()];
        let before = self.by_addr.len();
        self.by_addr.retain(|(addr, _), be| {
            let keep = topo.node_by_addr(addr).is_some();
            if !keep {
                be.retire();
            }
            keep
        });
        if self.by_addr.len() != before {
            debug!("retired backends of nodes that left the cluster");
            self.env
                .stats
                .retain_nodes(|a| topo.node_by_addr(a).is_some());
        }
    }

    /// The connection to node `node` of `topo` (the snapshot last synced), if one was made.
    pub fn existing(&self, node: NodeId, proto: u8) -> Option<&Rc<Backend>> {
        self.by_node.get(node as usize)?[proto_index(proto)].as_ref()
    }

    /// The connection to node `node` of `topo`, made on first use; replicas get READONLY.
    pub fn for_node(&mut self, topo: &Topology, node: NodeId, proto: u8) -> Rc<Backend> {
        let pi = proto_index(proto);
        if let Some(be) = &self.by_node[node as usize][pi] {
            return be.clone();
        }
        let addr = topo.node(node).addr.clone();
        let be = self.for_addr(&addr, proto);
        if topo.node(node).role == Role::Replica {
            be.set_readonly();
        }
        self.by_node[node as usize][pi] = Some(be.clone());
        be
    }

    /// The shared connection to `addr` (a node of the map or one a redirection named).
    pub fn for_addr(&mut self, addr: &Arc<str>, proto: u8) -> Rc<Backend> {
        let env = &self.env;
        self.by_addr
            .entry((addr.clone(), proto))
            .or_insert_with(|| {
                let timeout = Some(env.shared.config().breaker.server_timeout);
                Backend::new(env, addr.clone(), proto, timeout)
            })
            .clone()
    }

    /// Every connection, for INFO.
    pub fn all(&self) -> Vec<Rc<Backend>> {
        self.by_addr.values().cloned().collect()
    }
}
