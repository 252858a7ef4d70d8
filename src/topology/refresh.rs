//! The refresher: re-reads the cluster map from several nodes on a timer and on demand, and
//! publishes a new snapshot when routes changed.
//!
//! Views are ranked so that a node cut off in a minority partition cannot flip the map: a view
//! from a node whose `cluster_state` is ok beats one that is not, then the highest
//! `cluster_current_epoch`, then the most slots covered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{debug, info, warn};

use crate::command::CommandTable;
use crate::control::{ControlConn, Credentials};
use crate::events::EventKind;
use crate::resp::Value;
use crate::shared::Shared;

use super::failover::master_changes;
use super::parse::parse_cluster_slots;
use super::{ShardSpec, Topology};

/// How many nodes are asked per refresh.
const NODES_PER_REFRESH: usize = 5;
/// Smallest gap between two refreshes, however often one is requested.
const MIN_GAP: Duration = Duration::from_millis(50);
/// Timeout for one node's answer.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);

/// One node's view of the cluster.
#[derive(Debug)]
struct View {
    shards: Vec<ShardSpec>,
    state_ok: bool,
    epoch: u64,
    covered: usize,
}

impl View {
    fn rank(&self) -> (bool, u64, usize) {
        (self.state_ok, self.epoch, self.covered)
    }
}

/// Runs until shutdown: refresh now, then every `refresh_interval` or when asked.
pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    let mut commands_loaded = false;
    loop {
        // Read each turn, so a reload's interval applies from the next refresh.
        let interval = shared.config().cluster.refresh_interval;
        let started = Instant::now();
        match refresh_once(&shared).await {
            Ok(changed) => {
                if changed || !commands_loaded {
                    commands_loaded = load_commands(&shared).await;
                }
            }
            Err(e) => warn!(error = %e, "cluster map refresh failed"),
        }
        let gap = MIN_GAP.saturating_sub(started.elapsed());
        tokio::time::sleep(gap).await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shared.refresh_requested() => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The addresses to ask: masters of the current map first, then its replicas, then the seeds.
fn candidates(shared: &Shared) -> Vec<String> {
    let (_, topo) = shared.topology.load();
    let mut out: Vec<String> = Vec::new();
    let mut push = |a: &str| {
        if !out.iter().any(|o| o == a) {
            out.push(a.to_string());
        }
    };
    for m in topo.masters() {
        push(&topo.node(m).addr);
    }
    for n in &topo.nodes {
        push(&n.addr);
    }
    for s in &shared.config().cluster.seeds {
        push(s);
    }
    out
}

/// Reads the map from up to [`NODES_PER_REFRESH`] nodes at once and publishes the best view.
/// Returns whether the published routes changed.
pub async fn refresh_once(shared: &Shared) -> Result<bool, RefreshError> {
    let creds = shared.credentials();
    let all = candidates(shared);
    let mut best: Option<View> = None;
    let mut errors = Vec::new();
    for chunk in all.chunks(NODES_PER_REFRESH) {
        let views = futures_join(chunk.iter().map(|a| fetch_view(a.clone(), creds.clone()))).await;
        for (addr, view) in chunk.iter().zip(views) {
            match view {
                Ok(v) if best.as_ref().is_none_or(|b| v.rank() > b.rank()) => best = Some(v),
                Ok(_) => {}
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        if best.as_ref().is_some_and(|b| b.state_ok) {
            break;
        }
    }
    let Some(view) = best else {
        return Err(RefreshError::NoNodeAnswered(errors.join("; ")));
    };
    let mut topo = Topology::from_shards(view.shards);
    let config = shared.config();
    // Names are resolved by `resolve`, never here: a slow name server must not hold the map.
    let hosts = shared.dc_hosts.lock();
    topo.annotate(
        |addr| {
            config.dc_of_node(addr).map(Arc::from).or_else(|| {
                let (host, _) = crate::dns::split_host_port(addr).ok()?;
                let ip: std::net::IpAddr = host.parse().ok()?;
                hosts.dc_of(ip).map(Arc::from)
            })
        },
        |addr| config.cluster.seeds.iter().any(|s| s == addr),
    );
    drop(hosts);
    shared.health.retain(|a| topo.node_by_addr(a).is_some());
    for n in &topo.nodes {
        shared.health.node(&n.addr).set_dc(n.dc.clone());
    }
    let mut changed = false;
    let mut failovers = Vec::new();
    shared.topology.update(|current| {
        changed = !current.same_routes(&topo);
        if changed {
            failovers = master_changes(current, &topo);
        }
        changed.then_some(topo)
    });
    if !failovers.is_empty() {
        let (_, topo) = shared.topology.load();
        for f in failovers {
            let dc = topo
                .node_by_addr(&f.to)
                .and_then(|id| topo.node(id).dc.clone());
            let how = if f.promoted {
                "replica promoted"
            } else {
                "master moved"
            };
            shared.events.record(
                EventKind::Failover,
                Some(&f.to),
                dc.as_deref(),
                Some(f.slot),
                format!(
                    "{how}: slots from {} served by {} (was {})",
                    f.slot, f.to, f.from
                ),
            );
        }
    }
    if changed {
        info!(
            slots = view.covered,
            epoch = view.epoch,
            "cluster map updated"
        );
    }
    Ok(changed)
}

/// Why no map could be read.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("no cluster node answered ({0})")]
    NoNodeAnswered(String),
}

async fn fetch_view(addr: String, creds: Credentials) -> Result<View, String> {
    let mut conn = ControlConn::connect(&addr, &creds, QUERY_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    let slots = conn
        .call(&[b"CLUSTER", b"SLOTS"])
        .await
        .map_err(|e| e.to_string())?;
    let host = crate::dns::split_host_port(&addr)
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    let shards = parse_cluster_slots(&slots, &host).map_err(|e| e.to_string())?;
    let info = conn
        .call(&[b"CLUSTER", b"INFO"])
        .await
        .map_err(|e| e.to_string())?;
    let text = info.as_str().unwrap_or("");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let covered = shards
        .iter()
        .flat_map(|s| s.slots.iter())
        .map(|&(lo, hi)| (hi - lo) as usize + 1)
        .sum();
    debug!(%addr, covered, "cluster view");
    Ok(View {
        shards,
        state_ok: field("cluster_state") == Some("ok"),
        epoch: field("cluster_current_epoch")
            .and_then(|e| e.parse().ok())
            .unwrap_or(0),
        covered,
    })
}

/// Loads the command table from a master; keeps the current one when none answers.
async fn load_commands(shared: &Shared) -> bool {
    let (_, topo) = shared.topology.load();
    let creds = shared.credentials();
    for m in topo.masters() {
        let addr = topo.node(m).addr.to_string();
        let Ok(mut conn) = ControlConn::connect(&addr, &creds, QUERY_TIMEOUT).await else {
            continue;
        };
        match conn.call(&[b"COMMAND"]).await {
            Ok(reply @ Value::Array(_)) => match CommandTable::from_command_reply(&reply) {
                Ok(table) => {
                    info!(%addr, commands = table.len(), "command table loaded from backend");
                    shared.publish_commands(table);
                    return true;
                }
                Err(e) => warn!(%addr, error = %e, "cannot use backend COMMAND reply"),
            },
            Ok(other) => warn!(%addr, reply = ?other, "unexpected COMMAND reply"),
            Err(e) => warn!(%addr, error = %e, "COMMAND failed"),
        }
    }
    false
}

/// Runs futures concurrently on the current task and collects their outputs in order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
