//! The lab's redis-server nodes: starting them on their DC addresses behind their relays,
//! forming the planned cluster, and reading its live shape.
//!
//! Each node binds its own address and announces its relay instead of itself
//! (`cluster-announce-ip/port/bus-port`), so every client and every peer, the cluster bus and
//! replication included, reaches it through the relay and feels the DC latency. Its outgoing
//! sockets leave from its own address (`bind-source-addr`), so relays can tell its DC. The
//! lab's own observers talk to the real port, undelayed.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::client::{Reply, info_fields, query};
use super::plan::{Plan, PlannedNode};
use super::procs::tail;
use super::spec::BUS_OFFSET;
use super::{LabError, wait_for};

/// Read timeout of admin queries (a stopped node must not hang the lab).
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on one redis-server answering PING after spawn.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on forming the cluster (MEET, slots, replication, gossip settling through relays).
pub const FORM_TIMEOUT: Duration = Duration::from_secs(90);
/// Poll interval of every wait.
const POLL: Duration = Duration::from_millis(100);

/// One `CLUSTER SLOTS` entry: first slot, last slot, master address, sorted replica addresses
/// (as announced: relay addresses).
pub type SlotRange = (u16, u16, String, Vec<String>);

/// A node process.
pub struct NodeProc {
    /// Its place in the plan.
    pub node: PlannedNode,
    /// Its working directory (nodes.conf, log).
    pub dir: PathBuf,
    /// The lab's certificates (used when the topology says `tls: true`).
    tls_dir: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    /// A node not started yet, working in `lab_dir/nodes/<name>`.
    pub fn new(node: PlannedNode, lab_dir: &Path) -> NodeProc {
        let dir = lab_dir.join("nodes").join(&node.name);
        NodeProc {
            node,
            dir,
            tls_dir: super::tls::dir(lab_dir),
            child: None,
        }
    }

    /// The node's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// redis-server arguments of this node.
    pub fn args(&self, plan: &Plan) -> Vec<String> {
        let n = &self.node;
        let cluster = &plan.spec.cluster;
        let timeout_ms = cluster.node_timeout.as_millis().to_string();
        let coverage = if cluster.require_full_coverage {
            "yes"
        } else {
            "no"
        };
        let ip = n.ip.to_string();
        #[rustfmt::skip]
        let mut args: Vec<String> = [
            "--port", &n.port.to_string(), "--bind", &ip, "--bind-source-addr", &ip,
            "--dir", &self.dir.to_string_lossy(), "--daemonize", "no", "--protected-mode", "no",
            "--save", "", "--appendonly", "no",
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", &timeout_ms,
            "--cluster-port", &(n.port + BUS_OFFSET).to_string(),
            "--cluster-announce-ip", &ip,
            "--cluster-announce-port", &n.relay_port.to_string(),
            "--cluster-announce-bus-port", &(n.relay_port + BUS_OFFSET).to_string(),
            "--cluster-require-full-coverage", coverage,
            // Replicas stay where the topology put them.
            "--cluster-allow-replica-migration", "no",
            // Diskless sync waits 5 s for more replicas by default; nothing to wait for here.
            "--repl-diskless-sync-delay", "0",
            // CLUSTER SLOTS lists a replica only once its offset moved, which needs a ping.
            "--repl-ping-replica-period", "1",
        ].iter().map(|s| s.to_string()).collect();
        if plan.spec.tls {
            args.extend(super::tls::node_args(n, &self.tls_dir));
        }
        args
    }

    /// Starts redis-server and waits until it answers PING.
    pub async fn start(&mut self, redis: &Path, plan: &Plan) -> Result<(), LabError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| LabError::io(format!("create {}", self.dir.display()), e))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .map_err(|e| LabError::io(format!("open {}", self.log().display()), e))?;
        let err_log = log
            .try_clone()
            .map_err(|e| LabError::io("clone a log handle", e))?;
        let mut cmd = Command::new(redis);
        cmd.args(self.args(plan))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .kill_on_drop(true)
            // Its own process group: a Ctrl-C at the terminal reaches the supervisor only,
            // which then tears the lab down in order.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| LabError::io("spawn redis-server", e))?;
        self.child = Some(child);
        let addr = self.node.addr();
        let name = self.node.name.clone();
        let what = format!("node {name} to answer");
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        // Polled by hand rather than with `wait_for`: each pass also checks the child.
        let ready = loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                break Err(format!("exited early ({status})"));
            }
            // The pid check makes sure the answer is ours, not another server's on that port.
            let last = match query(addr, &["INFO", "server"], ADMIN_TIMEOUT).await {
                Ok(Reply::Bulk(Some(text))) => {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    let pid = info_fields(&text)
                        .find(|(k, _)| *k == "process_id")
                        .map(|(_, v)| v.to_string());
                    if pid.is_some() && pid == self.pid().map(|p| p.to_string()) {
                        break Ok(());
                    }
                    format!(
                        "{addr} is answered by another redis-server (pid {pid:?}); is the port taken?"
                    )
                }
                Ok(other) => format!("{other:?}"),
                Err(e) => e.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                break Err(format!(
                    "timed out after {START_TIMEOUT:?} waiting for {what}; last state: {last}"
                ));
            }
            tokio::time::sleep(POLL).await;
        };
        ready.map_err(|e| LabError::Process {
            what: format!("node {name} ({addr})"),
            message: format!(
                "{e}\n--- {} ---\n{}",
                self.log().display(),
                tail(&self.log(), 15)
            ),
        })
    }

    /// Whether the process has exited (reaping it if so).
    pub fn exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// SIGKILLs the node and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }
}

/// Fails, naming the address, when a port the lab needs is already taken (by any process).
pub fn check_free(addrs: &[(String, std::net::SocketAddr)]) -> Result<(), LabError> {
    for (what, addr) in addrs {
        if let Err(e) = std::net::TcpListener::bind(addr) {
            return Err(LabError::Process {
                what: what.clone(),
                message: format!(
                    "{addr} is not free ({e}); stop what uses it or pick other ports (--port-offset)"
                ),
            });
        }
    }
    Ok(())
}

/// Forms the planned cluster out of started nodes and waits until it is healthy as planned.
pub async fn form(plan: &Plan) -> Result<(), LabError> {
    let nodes = &plan.nodes;
    let admin = |node: &PlannedNode, args: Vec<String>| {
        let addr = node.addr();
        let what = format!("{} on node {}", args.join(" "), node.name);
        async move {
            match query(addr, &args, ADMIN_TIMEOUT * 5).await {
                Ok(Reply::Error(e)) => Err(LabError::Process { what, message: e }),
                Ok(reply) => Ok(reply),
                Err(e) => Err(LabError::Process {
                    what,
                    message: e.to_string(),
                }),
            }
        }
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // Distinct epochs up front spare the cluster its epoch-collision resolution.
    for (i, node) in nodes.iter().enumerate() {
        admin(
            node,
            s(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]),
        )
        .await?;
    }
    let meet = |from: &PlannedNode, to: &PlannedNode| {
        let args = s(&[
            "CLUSTER",
            "MEET",
            &to.ip.to_string(),
            &to.relay_port.to_string(),
            &(to.relay_port + BUS_OFFSET).to_string(),
        ]);
        admin(from, args)
    };
    let Some(first) = nodes.first() else {
        return Err(LabError::Scenario("the plan has no nodes".into()));
    };
    for node in &nodes[1..] {
        meet(first, node).await?;
    }
    for node in nodes.iter().filter(|n| !n.master) {
        let master = master_of(plan, node.shard)?;
        // Gossip would introduce them too, but only after a round or two through the relays.
        meet(node, master).await?;
    }
    for node in nodes.iter().filter(|n| n.master) {
        let (lo, hi) = node.slots;
        admin(
            node,
            s(&["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()]),
        )
        .await?;
    }
    let mut ids = Vec::new();
    for node in nodes {
        let id = admin(node, s(&["CLUSTER", "MYID"])).await?;
        ids.push(id.text().unwrap_or_default());
    }
    for node in nodes.iter().filter(|n| !n.master) {
        let master = master_of(plan, node.shard)?;
        let id = nodes
            .iter()
            .position(|n| n.name == master.name)
            .and_then(|i| ids.get(i).cloned())
            .unwrap_or_default();
        // REPLICATE says "Unknown node" until the handshake with the master is done.
        let what = format!("{} to accept CLUSTER REPLICATE {}", node.name, master.name);
        let addr = node.addr();
        wait_for(&what, FORM_TIMEOUT, POLL, || {
            let id = id.clone();
            async move {
                match query(addr, &["CLUSTER", "REPLICATE", &id], ADMIN_TIMEOUT).await {
                    Ok(Reply::Simple(_)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await?;
    }
    let expected = expected_slots(plan);
    wait_for(
        "the new cluster to be healthy as planned",
        FORM_TIMEOUT,
        POLL * 2,
        || check_health(plan, Some(&expected)),
    )
    .await
}

fn master_of(plan: &Plan, shard: usize) -> Result<&PlannedNode, LabError> {
    plan.shard_nodes(shard)
        .find(|n| n.master)
        .ok_or_else(|| LabError::Scenario(format!("shard {shard} has no master")))
}

/// The CLUSTER SLOTS the plan should produce (relay addresses).
pub fn expected_slots(plan: &Plan) -> Vec<SlotRange> {
    let mut out: Vec<SlotRange> = (0..plan.shard_count())
        .filter_map(|shard| {
            let master = plan.shard_nodes(shard).find(|n| n.master)?;
            let mut replicas: Vec<String> = plan
                .shard_nodes(shard)
                .filter(|n| !n.master)
                .map(|n| n.relay_addr().to_string())
                .collect();
            replicas.sort();
            Some((
                master.slots.0,
                master.slots.1,
                master.relay_addr().to_string(),
                replicas,
            ))
        })
        .collect();
    out.sort();
    out
}

/// Every node that answers says cluster_state:ok and serves the same full CLUSTER SLOTS
/// (equal to `expected` when given), and every replica's link is up. Nodes that do not answer
/// are skipped (they may be killed or stopped on purpose); at least one must answer.
pub async fn check_health(plan: &Plan, expected: Option<&Vec<SlotRange>>) -> Result<(), String> {
    let mut agreed: Option<(String, Vec<SlotRange>)> = None;
    for node in &plan.nodes {
        let addr = node.addr();
        let Ok(info) = query(addr, &["CLUSTER", "INFO"], ADMIN_TIMEOUT).await else {
            continue;
        };
        let info = info.text().unwrap_or_default();
        let state = info_fields(&info)
            .find(|(k, _)| *k == "cluster_state")
            .map(|(_, v)| v);
        if state != Some("ok") {
            return Err(format!("{} has cluster_state {state:?}", node.name));
        }
        let view = slots_view(addr).await?;
        let covered: u32 = view
            .iter()
            .map(|r| u32::from(r.1) - u32::from(r.0) + 1)
            .sum();
        if covered != crate::slot::SLOT_COUNT as u32 {
            return Err(format!("{} serves {covered} slots", node.name));
        }
        if let Some(want) = expected.filter(|want| **want != view) {
            return Err(format!("{} serves {view:?}, planned {want:?}", node.name));
        }
        match &agreed {
            Some((other, seen)) if *seen != view => {
                return Err(format!("{} and {other} disagree", node.name));
            }
            Some(_) => {}
            None => agreed = Some((node.name.clone(), view)),
        }
        let repl = query(addr, &["INFO", "replication"], ADMIN_TIMEOUT).await;
        let repl = repl.map_err(|e| e.to_string())?.text().unwrap_or_default();
        let fields: Vec<(&str, &str)> = info_fields(&repl).collect();
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        if get("role") == Some("slave") && get("master_link_status") != Some("up") {
            return Err(format!("replica {} has its master link down", node.name));
        }
    }
    agreed
        .map(|_| ())
        .ok_or_else(|| "no node answers".to_string())
}

/// CLUSTER SLOTS of the node at `addr`, sorted.
pub async fn slots_view(addr: std::net::SocketAddr) -> Result<Vec<SlotRange>, String> {
    let reply = query(addr, &["CLUSTER", "SLOTS"], ADMIN_TIMEOUT)
        .await
        .map_err(|e| format!("{addr}: {e}"))?;
    parse_slots(&reply).ok_or_else(|| format!("{addr}: CLUSTER SLOTS replied {reply:?}"))
}

/// Reads a CLUSTER SLOTS reply.
pub fn parse_slots(reply: &Reply) -> Option<Vec<SlotRange>> {
    let addr = |r: &Reply| {
        let f = r.items();
        Some(format!("{}:{}", f.first()?.text()?, f.get(1)?.int()?))
    };
    if !matches!(reply, Reply::Array(Some(_))) {
        return None;
    }
    let mut out = Vec::new();
    for entry in reply.items() {
        let f = entry.items();
        let lo = u16::try_from(f.first()?.int()?).ok()?;
        let hi = u16::try_from(f.get(1)?.int()?).ok()?;
        let master = addr(f.get(2)?)?;
        let mut replicas = f.get(3..)?.iter().map(addr).collect::<Option<Vec<_>>>()?;
        replicas.sort();
        out.push((lo, hi, master, replicas));
    }
    out.sort();
    Some(out)
}

/// The live shape of the cluster: for each shard (in plan order), the name of its master and
/// of its replicas, as most of the nodes that answer see it. A majority rather than the first
/// answer, because a node just restarted (or just back from a partition) briefly serves its
/// stale view.
pub async fn live_shards(plan: &Plan) -> Result<Vec<(String, Vec<String>)>, String> {
    let asks: Vec<_> = plan
        .nodes
        .iter()
        .map(|n| tokio::spawn(slots_view(n.addr())))
        .collect();
    let mut views: Vec<(Vec<SlotRange>, usize)> = Vec::new();
    let mut last = "no node answers".to_string();
    for ask in asks {
        match ask.await {
            Ok(Ok(view)) => match views.iter_mut().find(|(v, _)| *v == view) {
                Some((_, count)) => *count += 1,
                None => views.push((view, 1)),
            },
            Ok(Err(e)) => last = e,
            Err(e) => last = e.to_string(),
        }
    }
    // The first of the most common views (ties keep plan order, so the result is stable).
    let mut best: Option<&(Vec<SlotRange>, usize)> = None;
    for candidate in &views {
        if best.is_none_or(|b| candidate.1 > b.1) {
            best = Some(candidate);
        }
    }
    let Some((view, _)) = best else {
        return Err(last);
    };
    let name = |addr: &str| plan.node(addr).map_or(addr.to_string(), |n| n.name.clone());
    let mut shards = Vec::new();
    for shard in 0..plan.shard_count() {
        let lo = plan.shard_nodes(shard).next().map_or(0, |n| n.slots.0);
        let Some(range) = view.iter().find(|r| r.0 <= lo && lo <= r.1) else {
            return Err(format!("shard {shard}'s slot {lo} is not served"));
        };
        shards.push((name(&range.2), range.3.iter().map(|a| name(a)).collect()));
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_slots() {
        let node = |ip: &str, port| {
            Reply::Array(Some(vec![
                Reply::Bulk(Some(ip.as_bytes().to_vec())),
                Reply::Int(port),
                Reply::Bulk(Some(b"id".to_vec())),
            ]))
        };
        let reply = Reply::Array(Some(vec![Reply::Array(Some(vec![
            Reply::Int(0),
            Reply::Int(16383),
            node("127.0.1.1", 7101),
            node("127.0.2.1", 7101),
        ]))]));
        let view = parse_slots(&reply).unwrap();
        assert_eq!(
            view,
            [(
                0,
                16383,
                "127.0.1.1:7101".to_string(),
                vec!["127.0.2.1:7101".to_string()]
            )]
        );
        assert_eq!(parse_slots(&Reply::Simple("x".into())), None);
    }
}
