//! A real Redis Cluster of redis-server [`Node`]s on loopback: formation, health, slot moves.

use super::{Node, PROBE_TIMEOUT, Role, TempDir, int, tail, value_text, wait_until};
use redis::Value;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

const SLOTS: usize = 16384;
/// Bound on forming a new cluster (MEET, slots, replication, gossip settling).
const FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// One `CLUSTER SLOTS` entry: first slot, last slot, master addr, sorted replica addrs.
type SlotRange = (usize, usize, String, Vec<String>);

/// Plans a cluster node by node; [`Cluster::start`] is the common all-127.0.0.1 shape.
#[derive(Default)]
pub struct ClusterBuilder {
    /// `None` means the default, 2000 ms.
    node_timeout_ms: Option<u64>,
    /// Per node: its IP and, for a replica, the number of its master among the masters.
    specs: Vec<(String, Option<usize>)>,
    extra_args: Vec<String>,
}

impl ClusterBuilder {
    /// An empty plan with `cluster-node-timeout` 2000 ms.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `--cluster-node-timeout` for every node.
    pub fn node_timeout_ms(mut self, ms: u64) -> Self {
        self.node_timeout_ms = Some(ms);
        self
    }

    /// Adds a master bound to `ip`; masters are numbered 0, 1, … in the order added.
    pub fn master(mut self, ip: &str) -> Self {
        self.specs.push((ip.to_string(), None));
        self
    }

    /// Adds a replica bound to `ip` that replicates master number `master`.
    pub fn replica(mut self, ip: &str, master: usize) -> Self {
        self.specs.push((ip.to_string(), Some(master)));
        self
    }

    /// Extra redis-server arguments for every node (e.g. `&["--maxmemory", "64mb"]`).
    pub fn redis_args(mut self, args: &[&str]) -> Self {
        self.extra_args.extend(args.iter().map(|s| s.to_string()));
        self
    }

    /// Starts every node, forms the cluster (slots split evenly among the masters in order,
    /// like `redis-cli --cluster create`) and waits until it is healthy exactly as planned.
    pub fn start(self) -> Cluster {
        let masters: Vec<usize> = (0..self.specs.len())
            .filter(|&i| self.specs[i].1.is_none())
            .collect();
        assert!(!masters.is_empty(), "a cluster needs at least one master");
        let master_node = |m: usize| *masters.get(m).unwrap_or_else(|| panic!("no master #{m}"));
        let plan: Vec<Option<usize>> = self.specs.iter().map(|s| s.1.map(master_node)).collect();
        let node_timeout_ms = self.node_timeout_ms.unwrap_or(2000);
        let mut cluster = Cluster {
            nodes: Vec::new(),
            node_timeout_ms,
            dir: TempDir::new(),
        };
        for (ip, _) in &self.specs {
            let args = |port, dir: &Path| self.server_args(ip, port, dir, node_timeout_ms);
            cluster
                .nodes
                .push(Node::launch(ip, cluster.dir.path(), args));
        }
        cluster.form(&masters, &plan);
        cluster
    }

    /// Command-line arguments of one node.
    fn server_args(&self, ip: &str, port: u16, dir: &Path, node_timeout_ms: u64) -> Vec<String> {
        let (port, timeout, dir) = (
            port.to_string(),
            node_timeout_ms.to_string(),
            dir.to_string_lossy(),
        );
        #[rustfmt::skip]
        let mut args: Vec<String> = [
            "--port", &port, "--bind", ip, "--dir", &dir,
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", &timeout, "--save", "", "--appendonly", "no",
            "--protected-mode", "no", "--daemonize", "no", "--enable-debug-command", "yes",
            "--cluster-allow-replica-migration", "no",
            // Diskless sync waits 5 s by default for more replicas; that only slows tests down.
            "--repl-diskless-sync-delay", "0",
            // CLUSTER SLOTS lists a replica only once its replication offset is past 0, which
            // without writes takes the first replication ping (10 s by default).
            "--repl-ping-replica-period", "1",
        ].iter().map(|s| s.to_string()).collect();
        // Without it peers see bus traffic come from 127.0.0.1 and the cluster never forms;
        // a lone node would never learn its own IP (it learns it from a MEET received).
        if ip != "127.0.0.1" || self.specs.len() == 1 {
            args.extend(["--cluster-announce-ip".to_string(), ip.to_string()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// A running Redis Cluster; dropping it kills every node and removes its temp dir.
pub struct Cluster {
    nodes: Vec<Node>,
    node_timeout_ms: u64,
    dir: TempDir,
}

impl Cluster {
    /// `masters` masters with `replicas_per_master` replicas each, all on 127.0.0.1; nodes are
    /// ordered masters first, then the replicas of master 0, 1, ….
    pub fn start(masters: usize, replicas_per_master: usize) -> Cluster {
        let mut builder = ClusterBuilder::new();
        for _ in 0..masters {
            builder = builder.master("127.0.0.1");
        }
        for m in (0..masters).flat_map(|m| std::iter::repeat_n(m, replicas_per_master)) {
            builder = builder.replica("127.0.0.1", m);
        }
        builder.start()
    }

    fn form(&self, masters: &[usize], plan: &[Option<usize>]) {
        let deadline = Instant::now() + FORM_TIMEOUT;
        // Distinct epochs up front spare the cluster its epoch-collision resolution.
        for (i, node) in self.nodes.iter().enumerate() {
            node.ok(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()]);
        }
        let meet = |from: &Node, to: &Node| {
            let (port, bus) = (
                to.port.to_string(),
                (u32::from(to.port) + 10000).to_string(),
            );
            from.ok(&["CLUSTER", "MEET", &to.ip, &port, &bus]);
        };
        for node in &self.nodes[1..] {
            meet(&self.nodes[0], node);
        }
        // A node learns its own IP from a MEET it receives, so node 0 gets one back.
        if let Some(second) = self.nodes.get(1) {
            meet(second, &self.nodes[0]);
        }
        // Gossip would introduce replicas to their masters too, but only after a second or so.
        for (i, m) in plan
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, (*m)?)))
        {
            meet(&self.nodes[i], &self.nodes[m]);
        }
        let mut expected = Vec::new();
        for (k, &m) in masters.iter().enumerate() {
            let (lo, hi) = slot_range(k, masters.len());
            self.nodes[m].ok(&["CLUSTER", "ADDSLOTSRANGE", &lo.to_string(), &hi.to_string()]);
            let replicas = (0..plan.len()).filter(|&i| plan[i] == Some(m));
            let mut replicas: Vec<String> = replicas.map(|i| self.nodes[i].addr.clone()).collect();
            replicas.sort();
            expected.push((lo, hi, self.nodes[m].addr.clone(), replicas));
        }
        for (i, m) in plan
            .iter()
            .enumerate()
            .filter_map(|(i, m)| Some((i, (*m)?)))
        {
            let (replica, master) = (&self.nodes[i], &self.nodes[m]);
            // REPLICATE fails with "Unknown node" until the handshake with the master is done.
            let what = format!("{} to accept REPLICATE {}", replica.addr, master.addr);
            wait_until(&what, FORM_TIMEOUT, || {
                match replica.query(&["CLUSTER", "REPLICATE", master.id()]) {
                    Value::Okay => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        wait_until("the new cluster to be healthy as planned", left, || {
            self.check_health(Some(&expected))
        });
    }

    /// Every running node says cluster_state:ok and serves a CLUSTER SLOTS that covers all
    /// slots and equals every other node's (and `expected`, if given); every replica's link is up.
    fn check_health(&self, expected: Option<&Vec<SlotRange>>) -> Result<(), String> {
        let mut agreed: Option<(&str, Vec<SlotRange>)> = None;
        for node in self.running() {
            let addr = &node.addr;
            let state = node
                .try_fields(&["CLUSTER", "INFO"], PROBE_TIMEOUT)?
                .remove("cluster_state");
            if state.as_deref() != Some("ok") {
                return Err(format!("{addr} has cluster_state {state:?}"));
            }
            let view = self.slots_view(node)?;
            covers_all_slots(&view).map_err(|gap| format!("{addr}: {gap}"))?;
            if let Some(want) = expected.filter(|want| **want != view) {
                return Err(format!("{addr} serves {view:?}, planned {want:?}"));
            }
            match &agreed {
                Some((other, seen)) if *seen != view => {
                    return Err(format!("{addr} and {other} disagree: {view:?} vs {seen:?}"));
                }
                Some(_) => {}
                None => agreed = Some((addr, view)),
            }
            let mut repl = node.try_fields(&["INFO", "replication"], PROBE_TIMEOUT)?;
            let link = repl.remove("master_link_status");
            if repl.get("role").is_some_and(|r| r == "slave") && link.as_deref() != Some("up") {
                return Err(format!("replica {addr} has master_link_status {link:?}"));
            }
        }
        agreed
            .map(|_| ())
            .ok_or_else(|| "no node is running".to_string())
    }

    fn slots_view(&self, node: &Node) -> Result<Vec<SlotRange>, String> {
        let reply = node.try_query(&["CLUSTER", "SLOTS"], PROBE_TIMEOUT);
        let reply = reply.map_err(|e| format!("{}: {e}", node.addr))?;
        parse_slots(&reply).ok_or_else(|| format!("{}: CLUSTER SLOTS replied {reply:?}", node.addr))
    }

    /// The master of `slot` in `node`'s view.
    fn try_master_of_slot(&self, node: &Node, slot: u16) -> Result<String, String> {
        let view = self.slots_view(node)?;
        let range = view
            .into_iter()
            .find(|r| (r.0..=r.1).contains(&usize::from(slot)));
        range
            .map(|r| r.2)
            .ok_or_else(|| format!("{}: slot {slot} is not served", node.addr))
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_running())
    }

    fn first_running(&self) -> &Node {
        self.running()
            .next()
            .expect("no node of the cluster is running")
    }

    /// The nodes, in the order they were planned.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The node listening on `addr`; panics if there is none.
    pub fn node(&self, addr: &str) -> &Node {
        let node = self.nodes.iter().find(|n| n.addr == addr);
        node.unwrap_or_else(|| panic!("no node {addr} in this cluster"))
    }

    /// Every node's `"ip:port"`, for a gateway's `cluster.seeds`.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }

    /// The configured `cluster-node-timeout`.
    pub fn node_timeout(&self) -> Duration {
        Duration::from_millis(self.node_timeout_ms)
    }

    /// Root of the cluster's temp dir (one sub-dir per port).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs one command on the node at `addr` (the reply may be an error value).
    pub fn query(&self, addr: &str, args: &[&str]) -> Value {
        self.node(addr).query(args)
    }

    /// Runs commands in turn on one connection to `addr` (e.g. `ASKING`, then `GET k`).
    pub fn query_many(&self, addr: &str, commands: &[&[&str]]) -> Vec<Value> {
        self.node(addr).query_many(commands)
    }

    /// Master of `slot` per CLUSTER SLOTS of the first running node that answers.
    pub fn master_of_slot(&self, slot: u16) -> String {
        let mut why = Vec::new();
        for node in self.running() {
            match self.try_master_of_slot(node, slot) {
                Ok(master) => return master,
                Err(e) => why.push(e),
            }
        }
        panic!("no running node could name the master of slot {slot}: {why:?}");
    }

    /// Keys on every slot-owning master together, each asked with `DBSIZE` directly.
    pub fn dbsize(&self) -> i64 {
        let masters = self.masters();
        masters
            .iter()
            .map(|m| int(&self.query(m, &["DBSIZE"])))
            .sum()
    }

    /// Masters that own slots (sorted), per the first running node.
    pub fn masters(&self) -> Vec<String> {
        let view = self
            .slots_view(self.first_running())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut masters: Vec<String> = view.into_iter().map(|r| r.2).collect();
        masters.sort();
        masters.dedup();
        masters
    }

    /// Replicas of `master_addr` not flagged `fail` (sorted), per CLUSTER NODES of the first
    /// running node.
    pub fn replicas_of(&self, master_addr: &str) -> Vec<String> {
        let node = self.first_running();
        let text = value_text(&node.query(&["CLUSTER", "NODES"])).expect("CLUSTER NODES text");
        // Line: <id> <ip:port@cport[,hostname]> <flags> <master-id|-> …
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        let rows: Vec<&[&str]> = rows
            .iter()
            .filter(|f| f.len() >= 4)
            .map(|f| &f[..])
            .collect();
        let addr_of = |f: &[&str]| f[1].split('@').next().unwrap_or_default().to_string();
        let master = rows.iter().find(|f| addr_of(f) == master_addr);
        let master_id =
            master.unwrap_or_else(|| panic!("{master_addr} not in CLUSTER NODES:\n{text}"))[0];
        let gone = |flags: &str| flags.split(',').any(|f| f == "fail" || f == "handshake");
        let replicas = rows.iter().filter(|f| f[3] == master_id && !gone(f[2]));
        let mut replicas: Vec<String> = replicas.map(|f| addr_of(f)).collect();
        replicas.sort();
        replicas
    }

    /// Waits until every running node agrees on a master of `slot` other than `old_addr`, and
    /// returns it (e.g. after killing or stopping `old_addr`).
    pub fn wait_for_master_of_slot_change(
        &self,
        slot: u16,
        old_addr: &str,
        timeout: Duration,
    ) -> String {
        let what = format!("slot {slot} to move away from {old_addr} on every running node");
        wait_until(&what, timeout, || {
            let views = self.running().map(|n| self.try_master_of_slot(n, slot));
            let views = views.collect::<Result<Vec<_>, _>>()?;
            match views.first() {
                Some(new) if new != old_addr && views.iter().all(|v| v == new) => Ok(new.clone()),
                _ => Err(format!("masters seen: {views:?}")),
            }
        })
    }

    /// Waits until the cluster is healthy again: every running node has cluster_state:ok and
    /// the same full CLUSTER SLOTS, and every running replica's link is up.
    pub fn wait_healthy(&self, timeout: Duration) {
        wait_until("the cluster to be healthy", timeout, || {
            self.check_health(None)
        });
    }

    /// Moves `slot` with all its keys from master `from` to master `to`, by hand.
    pub fn migrate_slot(&self, slot: u16, from: &str, to: &str) {
        self.begin_migration(slot, from, to);
        self.finish_migration(slot, from, to);
    }

    /// Marks `slot` IMPORTING on `to` and MIGRATING on `from`; from then on `from` answers
    /// `-ASK` for keys of the slot it no longer holds.
    pub fn begin_migration(&self, slot: u16, from: &str, to: &str) {
        let (slot, source, target) = (slot.to_string(), self.node(from), self.node(to));
        target.ok(&["CLUSTER", "SETSLOT", &slot, "IMPORTING", source.id()]);
        source.ok(&["CLUSTER", "SETSLOT", &slot, "MIGRATING", target.id()]);
    }

    /// Moves one key of a migrating slot from `from` to `to` (MIGRATE; a missing key is fine).
    pub fn migrate_key(&self, slot: u16, key: &str, from: &str, to: &str) {
        assert_eq!(
            key_slot(key.as_bytes()),
            slot,
            "key {key:?} is not in slot {slot}"
        );
        let (target, port) = (self.node(to), self.node(to).port.to_string());
        let reply = self.query(from, &["MIGRATE", &target.ip, &port, key, "0", "5000"]);
        let moved = matches!(value_text(&reply).as_deref(), Some("OK" | "NOKEY"));
        assert!(moved, "MIGRATE {key} {from} → {to}: {reply:?}");
    }

    /// Moves the slot's remaining keys, assigns the slot to `to` on every running master and
    /// waits until every running node sees `to` as its owner.
    pub fn finish_migration(&self, slot: u16, from: &str, to: &str) {
        let (source, target) = (self.node(from), self.node(to));
        let (slot_s, port) = (slot.to_string(), target.port.to_string());
        for _ in 0..100_000 {
            let keys = match source.query(&["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]) {
                Value::Array(items) => items.iter().filter_map(value_text).collect::<Vec<_>>(),
                other => panic!("GETKEYSINSLOT on {from}: {other:?}"),
            };
            if keys.is_empty() {
                break;
            }
            let mut args = vec!["MIGRATE", &target.ip, &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            source.ok(&args);
        }
        // Target first, so that the source's MOVED never points at a node that does not own it.
        let others = self.running().filter(|n| n.addr != to && n.addr != from);
        let others = others.filter(|n| n.try_role() == Some(Role::Master));
        for node in [target, source].into_iter().chain(others) {
            node.ok(&["CLUSTER", "SETSLOT", &slot_s, "NODE", target.id()]);
        }
        wait_until(
            &format!("every running node to see slot {slot} on {to}"),
            FORM_TIMEOUT,
            || {
                let owners = self.running().map(|n| self.try_master_of_slot(n, slot));
                let owners = owners.collect::<Result<Vec<_>, _>>()?;
                if owners.iter().all(|o| o == to) {
                    Ok(())
                } else {
                    Err(format!("owners: {owners:?}"))
                }
            },
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if thread::panicking() {
            for node in &self.nodes {
                let log = node.log_path();
                eprintln!(
                    "--- {} ({}), last 20 lines ---\n{}",
                    node.addr,
                    log.display(),
                    tail(&log, 20)
                );
            }
        }
        for node in &self.nodes {
            node.kill();
        }
    }
}

fn parse_slots(reply: &Value) -> Option<Vec<SlotRange>> {
    let addr = |v: &Value| {
        let Value::Array(f) = v else { return None };
        Some(format!(
            "{}:{}",
            value_text(f.first()?)?,
            value_text(f.get(1)?)?
        ))
    };
    let Value::Array(entries) = reply else {
        return None;
    };
    let mut ranges = Vec::new();
    for entry in entries {
        let Value::Array(fields) = entry else {
            return None;
        };
        let (start, end) = (value_text(fields.first()?)?, value_text(fields.get(1)?)?);
        let mut replicas = fields
            .get(3..)?
            .iter()
            .map(addr)
            .collect::<Option<Vec<_>>>()?;
        replicas.sort();
        ranges.push((
            start.parse().ok()?,
            end.parse().ok()?,
            addr(fields.get(2)?)?,
            replicas,
        ));
    }
    ranges.sort();
    Some(ranges)
}

/// Slots of master `k` of `n`, split as `redis-cli --cluster create` does (0-5460,
/// 5461-10922, 10923-16383 for three masters).
fn slot_range(k: usize, n: usize) -> (usize, usize) {
    let last = |k: usize| ((k + 1) as f64 * SLOTS as f64 / n as f64 - 1.0).round() as usize;
    let lo = if k == 0 { 0 } else { last(k - 1) + 1 };
    (lo, if k + 1 == n { SLOTS - 1 } else { last(k) })
}

fn covers_all_slots(view: &[SlotRange]) -> Result<(), String> {
    let mut next = 0;
    for (lo, hi, _, _) in view {
        if *lo != next {
            return Err(format!("slots {next}..{lo} are not served"));
        }
        next = hi + 1;
    }
    if next == SLOTS {
        Ok(())
    } else {
        Err(format!("slots {next}..{SLOTS} are not served"))
    }
}

/// Redis Cluster hash slot of `key` (CRC16/XMODEM of the key or its `{hash tag}`, mod 16384),
/// computed locally so tests can pick keys for a slot without asking a server.
pub fn key_slot(key: &[u8]) -> u16 {
    let tag = |open: usize| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    };
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(tag)
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in hashed {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// A key `{tag}name` whose hash tag puts it in `slot` (the same tag for every `name`).
pub fn key_in_slot(slot: u16, name: &str) -> String {
    assert!(slot < 16384, "slot {slot} out of range");
    // Numeric tags hit every slot well within this bound (checked by tests/harness.rs).
    let tag = (0..2_000_000u32)
        .map(|n| n.to_string())
        .find(|t| key_slot(t.as_bytes()) == slot);
    let tag = tag.unwrap_or_else(|| panic!("no numeric hash tag found for slot {slot}"));
    format!("{{{tag}}}{name}")
}
