//! What meridian knows about one connected client: protocol, name, its reply queue, its
//! transaction and subscriptions, and the connections it owns. Sessions create it, the router
//! reads and changes it.

pub mod subs;
pub mod tx;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::acl::User;
use crate::backend::DedicatedPool;
use crate::clients::ClientEntry;
use crate::reply::queue::{ReplyQueue, Seq};
use crate::resp::encode;

use subs::PubSub;
use tx::TxState;

/// CLIENT REPLY: whether the client's replies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    /// No reply is written until CLIENT REPLY ON.
    Off,
    /// The reply of the next command is not written.
    SkipNext,
}

impl ReplyMode {
    /// Whether the reply of the request being dispatched now is dropped; moves past a SKIP.
    pub fn silences_next(&mut self) -> bool {
        match *self {
            ReplyMode::On => false,
            ReplyMode::Off => true,
            ReplyMode::SkipNext => {
                *self = ReplyMode::On;
                true
            }
        }
    }
}

/// What meridian knows about one connected client.
pub struct ClientState {
    pub id: u64,
    /// RESP version chosen with HELLO (2 until then).
    pub proto: u8,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub peer: SocketAddr,
    pub created: Instant,
    pub queue: Rc<ReplyQueue>,
    /// Close once every pending reply is written (QUIT, protocol error, shutdown).
    pub quit: bool,
    /// Scratch space for key positions, reused across requests.
    pub key_buf: Vec<usize>,
    /// MULTI/WATCH state.
    pub tx: TxState,
    /// Connections of this client's own (blocking commands, transactions, pub/sub).
    pool: Option<Rc<DedicatedPool>>,
    /// Masters this client wrote to (for WAIT).
    pub touched: Vec<Arc<str>>,
    /// Subscriptions.
    pub pubsub: PubSub,
    /// The channels and patterns subscribed to, by name (CLIENT LIST `sub`, `psub`).
    /// This client in the shared registry (CLIENT LIST/KILL).
    pub entry: Option<Arc<ClientEntry>>,
    /// CLIENT REPLY.
    pub reply_mode: ReplyMode,
    /// CLIENT NO-EVICT (accepted and shown; meridian evicts no client for memory).
    pub no_evict: bool,
    /// A blocking command of this client is out on a connection of its own.
    pub blocking: bool,
    /// The command it runs now, as CLIENT LIST names it (published to `entry` on change).
    pub last_cmd: String,
    /// The authenticated gateway user; `None` with users configured means not authenticated
    /// (unused when meridian has no users).
    pub user: Option<Arc<User>>,
    /// Failed AUTHs not logged yet, and when the last log line was written.
    pub auth_failures: u64,
    pub auth_logged: Option<Instant>,
}

impl ClientState {
    pub fn new(id: u64, peer: SocketAddr) -> ClientState {
        ClientState {
            id,
            proto: 2,
            name: None,
            lib_name: None,
            lib_ver: None,
            peer,
            created: Instant::now(),
            queue: Rc::new(ReplyQueue::new()),
            quit: false,
            key_buf: Vec::new(),
            tx: TxState::default(),
            pool: None,
            touched: Vec::new(),
            pubsub: PubSub::default(),
            entry: None,
            reply_mode: ReplyMode::On,
            no_evict: false,
            blocking: false,
            last_cmd: String::new(),
            user: None,
            auth_failures: 0,
            auth_logged: None,
        }
    }

    /// The client's own connections, created on first use.
    pub fn pool(&mut self) -> Rc<DedicatedPool> {
        self.pool.get_or_insert_with(DedicatedPool::new).clone()
    }

    /// Number of connections of the client's own.
    pub fn dedicated_connections(&self) -> usize {
        self.pool.as_ref().map_or(0, |p| p.len())
    }

    /// Records the command being dispatched (`name` as CLIENT LIST shows it, empty when it is
    /// not a known command); the shared registry is only touched when the name changes.
    pub fn note_command(&mut self, name: &str) {
        if self.last_cmd != name {
            self.last_cmd.clear();
            self.last_cmd.push_str(name);
            if let Some(entry) = &self.entry {
                entry.set_cmd(name);
            }
        }
    }

    /// Makes `user` the client's gateway user (`None`: not authenticated) and publishes its
    /// name for CLIENT LIST / INFO (a rare change: AUTH, HELLO AUTH, RESET, connect).
    pub fn set_user(&mut self, user: Option<Arc<User>>) {
        if let Some(entry) = &self.entry {
            let name: Arc<str> = user.as_ref().map_or(Arc::from(""), |u| Arc::from(&*u.name));
            entry.set_user(&name);
        }
        self.user = user;
    }

    /// Remembers that this client wrote to the master at `addr`.
    pub fn touch(&mut self, addr: &Arc<str>) {
        if !self
            .touched
            .iter()
            .any(|a| Arc::ptr_eq(a, addr) || a == addr)
        {
            self.touched.push(addr.clone());
        }
    }

    /// Closes the client's own connections (it left, or sent RESET).
    pub fn release(&mut self) {
        self.tx = TxState::default();
        self.pubsub.close_all();
        if let Some(pool) = self.pool.take() {
            pool.close_all();
        }
    }

    /// Answers request `seq` with an error (`msg` without the leading `-`).
    pub fn reply_error(&self, seq: Seq, msg: &str) {
        let mut out = BytesMut::with_capacity(msg.len() + 3);
        encode::error(&mut out, msg);
        self.queue.fill(seq, out.freeze());
    }

    /// Answers request `seq` with ready-made RESP bytes.
    pub fn reply(&self, seq: Seq, bytes: Bytes) {
        self.queue.fill(seq, bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_modes_silence_as_client_reply_says() {
        let mut mode = ReplyMode::On;
        assert!(!mode.silences_next());
        mode = ReplyMode::SkipNext;
        assert!(mode.silences_next(), "the next reply is skipped");
        assert!(!mode.silences_next(), "only that one");
        mode = ReplyMode::Off;
        assert!(mode.silences_next() && mode.silences_next());
    }
}
