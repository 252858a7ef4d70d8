//! A client's subscription connections: SUBSCRIBE/PSUBSCRIBE on one connection of its own,
//! SSUBSCRIBE on one per shard. Every frame those connections send goes to the client.
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
use crate::backend::env::Env;
use crate::reply::queue::{ReplyQueue, Seq};
use crate::resp::encode;
use crate::resp::reply::aggregate_elements;

pub(crate) struct Gate {
    seq: Seq,
    token: Vec<u8>,
    buf: BytesMut,
}

/// What the frame handler of one subscription connection shares with the session.
pub(crate) struct SubState {
    queue: Rc<ReplyQueue>,
    gates: RefCell<VecDeque<Gate>>,
    /// Subscriptions the server reports on this connection.
    count: Cell<i64>,
    /// A subscribe was sent and not yet confirmed.
    pub(crate) pending: Cell<bool>,
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

/// One subscription connection and its frame handler's state.
pub struct Sub {
    pub be: Rc<Backend>,
    pub(crate) state: Rc<SubState>,
}

impl Sub {
    /// Opens a subscription connection to `addr` whose frames go to `queue`; a client whose
    /// unread messages pass `limit` bytes is disconnected.
    pub fn open(
        env: &Rc<Env>,
        queue: &Rc<ReplyQueue>,
        proto: u8,
        addr: &Arc<str>,
        shard_total: Option<Rc<Cell<i64>>>,
    ) -> Sub {
        let be = Backend::new(env, addr.clone(), proto, None);
        let limit = env.shared.config.client.output_buffer_limit;
        let state = Rc::new(SubState::new(queue.clone(), limit, shard_total));
        let handler_state = state.clone();
        be.set_push_handler(Rc::new(move |frame| handler_state.on_frame(frame)), true);
        let queue = queue.clone();
        be.on_lost(Rc::new(move || {
            queue.kill("subscription connection to the cluster was lost")
        }));
        Sub { be, state }
    }

    /// Sends `wire`; everything it produces fills reply slot `seq`.
    pub fn send_gated(&self, seq: Seq, wire: &[u8]) {
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
        self.be.send_raw(&out);
    }

    /// True while the connection has (or is asking for) a subscription.
    pub fn subscribed(&self) -> bool {
        self.state.pending.get() || self.state.count.get() > 0
    }
}

/// A client's subscriptions.
#[derive(Default)]
pub struct PubSub {
    /// The connection of SUBSCRIBE/PSUBSCRIBE.
    pub main: Option<Sub>,
    /// One connection per shard for SSUBSCRIBE.
    pub shards: Vec<Sub>,
    /// Sharded subscriptions over every shard connection.
    pub shard_total: Rc<Cell<i64>>,
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
