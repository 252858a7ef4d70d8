//! What a backend connection remembers about each request it sent: where the reply goes and,
//! for redirections, the request itself.

use std::rc::Rc;

use bytes::Bytes;

use crate::backend::dedicated::DedicatedPool;
use crate::router::merge::Merge;
use crate::session::queue::{ReplyQueue, Seq};

/// Where a reply is delivered.
pub enum Sink {
    /// Straight to a client's reply slot.
    Client { queue: Rc<ReplyQueue>, seq: Seq },
    /// One part of a split multi-key request.
    Part { merge: Rc<Merge>, part: usize },
    /// A connection handshake step (AUTH, HELLO, ASKING): an error reply fails the connection
    /// when `fatal`, else the reply is dropped.
    Internal { fatal: bool },
}

impl Sink {
    /// Delivers a reply (the complete RESP bytes).
    pub fn complete(self, reply: Bytes) {
        match self {
            Sink::Client { queue, seq } => queue.fill(seq, reply),
            Sink::Part { merge, part } => merge.part_done(part, reply),
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
}

/// A request sent (or queued) on a backend connection, waiting for its reply.
pub struct Pending {
    pub sink: Sink,
    /// The request bytes, kept so a MOVED/ASK reply can resend it elsewhere.
    pub request: Option<Bytes>,
    /// Redirections followed so far.
    pub redirects: u8,
    /// Set for a client's own connections: a redirection opens another one of the client's
    /// own instead of using the shared connection.
    pub pool: Option<Rc<DedicatedPool>>,
}

impl Pending {
    /// A request whose reply goes straight to a client; redirectable when `request` is kept.
    pub fn to_client(queue: Rc<ReplyQueue>, seq: Seq, request: Option<Bytes>) -> Pending {
        Pending {
            sink: Sink::Client { queue, seq },
            request,
            redirects: 0,
            pool: None,
        }
    }

    /// A request whose reply is one part of a merge; not redirectable when `request` is None.
    pub fn to_part(merge: Rc<Merge>, part: usize, request: Option<Bytes>) -> Pending {
        Pending {
            sink: Sink::Part { merge, part },
            request,
            redirects: 0,
            pool: None,
        }
    }

    /// A handshake step whose error reply is fatal to the connection.
    pub fn handshake() -> Pending {
        Pending {
            sink: Sink::Internal { fatal: true },
            request: None,
            redirects: 0,
            pool: None,
        }
    }

    /// A step whose reply is ignored (ASKING).
    pub fn ignored() -> Pending {
        Pending {
            sink: Sink::Internal { fatal: false },
            request: None,
            redirects: 0,
            pool: None,
        }
    }
}
