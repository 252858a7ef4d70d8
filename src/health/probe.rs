//! The prober: every `health.probe_interval`, each node gets a PING (round-trip time, so idle
//! replicas stay measured) and an `INFO replication` + `INFO persistence` (LOADING, replica link
//! status, replication lag). Results go into the shared [`super::table::HealthTable`]; a failed
//! probe counts as a failure for the node's breaker, a good one as a success.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::control::{ControlConn, Credentials};
use crate::shared::Shared;
use crate::topology::Role;

/// What one probe learned.
#[derive(Debug, Default)]
struct Probe {
    rtt: Duration,
    loading: bool,
    link_up: bool,
    /// `master_repl_offset` of a master, `slave_repl_offset` of a replica.
    offset: u64,
}

fn field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

async fn probe(
    addr: Arc<str>,
    conn: Option<ControlConn>,
    creds: Credentials,
    timeout: Duration,
) -> (Arc<str>, Option<ControlConn>, Result<Probe, String>) {
    let mut conn = match conn {
        Some(c) => c,
        None => match ControlConn::connect(&addr, &creds, timeout).await {
            Ok(c) => c,
            Err(e) => return (addr, None, Err(e.to_string())),
        },
    };
    let started = Instant::now();
    if let Err(e) = conn.call(&[b"PING"]).await {
        return (addr, None, Err(e.to_string()));
    }
    let rtt = started.elapsed();
    let repl = match conn.call(&[b"INFO", b"replication"]).await {
        Ok(v) => v.as_str().unwrap_or("").to_string(),
        Err(e) => return (addr, None, Err(e.to_string())),
    };
    let persistence = match conn.call(&[b"INFO", b"persistence"]).await {
        Ok(v) => v.as_str().unwrap_or("").to_string(),
        Err(e) => return (addr, None, Err(e.to_string())),
    };
    let is_replica = field(&repl, "role") == Some("slave");
    let offset_field = if is_replica {
        "slave_repl_offset"
    } else {
        "master_repl_offset"
    };
    let result = Probe {
        rtt,
        loading: field(&persistence, "loading") == Some("1"),
        link_up: !is_replica || field(&repl, "master_link_status") == Some("up"),
        offset: field(&repl, offset_field)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    };
    (addr, Some(conn), Ok(result))
}

/// Runs until shutdown.
pub async fn run(shared: Arc<Shared>) {
    let mut conns: HashMap<Arc<str>, ControlConn> = HashMap::new();
    let mut shutdown = shared.shutdown_signal();
    loop {
        // Read each turn, so a reload's interval and timeout apply from the next probe.
        let config = shared.config();
        let interval = config.health.probe_interval;
        let timeout = config
            .breaker
            .server_timeout
            .min(interval.max(Duration::from_millis(100)));
        drop(config);
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let (_, topo) = shared.topology.load();
        conns.retain(|a, _| topo.node_by_addr(a).is_some());
        let mut set = JoinSet::new();
        for node in &topo.nodes {
            let conn = conns.remove(&node.addr);
            let fut = probe(node.addr.clone(), conn, shared.credentials(), timeout);
            set.spawn(async move { tokio::time::timeout(timeout * 3, fut).await });
        }
        let mut offsets: HashMap<Arc<str>, u64> = HashMap::new();
        let now_results: Vec<_> = set.join_all().await;
        let now = Instant::now();
        for outcome in now_results {
            let Ok((addr, conn, result)) = outcome else {
                continue;
            };
            let health = shared.health.node(&addr);
            match result {
                Ok(p) => {
                    health.observe_probe(p.rtt, now);
                    health
                        .loading
                        .store(p.loading, std::sync::atomic::Ordering::Relaxed);
                    health
                        .link_up
                        .store(p.link_up, std::sync::atomic::Ordering::Relaxed);
                    if !health.is_closed() {
                        health.note_half_open(now);
                        // The probe is the half-open breaker's trial request.
                        let _ = health.allow(now);
                    }
                    health.on_success(now);
                    offsets.insert(addr.clone(), p.offset);
                }
                Err(_) => {
                    health.note_half_open(now);
                    health.on_failure(now)
                }
            }
            if let Some(c) = conn {
                conns.insert(addr, c);
            }
        }
        for shard in &topo.shards {
            let master = topo.node(shard.master);
            let Some(&master_offset) = offsets.get(&master.addr) else {
                continue;
            };
            for &r in &shard.replicas {
                let replica = topo.node(r);
                if replica.role != Role::Replica {
                    continue;
                }
                if let Some(&off) = offsets.get(&replica.addr) {
                    shared.health.node(&replica.addr).lag_bytes.store(
                        master_offset.saturating_sub(off),
                        std::sync::atomic::Ordering::Relaxed,
                    );
                }
            }
        }
    }
}
