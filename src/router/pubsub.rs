//! Pub/sub: SUBSCRIBE/PSUBSCRIBE on one connection of the client's own, SSUBSCRIBE on one per
//! shard (by channel slot). Every frame those connections send is forwarded to the client.
//!
//! Order: the frames a subscribe-family command produces must reach the client in the place of
//! that command, even though their number is not known in advance. So each such command is
//! followed on its connection by `PING <token>`; every frame up to the token's echo fills the
//! command's reply slot ("gate"). Frames outside any gate are messages and go after everything
//! queued so far.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::backend::Backend;
use crate::command::CommandTable;
use crate::policy::Access;
use crate::resp::encode;
use crate::resp::reply::aggregate_elements;
use crate::session::ClientState;
use crate::session::queue::{ReplyQueue, Seq};
use crate::worker::Worker;

use super::{Request, common_slot, random_slot};

/// The subscribe-family commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSubCmd {
    Subscribe,
    Psubscribe,
    Unsubscribe,
    Punsubscribe,
    Ssubscribe,
    Sunsubscribe,
}

impl PubSubCmd {
    fn subscribes(self) -> bool {
        matches!(
            self,
            PubSubCmd::Subscribe | PubSubCmd::Psubscribe | PubSubCmd::Ssubscribe
        )
    }
}

struct Gate {
    seq: Seq,
    token: Vec<u8>,
    buf: BytesMut,
}

/// What the frame handler of one subscription connection shares with the session.
struct SubState {
    queue: Rc<ReplyQueue>,
    gates: RefCell<VecDeque<Gate>>,
    /// Subscriptions the server reports on this connection.
    count: Cell<i64>,
    /// A subscribe was sent and not yet confirmed.
    pending: Cell<bool>,
    nonce: u64,
    next_token: Cell<u64>,
    limit: usize,
    /// For shard connections: the client's sharded subscriptions over all of them, which the
    /// (s)subscribe confirmations must show, as one Redis would count them.
    shard_total: Option<Rc<Cell<i64>>>,
}

impl SubState {
    fn new(queue: Rc<ReplyQueue>, limit: usize, shard_total: Option<Rc<Cell<i64>>>) -> SubState {
        SubState {
            queue,
            gates: RefCell::new(VecDeque::new()),
            count: Cell::new(0),
            pending: Cell::new(false),
            nonce: rand::random(),
            next_token: Cell::new(0),
            limit,
            shard_total,
        }
    }

    fn on_frame(&self, mut frame: Bytes) {
        if let Some(n) = confirmation_count(&frame) {
            let before = self.count.replace(n);
            self.pending.set(false);
            if let Some(total) = &self.shard_total {
                total.set(total.get() + n - before);
                frame = with_count(&frame, total.get());
            }
        }
        let mut gates = self.gates.borrow_mut();
        if let Some(front) = gates.front_mut() {
            if frame.ends_with(&front.token) && is_token_reply(&frame) {
                if let Some(gate) = gates.pop_front() {
                    self.queue.fill(gate.seq, gate.buf.freeze());
                }
            } else {
                front.buf.extend_from_slice(&frame);
            }
            return;
        }
        drop(gates);
        self.queue.push_unsolicited(frame);
        if self.queue.held_bytes() > self.limit {
            self.queue
                .kill("output buffer limit reached by a subscriber that does not read");
        }
    }
}

/// `*2 pong <token>` (RESP2, subscribed), or a bulk / RESP3 echo of the token.
fn is_token_reply(frame: &[u8]) -> bool {
    frame.starts_with(b"$")
        || frame.starts_with(b"*2\r\n$4\r\npong\r\n")
        || frame.starts_with(b">2\r\n$4\r\npong\r\n")
}

/// The subscription count of a (un)subscribe confirmation frame.
fn confirmation_count(frame: &[u8]) -> Option<i64> {
    let elems = aggregate_elements(frame, 4).ok().flatten()?;
    if elems.len() != 3 {
        return None;
    }
    let kind = &frame[elems[0].clone()];
    let kinds: [&[u8]; 6] = [
        b"subscribe",
        b"psubscribe",
        b"ssubscribe",
        b"unsubscribe",
        b"punsubscribe",
        b"sunsubscribe",
    ];
    if !kinds
        .iter()
        .any(|k| kind.ends_with(&[*k, b"\r\n"].concat()) && kind.starts_with(b"$"))
    {
        return None;
    }
    let count = &frame[elems[2].clone()];
    std::str::from_utf8(count.strip_prefix(b":")?.strip_suffix(b"\r\n")?)
        .ok()?
        .parse()
        .ok()
}

/// The confirmation `frame` with its count replaced by `count`.
fn with_count(frame: &Bytes, count: i64) -> Bytes {
    let Some(elems) = aggregate_elements(frame, 4).ok().flatten() else {
        return frame.clone();
    };
    let Some(count_range) = elems.get(2) else {
        return frame.clone();
    };
    let mut out = BytesMut::with_capacity(frame.len() + 8);
    out.extend_from_slice(&frame[..count_range.start]);
    encode::integer(&mut out, count);
    out.extend_from_slice(&frame[count_range.end..]);
    out.freeze()
}

struct Sub {
    be: Rc<Backend>,
    state: Rc<SubState>,
}

impl Sub {
    fn open(
        worker: &Rc<Worker>,
        client: &ClientState,
        addr: &Arc<str>,
        shard_total: Option<Rc<Cell<i64>>>,
    ) -> Sub {
        let be = Backend::new(
            addr.clone(),
            client.proto,
            worker.stats.node(addr),
            worker.shared.health.node(addr),
            None,
        );
        let state = Rc::new(SubState::new(
            client.queue.clone(),
            worker.shared.config.client.output_buffer_limit,
            shard_total,
        ));
        let handler_state = state.clone();
        be.set_push_handler(Rc::new(move |frame| handler_state.on_frame(frame)), true);
        let queue = client.queue.clone();
        be.on_lost(Rc::new(move || {
            queue.kill("subscription connection to the cluster was lost")
        }));
        Sub { be, state }
    }

    /// Sends `wire`; everything it produces fills reply slot `seq`.
    fn send_gated(&self, worker: &Rc<Worker>, seq: Seq, wire: &[u8]) {
        let n = self.state.next_token.get();
        self.state.next_token.set(n + 1);
        let token = format!("meridian:sync:{:x}:{n}", self.state.nonce);
        self.state.gates.borrow_mut().push_back(Gate {
            seq,
            token: [token.as_bytes(), b"\r\n"].concat(),
            buf: BytesMut::new(),
        });
        let mut out = BytesMut::with_capacity(wire.len() + 64);
        out.extend_from_slice(wire);
        encode::command(&mut out, &[b"PING", token.as_bytes()]);
        self.be.send_raw(worker, &out);
    }

    fn subscribed(&self) -> bool {
        self.state.pending.get() || self.state.count.get() > 0
    }
}

/// A client's subscriptions.
#[derive(Default)]
pub struct PubSub {
    main: Option<Sub>,
    shards: Vec<Sub>,
    /// Sharded subscriptions over every shard connection.
    shard_total: Rc<Cell<i64>>,
}

impl PubSub {
    /// True while the client has (or is asking for) any subscription.
    pub fn is_subscribed(&self) -> bool {
        self.main.as_ref().is_some_and(Sub::subscribed) || self.shards.iter().any(Sub::subscribed)
    }

    /// Closes every subscription connection.
    pub fn close_all(&mut self) {
        for sub in self.main.take().into_iter().chain(self.shards.drain(..)) {
            sub.be.close();
        }
        self.shard_total.set(0);
    }
}

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
                client.pubsub.main = Some(Sub::open(worker, client, &addr, None));
            }
            if let Some(sub) = &client.pubsub.main {
                if cmd.subscribes() {
                    sub.state.pending.set(true);
                }
                sub.send_gated(worker, seq, &wire);
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
                return unsubscribe_all_shards(worker, client, seq, &wire);
            };
            let addr = match worker.addr_for_slot(slot, Access::Read) {
                Ok(a) => a,
                Err(e) => return client.reply_error(seq, &e.to_string()),
            };
            if !client.pubsub.shards.iter().any(|s| s.be.addr == addr) {
                let total = client.pubsub.shard_total.clone();
                let sub = Sub::open(worker, client, &addr, Some(total));
                client.pubsub.shards.push(sub);
            }
            if let Some(sub) = client.pubsub.shards.iter().find(|s| s.be.addr == addr) {
                if cmd.subscribes() {
                    sub.state.pending.set(true);
                }
                sub.send_gated(worker, seq, &wire);
            }
        }
    }
}

/// SUNSUBSCRIBE without channels: every shard connection answers for its own channels.
fn unsubscribe_all_shards(worker: &Rc<Worker>, client: &mut ClientState, seq: Seq, wire: &[u8]) {
    if client.pubsub.shards.is_empty() {
        let mut out = BytesMut::new();
        empty_confirmation(&mut out, "sunsubscribe", client.proto);
        return client.reply(seq, out.freeze());
    }
    for (i, sub) in client.pubsub.shards.iter().enumerate() {
        // The first connection fills the request's own slot; the others get slots right after.
        let s = if i == 0 { seq } else { client.queue.reserve() };
        sub.send_gated(worker, s, wire);
    }
}

/// PING from a RESP2 client in subscribed mode: answered by a subscription connection, in
/// order with its frames, in the `*2 pong <msg>` form Redis uses there.
pub fn ping(worker: &Rc<Worker>, client: &ClientState, seq: Seq, req: &Request) -> bool {
    let sub = client.pubsub.main.as_ref().or(client.pubsub.shards.first());
    match sub {
        Some(sub) => {
            sub.send_gated(worker, seq, &req.wire());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_confirmations() {
        assert_eq!(
            confirmation_count(b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:2\r\n"),
            Some(2)
        );
        assert_eq!(
            confirmation_count(b">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n"),
            Some(0)
        );
        assert_eq!(
            confirmation_count(b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nb\r\n"),
            None
        );
    }

    #[test]
    fn gates_collect_frames_until_their_token() {
        let queue = Rc::new(ReplyQueue::new());
        let state = SubState::new(queue.clone(), 1 << 20, None);
        state.count.set(0);
        state.pending.set(true);
        let seq = queue.reserve();
        state.gates.borrow_mut().push_back(Gate {
            seq,
            token: b"meridian:sync:1:0\r\n".to_vec(),
            buf: BytesMut::new(),
        });
        state.on_frame(Bytes::from_static(
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
        ));
        state.on_frame(Bytes::from_static(
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
        ));
        assert_eq!(state.count.get(), 2);
        assert!(!state.pending.get());
        let mut out = BytesMut::new();
        assert_eq!(queue.drain_ready(&mut out, usize::MAX), 0);
        state.on_frame(Bytes::from_static(
            b"*2\r\n$4\r\npong\r\n$17\r\nmeridian:sync:1:0\r\n",
        ));
        assert_eq!(queue.drain_ready(&mut out, usize::MAX), 1);
        assert_eq!(
            &out[..],
            b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n"
        );
        out.clear();
        state.on_frame(Bytes::from_static(
            b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n",
        ));
        assert_eq!(queue.drain_ready(&mut out, usize::MAX), 1);
    }

    #[test]
    fn a_subscriber_past_its_limit_is_killed() {
        let queue = Rc::new(ReplyQueue::new());
        let state = SubState::new(queue.clone(), 64, None);
        state.count.set(1);
        state.pending.set(false);
        for _ in 0..10 {
            state.on_frame(Bytes::from_static(
                b"*3\r\n$7\r\nmessage\r\n$1\r\na\r\n$1\r\nx\r\n",
            ));
        }
        assert!(queue.killed().is_some());
    }
}

#[cfg(test)]
mod count_tests {
    use super::*;

    #[test]
    fn sharded_confirmations_show_the_clients_total() {
        let frame = Bytes::from_static(b"*3\r\n$10\r\nssubscribe\r\n$2\r\nc2\r\n:1\r\n");
        assert_eq!(
            &with_count(&frame, 2)[..],
            b"*3\r\n$10\r\nssubscribe\r\n$2\r\nc2\r\n:2\r\n"
        );
        let total = Rc::new(Cell::new(1));
        let queue = Rc::new(ReplyQueue::new());
        let state = SubState::new(queue.clone(), 1 << 20, Some(total.clone()));
        state.count.set(0);
        state.pending.set(true);
        state.on_frame(frame);
        assert_eq!(total.get(), 2);
        let mut out = BytesMut::new();
        queue.drain_ready(&mut out, usize::MAX);
        assert!(out.ends_with(b":2\r\n"), "{out:?}");
    }
}
