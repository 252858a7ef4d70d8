//! Sending requests to the node their slot routes to: on the worker's shared connection, on
//! a connection of the client's own, or to several nodes as the parts of one merged reply
//! (on the shared connections or on fresh ones of their own). Also the slot helpers every
//! command handler uses.

use std::rc::Rc;

use bytes::Bytes;

use crate::backend::{Backend, Pending};
use crate::client::ClientState;
use crate::command::CommandSpec;
use crate::policy::Access;
use crate::reply::merge::Merge;
use crate::reply::queue::Seq;
use crate::reply::sink::Sink;
use crate::resp::ReqArgs;
use crate::slot::{Slot, key_slot};
use crate::topology::NodeId;

use super::worker::Worker;

/// The error Redis Cluster gives for keys in different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

pub fn access_of(spec: &CommandSpec) -> Access {
    if spec.is_write() {
        Access::Write
    } else {
        Access::Read
    }
}

pub(crate) fn random_slot() -> Slot {
    Slot::from_bits(rand::random::<u16>())
}

/// The one slot all `keys` hash to, or the CROSSSLOT error.
pub(crate) fn common_slot(args: &ReqArgs, keys: &[usize]) -> Result<Option<Slot>, &'static str> {
    let mut slot = None;
    for &k in keys {
        let s = key_slot(args.get(k).unwrap_or_default());
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => return Err(CROSSSLOT),
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// A read of one slot may be resent once if its connection is lost; a write never is.
pub fn retry_if_read(pending: Pending, access: Access, slot: Slot) -> Pending {
    match access {
        Access::Read => pending.reading(slot),
        Access::Write => pending,
    }
}

/// Sends a single-slot request to its backend, its reply going straight to the client.
pub fn send_to_slot(
    worker: &Rc<Worker>,
    client: &mut ClientState,
    seq: Seq,
    slot: Slot,
    access: Access,
    wire: Bytes,
) {
    match worker.backend_for_slot(slot, access, client.proto) {
        Ok(be) => {
            if access == Access::Write {
                client.touch(&be.addr);
            }
            let mut pending = Pending::to_client(client.queue.clone(), seq, Some(wire.clone()));
            // The node's latency monitors count it when its reply comes.
            if let Some(tag) = client.queue.tag_of(seq) {
                pending.timing = worker.latency_timing(tag.command, tag.at);
            }
            be.send(&wire, retry_if_read(pending, access, slot))
        }
        Err(e) => client.reply_error(seq, &e.to_string()),
    }
}

/// Asks for the backend's id of the connection the blocking request goes out on next, and
/// records it, with the node, as what the client waits on (for CLIENT UNBLOCK).
const CLIENT_ID: &[u8] = b"*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n";

/// Sends a blocking request on a connection of the client's own, so that nobody else waits
/// behind it; the connection closes when the client leaves. `CLIENT ID` goes just before it
/// on the same connection, so CLIENT UNBLOCK from any client can name that connection.
pub fn send_dedicated(
    worker: &Rc<Worker>,
    client: &mut ClientState,
    seq: Seq,
    slot: Slot,
    access: Access,
    wire: Bytes,
) {
    let addr = match worker.addr_for_request(slot, access) {
        Ok(addr) => addr,
        Err(e) => return client.reply_error(seq, &e.to_string()),
    };
    let pool = client.pool();
    let be = pool.get(&worker.env, &addr, client.proto);
    if access == Access::Write {
        client.touch(&addr);
    }
    if let Some(entry) = client.entry.clone() {
        let node = addr.clone();
        let record = move |reply: Bytes| {
            if let Some(id) = integer_reply(&reply) {
                entry.set_blocked_on(Some((node, id)));
            }
        };
        be.send(CLIENT_ID, Pending::new(Sink::Call(Box::new(record)), None));
    }
    client.blocking = true;
    be.send(
        &wire,
        Pending {
            pool: Some(pool),
            ..Pending::to_client(client.queue.clone(), seq, Some(wire.clone()))
        },
    );
}

/// Sends `wire` to each of `nodes` on the shared connections; the reply of `nodes[i]` is part
/// `i` of `merge`.
pub fn send_parts(
    worker: &Rc<Worker>,
    merge: &Rc<Merge>,
    nodes: &[NodeId],
    wire: &Bytes,
    proto: u8,
) {
    for (part, &node) in nodes.iter().enumerate() {
        match worker.backend_for_node_id(node, proto) {
            Some(be) => be.send(wire, Pending::to_part(merge.clone(), part, None)),
            None => Sink::Part {
                merge: merge.clone(),
                part,
            }
            .fail("ERR meridian: the cluster map changed, retry"),
        }
    }
}

/// Sends `wire` to each of `nodes`, each on a fresh connection opened for it alone and closed
/// once every part is in: for commands that must not queue behind the shared connections
/// (SCRIPT KILL while a script holds a node and its shared connection).
pub fn send_parts_fresh(worker: &Rc<Worker>, merge: &Rc<Merge>, nodes: &[NodeId], wire: &Bytes) {
    let topo = worker.topology();
    let timeout = Some(worker.shared.config().breaker.server_timeout);
    let mut opened = Vec::with_capacity(nodes.len());
    for (part, &node) in nodes.iter().enumerate() {
        match topo.nodes.get(node as usize) {
            Some(n) => {
                // RESP2 needs no HELLO, which a node busy with a script might refuse.
                let be = Backend::new(&worker.env, n.addr.clone(), 2, timeout);
                be.send(wire, Pending::to_part(merge.clone(), part, None));
                opened.push(be);
            }
            None => Sink::Part {
                merge: merge.clone(),
                part,
            }
            .fail("ERR meridian: the cluster map changed, retry"),
        }
    }
    merge.on_done(Box::new(move || {
        for be in opened {
            be.close();
        }
    }));
}

/// The value of an integer reply.
pub(crate) fn integer_reply(reply: &[u8]) -> Option<u64> {
    let digits = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::request::spans_of;

    #[test]
    fn integer_replies() {
        assert_eq!(integer_reply(b":42\r\n"), Some(42));
        assert_eq!(integer_reply(b"-ERR x\r\n"), None);
        assert_eq!(integer_reply(b":-1\r\n"), None);
    }

    #[test]
    fn crossslot_detection() {
        let (frame, spans) = spans_of(&[b"RENAME", b"{a}x", b"{a}y"]);
        assert!(common_slot(&ReqArgs::new(&frame, &spans), &[1, 2]).is_ok());
        let (frame, spans) = spans_of(&[b"RENAME", b"a", b"b"]);
        assert_eq!(
            common_slot(&ReqArgs::new(&frame, &spans), &[1, 2]),
            Err(CROSSSLOT)
        );
    }
}
