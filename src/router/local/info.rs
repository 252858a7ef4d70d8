//! INFO: meridian's own sections (`# Proxy`, `# Stats`, `# Servers`, in predixy's layout so
//! existing dashboards keep working) plus `# Keyspace` summed over every master.

use std::fmt::Write as _;
use std::rc::Rc;

use bytes::BytesMut;

use crate::client::ClientState;
use crate::reply::merge::{Merge, MergeKind};
use crate::reply::queue::Seq;
use crate::resp::encode;
use crate::router::request::Request;
use crate::router::send::send_parts;
use crate::router::worker::Worker;

use super::answer::REDIS_COMPAT_VERSION;

/// The sections meridian makes itself, in output order.
const OWN_SECTIONS: [&str; 4] = ["server", "proxy", "stats", "servers"];

/// Answers INFO [section ...].
pub fn handle(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    let wanted: Vec<String> = req
        .args
        .iter()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| matches!(w.as_str(), "all" | "default" | "everything"));
    let want = |s: &str| all || wanted.iter().any(|w| w == s);
    let mut text = String::new();
    for section in OWN_SECTIONS {
        if want(section) {
            render(worker, section, &mut text);
        }
    }
    if !want("keyspace") {
        let mut out = BytesMut::with_capacity(text.len() + 16);
        encode::verbatim(&mut out, "txt", text.as_bytes(), client.proto);
        return client.reply(seq, out.freeze());
    }
    let topo = worker.topology();
    let masters: Vec<_> = topo.masters().collect();
    let merge = Merge::new(
        client.queue.clone(),
        seq,
        MergeKind::InfoKeyspace {
            head: text,
            proto: client.proto,
        },
        masters.len().max(1),
    );
    if masters.is_empty() {
        merge.part_done(0, bytes::Bytes::from_static(b"$0\r\n\r\n"));
        return;
    }
    let wire = bytes::Bytes::from_static(b"*2\r\n$4\r\nINFO\r\n$8\r\nkeyspace\r\n");
    send_parts(worker, &merge, &masters, &wire, 2);
}

fn render(worker: &Worker, section: &str, out: &mut String) {
    let shared = &worker.shared;
    let config = &shared.config;
    match section {
        "server" => {
            let _ = write!(
                out,
                "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\nmeridian_version:{}\r\nprocess_id:{}\r\nuptime_in_seconds:{}\r\n\r\n",
                REDIS_COMPAT_VERSION,
                env!("CARGO_PKG_VERSION"),
                std::process::id(),
                shared.started.elapsed().as_secs(),
            );
        }
        "proxy" => {
            let _ = write!(
                out,
                "# Proxy\r\nVersion:{}\r\nName:meridian\r\nBind:{}\r\nRedisMode:proxy\r\nSingleThread:{}\r\nWorkerThreads:{}\r\nLocalDC:{}\r\nUptime:{}\r\nClients:{}\r\n\r\n",
                env!("CARGO_PKG_VERSION"),
                config.listen,
                config.effective_workers() == 1,
                config.effective_workers(),
                config.local_dc.as_deref().unwrap_or(""),
                shared.started.elapsed().as_secs(),
                shared.client_count(),
            );
        }
        "stats" => {
            let t = shared.stats.totals();
            let _ = write!(
                out,
                "# Stats\r\nAccept:{}\r\nClientConnections:{}\r\nTotalRequests:{}\r\nTotalResponses:{}\r\nTotalRecvClientBytes:{}\r\nTotalSendServerBytes:{}\r\nTotalRecvServerBytes:{}\r\nTotalSendClientBytes:{}\r\nRedirects:{}\r\nReadRetries:{}\r\nProtocolErrors:{}\r\nAuthFailures:{}\r\n\r\n",
                t.accepts,
                t.client_connections,
                t.requests,
                t.responses,
                t.recv_client_bytes,
                t.send_server_bytes,
                t.recv_server_bytes,
                t.send_client_bytes,
                t.redirects,
                t.read_retries,
                t.protocol_errors,
                t.auth_failures,
            );
        }
        "servers" => {
            let topo = worker.topology();
            out.push_str("# Servers\r\n");
            for node in &topo.nodes {
                let t = shared.stats.node_totals(&node.addr);
                let now = std::time::Instant::now();
                let (breaker, failures, rtt, loading, link) = match shared.health.get(&node.addr) {
                    Some(h) => (
                        h.state(now).as_str(),
                        h.consecutive_failures(),
                        h.probe_rtt(now, std::time::Duration::from_secs(3600))
                            .map_or("-".to_string(), |(ms, _)| format!("{ms:.3}")),
                        h.loading.load(std::sync::atomic::Ordering::Relaxed),
                        h.link_up.load(std::sync::atomic::Ordering::Relaxed),
                    ),
                    None => ("closed", 0, "-".to_string(), false, true),
                };
                let shard = &topo.shards[node.shard as usize];
                let group = &topo.node(shard.master).addr;
                let _ = write!(
                    out,
                    "Server:{}\r\nRole:{}\r\nGroup:{}\r\nDC:{}\r\nCurrentIsFail:{}\r\nConnections:{}\r\nConnect:{}\r\nRequests:{}\r\nResponses:{}\r\nSendBytes:{}\r\nRecvBytes:{}\r\nFailures:{}\r\nBreaker:{breaker}\r\nConsecutiveFailures:{failures}\r\nRttMs:{rtt}\r\nLoading:{}\r\nLinkUp:{}\r\n\r\n",
                    node.addr,
                    node.role.as_str(),
                    group,
                    node.dc.as_deref().unwrap_or(crate::config::UNKNOWN_DC),
                    u8::from(breaker != "closed"),
                    t.connections,
                    t.connects,
                    t.requests,
                    t.responses,
                    t.send_bytes,
                    t.recv_bytes,
                    t.failures,
                    u8::from(loading),
                    u8::from(link),
                );
            }
            if topo.nodes.is_empty() {
                out.push_str("\r\n");
            }
        }
        _ => {}
    }
}
