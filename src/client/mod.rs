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
    /// This client in the shared registry (CLIENT LIST/KILL).
    pub entry: Option<Arc<ClientEntry>>,
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
