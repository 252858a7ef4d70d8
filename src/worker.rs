//! A worker: one thread, one single-threaded runtime, its own clients and its own backend
//! connections. Nothing here is shared with other workers except through snapshots.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::debug;

use crate::backend::Backend;
use crate::backend::pending::Pending;
use crate::health::table::NodeHealth;
use crate::policy::{self, Access, Candidate, Choice, PolicyParams, WriteRefusal};
use crate::resp::reply::Redirect;
use crate::shared::Shared;
use crate::slot::Slot;
use crate::snapshot::Cached;
use crate::stats::WorkerStats;
use crate::topology::{NodeId, Role, Topology};

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

struct Routes {
    topo: Cached<Topology>,
    /// Topology version `by_node` was built for.
    version: u64,
    /// Backends of the current snapshot's nodes, per protocol (index 0: RESP2, 1: RESP3).
    by_node: Vec<[Option<Rc<Backend>>; 2]>,
    /// Every live backend by (address, protocol).
    by_addr: HashMap<(Arc<str>, u8), Rc<Backend>>,
    /// Health of the current snapshot's nodes.
    health: Vec<Arc<NodeHealth>>,
    /// Per shard: read candidates (master first), refreshed per read with live health.
    cands: Vec<Vec<Candidate>>,
    /// The DC-aware read policy, when `local_dc` is set.
    policy: Option<PolicyParams>,
    /// How old a measured RTT may be and still count as fresh.
    fresh_for: Duration,
}

/// Per-thread state of a worker.
pub struct Worker {
    pub id: usize,
    /// The time as of the current event-loop step: read once per batch of work and shared by
    /// everything done in it (clock reads were ~8% of the CPU when taken per request).
    clock: std::cell::Cell<Instant>,
    pub shared: Arc<Shared>,
    pub stats: Arc<WorkerStats>,
    routes: RefCell<Routes>,
}

fn proto_index(proto: u8) -> usize {
    usize::from(proto == 3)
}

impl Worker {
    pub fn new(id: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let stats = shared.stats.add_worker();
        let topo = Cached::new(&shared.topology);
        Rc::new(Worker {
            id,
            clock: std::cell::Cell::new(Instant::now()),
            stats,
            routes: RefCell::new(Routes {
                topo,
                version: 0,
                by_node: Vec::new(),
                by_addr: HashMap::new(),
                health: Vec::new(),
                cands: Vec::new(),
                policy: shared
                    .config
                    .local_dc
                    .is_some()
                    .then(|| PolicyParams::from_config(&shared.config)),
                fresh_for: shared.config.health.probe_interval * 3,
            }),
            shared,
        })
    }

    /// Reads the clock and remembers it as the time of the current step.
    pub fn tick(&self) -> Instant {
        let now = Instant::now();
        self.clock.set(now);
        now
    }

    /// The time of the current step (see [`Worker::tick`]).
    pub fn now(&self) -> Instant {
        self.clock.get()
    }

    /// The backend that serves `slot` for this kind of access.
    pub fn backend_for_slot(
        self: &Rc<Self>,
        slot: Slot,
        access: Access,
        proto: u8,
    ) -> Result<Rc<Backend>, RouteError> {
        let mut routes = self.routes.borrow_mut();
        self.sync_routes(&mut routes);
        let node = Self::pick(&mut routes, slot, access, proto, self.now())?;
        if let Some(be) = &routes.by_node[node as usize][proto_index(proto)] {
            return Ok(be.clone());
        }
        let topo = routes.topo.stale().clone();
        Ok(self.backend_for_node(&mut routes, &topo, node, proto))
    }

    /// The address of the node that serves `slot` for this kind of access.
    pub fn addr_for_slot(&self, slot: Slot, access: Access) -> Result<Arc<str>, RouteError> {
        let mut routes = self.routes.borrow_mut();
        self.sync_routes(&mut routes);
        let node = Self::pick(&mut routes, slot, access, 2, self.now())?;
        Ok(routes.topo.stale().node(node).addr.clone())
    }

    /// The node for `slot`: writes to the master unless its breaker is open; reads by the
    /// read policy when one is configured, else the master.
    fn pick(
        routes: &mut Routes,
        slot: Slot,
        access: Access,
        proto: u8,
        now: Instant,
    ) -> Result<NodeId, RouteError> {
        let Routes {
            topo,
            health,
            cands,
            policy,
            by_node,
            fresh_for,
            ..
        } = routes;
        let topo = topo.stale();
        let shard = topo
            .shard_index(slot)
            .ok_or(RouteError::NoNode(slot.get()))?;
        let master = topo.shards[shard].master;
        let read_policy = match (access, policy.as_ref()) {
            (Access::Read, Some(params)) => params,
            _ => {
                let h = &health[master as usize];
                if !h.is_closed() && !h.allow(now) {
                    let refusal = WriteRefusal {
                        retry_in: h.retry_in(now).unwrap_or_default(),
                    };
                    return Err(RouteError::CircuitOpen(
                        refusal.client_message(&topo.node(master).addr, slot),
                    ));
                }
                return Ok(master);
            }
        };
        let pi = proto_index(proto);
        let list = &mut cands[shard];
        for c in list.iter_mut() {
            let h = &health[c.node as usize];
            c.breaker = h.state(now);
            c.retry_at = h.retry_at();
            c.loading = h.loading.load(Ordering::Relaxed);
            c.link_up = h.link_up.load(Ordering::Relaxed);
            c.lag_bytes = h.lag_bytes.load(Ordering::Relaxed);
            let be = by_node[c.node as usize][pi].as_ref();
            c.outstanding = be.map_or(0, |b| b.pending_len() as u32);
            let measured = be
                .and_then(|b| b.rtt(now, *fresh_for))
                .or_else(|| h.probe_rtt(now, *fresh_for));
            (c.rtt_ms, c.rtt_fresh) = match measured {
                Some((ms, fresh)) => (Some(ms), fresh),
                None => (None, false),
            };
        }
        match policy::choose_read(read_policy, list, now, &mut rand::rng()) {
            Choice::Node(n) | Choice::Fallback(n) => {
                let h = &health[n as usize];
                if !h.is_closed() {
                    // A HalfOpen node gets its one probe; an Open one is tried only as the
                    // last resort the policy chose.
                    let _ = h.allow(now);
                }
                Ok(n)
            }
            Choice::None => Ok(master),
        }
    }

    /// The backend of a node of the current snapshot.
    pub fn backend_for_node_id(self: &Rc<Self>, node: NodeId, proto: u8) -> Option<Rc<Backend>> {
        let mut routes = self.routes.borrow_mut();
        self.sync_routes(&mut routes);
        let topo = routes.topo.stale().clone();
        ((node as usize) < topo.nodes.len())
            .then(|| self.backend_for_node(&mut routes, &topo, node, proto))
    }

    /// The shared backend for an address (a node of the map or one a redirection named).
    pub fn backend_for_addr(&self, addr: &Arc<str>, proto: u8) -> Rc<Backend> {
        let mut routes = self.routes.borrow_mut();
        self.sync_routes(&mut routes);
        self.backend_by_addr(&mut routes, addr, proto)
    }

    /// The current topology snapshot.
    pub fn topology(&self) -> Arc<Topology> {
        let mut routes = self.routes.borrow_mut();
        self.sync_routes(&mut routes);
        routes.topo.stale().clone()
    }

    fn backend_for_node(
        &self,
        routes: &mut Routes,
        topo: &Topology,
        node: NodeId,
        proto: u8,
    ) -> Rc<Backend> {
        let pi = proto_index(proto);
        if let Some(be) = &routes.by_node[node as usize][pi] {
            return be.clone();
        }
        let addr = topo.node(node).addr.clone();
        let be = self.backend_by_addr(routes, &addr, proto);
        if topo.node(node).role == Role::Replica {
            be.set_readonly();
        }
        routes.by_node[node as usize][pi] = Some(be.clone());
        be
    }

    fn backend_by_addr(&self, routes: &mut Routes, addr: &Arc<str>, proto: u8) -> Rc<Backend> {
        routes
            .by_addr
            .entry((addr.clone(), proto))
            .or_insert_with(|| {
                let timeout = Some(self.shared.config.breaker.server_timeout);
                let health = self.shared.health.node(addr);
                Backend::new(addr.clone(), proto, self.stats.node(addr), health, timeout)
            })
            .clone()
    }

    /// Follows a new snapshot: per-node table rebuilt, backends of departed nodes retired.
    fn sync_routes(&self, routes: &mut Routes) {
        let version = self.shared.topology.version();
        if routes.version == version {
            return;
        }
        let topo = routes.topo.get(&self.shared.topology).clone();
        routes.version = version;
        routes.by_node = vec![[None, None]; topo.nodes.len()];
        routes.health = topo
            .nodes
            .iter()
            .map(|n| self.shared.health.node(&n.addr))
            .collect();
        routes.cands = topo
            .shards
            .iter()
            .map(|s| {
                std::iter::once(s.master)
                    .chain(s.replicas.iter().copied())
                    .map(|id| Candidate::new(id, topo.node(id)))
                    .collect()
            })
            .collect();
        let before = routes.by_addr.len();
        routes.by_addr.retain(|(addr, _), be| {
            let keep = topo.node_by_addr(addr).is_some();
            if !keep {
                be.retire();
            }
            keep
        });
        if routes.by_addr.len() != before {
            debug!(
                worker = self.id,
                "retired backends of nodes that left the cluster"
            );
            self.stats.retain_nodes(|a| topo.node_by_addr(a).is_some());
        }
    }

    /// Resends a redirected request: MOVED updates the map at once (and asks for a full
    /// refresh), ASK sends `ASKING` first and leaves the map alone.
    pub fn redirect(self: &Rc<Self>, redirect: Redirect<'_>, from: &str, proto: u8, p: Pending) {
        self.stats.redirects.add(1);
        let (slot, target, ask) = match redirect {
            Redirect::Moved { slot, addr } => (slot, addr, false),
            Redirect::Ask { slot, addr } => (slot, addr, true),
        };
        let addr: Arc<str> = if target.starts_with(':') {
            // Newer servers may omit the host they do not know: same host as the sender.
            let host = crate::dns::split_host_port(from)
                .map(|(h, _)| h)
                .unwrap_or("127.0.0.1");
            Arc::from(format!("{host}{target}"))
        } else {
            Arc::from(target)
        };
        if !ask && let Some(slot) = Slot::new(slot) {
            self.shared.topology.update(|t| {
                let current = t.master_of(slot).map(|m| t.node(m).addr.clone());
                (current.as_deref() != Some(&*addr)).then(|| t.with_moved(slot, &addr))
            });
            self.shared.request_refresh();
        }
        let be = match &p.pool {
            Some(pool) => pool.get(self, &addr, proto),
            None => {
                let mut routes = self.routes.borrow_mut();
                self.backend_by_addr(&mut routes, &addr, proto)
            }
        };
        let Some(request) = p.request.clone() else {
            return;
        };
        let next = Pending {
            sink: p.sink,
            request: Some(request.clone()),
            redirects: p.redirects + 1,
            pool: p.pool,
        };
        if ask {
            be.send_asking(self, &request, next);
        } else {
            be.send(self, &request, next);
        }
    }

    /// Every backend this worker has, for INFO.
    pub fn backends(&self) -> Vec<Rc<Backend>> {
        self.routes.borrow().by_addr.values().cloned().collect()
    }
}
