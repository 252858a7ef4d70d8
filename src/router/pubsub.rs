//! The subscribe-family commands: SUBSCRIBE/PSUBSCRIBE and their UNSUBSCRIBEs on the
//! client's subscription connection, SSUBSCRIBE/SUNSUBSCRIBE on the connection of the
//! channel's shard, PING in RESP2 subscribed mode (see [`crate::client::subs`] for how their
//! frames are kept in order).

use std::rc::Rc;

use bytes::BytesMut;

use crate::client::ClientState;
use crate::client::subs::Sub;
use crate::command::CommandTable;
use crate::policy::Access;
use crate::reply::queue::Seq;
use crate::resp::encode;

use super::class::PubSubCmd;
use super::request::Request;
use super::send::{common_slot, random_slot};
use super::worker::Worker;

fn empty_confirmation(out: &mut BytesMut, kind: &str, proto: u8) {
    encode::push_header(out, 3, proto);
    encode::bulk(out, kind.as_bytes());
    encode::null(out, proto);
    encode::integer(out, 0);
}

/// Handles a subscribe-family command.
pub fn handle(
    cmd: PubSubCmd,
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let wire = req.wire();
    match cmd {
        PubSubCmd::Subscribe
        | PubSubCmd::Psubscribe
        | PubSubCmd::Unsubscribe
        | PubSubCmd::Punsubscribe => {
            if client.pubsub.main.is_none() {
                let addr = match worker.addr_for_slot(random_slot(), Access::Read) {
                    Ok(a) => a,
                    Err(e) => return client.reply_error(seq, &e.to_string()),
                };
                client.pubsub.main = Some(Sub::open(
                    &worker.env,
                    &client.queue,
                    client.proto,
                    &addr,
                    None,
                ));
            }
            if let Some(sub) = &client.pubsub.main {
                if cmd.subscribes() {
                    sub.state.pending.set(true);
                }
                sub.send_gated(seq, &wire);
            }
        }
        PubSubCmd::Ssubscribe | PubSubCmd::Sunsubscribe => {
            let spec = match table.resolve(&req.args) {
                Ok(s) => s,
                Err(e) => return client.reply_error(seq, &e.to_string()),
            };
            let mut channels = Vec::new();
            if let Err(e) = spec.routing_positions(&req.args, &mut channels) {
                return client.reply_error(seq, &e.to_string());
            }
            let slot = match common_slot(&req.args, &channels) {
                Ok(s) => s,
                Err(e) => return client.reply_error(seq, e),
            };
            let Some(slot) = slot else {
                return unsubscribe_all_shards(client, seq, &wire);
            };
            let addr = match worker.addr_for_slot(slot, Access::Read) {
                Ok(a) => a,
                Err(e) => return client.reply_error(seq, &e.to_string()),
            };
            if !client.pubsub.shards.iter().any(|s| s.be.addr == addr) {
                let total = client.pubsub.shard_total.clone();
                let sub = Sub::open(&worker.env, &client.queue, client.proto, &addr, Some(total));
                client.pubsub.shards.push(sub);
            }
            if let Some(sub) = client.pubsub.shards.iter().find(|s| s.be.addr == addr) {
                if cmd.subscribes() {
                    sub.state.pending.set(true);
                }
                sub.send_gated(seq, &wire);
            }
        }
    }
}

/// SUNSUBSCRIBE without channels: every shard connection answers for its own channels.
fn unsubscribe_all_shards(client: &mut ClientState, seq: Seq, wire: &[u8]) {
    if client.pubsub.shards.is_empty() {
        let mut out = BytesMut::new();
        empty_confirmation(&mut out, "sunsubscribe", client.proto);
        return client.reply(seq, out.freeze());
    }
    for (i, sub) in client.pubsub.shards.iter().enumerate() {
        // The first connection fills the request's own slot; the others get slots right after.
        let s = if i == 0 { seq } else { client.queue.reserve() };
        sub.send_gated(s, wire);
    }
}

/// PING from a RESP2 client in subscribed mode: answered by a subscription connection, in
/// order with its frames, in the `*2 pong <msg>` form Redis uses there.
pub fn ping(client: &ClientState, seq: Seq, req: &Request) -> bool {
    let sub = client.pubsub.main.as_ref().or(client.pubsub.shards.first());
    match sub {
        Some(sub) => {
            sub.send_gated(seq, &req.wire());
            true
        }
        None => false,
    }
}

/// The RESP2 subscribed-mode rule: only these commands are allowed.
pub fn allowed_in_resp2_subscribed(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "psubscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "punsubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}
