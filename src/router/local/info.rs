//! INFO [section ...]: the sections asked for, in Redis' order, each made by meridian (its own
//! facts, [`super::info_own`]) or folded from one INFO fan-out to every master
//! ([`crate::reply::info`]). Beside Redis' sections: meridian's `# Proxy` and `# Servers` (in
//! predixy's layout, so existing dashboards keep working) and predixy's fields in `# Stats`.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::client::ClientState;
use crate::reply::info::{Fold, InfoPiece};
use crate::reply::merge::{Merge, MergeKind};
use crate::reply::queue::Seq;
use crate::resp::encode;
use crate::router::request::Request;
use crate::router::send::send_parts;
use crate::router::worker::Worker;

use super::info_own;

/// How a section is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Make {
    /// By meridian alone.
    Own,
    /// Folded from the masters' replies.
    Masters(Fold),
    /// `# Stats`: meridian's counters with the masters' keyspace counters.
    Stats,
}

/// Every section, in output order: name, header, how it is made, part of the default set.
const SECTIONS: &[(&str, &str, Make, bool)] = &[
    ("server", "Server", Make::Own, true),
    ("proxy", "Proxy", Make::Own, true),
    ("clients", "Clients", Make::Own, true),
    ("memory", "Memory", Make::Masters(Fold::Memory), true),
    (
        "persistence",
        "Persistence",
        Make::Masters(Fold::Persistence),
        true,
    ),
    ("stats", "Stats", Make::Stats, true),
    ("replication", "Replication", Make::Own, true),
    ("cpu", "CPU", Make::Own, true),
    ("modules", "Modules", Make::Own, true),
    (
        "commandstats",
        "Commandstats",
        Make::Masters(Fold::Commandstats),
        false,
    ),
    (
        "errorstats",
        "Errorstats",
        Make::Masters(Fold::Errorstats),
        true,
    ),
    ("cluster", "Cluster", Make::Own, true),
    ("servers", "Servers", Make::Own, true),
    ("workers", "Workers", Make::Own, false),
    ("keyspace", "Keyspace", Make::Masters(Fold::Keyspace), true),
];

/// The sections `args` (INFO's arguments, lowercase) select, in output order: the default
/// set without arguments; `all` and `everything` add commandstats; unknown names select
/// nothing, as in Redis.
fn selected(args: &[String]) -> Vec<(&'static str, &'static str, Make)> {
    let default = args.is_empty() || args.iter().any(|a| a == "default");
    let all = args.iter().any(|a| a == "all" || a == "everything");
    SECTIONS
        .iter()
        .filter(|(name, _, _, in_default)| {
            all || (default && *in_default) || args.iter().any(|a| a == name)
        })
        .map(|&(name, header, make, _)| (name, header, make))
        .collect()
}

/// The pieces of the answer: meridian's text with the folds between; adjacent text merged.
fn plan(worker: &Worker, sections: &[(&str, &str, Make)]) -> Vec<InfoPiece> {
    fn push_text(pieces: &mut Vec<InfoPiece>, t: String) {
        match pieces.last_mut() {
            Some(InfoPiece::Text(last)) => last.push_str(&t),
            _ => pieces.push(InfoPiece::Text(t)),
        }
    }
    let mut pieces: Vec<InfoPiece> = Vec::new();
    for (i, (name, header, make)) in sections.iter().enumerate() {
        let mut head = String::new();
        if i > 0 {
            head.push_str("\r\n");
        }
        head.push_str(&format!("# {header}\r\n"));
        match make {
            Make::Own => {
                head.push_str(&info_own::render(worker, name));
                push_text(&mut pieces, head);
            }
            Make::Masters(fold) => {
                push_text(&mut pieces, head);
                pieces.push(InfoPiece::Fold(*fold));
            }
            Make::Stats => {
                head.push_str(&info_own::stats_head(worker));
                push_text(&mut pieces, head);
                pieces.push(InfoPiece::Fold(Fold::Stats));
                push_text(&mut pieces, info_own::stats_tail(worker));
            }
        }
    }
    pieces
}

/// Answers INFO [section ...].
pub fn handle(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    let args: Vec<String> = req
        .args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    if let Some(ask) = super::info_latency::ask(&args) {
        return latency(worker, client, seq, &ask);
    }
    let sections = selected(&args);
    let pieces = plan(worker, &sections);
    let folds: Vec<Fold> = pieces
        .iter()
        .filter_map(|p| match p {
            InfoPiece::Fold(f) => Some(*f),
            InfoPiece::Text(_) => None,
        })
        .collect();
    let kind = MergeKind::Info {
        pieces,
        proto: client.proto,
    };
    if folds.is_empty() {
        return client.reply(seq, crate::reply::merge::combine(&kind, &[]));
    }
    let topo = worker.topology();
    let masters: Vec<_> = topo.masters().collect();
    if masters.is_empty() {
        // No map yet: the folds come out empty, meridian's own sections are still worth having.
        return client.reply(seq, crate::reply::merge::combine(&kind, &[]));
    }
    // One INFO to every master, naming only the sections the folds need.
    let mut wanted: Vec<&[u8]> = vec![b"INFO"];
    for f in &folds {
        let s = f.section().as_bytes();
        if !wanted.contains(&s) {
            wanted.push(s);
        }
    }
    let mut wire = BytesMut::new();
    encode::command(&mut wire, &wanted);
    let merge = Merge::new(client.queue.clone(), seq, kind, masters.len());
    send_parts(worker, &merge, &masters, &Bytes::from(wire), 2);
}

/// predixy's latency monitor text (see [`super::info_latency`]).
fn latency(worker: &Worker, client: &ClientState, seq: Seq, ask: &super::info_latency::Ask) {
    // The set in force now: names and histograms of one set, even if a reload comes between.
    let set = worker.shared.stats.latency_set();
    let topo = worker.topology();
    let nodes: Vec<&str> = topo.nodes.iter().map(|n| n.addr.as_ref()).collect();
    match super::info_latency::render(&worker.shared.stats, &set, &nodes, ask) {
        Ok(text) => {
            let mut out = BytesMut::new();
            encode::verbatim(&mut out, "txt", text.as_bytes(), client.proto);
            client.reply(seq, out.freeze());
        }
        Err(e) => client.reply_error(seq, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(args: &[&str]) -> Vec<&'static str> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        selected(&args).into_iter().map(|(n, _, _)| n).collect()
    }

    #[test]
    fn section_selection_follows_redis() {
        let default = names(&[]);
        assert!(default.contains(&"server") && default.contains(&"keyspace"));
        assert!(!default.contains(&"commandstats"));
        assert_eq!(names(&["default"]), default);
        assert!(names(&["all"]).contains(&"commandstats"));
        assert_eq!(names(&["everything"]), names(&["all"]));
        // Asked-for sections come out in Redis' order, whatever the order asked.
        assert_eq!(names(&["memory", "clients"]), vec!["clients", "memory"]);
        assert!(names(&["nosuch"]).is_empty());
    }
}
