//! Connections owned by one client: for blocking commands, transactions and subscriptions,
//! so that nothing a client waits for holds up the shared pipelined connections. All of them
//! close when the client leaves.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::Backend;
use crate::worker::Worker;

/// A client's own backend connections, at most one per (node, protocol).
#[derive(Default)]
pub struct DedicatedPool {
    conns: RefCell<Vec<Rc<Backend>>>,
}

impl DedicatedPool {
    pub fn new() -> Rc<DedicatedPool> {
        Rc::new(DedicatedPool::default())
    }

    /// The client's connection to `addr`, opened on first use.
    pub fn get(&self, worker: &Worker, addr: &Arc<str>, proto: u8) -> Rc<Backend> {
        let mut conns = self.conns.borrow_mut();
        if let Some(be) = conns.iter().find(|b| b.addr == *addr && b.proto == proto) {
            return be.clone();
        }
        let be = Backend::new(
            addr.clone(),
            proto,
            worker.stats.node(addr),
            worker.shared.health.node(addr),
            None,
        );
        conns.push(be.clone());
        be
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.conns.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.conns.borrow().is_empty()
    }

    /// Closes and forgets one connection.
    pub fn close(&self, be: &Rc<Backend>) {
        be.close();
        self.conns.borrow_mut().retain(|b| !Rc::ptr_eq(b, be));
    }

    /// Closes every connection (the client left).
    pub fn close_all(&self) {
        for be in self.conns.borrow_mut().drain(..) {
            be.close();
        }
    }
}
