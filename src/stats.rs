//! Counters kept per worker (written by their worker only, so no atomic read-modify-write on the
//! request path) and summed when INFO or a metrics scrape reads them.

pub mod errors;
pub mod requests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

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
    }
}

/// All workers' counters.
#[derive(Debug, Default)]
pub struct StatsRegistry {
    workers: Mutex<Vec<Arc<WorkerStats>>>,
    /// DC indexes of each worker's [`requests::RequestMetrics`]; `None`: workers keep none.
    metrics_dcs: Option<usize>,
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
}

impl StatsRegistry {
    /// A registry whose workers also keep request metrics, with `dcs` DC indexes.
    pub fn with_metrics(dcs: usize) -> StatsRegistry {
        StatsRegistry {
            workers: Mutex::default(),
            metrics_dcs: Some(dcs),
        }
    }

    /// Registers a new worker's counters.
    pub fn add_worker(&self) -> Arc<WorkerStats> {
        let w = Arc::new(WorkerStats {
            metrics: self.metrics_dcs.map(requests::RequestMetrics::new),
            ..WorkerStats::default()
        });
        self.workers.lock().push(w.clone());
        w
    }

    /// Whether workers keep request metrics.
    pub fn has_metrics(&self) -> bool {
        self.metrics_dcs.is_some()
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
}
