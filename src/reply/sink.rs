//! Where one backend reply goes: a client's reply slot, one part of a merge, a function of
//! meridian's own (a fact it records), or nowhere (a connection's own handshake steps).

use std::rc::Rc;

use bytes::Bytes;

use super::merge::Merge;
use super::queue::{ReplyQueue, Seq};

/// Where a reply is delivered.
pub enum Sink {
    /// Straight to a client's reply slot.
    Client { queue: Rc<ReplyQueue>, seq: Seq },
    /// One part of a split multi-key request.
    Part { merge: Rc<Merge>, part: usize },
    /// A connection handshake step (AUTH, HELLO, ASKING): an error reply fails the connection
    /// when `fatal`, else the reply is dropped.
    Internal { fatal: bool },
    /// To meridian itself: the reply (or the error that replaced it) is handed to a function
    /// that records what it says. No client waits for it.
    Call(Box<dyn FnOnce(Bytes)>),
}

impl Sink {
    /// Delivers a reply (the complete RESP bytes).
    pub fn complete(self, reply: Bytes) {
        match self {
            Sink::Client { queue, seq } => queue.fill(seq, reply),
            Sink::Part { merge, part } => merge.part_done(part, reply),
            Sink::Call(record) => record(reply),
            Sink::Internal { .. } => {}
        }
    }

    /// Delivers an error made by meridian (`msg` without `-` and CRLF).
    pub fn fail(self, msg: &str) {
        let mut line = Vec::with_capacity(msg.len() + 3);
        line.push(b'-');
        line.extend(
            msg.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        line.extend_from_slice(b"\r\n");
        self.complete(Bytes::from(line));
    }

    /// True for replies no client waits for (a connection's own steps, meridian's probes).
    pub fn is_internal(&self) -> bool {
        matches!(self, Sink::Internal { .. } | Sink::Call(_))
    }
}
