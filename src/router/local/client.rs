//! CLIENT: the subcommands that describe meridian's own client connection (ID, SETNAME,
//! GETNAME, SETINFO, INFO, LIST, KILL). The backend connections are meridian's, not the
//! client's, so nothing here is forwarded.

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::client::ClientState;
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
    ("reply", "replies are matched to requests in order"),
    (
        "unblock",
        "blocked clients run on their own backend connections",
    ),
    (
        "no-evict",
        "it applies to backend connections, not to gateway clients",
    ),
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
            let line = registry.list(Some(&[client.id]));
            return text_reply(client, seq, &line);
        }
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
            let text = registry.list(ids.as_deref());
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
        ("id" | "getname" | "setname" | "setinfo" | "info" | "kill", _) => {
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
