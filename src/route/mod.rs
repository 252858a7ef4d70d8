//! Slot + access → node, for one worker: the candidates of each shard refreshed with live
//! health and connection state, then the one decision of [`policy::choose`], then the breaker
//! gate (a HalfOpen node lets exactly one probe through).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::backend::registry::Registry;
use crate::health::table::NodeHealth;
use crate::policy::{self, Access, Candidate, Choice, PolicyParams, WriteRefusal};
use crate::shared::Shared;
use crate::slot::Slot;
use crate::snapshot::Cached;
use crate::topology::{NodeId, Topology};

/// Why a request has no backend to go to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "CLUSTERDOWN meridian: no cluster node serves slot {0} (cluster map not loaded or slot unassigned)"
    )]
    NoNode(u16),
    /// The slot's master has an open breaker (message preformatted).
    #[error("{0}")]
    CircuitOpen(String),
}

/// One worker's view for routing: the topology snapshot it follows and, per node and shard,
/// what the decision needs.
pub struct Routes {
    topo: Cached<Topology>,
    /// Topology version the tables below were built for.
    version: u64,
    /// Health of the current snapshot's nodes.
    health: Vec<Arc<NodeHealth>>,
    /// DC index of each node of the snapshot, as the metrics count reads.
    node_dc: Vec<usize>,
    /// Per shard: candidates (master first), refreshed per request with live health.
    cands: Vec<Vec<Candidate>>,
    /// The DC-aware read policy, when `local_dc` is set.
    policy: Option<PolicyParams>,
    /// How old a measured RTT may be and still count as fresh.
    fresh_for: Duration,
    /// Config version `policy` and `fresh_for` were built from.
    config_version: u64,
}

impl Routes {
    pub fn new(shared: &Shared) -> Routes {
        let mut routes = Routes {
            topo: Cached::new(&shared.topology),
            version: 0,
            health: Vec::new(),
            node_dc: Vec::new(),
            cands: Vec::new(),
            policy: None,
            fresh_for: Duration::ZERO,
            config_version: 0,
        };
        routes.follow_config(shared);
        routes
    }

    /// Takes the read policy from the config in force (at start and after a reload).
    fn follow_config(&mut self, shared: &Shared) {
        self.config_version = shared.config_version();
        let config = shared.config();
        self.policy = config
            .local_dc
            .is_some()
            .then(|| PolicyParams::from_config(&config));
        self.fresh_for = config.health.probe_interval * 3;
    }

    /// Follows the published topology and config; returns the topology's version.
    pub fn sync(&mut self, shared: &Shared) -> u64 {
        // One load per request: a reload is seen by the next request of every worker.
        if shared.config_version() != self.config_version {
            self.follow_config(shared);
        }
        let version = shared.topology.version();
        if self.version == version {
            return version;
        }
        let topo = self.topo.get(&shared.topology).clone();
        self.version = version;
        self.health = topo
            .nodes
            .iter()
            .map(|n| shared.health.node(&n.addr))
            .collect();
        self.node_dc = topo
            .nodes
            .iter()
            .map(|n| shared.dc_index(n.dc.as_deref()))
            .collect();
        self.cands = topo
            .shards
            .iter()
            .map(|s| {
                std::iter::once(s.master)
                    .chain(s.replicas.iter().copied())
                    .map(|id| Candidate::new(id, topo.node(id)))
                    .collect()
            })
            .collect();
        version
    }

    /// The DC index of `node` (see [`Shared::dc_index`]).
    #[inline]
    pub fn dc_index(&self, node: NodeId) -> usize {
        self.node_dc
            .get(usize::from(node))
            .copied()
            .unwrap_or(usize::MAX)
    }

    /// The snapshot last synced.
    pub fn topology(&self) -> &Arc<Topology> {
        self.topo.stale()
    }

    /// The node for `slot`: writes to the master unless its breaker is open; reads by the
    /// read policy when one is configured, else the master. `backends` supplies each
    /// candidate's outstanding requests and measured RTT. `avoid` (the address of a node whose
    /// connection just failed) is left out of a policy read's candidates when others remain.
    pub fn pick(
        &mut self,
        slot: Slot,
        access: Access,
        proto: u8,
        now: Instant,
        backends: &Registry,
        avoid: Option<&str>,
    ) -> Result<NodeId, RouteError> {
        let Routes {
            topo,
            health,
            cands,
            policy,
            fresh_for,
            ..
        } = self;
        let topo = topo.stale();
        let shard = topo
            .shard_index(slot)
            .ok_or(RouteError::NoNode(slot.get()))?;
        let params = policy.as_ref().filter(|_| access == Access::Read);
        let master = topo.shards[shard].master;
        // Writes, and reads without a read policy, to a master whose breaker is closed (nearly
        // every request): the master, without refreshing candidates or asking the policy,
        // which would pick it all the same.
        if params.is_none() && health[usize::from(master)].is_closed() {
            return Ok(master);
        }
        let list = &mut cands[shard];
        // Writes (and reads without a policy) look at the master only.
        let refresh = if params.is_some() { list.len() } else { 1 };
        for c in list.iter_mut().take(refresh) {
            let h = &health[c.node as usize];
            c.breaker = h.state(now);
            c.retry_at = h.retry_at();
            if params.is_none() {
                continue;
            }
            c.loading = h.loading.load(Ordering::Relaxed);
            c.link_up = h.link_up.load(Ordering::Relaxed);
            c.lag_bytes = h.lag_bytes.load(Ordering::Relaxed);
            let be = backends.existing(c.node, proto);
            c.outstanding = be.map_or(0, |b| b.pending_len() as u32);
            let measured = be
                .and_then(|b| b.rtt(now, *fresh_for))
                .or_else(|| h.probe_rtt(now, *fresh_for));
            (c.rtt_ms, c.rtt_fresh) = match measured {
                Some((ms, fresh)) => (Some(ms), fresh),
                None => (None, false),
            };
        }
        let refused = |retry_in: Duration| {
            RouteError::CircuitOpen(
                WriteRefusal { retry_in }.client_message(&topo.node(master).addr, slot),
            )
        };
        let others: Vec<Candidate>;
        let list: &[Candidate] = match (avoid, params) {
            (Some(addr), Some(_)) => {
                others = list
                    .iter()
                    .filter(|c| *topo.node(c.node).addr != *addr)
                    .cloned()
                    .collect();
                if others.is_empty() { list } else { &others }
            }
            _ => list,
        };
        match policy::choose(params, access, list, now, &mut rand::rng()) {
            Err(refusal) => Err(refused(refusal.retry_in)),
            Ok(Choice::Node(n) | Choice::Fallback(n)) => {
                let h = &health[n as usize];
                // The gate: a HalfOpen node gets its one probe. A read may still go to an Open
                // node the policy chose as the last resort; a write may not.
                if !h.is_closed() && !h.allow(now) && params.is_none() {
                    return Err(refused(h.retry_in(now).unwrap_or_default()));
                }
                Ok(n)
            }
            Ok(Choice::None) => Ok(master),
        }
    }
}
