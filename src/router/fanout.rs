//! Commands that act on the whole keyspace: sent to every master (or every node, or one
//! master) and combined as one Redis would answer. Which commands fan out, to whom, and how
//! their replies combine is the table in [`rule`].

use std::rc::Rc;

use bytes::BytesMut;

use crate::backend::Pending;
use crate::client::ClientState;
use crate::policy::Access;
use crate::reply::merge::{Merge, MergeKind};
use crate::reply::queue::Seq;
use crate::reply::scan;
use crate::resp::encode;
use crate::resp::int::string2ll;
use crate::slot::key_slot;
use crate::topology::NodeId;

use super::request::Request;
use super::send::{send_parts, send_parts_fresh};
use super::worker::Worker;

/// Which nodes a fan-out reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Targets {
    /// Every master (the whole keyspace once).
    Masters,
    /// Every node, replicas included (script cache, so EVALSHA survives a failover).
    AllNodes,
    /// Any one master (the answer is the same everywhere).
    OneMaster,
    /// Every master, each on a fresh connection of its own: the command must not wait
    /// behind the shared connection (SCRIPT KILL while a script holds the node).
    MastersFresh,
}

/// How one fan-out command is carried out.
#[derive(Debug, Clone)]
pub struct Rule {
    pub targets: Targets,
    pub merge: MergeKind,
}

/// The fan-out rule for `name` (lowercase) with its first argument `sub`, if it fans out.
pub fn rule(name: &str, sub: Option<&[u8]>) -> Option<Rule> {
    use MergeKind::*;
    use Targets::*;
    let sub = sub.map(|s| String::from_utf8_lossy(s).to_lowercase());
    let (targets, merge) = match (name, sub.as_deref()) {
        ("flushall" | "flushdb", _) => (Masters, AllOk),
        ("dbsize", _) => (Masters, SumInts),
        ("keys", _) => (Masters, Concat),
        ("randomkey", _) => (Masters, FirstNonNil),
        ("lastsave", _) => (Masters, MinInt),
        ("script", Some("load")) => (AllNodes, First),
        ("script", Some("flush")) => (AllNodes, AllOk),
        ("script", Some("exists")) => (Masters, AndInts),
        ("function", Some("load")) => (Masters, First),
        ("function", Some("delete" | "flush" | "restore")) => (Masters, AllOk),
        ("function", Some("list" | "dump" | "stats")) => (OneMaster, First),
        ("script" | "function", Some("kill")) => (MastersFresh, AnyOk),
        ("memory", Some("purge")) => (Masters, AllOk),
        ("pubsub", Some("channels" | "shardchannels")) => (Masters, Union),
        // NUMSUB: each channel as counted by the master of its slot, where PUBLISH goes and
        // meridian subscribes it; NUMPAT: every master holds meridian's patterns.
        ("pubsub", Some("numsub")) => (Masters, PickPairs { from: Vec::new() }),
        ("pubsub", Some("shardnumsub")) => (Masters, SumPairs),
        ("pubsub", Some("numpat")) => (Masters, MaxInt),
        _ => return None,
    };
    Some(Rule { targets, merge })
}

/// Sends `req` to the rule's targets and merges the replies into request `seq`.
pub fn fan_out(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request, rule: Rule) {
    let topo = worker.topology();
    let mut nodes: Vec<NodeId> = match rule.targets {
        Targets::Masters | Targets::MastersFresh => topo.masters().collect(),
        Targets::AllNodes => (0..topo.nodes.len() as NodeId).collect(),
        Targets::OneMaster => topo.masters().take(1).collect(),
    };
    if nodes.is_empty() {
        return client.reply_error(seq, "CLUSTERDOWN meridian: the cluster map is empty");
    }
    if matches!(rule.merge, MergeKind::FirstNonNil) {
        // RANDOMKEY: start at a random master so every shard's keys can come up.
        let start = rand::random_range(0..nodes.len());
        nodes.rotate_left(start);
    }
    let kind = match rule.merge {
        MergeKind::PickPairs { .. } => {
            // Channels whose slot has no master count on the first one (zero, as anywhere).
            let from = req.args.iter().skip(2).map(|channel| {
                topo.master_of(key_slot(channel))
                    .and_then(|m| nodes.iter().position(|&n| n == m))
                    .unwrap_or(0)
            });
            MergeKind::PickPairs {
                from: from.collect(),
            }
        }
        other => other,
    };
    let merge = Merge::new(client.queue.clone(), seq, kind, nodes.len());
    if rule.targets == Targets::MastersFresh {
        return send_parts_fresh(worker, &merge, &nodes, &req.wire());
    }
    send_parts(worker, &merge, &nodes, &req.wire(), client.proto);
}

/// WAIT numreplicas timeout: on every master this client wrote to (all masters when none),
/// over the shared connections, the smallest count wins. WAIT holds a shared connection while
/// it waits, so its timeout is capped at `breaker.server_timeout` (0, "forever", included).
pub fn wait(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    if req.args.len() != 3 {
        return client.reply_error(seq, "ERR wrong number of arguments for 'wait' command");
    }
    let number = |i: usize| string2ll(req.args.get(i).unwrap_or_default());
    let (Some(replicas), Some(timeout)) = (number(1), number(2)) else {
        return client.reply_error(seq, "ERR value is not an integer or out of range");
    };
    if timeout < 0 {
        return client.reply_error(seq, "ERR timeout is negative");
    }
    let cap = (worker.shared.config().breaker.server_timeout.as_millis() / 2).max(1) as i64;
    let timeout = if timeout == 0 { cap } else { timeout.min(cap) };
    let mut out = BytesMut::new();
    encode::command(
        &mut out,
        &[
            b"WAIT",
            replicas.to_string().as_bytes(),
            timeout.to_string().as_bytes(),
        ],
    );
    let wire = out.freeze();
    let addrs: Vec<std::sync::Arc<str>> = if client.touched.is_empty() {
        let topo = worker.topology();
        topo.masters().map(|m| topo.node(m).addr.clone()).collect()
    } else {
        client.touched.clone()
    };
    if addrs.is_empty() {
        return client.reply_error(seq, "CLUSTERDOWN meridian: the cluster map is empty");
    }
    let merge = Merge::new(client.queue.clone(), seq, MergeKind::MinInt, addrs.len());
    for (part, addr) in addrs.iter().enumerate() {
        let be = worker.backend_for_addr(addr, client.proto);
        be.send(&wire, Pending::to_part(merge.clone(), part, None));
    }
}

/// SCAN: one page from the shard the client cursor names, with the cursor rewritten.
pub fn scan(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    let Some(raw) = req.args.get(1) else {
        return client.reply_error(seq, "ERR wrong number of arguments for 'scan' command");
    };
    let cursor = match scan::decode(raw) {
        Ok(c) => c,
        Err(e) => return client.reply_error(seq, &e.to_string()),
    };
    let topo = worker.topology();
    let current = scan::start(cursor, &topo);
    let be = match worker.backend_for_slot(current.slot, Access::Read, client.proto) {
        Ok(be) => be,
        Err(e) => return client.reply_error(seq, &e.to_string()),
    };
    let mut out = BytesMut::with_capacity(req.frame.len() + 16);
    encode::array_header(&mut out, req.args.len());
    encode::bulk(&mut out, req.args.get(0).unwrap_or(b"SCAN"));
    encode::bulk(&mut out, current.backend.to_string().as_bytes());
    for a in req.args.iter().skip(2) {
        encode::bulk(&mut out, a);
    }
    let wire = out.freeze();
    let merge = Merge::new(
        client.queue.clone(),
        seq,
        MergeKind::Scan { current, topo },
        1,
    );
    be.send(&wire, Pending::to_part(merge, 0, None));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_the_fanout_commands() {
        assert_eq!(rule("dbsize", None).unwrap().targets, Targets::Masters);
        assert_eq!(
            rule("script", Some(b"LOAD")).unwrap().targets,
            Targets::AllNodes
        );
        assert_eq!(
            rule("function", Some(b"list")).unwrap().targets,
            Targets::OneMaster
        );
        assert!(rule("script", Some(b"debug")).is_none());
        assert_eq!(
            rule("function", Some(b"KILL")).unwrap().targets,
            Targets::MastersFresh
        );
        assert!(rule("get", None).is_none());
    }
}
