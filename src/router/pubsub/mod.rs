//! The subscribe-family commands: SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE and their UNSUBSCRIBEs,
//! any number of names in any slots, answered by meridian with the confirmations one Redis
//! would send once the masters involved have acknowledged them; PING in RESP2 subscribed
//! mode. Where each name is subscribed is [`crate::client::subs::hub`]'s placement; [`follow`]
//! keeps it in line with the cluster map.

pub mod follow;

use std::rc::Rc;

use bytes::BytesMut;

use crate::client::ClientState;
use crate::client::subs::{Join, Kind, frame};
use crate::reply::queue::Seq;

use super::class::PubSubCmd;
use super::request::Request;
use super::worker::Worker;

/// The kind of subscription a command acts on, and whether it subscribes.
fn op(cmd: PubSubCmd) -> (Kind, bool) {
    match cmd {
        PubSubCmd::Subscribe => (Kind::Channel, true),
        PubSubCmd::Unsubscribe => (Kind::Channel, false),
        PubSubCmd::Psubscribe => (Kind::Pattern, true),
        PubSubCmd::Punsubscribe => (Kind::Pattern, false),
        PubSubCmd::Ssubscribe => (Kind::Shard, true),
        PubSubCmd::Sunsubscribe => (Kind::Shard, false),
    }
}

/// Handles a subscribe-family command (its arity was checked by the dispatcher).
pub fn handle(
    cmd: PubSubCmd,
    worker: &Rc<Worker>,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let (kind, on) = op(cmd);
    let topo = worker.topology();
    if on && topo.shards.is_empty() {
        return client.reply_error(seq, "CLUSTERDOWN meridian: the cluster map is empty");
    }
    let names: Vec<&[u8]> = req.args.iter().skip(1).collect();
    let hub = client.pubsub.hub(&worker.env, &client.queue);
    hub.set_proto(client.proto);
    let (answer, undo) = hub.apply(kind, on, &names, client.proto);
    let join = Join::new(client.queue.clone(), seq);
    hub.reconcile(&topo, Some(&join));
    join.seal(answer, undo);
    follow::ensure(worker, &hub);
}

/// PING from a RESP2 client in subscribed mode, answered in the `*2 pong <msg>` form Redis
/// uses there, after every message its masters sent before it. False when the local PING
/// applies instead (not subscribed, or an argument count PING refuses).
pub fn ping(client: &ClientState, seq: Seq, req: &Request) -> bool {
    let Some(hub) = client.pubsub.current().filter(|h| h.is_subscribed()) else {
        return false;
    };
    if req.args.len() > 2 {
        return false;
    }
    let mut out = BytesMut::new();
    frame::subscribed_pong(&mut out, req.args.get(1));
    let join = Join::new(client.queue.clone(), seq);
    hub.sync_all(&join);
    join.seal(out.freeze(), None);
    true
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
