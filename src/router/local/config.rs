//! CONFIG through meridian (admin users only: the command table flags CONFIG `admin`, so
//! [`crate::router::acl`] refuses it with Redis' NOPERM before it gets here).
//!
//! - `CONFIG GET pattern …`: one master's parameters, then meridian's own live settings under
//!   `meridian.` (matched with Redis' glob, case-insensitively as Redis matches parameters).
//! - `CONFIG SET param value …`: every node, masters and replicas, so the cluster behaves the
//!   same whichever node serves a request; a failure names the nodes that refused. meridian's
//!   own settings are refused: they change by editing the config file and reloading it.
//! - `CONFIG RESETSTAT`: meridian's INFO counters and every node's.
//! - `CONFIG REWRITE`: every node writes its own config file, as a user who just ran
//!   `CONFIG SET` through meridian expects; meridian's file is ops' and is never rewritten.
//! - `CONFIG HELP`: one master's.

use std::rc::Rc;
use std::sync::Arc;

use crate::acl::glob;
use crate::client::ClientState;
use crate::command::CommandTable;
use crate::config::settings::{PREFIX, settings};
use crate::policy::Access;
use crate::reply::merge::{Merge, MergeKind, combine};
use crate::reply::queue::Seq;
use crate::router::request::Request;
use crate::router::send::{random_slot, send_parts, send_to_slot};
use crate::router::worker::Worker;
use crate::topology::NodeId;

/// Answers a CONFIG subcommand.
pub fn handle(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let spec = match table.resolve(&req.args) {
        Ok(spec) => spec,
        Err(e) => return client.reply_error(seq, &e.to_string()),
    };
    if client.tx.in_multi {
        // A transaction runs on one node; CONFIG acts on several and cannot be part of it.
        client.tx.mark_failed();
        return client.reply_error(
            seq,
            "ERR CONFIG inside MULTI is not supported through meridian: it acts on several nodes, a transaction on one",
        );
    }
    match spec.name.as_ref() {
        "config|get" => get(worker, client, seq, req),
        "config|set" => set(worker, client, seq, req),
        "config|resetstat" => {
            worker.shared.stats.reset();
            every_node(worker, client, seq, req, "CONFIG RESETSTAT");
        }
        "config|rewrite" => every_node(worker, client, seq, req, "CONFIG REWRITE"),
        _ => send_to_slot(worker, client, seq, random_slot(), Access::Read, req.wire()),
    }
}

/// meridian's settings whose name matches one of `patterns` (Redis matches CONFIG GET
/// patterns without regard to case; every name here is lower case).
pub fn matching(all: Vec<(String, String)>, patterns: &[Vec<u8>]) -> Vec<(String, String)> {
    all.into_iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob::matches(p, name.as_bytes())))
        .collect()
}

fn get(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    let patterns: Vec<Vec<u8>> = req
        .args
        .iter()
        .skip(2)
        .map(|p| p.to_ascii_lowercase())
        .collect();
    let own = matching(settings(&worker.shared.config()), &patterns);
    let kind = MergeKind::ConfigGet {
        own,
        proto: client.proto,
    };
    let topo = worker.topology();
    let Some(master) = topo.masters().next() else {
        // No map yet: meridian's own settings are still worth having.
        return client.reply(seq, combine(&kind, &[]));
    };
    let merge = Merge::new(client.queue.clone(), seq, kind, 1);
    // RESP2 whatever the client speaks: the merge reads a flat array and writes the client's.
    send_parts(worker, &merge, &[master], &req.wire(), 2);
}

fn set(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    if !req.args.len().is_multiple_of(2) {
        return client.reply_error(
            seq,
            "ERR wrong number of arguments for 'config|set' command",
        );
    }
    let own = (2..req.args.len()).step_by(2).find_map(|i| {
        let name = String::from_utf8_lossy(req.args.get(i).unwrap_or_default()).to_lowercase();
        name.starts_with(PREFIX).then_some(name)
    });
    if let Some(name) = own {
        return client.reply_error(seq, &own_setting_refusal(&name));
    }
    every_node(worker, client, seq, req, "CONFIG SET");
}

/// Why `CONFIG SET meridian.…` is refused, and what to do instead.
pub fn own_setting_refusal(name: &str) -> String {
    format!(
        "ERR '{name}' is one of meridian's own settings: CONFIG SET through meridian changes the cluster's nodes only; change meridian's settings by editing its config file and reloading it"
    )
}

/// Sends the request to every node of the map, masters and replicas; `+OK` when all took it.
fn every_node(
    worker: &Rc<Worker>,
    client: &ClientState,
    seq: Seq,
    req: &Request,
    command: &'static str,
) {
    let topo = worker.topology();
    let nodes: Vec<NodeId> = (0..topo.nodes.len() as NodeId).collect();
    if nodes.is_empty() {
        return client.reply_error(seq, "CLUSTERDOWN meridian: the cluster map is empty");
    }
    let addrs: Vec<Arc<str>> = nodes.iter().map(|&n| topo.node(n).addr.clone()).collect();
    let kind = MergeKind::EveryNode { command, addrs };
    let merge = Merge::new(client.queue.clone(), seq, kind, nodes.len());
    send_parts(worker, &merge, &nodes, &req.wire(), 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_names_with_redis_globs() {
        let all = vec![
            ("meridian.workers".to_string(), "1".to_string()),
            ("meridian.latency_ms.dc1.dc2".to_string(), "40".to_string()),
            (
                "meridian.breaker.failure_limit".to_string(),
                "5".to_string(),
            ),
        ];
        let names = |pats: &[&str]| -> Vec<String> {
            let pats: Vec<Vec<u8>> = pats.iter().map(|p| p.as_bytes().to_vec()).collect();
            matching(all.clone(), &pats)
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        assert_eq!(names(&["*"]).len(), 3);
        assert_eq!(
            names(&["meridian.latency_ms.*"]),
            ["meridian.latency_ms.dc1.dc2"]
        );
        assert_eq!(
            names(&["meridian.w?rkers", "nomatch"]),
            ["meridian.workers"]
        );
        assert_eq!(
            names(&["*.[b]reaker.*"]),
            ["meridian.breaker.failure_limit"]
        );
        assert!(names(&["maxmemory"]).is_empty());
        assert!(own_setting_refusal("meridian.workers").contains("config file"));
    }
}
