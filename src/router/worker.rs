//! A worker as the router sees it: one thread's shared connections ([`Registry`]) and routing
//! view ([`Routes`]), its clock and statistics; and what it does with the redirections its
//! connections report. Nothing here is shared with other workers except through snapshots.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::time::Instant;

use super::class::ClassCache;
use crate::backend::env::{Env, Failed, Redirected};
use crate::backend::registry::Registry;
use crate::backend::{Backend, Pending, Timing};
use crate::clock::Tick;
use crate::command::LastCommand;
use crate::events::{EventKind, MOVED_STORM_THRESHOLD, MovedStorm};
use crate::policy::Access;
use crate::route::{RouteError, Routes};
use crate::shared::Shared;
use crate::slot::Slot;
use crate::stats::WorkerStats;
use crate::topology::{NodeId, Topology};

const STOPPING: &str = "ERR meridian: the worker is stopping";

/// The routing view and the connections it picks from, borrowed together once per request.
struct Paths {
    routes: Routes,
    backends: Registry,
}

impl Paths {
    /// Both halves follow the published topology.
    fn sync(&mut self, shared: &Shared) {
        let version = self.routes.sync(shared);
        // Borrowed, not cloned: this runs on every request (one Arc count change each way).
        self.backends.sync(self.routes.topology(), version);
    }
}

/// Per-thread state of a worker.
pub struct Worker {
    pub id: usize,
    /// Classes of the commands seen, by metric id.
    pub classes: ClassCache,
    /// The last command name looked up.
    pub last_command: LastCommand,
    pub shared: Arc<Shared>,
    pub stats: Arc<WorkerStats>,
    /// What the worker's backend connections are made with (clock included).
    pub env: Rc<Env>,
    paths: RefCell<Paths>,
    /// MOVED replies this worker saw lately (a storm is recorded as an event).
    moved: RefCell<MovedStorm>,
}

impl Worker {
    pub fn new(id: usize, shared: Arc<Shared>) -> Rc<Worker> {
        let stats = shared.stats.add_worker();
        let env = Env::new(shared.clone(), stats.clone());
        let worker = Rc::new(Worker {
            id,
            classes: ClassCache::default(),
            last_command: LastCommand::default(),
            paths: RefCell::new(Paths {
                routes: Routes::new(&shared),
                backends: Registry::new(env.clone()),
            }),
            env,
            stats,
            shared,
            moved: RefCell::new(MovedStorm::new()),
        });
        // The connections report redirections and reads to retry here; weak links, as the
        // worker owns the connections.
        let weak: Weak<Worker> = Rc::downgrade(&worker);
        worker
            .env
            .set_redirect_handler(Rc::new(move |report| match weak.upgrade() {
                Some(w) => w.redirected(report),
                None => report.pending.sink.fail(STOPPING),
            }));
        let weak: Weak<Worker> = Rc::downgrade(&worker);
        worker
            .env
            .set_failure_handler(Rc::new(move |report| match weak.upgrade() {
                Some(w) => w.retry_read(report),
                None => report.pending.sink.fail(STOPPING),
            }));
        worker
    }

    /// What the node's latency monitors count of a request of command `id` read at `at`;
    /// `None` when it counts in no monitor. Matched by name once per id, then one index.
    pub fn latency_timing(&self, id: u16, at: Tick) -> Option<Timing> {
        let monitors = &self.env.latency;
        let mask = monitors.mask(id, &self.shared.command_names);
        (mask != 0).then(|| Timing {
            mask,
            generation: monitors.generation(),
            at,
        })
    }

    /// Counts a reply of `us` µs to a request of command `id` in the latency monitors'
    /// overall histograms.
    #[inline]
    pub fn count_latency(&self, id: u16, us: u64) {
        self.env
            .latency
            .count_overall(id, us, &self.shared.command_names);
    }

    /// Whether any latency monitor is in force (requests are timed).
    #[inline]
    pub fn latency_monitored(&self) -> bool {
        self.env.latency.active()
    }

    /// Takes what config `version` changed for the worker as a whole (between batches; one
    /// comparison when it is the version last seen): a new latency monitor set gets fresh
    /// cells, published for INFO, and the command masks are learnt again.
    pub fn follow_config(&self, version: u64) {
        let stats = &self.stats;
        self.env.latency.follow(
            version,
            || self.shared.stats.latency_set(),
            |cells| stats.latency.store(cells),
        );
    }

    /// Reads the clock and remembers it as the time of the current step.
    pub fn tick(&self) -> Instant {
        self.env.clock.tick()
    }

    /// The time of the current step.
    pub fn now(&self) -> Instant {
        self.env.clock.now()
    }

    /// The backend that serves `slot` for this kind of access.
    pub fn backend_for_slot(
        &self,
        slot: Slot,
        access: Access,
        proto: u8,
    ) -> Result<Rc<Backend>, RouteError> {
        let mut paths = self.paths.borrow_mut();
        paths.sync(&self.shared);
        let Paths { routes, backends } = &mut *paths;
        let node = routes.pick(slot, access, proto, self.now(), backends, None)?;
        self.count_read(access, routes, node);
        if let Some(be) = backends.existing(node, proto) {
            return Ok(be.clone());
        }
        Ok(backends.for_node(routes.topology(), node, proto))
    }

    /// The address of the node that serves `slot` for this kind of access (for a connection
    /// of the client's own: subscriptions, transactions).
    pub fn addr_for_slot(&self, slot: Slot, access: Access) -> Result<Arc<str>, RouteError> {
        self.pick_addr(slot, access, false)
    }

    /// Like [`Worker::addr_for_slot`], for a request about to be sent there: a read counts
    /// in the reads per DC.
    pub fn addr_for_request(&self, slot: Slot, access: Access) -> Result<Arc<str>, RouteError> {
        self.pick_addr(slot, access, true)
    }

    fn pick_addr(&self, slot: Slot, access: Access, count: bool) -> Result<Arc<str>, RouteError> {
        let mut paths = self.paths.borrow_mut();
        paths.sync(&self.shared);
        let Paths { routes, backends } = &mut *paths;
        let node = routes.pick(slot, access, 2, self.now(), backends, None)?;
        if count {
            self.count_read(access, routes, node);
        }
        Ok(routes.topology().node(node).addr.clone())
    }

    /// Counts a read sent to `node` under its DC, when request metrics are kept.
    #[inline]
    fn count_read(&self, access: Access, routes: &Routes, node: NodeId) {
        if access == Access::Read
            && let Some(m) = &self.stats.metrics
        {
            m.count_read(routes.dc_index(node));
        }
    }

    /// The shared backend of a node of the current snapshot.
    pub fn backend_for_node_id(&self, node: NodeId, proto: u8) -> Option<Rc<Backend>> {
        let mut paths = self.paths.borrow_mut();
        paths.sync(&self.shared);
        let Paths { routes, backends } = &mut *paths;
        let topo = routes.topology();
        ((node as usize) < topo.nodes.len()).then(|| backends.for_node(topo, node, proto))
    }

    /// The shared backend for an address (a node of the map or one a redirection named).
    pub fn backend_for_addr(&self, addr: &Arc<str>, proto: u8) -> Rc<Backend> {
        let mut paths = self.paths.borrow_mut();
        paths.sync(&self.shared);
        paths.backends.for_addr(addr, proto)
    }

    /// The current topology snapshot.
    pub fn topology(&self) -> Arc<Topology> {
        let mut paths = self.paths.borrow_mut();
        paths.sync(&self.shared);
        paths.routes.topology().clone()
    }

    /// Every shared backend this worker has, for INFO.
    pub fn backends(&self) -> Vec<Rc<Backend>> {
        self.paths.borrow().backends.all()
    }

    /// Resends a redirected request: MOVED updates the map at once (and asks for a full
    /// refresh), ASK sends `ASKING` first and leaves the map alone.
    fn redirected(&self, report: Redirected) {
        self.stats.redirects.add(1);
        let Redirected {
            slot,
            addr,
            ask,
            proto,
            pending: p,
        } = report;
        if !ask && let Some(slot) = Slot::new(slot) {
            if self.moved.borrow_mut().on_moved(self.now()) {
                let message = format!(
                    "{MOVED_STORM_THRESHOLD} MOVED replies within {:?} on worker {} (last: slot {} to {addr})",
                    MovedStorm::WINDOW,
                    self.id,
                    slot.get()
                );
                self.shared.events.record(
                    EventKind::MovedStorm,
                    Some(&addr),
                    None,
                    Some(slot.get()),
                    message,
                );
            }
            self.shared.topology.update(|t| {
                let current = t.master_of(slot).map(|m| t.node(m).addr.clone());
                (current.as_deref() != Some(&*addr)).then(|| t.with_moved(slot, &addr))
            });
            self.shared.request_refresh();
        }
        let Some(request) = p.request.clone() else {
            return;
        };
        let be = match &p.pool {
            Some(pool) => pool.get(&self.env, &addr, proto),
            None => self.backend_for_addr(&addr, proto),
        };
        let p: Pending = p;
        let mut next = p;
        next.redirects += 1;
        if ask {
            be.send_asking(&request, next);
        } else {
            be.send(&request, next);
        }
    }

    /// Resends, once, a read whose connection was lost after it was sent: on another candidate
    /// of the read policy when there is one, else on a new connection to the same node.
    fn retry_read(&self, report: Failed) {
        let Failed {
            pending: mut p,
            from,
            proto,
        } = report;
        let (Some(slot), Some(request)) = (p.read_slot, p.request.clone()) else {
            return p
                .sink
                .fail(&format!("ERR meridian: connection to {from} lost"));
        };
        p.retried = true;
        self.stats.read_retries.add(1);
        let picked = {
            let mut paths = self.paths.borrow_mut();
            paths.sync(&self.shared);
            let Paths { routes, backends } = &mut *paths;
            routes
                .pick(slot, Access::Read, proto, self.now(), backends, Some(&from))
                .map(|node| {
                    self.count_read(Access::Read, routes, node);
                    backends.for_node(routes.topology(), node, proto)
                })
        };
        match picked {
            Ok(be) => be.send(&request, p),
            Err(e) => p.sink.fail(&e.to_string()),
        }
    }
}
