//! One subscription connection of a client, to one master: what it holds, the gates that keep
//! its acknowledgements in order, and what it does with each frame the node sends.
//!
//! Every request meridian sends on it is followed by `PING <token>`; the frames up to the
//! token's echo belong to that request (its "gate"). Confirmations are dropped (meridian
//! answers the client itself, counting over all connections); errors are the gate's;
//! messages are filtered (see [`Sub::wants`]) and go to the client: in front of the answer of
//! the first pending client command, else after everything queued so far.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tracing::debug;

use crate::backend::Backend;
use crate::resp::encode;
use crate::slot::key_slot;

use super::frame::{self, Frame, Kind, is_node_local};
use super::join::Join;
use super::names::Names;
use super::outlet::Outlet;

/// One request in flight on a subscription connection.
struct Gate {
    /// `<token>\r\n`, what the echo of the request's trailing PING ends with.
    token: Vec<u8>,
    /// The client command this request is part of, if any.
    join: Option<Rc<Join>>,
    /// The names a subscribe request carries (unplaced again if it is refused).
    carries: Option<(Kind, Vec<Bytes>)>,
    /// Messages that arrived before the acknowledgement, for the client command.
    before: BytesMut,
    error: Option<Bytes>,
}

/// A client's connection to one master for its subscriptions.
pub struct Sub {
    be: Rc<Backend>,
    out: Rc<Outlet>,
    gates: RefCell<VecDeque<Gate>>,
    /// What this connection is subscribed to (or asking for).
    placed: RefCell<Names>,
    /// Lost or closed: what it still sends is ignored, and it is replaced.
    gone: Cell<bool>,
    nonce: u64,
    next_token: Cell<u64>,
}

/// Errors that say the map moved or the node is not ready: placed again later, not the
/// client's concern.
fn is_transient(error: &[u8]) -> bool {
    [
        &b"-MOVED "[..],
        b"-ASK ",
        b"-TRYAGAIN",
        b"-CLUSTERDOWN",
        b"-LOADING",
        b"-MASTERDOWN",
    ]
    .iter()
    .any(|p| error.starts_with(p))
}

impl Sub {
    /// Opens (lazily: on the first request) a subscription connection to `addr`.
    pub fn open(out: &Rc<Outlet>, addr: &Arc<str>, proto: u8) -> Rc<Sub> {
        let be = Backend::new(&out.env, addr.clone(), proto, None);
        let sub = Rc::new(Sub {
            be: be.clone(),
            out: out.clone(),
            gates: RefCell::new(VecDeque::new()),
            placed: RefCell::new(Names::default()),
            gone: Cell::new(false),
            nonce: rand::random(),
            next_token: Cell::new(0),
        });
        let weak = Rc::downgrade(&sub);
        be.set_push_handler(
            Rc::new(move |frame| {
                if let Some(sub) = weak.upgrade() {
                    sub.on_frame(frame);
                }
            }),
            true,
        );
        let weak = Rc::downgrade(&sub);
        be.on_lost(Rc::new(move || {
            if let Some(sub) = weak.upgrade() {
                sub.on_lost();
            }
        }));
        sub
    }

    pub fn addr(&self) -> &Arc<str> {
        &self.be.addr
    }

    pub fn proto(&self) -> u8 {
        self.be.proto
    }

    /// The connection failed or was closed; its subscriptions are gone.
    pub fn is_gone(&self) -> bool {
        self.gone.get()
    }

    /// Holds nothing and waits for nothing.
    pub fn is_idle(&self) -> bool {
        self.placed.borrow().is_empty() && self.gates.borrow().is_empty()
    }

    /// Sends `wire` (possibly empty) and a sync token; the frames before the token's echo are
    /// the gate's. Part of `join` when given.
    pub fn send_gated(
        &self,
        wire: &[u8],
        join: Option<&Rc<Join>>,
        carries: Option<(Kind, Vec<Bytes>)>,
    ) {
        let n = self.next_token.get();
        self.next_token.set(n + 1);
        let token = format!("meridian:sync:{:x}:{n}", self.nonce);
        if let Some(join) = join {
            join.add_part();
        }
        self.gates.borrow_mut().push_back(Gate {
            token: [token.as_bytes(), b"\r\n"].concat(),
            join: join.cloned(),
            carries,
            before: BytesMut::new(),
            error: None,
        });
        let mut out = BytesMut::with_capacity(wire.len() + 64);
        out.extend_from_slice(wire);
        encode::command(&mut out, &[b"PING", token.as_bytes()]);
        self.be.send_raw(&out);
    }

    /// Subscribes and unsubscribes so that this connection holds exactly `want`.
    pub fn converge(&self, want: &Names, join: Option<&Rc<Join>>) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let (gone, new): (Vec<Bytes>, Vec<Bytes>) = {
                let mut placed = self.placed.borrow_mut();
                let have = placed.set_mut(kind);
                let target = want.set(kind);
                let gone: Vec<Bytes> = have.difference(target).cloned().collect();
                let new: Vec<Bytes> = target.difference(have).cloned().collect();
                for name in &gone {
                    have.remove(name);
                }
                have.extend(new.iter().cloned());
                (gone, new)
            };
            self.send_names(kind, false, gone, join);
            self.send_names(kind, true, new, join);
        }
    }

    /// One request per kind; sharded ones one per slot, as a cluster node requires.
    fn send_names(&self, kind: Kind, on: bool, names: Vec<Bytes>, join: Option<&Rc<Join>>) {
        if names.is_empty() {
            return;
        }
        if kind != Kind::Shard {
            return self.send_request(kind, on, names, join);
        }
        let mut by_slot: BTreeMap<u16, Vec<Bytes>> = BTreeMap::new();
        for name in names {
            by_slot.entry(key_slot(&name).get()).or_default().push(name);
        }
        for group in by_slot.into_values() {
            self.send_request(kind, on, group, join);
        }
    }

    fn send_request(&self, kind: Kind, on: bool, names: Vec<Bytes>, join: Option<&Rc<Join>>) {
        let verb = kind.verb(on).to_ascii_uppercase();
        let mut args: Vec<&[u8]> = Vec::with_capacity(names.len() + 1);
        args.push(verb.as_bytes());
        args.extend(names.iter().map(|n| &n[..]));
        let mut wire = BytesMut::new();
        encode::command(&mut wire, &args);
        self.send_gated(&wire, join, on.then_some((kind, names)));
    }

    /// Closes the connection on purpose (the client left, or the node is no longer a master).
    pub fn close(&self) {
        self.gone.set(true);
        self.abandon();
        self.be.close();
    }

    fn on_lost(&self) {
        debug!(addr = %self.be.addr, "subscription connection lost; placing again");
        self.gone.set(true);
        self.abandon();
        self.out.retry_later();
    }

    /// Forgets what the connection held; client commands waiting on it are answered without it.
    fn abandon(&self) {
        self.placed.borrow_mut().clear();
        let gates: Vec<Gate> = self.gates.borrow_mut().drain(..).collect();
        for gate in gates {
            if let Some(join) = gate.join {
                join.part_done(&gate.before, None);
            }
        }
    }

    fn on_frame(&self, frame: Bytes) {
        if self.gone.get() {
            return;
        }
        let done = {
            let mut gates = self.gates.borrow_mut();
            match gates.front() {
                Some(g) if frame::is_token_reply(&frame, &g.token) => gates.pop_front(),
                _ => None,
            }
        };
        if let Some(gate) = done {
            return self.finish(gate);
        }
        let deliver = match frame::classify(&frame) {
            Frame::Confirm {
                kind: Kind::Shard,
                on: false,
                name: Some(name),
            } => {
                // Ours were unplaced when sent: one still placed was dropped by the node (its
                // slot moved away). The client keeps it; it is placed again by the new map.
                if self.placed.borrow_mut().shards.remove(name) {
                    self.out.env.shared.request_refresh();
                    self.out.retry_later();
                }
                false
            }
            Frame::Confirm { .. } => false,
            Frame::Error => {
                if let Some(gate) = self.gates.borrow_mut().front_mut() {
                    gate.error.get_or_insert_with(|| frame.clone());
                }
                false
            }
            Frame::Message {
                kind,
                pattern,
                channel,
            } => self.wants(kind, pattern, channel),
            // A push meridian does not know is the client's; a stray reply is not.
            Frame::Other => frame.first() == Some(&b'>'),
        };
        if deliver {
            self.deliver(frame);
        }
    }

    /// Whether a message from this connection goes to the client: only for what it holds, and
    /// a published message matched by a pattern (which every master holds) only from the
    /// master of the channel's slot, so the client gets it once. Keyspace notifications are
    /// each node's own and come from every master.
    fn wants(&self, kind: Kind, pattern: Option<&[u8]>, channel: &[u8]) -> bool {
        let placed = self.placed.borrow();
        match (kind, pattern) {
            (Kind::Pattern, Some(p)) => {
                placed.patterns.contains(p)
                    && (is_node_local(channel) || self.out.owns(&self.be.addr, channel))
            }
            (Kind::Pattern, None) => false,
            (kind, _) => placed.set(kind).contains(channel),
        }
    }

    fn deliver(&self, frame: Bytes) {
        let held = {
            let mut gates = self.gates.borrow_mut();
            match gates.iter_mut().find(|g| g.join.is_some()) {
                Some(gate) => {
                    gate.before.extend_from_slice(&frame);
                    Some(gate.before.len())
                }
                None => None,
            }
        };
        match held {
            Some(n) => self.out.check_limit(n),
            None => self.out.push(frame),
        }
    }

    /// The node acknowledged a request.
    fn finish(&self, gate: Gate) {
        let Gate {
            join,
            carries,
            before,
            mut error,
            ..
        } = gate;
        match &error {
            None => self.out.succeeded(),
            Some(e) => {
                if let Some((kind, names)) = &carries {
                    let mut placed = self.placed.borrow_mut();
                    for name in names {
                        placed.set_mut(*kind).remove(name);
                    }
                }
                let shown = String::from_utf8_lossy(e);
                debug!(addr = %self.be.addr, error = %shown.trim_end(), "subscription request refused");
                if is_transient(e) {
                    self.out.env.shared.request_refresh();
                }
                if is_transient(e) || join.is_none() {
                    error = None;
                    self.out.retry_later();
                }
            }
        }
        if let Some(join) = join {
            join.part_done(&before, error);
        }
    }
}

#[cfg(test)]
mod tests;
