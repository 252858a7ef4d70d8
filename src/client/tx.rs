//! A client's transaction state: between MULTI and EXEC, the connection of its own the
//! transaction runs on once a keyed command chose the node, and the keyless commands held
//! until then. The commands themselves are in the router's `tx`.

use std::rc::Rc;

use bytes::Bytes;

use crate::backend::Backend;
use crate::slot::Slot;

/// A client's transaction state.
#[derive(Default)]
pub struct TxState {
    /// Between MULTI and EXEC/DISCARD.
    pub in_multi: bool,
    /// The connection the transaction runs on, once something chose its node.
    pub conn: Option<Rc<Backend>>,
    pub slot: Option<Slot>,
    /// MULTI went to the node.
    pub multi_sent: bool,
    /// An error while queuing: EXEC answers EXECABORT.
    pub failed: bool,
    pub watching: bool,
    /// Keyless commands queued before any command chose the transaction's node.
    pub held: Vec<Bytes>,
    /// Commands queued so far, and their bytes (CLIENT LIST `multi`, `multi-mem`).
    pub queued: usize,
    pub queued_bytes: usize,
}

impl TxState {
    /// An error while queuing: EXEC will answer EXECABORT.
    pub fn mark_failed(&mut self) {
        self.failed = true;
    }

    /// Counts a command queued in the transaction.
    pub fn count_queued(&mut self, bytes: usize) {
        self.queued += 1;
        self.queued_bytes += bytes;
    }

    /// Back to no transaction (EXEC, DISCARD, UNWATCH, the client left).
    pub fn reset(&mut self) {
        let conn = self.conn.take();
        *self = TxState::default();
        drop(conn);
    }
}
