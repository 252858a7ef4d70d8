//! The latency monitors in force and each worker's histograms for them, swappable by a reload.
//!
//! A reload that changes `latency_monitors` puts a new [`MonitorSet`] in the registry (with a
//! new generation). Each worker notices it between batches ([`LocalMonitors::follow`], called
//! when the session sees a new config version), makes fresh [`MonitorCells`] for the new set
//! and publishes them in its [`super::WorkerStats`] for INFO to read. On the request path a
//! worker only touches its own cached cells (`RefCell`/`Cell`, never an atomic
//! read-modify-write or a lock); INFO sums only the cells made for the set in force, so a worker
//! that has not yet caught up adds nothing (it has counted nothing in the new set either).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::latency::{Histogram, Snapshot, add_masked};
use super::requests::CommandNames;
use crate::config::LatencyMonitorConfig;

/// One set of monitors as configured: their names, which commands count in each, and the
/// bucket bounds their histograms are shaped by.
#[derive(Debug, Default)]
pub struct MonitorSet {
    /// Tells sets apart: each set a reload puts in force gets the next one.
    pub generation: u32,
    /// The monitors, in config order (monitor `i` is bit `i` of a request's mask).
    pub monitors: Vec<LatencyMonitorConfig>,
    /// Each monitor's bucket bounds (µs), shared by all its histograms.
    pub bounds: Vec<Arc<[u64]>>,
}

impl MonitorSet {
    /// The set of `monitors`, called `generation`.
    pub fn new(generation: u32, monitors: Vec<LatencyMonitorConfig>) -> MonitorSet {
        let bounds = monitors
            .iter()
            .map(|m| Arc::from(m.buckets_us.as_slice()))
            .collect();
        MonitorSet {
            generation,
            monitors,
            bounds,
        }
    }

    /// The monitors' names, by monitor index.
    pub fn names(&self) -> Vec<&str> {
        self.monitors.iter().map(|m| m.name.as_str()).collect()
    }

    /// The monitors the command `name` counts in (bit i = monitor i).
    pub fn mask_of(&self, name: &str) -> u32 {
        self.monitors
            .iter()
            .enumerate()
            .filter(|(_, m)| m.counts(name))
            .fold(0u32, |acc, (bit, _)| {
                acc | 1u32.checked_shl(bit as u32).unwrap_or(0)
            })
    }
}

/// One worker's histograms for one [`MonitorSet`]: overall, and per backend node.
#[derive(Debug, Default)]
pub struct MonitorCells {
    pub set: Arc<MonitorSet>,
    /// One overall histogram per monitor.
    pub overall: Box<[Histogram]>,
    /// Per node address, one histogram per monitor; made on a node's first reply (backend
    /// connections keep theirs, see [`NodeCells`]), read by INFO.
    nodes: Mutex<HashMap<Arc<str>, Arc<[Histogram]>>>,
}

impl MonitorCells {
    /// Empty histograms for `set`.
    pub fn new(set: Arc<MonitorSet>) -> MonitorCells {
        MonitorCells {
            overall: set.bounds.iter().cloned().map(Histogram::new).collect(),
            set,
            nodes: Mutex::default(),
        }
    }

    /// The histograms of node `addr`, made on first use.
    pub fn node(&self, addr: &Arc<str>) -> Arc<[Histogram]> {
        let mut nodes = self.nodes.lock();
        let set = &self.set;
        nodes
            .entry(addr.clone())
            .or_insert_with(|| set.bounds.iter().cloned().map(Histogram::new).collect())
            .clone()
    }

    /// Monitor `i`'s histogram of node `addr` as it is now, if this worker has one.
    pub fn node_snapshot(&self, addr: &str, i: usize) -> Option<Snapshot> {
        self.nodes
            .lock()
            .get(addr)
            .and_then(|h| h.get(i))
            .map(Histogram::snapshot)
    }

    /// The nodes this worker has histograms of.
    pub fn node_addrs(&self) -> Vec<Arc<str>> {
        self.nodes.lock().keys().cloned().collect()
    }

    /// Drops the histograms of nodes that left the cluster.
    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {
        self.nodes.lock().retain(|a, _| keep(a));
    }
}

/// A backend connection's own reference to its node's histograms in the worker's current
/// cells, so a reply counts without a map lookup; refreshed when the set changes.
#[derive(Debug, Default)]
pub struct NodeCells(RefCell<Option<(u32, Arc<[Histogram]>)>>);

/// A worker's own handle on its monitor cells: what its sessions and backend connections
/// count into. Lives on the worker's thread only (not `Sync`).
#[derive(Debug)]
pub struct LocalMonitors {
    cells: RefCell<Arc<MonitorCells>>,
    /// The generation of `cells`' set.
    generation: Cell<u32>,
    /// Whether the set has any monitor (requests are timed only then).
    active: Cell<bool>,
    /// The config version [`LocalMonitors::follow`] last looked at.
    followed: Cell<u64>,
    /// Per command id, the monitors it counts in, learnt on first sight of the id; cleared
    /// when the set changes.
    masks: RefCell<Vec<Option<u32>>>,
}

impl LocalMonitors {
    /// The handle on `cells` (the worker's cells made when it registered).
    pub fn new(cells: Arc<MonitorCells>) -> LocalMonitors {
        LocalMonitors {
            generation: Cell::new(cells.set.generation),
            active: Cell::new(!cells.set.monitors.is_empty()),
            followed: Cell::new(0),
            masks: RefCell::new(Vec::new()),
            cells: RefCell::new(cells),
        }
    }

    /// Takes the set in force when config `version` is new to this worker: fresh cells for a
    /// set of another generation, published through `publish` (the worker's stats, for INFO).
    /// Between batches only; one comparison when the version did not move.
    pub fn follow(
        &self,
        version: u64,
        in_force: impl FnOnce() -> Arc<MonitorSet>,
        publish: impl FnOnce(Arc<MonitorCells>),
    ) {
        if self.followed.replace(version) == version {
            return;
        }
        let set = in_force();
        if set.generation == self.generation.get() {
            return;
        }
        let cells = Arc::new(MonitorCells::new(set));
        self.generation.set(cells.set.generation);
        self.active.set(!cells.set.monitors.is_empty());
        self.masks.borrow_mut().clear();
        publish(cells.clone());
        *self.cells.borrow_mut() = cells;
    }

    /// Whether any monitor is in force (requests need timing).
    #[inline]
    pub fn active(&self) -> bool {
        self.active.get()
    }

    /// The generation of the set requests count in now.
    #[inline]
    pub fn generation(&self) -> u32 {
        self.generation.get()
    }

    /// The monitors a request of command `id` counts in (bit i = monitor i); 0 when there are
    /// none. Matched by name (through `names`) once per id and set, then one index.
    pub fn mask(&self, id: u16, names: &CommandNames) -> u32 {
        if !self.active.get() {
            return 0;
        }
        let i = usize::from(id);
        if let Some(Some(mask)) = self.masks.borrow().get(i) {
            return *mask;
        }
        let name = names.names().get(i).cloned();
        let mask = self
            .cells
            .borrow()
            .set
            .mask_of(name.as_deref().unwrap_or("unknown"));
        let mut masks = self.masks.borrow_mut();
        if masks.len() <= i {
            masks.resize(i + 1, None);
        }
        masks[i] = Some(mask);
        mask
    }

    /// Counts a reply of `us` µs to a request of command `id` in the overall histograms.
    #[inline]
    pub fn count_overall(&self, id: u16, us: u64, names: &CommandNames) {
        let mask = self.mask(id, names);
        if mask != 0 {
            add_masked(&self.cells.borrow().overall, mask, us);
        }
    }

    /// Counts a reply of `us` µs from node `addr` in the monitors of `mask`, taken under set
    /// `generation`; dropped when the set changed since (its bits mean other monitors now).
    #[inline]
    pub fn count_node(
        &self,
        cache: &NodeCells,
        addr: &Arc<str>,
        mask: u32,
        generation: u32,
        us: u64,
    ) {
        if generation != self.generation.get() {
            return;
        }
        let mut cache = cache.0.borrow_mut();
        if cache.as_ref().is_none_or(|(g, _)| *g != generation) {
            *cache = Some((generation, self.cells.borrow().node(addr)));
        }
        if let Some((_, hists)) = &*cache {
            add_masked(hists, mask, us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn monitor(name: &str, commands: &[&str], buckets_us: &[u64]) -> LatencyMonitorConfig {
        LatencyMonitorConfig {
            name: name.into(),
            commands: commands.iter().map(|c| c.to_string()).collect(),
            exclude: Vec::new(),
            buckets_us: buckets_us.to_vec(),
        }
    }

    #[test]
    fn a_new_set_gets_fresh_cells_and_masks_and_old_node_samples_are_dropped() {
        let names = CommandNames::default();
        let get = names.intern("get");
        let set = names.intern("set");
        let first = Arc::new(MonitorSet::new(1, vec![monitor("all", &["all"], &[100])]));
        let local = LocalMonitors::new(Arc::new(MonitorCells::new(first.clone())));
        let mut published = Vec::new();
        local.follow(1, || first.clone(), |c| published.push(c));
        assert!(published.is_empty(), "same generation: nothing to swap");
        assert_eq!((local.mask(get, &names), local.mask(set, &names)), (1, 1));
        local.count_overall(get, 50, &names);
        let addr: Arc<str> = Arc::from("127.0.0.1:7001");
        let cache = NodeCells::default();
        local.count_node(&cache, &addr, 1, local.generation(), 50);
        let old_gen = local.generation();

        let second = Arc::new(MonitorSet::new(
            2,
            vec![
                monitor("x", &["set"], &[10]),
                monitor("reads", &["get"], &[7, 70]),
            ],
        ));
        local.follow(2, || second.clone(), |c| published.push(c));
        // The same version again does not look at the set.
        local.follow(2, || panic!("not asked"), |_| panic!("not published"));
        assert_eq!(published.len(), 1);
        let cells = &published[0];
        assert_eq!(cells.set.generation, 2);
        assert_eq!((local.mask(get, &names), local.mask(set, &names)), (2, 1));
        local.count_overall(get, 50, &names);
        // A reply to a request masked under the old set is not counted per node.
        local.count_node(&cache, &addr, 1, old_gen, 50);
        assert_eq!(cells.node_snapshot(&addr, 0), None);
        local.count_node(&cache, &addr, 2, local.generation(), 50);
        let counts: Vec<u64> = cells.overall.iter().map(|h| h.snapshot().count()).collect();
        assert_eq!(counts, [0, 1]);
        let node = cells.node_snapshot(&addr, 1).unwrap();
        assert_eq!(node.cells, [(0, 0), (1, 50), (0, 0)]);

        // No monitors: nothing is timed.
        let off = Arc::new(MonitorSet::new(3, Vec::new()));
        local.follow(3, || off.clone(), |c| published.push(c));
        assert!(!local.active());
        assert_eq!(local.mask(get, &names), 0);
    }
}
