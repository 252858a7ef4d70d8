//! CLIENT: the subcommands about the client's connection to meridian (ID, SETNAME, GETNAME,
//! SETINFO, INFO, LIST, KILL, REPLY, NO-EVICT, UNBLOCK). The backend connections are
//! meridian's, not the client's; only UNBLOCK reaches a node, for the connection of the client's
//! own that a blocking command waits on.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::backend::Pending;
use crate::client::{ClientState, ReplyMode};
use crate::clients::KillFilter;
use crate::reply::queue::Seq;
use crate::resp::encode;
use crate::router::request::Request;
use crate::router::worker::Worker;

use super::answer::{eq, ok, valid_name, wrong_arity};

/// Subcommands Redis has that meridian refuses, with the reason.
const REFUSED: &[(&str, &str)] = &[
    (
        "tracking",
        "invalidation messages cannot be routed from every node",
    ),
    ("caching", "client tracking is not supported"),
    ("getredir", "client tracking is not supported"),
    ("trackinginfo", "client tracking is not supported"),
    (
        "pause",
        "it would pause the whole cluster for every gateway",
    ),
    ("unpause", "CLIENT PAUSE is not supported"),
    (
        "no-touch",
        "it applies to backend connections, not to gateway clients",
    ),
];

fn text_reply(client: &ClientState, seq: Seq, text: &str) {
    let mut out = BytesMut::with_capacity(text.len() + 16);
    encode::verbatim(&mut out, "txt", text.as_bytes(), client.proto);
    client.reply(seq, out.freeze());
}

/// Answers CLIENT <subcommand>.
pub fn handle(worker: &Rc<Worker>, client: &mut ClientState, seq: Seq, req: &Request) {
    let args = &req.args;
    let Some(sub) = args.get(1) else {
        return wrong_arity(client, seq, "client");
    };
    let sub_lower = String::from_utf8_lossy(sub).to_lowercase();
    let registry = &worker.shared.clients_registry;
    let mut out = BytesMut::new();
    match (sub_lower.as_str(), args.len()) {
        ("id", 2) => encode::integer(&mut out, client.id as i64),
        ("getname", 2) => match &client.name {
            Some(n) => encode::bulk(&mut out, n),
            None => encode::null(&mut out, client.proto),
        },
        ("setname", 3) => {
            let n = args.get(2).unwrap_or_default();
            if let Err(e) = valid_name(n) {
                return client.reply_error(seq, e);
            }
            client.name = (!n.is_empty()).then(|| Bytes::copy_from_slice(n));
            if let Some(entry) = &client.entry {
                *entry.name.lock() = String::from_utf8_lossy(n).into_owned();
            }
            return ok(client, seq);
        }
        ("setinfo", 4) => {
            let attr = args.get(2).unwrap_or_default();
            let value = args.get(3).unwrap_or_default();
            let text = String::from_utf8_lossy(value).into_owned();
            if eq(attr, "lib-name") {
                client.lib_name = Some(Bytes::copy_from_slice(value));
                if let Some(e) = &client.entry {
                    e.lib.lock().0 = text;
                }
            } else if eq(attr, "lib-ver") {
                client.lib_ver = Some(Bytes::copy_from_slice(value));
                if let Some(e) = &client.entry {
                    e.lib.lock().1 = text;
                }
            } else {
                return client.reply_error(
                    seq,
                    &format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(attr)
                    ),
                );
            }
            return ok(client, seq);
        }
        ("info", 2) => {
            let line = registry.list(Some(&[client.id]), (client.id, argv_mem(req)));
            return text_reply(client, seq, &line);
        }
        ("reply", 3) => return reply_mode(client, seq, args.get(2).unwrap_or_default()),
        ("no-evict", 3) => {
            let v = args.get(2).unwrap_or_default();
            if eq(v, "on") {
                client.no_evict = true;
            } else if eq(v, "off") {
                client.no_evict = false;
            } else {
                return client.reply_error(seq, "ERR syntax error");
            }
            return ok(client, seq);
        }
        ("unblock", 3 | 4) => return unblock(worker, client, seq, req),
        ("list", n) => {
            let ids: Option<Vec<u64>> = match n {
                2 => None,
                _ if eq(args.get(2).unwrap_or_default(), "id") => {
                    let parsed: Option<Vec<u64>> = args
                        .iter()
                        .skip(3)
                        .map(|a| std::str::from_utf8(a).ok()?.parse().ok())
                        .collect();
                    match parsed {
                        Some(ids) if !ids.is_empty() => Some(ids),
                        _ => return client.reply_error(seq, "ERR Invalid client ID"),
                    }
                }
                _ if eq(args.get(2).unwrap_or_default(), "type") && n == 4 => {
                    if eq(args.get(3).unwrap_or_default(), "normal") {
                        None
                    } else {
                        Some(Vec::new())
                    }
                }
                _ => return client.reply_error(seq, "ERR syntax error"),
            };
            let text = registry.list(ids.as_deref(), (client.id, argv_mem(req)));
            return text_reply(client, seq, &text);
        }
        ("kill", 3) => {
            // Old form: CLIENT KILL addr:port.
            let filter = KillFilter {
                addr: Some(String::from_utf8_lossy(args.get(2).unwrap_or_default()).into_owned()),
                ..KillFilter::default()
            };
            if registry.kill(&filter) == 0 {
                return client.reply_error(seq, "ERR No such client");
            }
            return ok(client, seq);
        }
        ("kill", n) if n >= 4 && n % 2 == 0 => {
            let mut filter = KillFilter {
                skip: Some(client.id),
                ..KillFilter::default()
            };
            for pair in args.spans[2..].chunks(2) {
                let key = String::from_utf8_lossy(&args.buf[pair[0].clone()]).to_lowercase();
                let value = String::from_utf8_lossy(&args.buf[pair[1].clone()]).into_owned();
                match key.as_str() {
                    "id" => match value.parse() {
                        Ok(id) => filter.id = Some(id),
                        Err(_) => {
                            return client
                                .reply_error(seq, "ERR client-id should be greater than 0");
                        }
                    },
                    "addr" => filter.addr = Some(value),
                    "skipme" => match value.to_lowercase().as_str() {
                        "yes" => filter.skip = Some(client.id),
                        "no" => filter.skip = None,
                        _ => return client.reply_error(seq, "ERR syntax error"),
                    },
                    _ => return client.reply_error(seq, "ERR syntax error"),
                }
            }
            encode::integer(&mut out, registry.kill(&filter) as i64);
        }
        ("unblock", n) if n > 4 => {
            return client.reply_error(
                seq,
                &format!(
                    "ERR unknown subcommand or wrong number of arguments for '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(sub)
                ),
            );
        }
        (
            "id" | "getname" | "setname" | "setinfo" | "info" | "kill" | "reply" | "no-evict"
            | "unblock",
            _,
        ) => {
            return wrong_arity(client, seq, &format!("client|{sub_lower}"));
        }
        (other, _) => {
            if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == other) {
                return client.reply_error(
                    seq,
                    &format!(
                        "ERR CLIENT {} is not supported through meridian: {why}",
                        other.to_uppercase()
                    ),
                );
            }
            return client.reply_error(
                seq,
                &format!(
                    "ERR unknown subcommand '{}'. Try CLIENT HELP.",
                    String::from_utf8_lossy(sub)
                ),
            );
        }
    }
    client.reply(seq, out.freeze());
}

/// The bytes of the request's arguments (CLIENT LIST `argv-mem` of the client asking).
fn argv_mem(req: &Request) -> u64 {
    req.args.iter().map(|a| a.len() as u64).sum()
}

/// CLIENT REPLY ON|OFF|SKIP. The request's own reply slot was silenced by the dispatcher when
/// replies are off; ON answers anyway, OFF and SKIP never answer.
fn reply_mode(client: &mut ClientState, seq: Seq, mode: &[u8]) {
    if eq(mode, "on") {
        client.reply_mode = ReplyMode::On;
        client.queue.set_silent(seq, false);
        ok(client, seq);
    } else if eq(mode, "off") {
        client.reply_mode = ReplyMode::Off;
        client.queue.set_silent(seq, true);
        ok(client, seq);
    } else if eq(mode, "skip") {
        if client.reply_mode != ReplyMode::Off {
            client.reply_mode = ReplyMode::SkipNext;
        }
        client.queue.set_silent(seq, true);
        ok(client, seq);
    } else {
        client.reply_error(seq, "ERR syntax error");
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: a meridian client waiting in a blocking command waits
/// on a connection of its own, whose backend id was recorded when the command went out; the
/// node unblocks that connection and the client gets what Redis gives (nil, or the UNBLOCKED
/// error), and this client the node's 1 or 0.
fn unblock(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) {
    let args = &req.args;
    let reason: &[u8] = match args.get(3) {
        None => b"TIMEOUT",
        Some(r) if eq(r, "timeout") => b"TIMEOUT",
        Some(r) if eq(r, "error") => b"ERROR",
        Some(_) => {
            return client.reply_error(seq, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        }
    };
    let id = std::str::from_utf8(args.get(2).unwrap_or_default())
        .ok()
        .and_then(|s| s.parse::<i64>().ok());
    let Some(id) = id else {
        return client.reply_error(seq, "ERR value is not an integer or out of range");
    };
    let target = u64::try_from(id)
        .ok()
        .and_then(|id| worker.shared.clients_registry.get(id))
        .and_then(|entry| entry.blocked_on());
    let Some((addr, backend_id)) = target else {
        return client.reply(seq, Bytes::from_static(b":0\r\n"));
    };
    let mut wire = BytesMut::new();
    encode::command(
        &mut wire,
        &[
            b"CLIENT",
            b"UNBLOCK",
            backend_id.to_string().as_bytes(),
            reason,
        ],
    );
    let be = worker.backend_for_addr(&addr, client.proto);
    be.send(&wire, Pending::to_client(client.queue.clone(), seq, None));
}
