//! Counters kept per worker (written by their worker only, so no atomic read-modify-write on the
//! request path) and summed when INFO or a metrics scrape reads them.

pub mod dcs;
pub mod errors;
pub mod latency;
pub mod monitors;
pub mod requests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::config::LatencyMonitorConfig;
use monitors::{MonitorCells, MonitorSet};

/// A counter with one writer thread: a plain load + store, readable from any thread.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n` (only the owning worker calls this).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Subtracts `n` (only the owning worker calls this).
    #[inline]
    pub fn sub(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_sub(n),
            Ordering::Relaxed,
        );
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters of one worker's traffic with one backend node.
#[derive(Debug, Default)]
pub struct NodeStats {
    /// Open connections now.
    pub connections: Counter,
    /// Connections opened so far.
    pub connects: Counter,
    pub requests: Counter,
    pub responses: Counter,
    pub send_bytes: Counter,
    pub recv_bytes: Counter,
    /// Requests answered with a meridian error because the node failed.
    pub failures: Counter,
    /// Time from queueing a request for the node to reading its reply (kept only when the
    /// worker keeps request metrics).
    pub duration: requests::LatencyCells,
}

/// One worker's counters.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub accepts: Counter,
    pub client_connections: Counter,
    pub requests: Counter,
    pub responses: Counter,
    pub recv_client_bytes: Counter,
    pub send_client_bytes: Counter,
    pub redirects: Counter,
    /// Reads resent once after their connection was lost.
    pub read_retries: Counter,
    pub protocol_errors: Counter,
    /// AUTH (or HELLO AUTH) refused.
    pub auth_failures: Counter,
    /// Client TLS handshakes completed, failed (not TLS, bad certificate, client left) and
    /// cut by `tls.handshake_timeout`.
    pub tls_handshakes: Counter,
    pub tls_handshake_failures: Counter,
    pub tls_handshake_timeouts: Counter,
    /// Per-command counts and latencies, error kinds, reads per DC; `None` when the admin
    /// endpoint is off (nobody would read them).
    pub metrics: Option<requests::RequestMetrics>,
    /// The latency monitors' histograms (overall and per node) for the set the worker
    /// follows: stored by the worker when it takes a new set, read by INFO. The worker counts
    /// through its own cached copy (`monitors::LocalMonitors`), never through this.
    pub latency: ArcSwap<MonitorCells>,
    nodes: Mutex<HashMap<Arc<str>, Arc<NodeStats>>>,
}

impl WorkerStats {
    /// The counters for `addr`, created on first use (not on the per-request path: backends
    /// keep their `Arc<NodeStats>`).
    pub fn node(&self, addr: &Arc<str>) -> Arc<NodeStats> {
        self.nodes.lock().entry(addr.clone()).or_default().clone()
    }

    /// Drops the counters of nodes that left the cluster.
    pub fn retain_nodes(&self, keep: impl Fn(&str) -> bool) {
        self.nodes.lock().retain(|a, _| keep(a));
        self.latency.load().retain_nodes(keep);
    }
}

/// All workers' counters.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    workers: Mutex<Vec<Arc<WorkerStats>>>,
    /// Whether workers keep [`requests::RequestMetrics`].
    keeps_metrics: bool,
    /// The counters as they were at the last `CONFIG RESETSTAT` (see [`StatsRegistry::reset`]).
    baseline: Mutex<Baseline>,
    /// The latency monitors in force; a reload that changes them stores a new set.
    monitors: ArcSwap<MonitorSet>,
}

/// What INFO subtracts from the running counters after a `CONFIG RESETSTAT`.
#[derive(Debug, Default)]
struct Baseline {
    totals: Totals,
    nodes: HashMap<Arc<str>, NodeTotals>,
    /// Latency monitors, overall and per node, of the set of generation `latency_generation`
    /// (a baseline of another set is ignored: a new set starts from zero anyway).
    latency_generation: u32,
    latency: Vec<latency::Snapshot>,
    node_latency: HashMap<Arc<str>, Vec<latency::Snapshot>>,
}

/// Sums over workers, as INFO shows them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Totals {
    pub accepts: u64,
    pub client_connections: u64,
    pub requests: u64,
    pub responses: u64,
    pub recv_client_bytes: u64,
    pub send_client_bytes: u64,
    pub recv_server_bytes: u64,
    pub send_server_bytes: u64,
    pub redirects: u64,
    pub read_retries: u64,
    pub protocol_errors: u64,
    pub auth_failures: u64,
    pub tls_handshakes: u64,
    pub tls_handshake_failures: u64,
    pub tls_handshake_timeouts: u64,
}

/// One worker's share of the traffic, as `INFO workers` shows it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerLine {
    pub clients: u64,
    pub accepts: u64,
    pub requests: u64,
}

/// Sums for one node over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NodeTotals {
    pub connections: u64,
    pub connects: u64,
    pub requests: u64,
    pub responses: u64,
    pub send_bytes: u64,
    pub recv_bytes: u64,
    pub failures: u64,
    pub duration: requests::LatencyTotals,
}

impl StatsRegistry {
    /// A registry whose workers also keep request metrics.
    pub fn with_metrics() -> StatsRegistry {
        StatsRegistry {
            workers: Mutex::default(),
            keeps_metrics: true,
            baseline: Mutex::default(),
            monitors: ArcSwap::default(),
        }
    }

    /// Each worker's own counters (clients now, connections accepted, requests), in the order
    /// the workers started (worker ids count from 0 in that order).
    pub fn per_worker(&self) -> Vec<WorkerLine> {
        self.workers
            .lock()
            .iter()
            .map(|w| WorkerLine {
                clients: w.client_connections.get(),
                accepts: w.accepts.get(),
                requests: w.requests.get(),
            })
            .collect()
    }

    /// Starts with these latency monitors in force.
    pub fn with_latency_monitors(self, monitors: Vec<LatencyMonitorConfig>) -> StatsRegistry {
        self.monitors.store(Arc::new(MonitorSet::new(1, monitors)));
        self
    }

    /// Puts `monitors` in force if they differ from the set in force (a reload); workers take
    /// them between batches. Returns whether they changed.
    pub fn set_latency_monitors(&self, monitors: Vec<LatencyMonitorConfig>) -> bool {
        let now = self.monitors.load();
        if now.monitors == monitors {
            return false;
        }
        let generation = now.generation.wrapping_add(1);
        self.monitors
            .store(Arc::new(MonitorSet::new(generation, monitors)));
        true
    }

    /// The latency monitors in force.
    pub fn latency_set(&self) -> Arc<MonitorSet> {
        self.monitors.load_full()
    }

    /// Monitor `i` of `set`: its overall histogram summed over the workers that count in
    /// `set`, since the last reset.
    pub fn latency_overall(&self, set: &MonitorSet, i: usize) -> Option<latency::Snapshot> {
        let sum = self.latency_overall_raw(set, i)?;
        let baseline = self.baseline.lock();
        Some(match baseline.latency.get(i) {
            Some(base) if baseline.latency_generation == set.generation => sum.since(base),
            _ => sum,
        })
    }

    fn latency_overall_raw(&self, set: &MonitorSet, i: usize) -> Option<latency::Snapshot> {
        let mut sum = latency::Snapshot::empty(set.bounds.get(i)?.clone());
        for w in self.workers.lock().iter() {
            let cells = w.latency.load();
            if cells.set.generation != set.generation {
                continue;
            }
            if let Some(h) = cells.overall.get(i) {
                sum.add(&h.snapshot());
            }
        }
        Some(sum)
    }

    /// Monitor `i` of `set`: its histogram of node `addr` summed over workers, since the last
    /// reset.
    pub fn latency_node(
        &self,
        set: &MonitorSet,
        addr: &str,
        i: usize,
    ) -> Option<latency::Snapshot> {
        let mut sum = self.latency_node_raw(set, addr, i)?;
        let baseline = self.baseline.lock();
        if baseline.latency_generation == set.generation
            && let Some(base) = baseline.node_latency.get(addr).and_then(|b| b.get(i))
        {
            sum = sum.since(base);
        }
        Some(sum)
    }

    fn latency_node_raw(
        &self,
        set: &MonitorSet,
        addr: &str,
        i: usize,
    ) -> Option<latency::Snapshot> {
        let mut sum = latency::Snapshot::empty(set.bounds.get(i)?.clone());
        for w in self.workers.lock().iter() {
            let cells = w.latency.load();
            if cells.set.generation != set.generation {
                continue;
            }
            if let Some(h) = cells.node_snapshot(addr, i) {
                sum.add(&h);
            }
        }
        Some(sum)
    }

    /// Registers a new worker's counters.
    pub fn add_worker(&self) -> Arc<WorkerStats> {
        let w = Arc::new(WorkerStats {
            metrics: self.keeps_metrics.then(requests::RequestMetrics::new),
            latency: ArcSwap::from_pointee(MonitorCells::new(self.monitors.load_full())),
            ..WorkerStats::default()
        });
        self.workers.lock().push(w.clone());
        w
    }

    /// Whether workers keep request metrics.
    pub fn has_metrics(&self) -> bool {
        self.keeps_metrics
    }

    /// Request metrics summed over workers.
    pub fn request_totals(&self) -> requests::RequestTotals {
        let mut t = requests::RequestTotals::default();
        for w in self.workers.lock().iter() {
            if let Some(m) = &w.metrics {
                m.add_to(&mut t);
            }
        }
        t
    }

    /// Proxy-wide totals.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for w in self.workers.lock().iter() {
            t.accepts += w.accepts.get();
            t.client_connections += w.client_connections.get();
            t.requests += w.requests.get();
            t.responses += w.responses.get();
            t.recv_client_bytes += w.recv_client_bytes.get();
            t.send_client_bytes += w.send_client_bytes.get();
            t.redirects += w.redirects.get();
            t.read_retries += w.read_retries.get();
            t.protocol_errors += w.protocol_errors.get();
            t.auth_failures += w.auth_failures.get();
            t.tls_handshakes += w.tls_handshakes.get();
            t.tls_handshake_failures += w.tls_handshake_failures.get();
            t.tls_handshake_timeouts += w.tls_handshake_timeouts.get();
            for n in w.nodes.lock().values() {
                t.recv_server_bytes += n.recv_bytes.get();
                t.send_server_bytes += n.send_bytes.get();
            }
        }
        t
    }

    /// `CONFIG RESETSTAT`: INFO's counters start again from zero. The workers' cells are not
    /// touched (each has one writer, and `/metrics` counters must never go down): the values
    /// of now become a baseline that [`StatsRegistry::info_totals`] subtracts. Gauges (open
    /// connections) are not counters and keep their value.
    pub fn reset(&self) {
        let totals = self.totals();
        let mut nodes = HashMap::new();
        for w in self.workers.lock().iter() {
            for addr in w.nodes.lock().keys() {
                nodes.entry(addr.clone()).or_insert(NodeTotals::default());
            }
        }
        for (addr, t) in nodes.iter_mut() {
            *t = self.node_totals(addr);
        }
        let set = self.latency_set();
        let monitors = 0..set.monitors.len();
        let latency = monitors
            .clone()
            .filter_map(|i| self.latency_overall_raw(&set, i))
            .collect();
        let mut latency_nodes: Vec<Arc<str>> = nodes.keys().cloned().collect();
        for w in self.workers.lock().iter() {
            latency_nodes.extend(w.latency.load().node_addrs());
        }
        latency_nodes.sort();
        latency_nodes.dedup();
        let node_latency = latency_nodes
            .into_iter()
            .map(|addr| {
                let per: Vec<_> = monitors
                    .clone()
                    .filter_map(|i| self.latency_node_raw(&set, &addr, i))
                    .collect();
                (addr, per)
            })
            .collect();
        *self.baseline.lock() = Baseline {
            totals,
            nodes,
            latency_generation: set.generation,
            latency,
            node_latency,
        };
    }

    /// [`StatsRegistry::totals`] since the last [`StatsRegistry::reset`], as INFO shows them.
    pub fn info_totals(&self) -> Totals {
        let now = self.totals();
        let base = &self.baseline.lock().totals;
        Totals {
            accepts: now.accepts.saturating_sub(base.accepts),
            client_connections: now.client_connections,
            requests: now.requests.saturating_sub(base.requests),
            responses: now.responses.saturating_sub(base.responses),
            recv_client_bytes: now.recv_client_bytes.saturating_sub(base.recv_client_bytes),
            send_client_bytes: now.send_client_bytes.saturating_sub(base.send_client_bytes),
            recv_server_bytes: now.recv_server_bytes.saturating_sub(base.recv_server_bytes),
            send_server_bytes: now.send_server_bytes.saturating_sub(base.send_server_bytes),
            redirects: now.redirects.saturating_sub(base.redirects),
            read_retries: now.read_retries.saturating_sub(base.read_retries),
            protocol_errors: now.protocol_errors.saturating_sub(base.protocol_errors),
            auth_failures: now.auth_failures.saturating_sub(base.auth_failures),
            tls_handshakes: now.tls_handshakes.saturating_sub(base.tls_handshakes),
            tls_handshake_failures: now
                .tls_handshake_failures
                .saturating_sub(base.tls_handshake_failures),
            tls_handshake_timeouts: now
                .tls_handshake_timeouts
                .saturating_sub(base.tls_handshake_timeouts),
        }
    }

    /// [`StatsRegistry::node_totals`] since the last [`StatsRegistry::reset`].
    pub fn info_node_totals(&self, addr: &str) -> NodeTotals {
        let now = self.node_totals(addr);
        let baseline = self.baseline.lock();
        let Some(base) = baseline.nodes.get(addr) else {
            return now;
        };
        NodeTotals {
            connections: now.connections,
            connects: now.connects.saturating_sub(base.connects),
            requests: now.requests.saturating_sub(base.requests),
            responses: now.responses.saturating_sub(base.responses),
            send_bytes: now.send_bytes.saturating_sub(base.send_bytes),
            recv_bytes: now.recv_bytes.saturating_sub(base.recv_bytes),
            failures: now.failures.saturating_sub(base.failures),
            // A metrics histogram: never reset (scrapers expect counters that only grow).
            duration: now.duration,
        }
    }

    /// Per-node totals for `addr`.
    pub fn node_totals(&self, addr: &str) -> NodeTotals {
        let mut t = NodeTotals::default();
        for w in self.workers.lock().iter() {
            if let Some(n) = w.nodes.lock().get(addr) {
                t.connections += n.connections.get();
                t.connects += n.connects.get();
                t.requests += n.requests.get();
                t.responses += n.responses.get();
                t.send_bytes += n.send_bytes.get();
                t.recv_bytes += n.recv_bytes.get();
                t.failures += n.failures.get();
                n.duration.add_to(&mut t.duration);
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_sum_workers_and_nodes() {
        let reg = StatsRegistry::default();
        let a = reg.add_worker();
        let b = reg.add_worker();
        a.requests.add(3);
        b.requests.add(4);
        let addr: Arc<str> = Arc::from("127.0.0.1:7001");
        a.node(&addr).send_bytes.add(10);
        b.node(&addr).send_bytes.add(5);
        b.node(&addr).connections.add(1);
        let t = reg.totals();
        assert_eq!(t.requests, 7);
        assert_eq!(t.send_server_bytes, 15);
        assert_eq!(reg.node_totals("127.0.0.1:7001").connections, 1);
        a.retain_nodes(|_| false);
        assert_eq!(reg.node_totals("127.0.0.1:7001").send_bytes, 5);
    }

    #[test]
    fn reset_zeroes_info_but_not_the_cells_or_gauges() {
        let reg = StatsRegistry::default();
        let a = reg.add_worker();
        let addr: Arc<str> = Arc::from("127.0.0.1:7001");
        a.requests.add(3);
        a.client_connections.add(2);
        a.node(&addr).requests.add(4);
        a.node(&addr).connections.add(1);
        reg.reset();
        let t = reg.info_totals();
        assert_eq!((t.requests, t.client_connections), (0, 2));
        let n = reg.info_node_totals(&addr);
        assert_eq!((n.requests, n.connections), (0, 1));
        a.requests.add(1);
        assert_eq!(reg.info_totals().requests, 1);
        // The running cells (what /metrics reads) never go down.
        assert_eq!(reg.totals().requests, 4);
        assert_eq!(reg.node_totals(&addr).requests, 4);
    }
}
