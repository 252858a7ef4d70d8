//! What a client's subscription connections share: where frames go (the client's reply
//! queue, with its output limit), what the client asked for, the cluster map the placement
//! follows, and the signal that placement work is waiting.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::backend::env::Env;
use crate::notify::LocalNotify;
use crate::reply::queue::ReplyQueue;
use crate::slot::key_slot;
use crate::topology::Topology;

use super::names::Names;

/// First wait before placing again after a failure; doubled per failure in a row.
const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Failures in a row that double the wait; the longest is 50 ms × 2⁷ = 6.4 s.
const BACKOFF_STEPS: u32 = 8;

/// State shared by a client's subscription connections and their owner.
pub struct Outlet {
    pub queue: Rc<ReplyQueue>,
    pub env: Rc<Env>,
    /// Bytes of undelivered replies and messages past which the client is disconnected.
    pub limit: usize,
    /// What the client is subscribed to, as it sees it.
    pub wanted: RefCell<Names>,
    /// The map the connections' subscriptions were placed by.
    pub topo: RefCell<Arc<Topology>>,
    /// Some subscription is not where the map says it belongs: place again.
    pub dirty: Cell<bool>,
    /// Failures in a row (lost connections, refused subscriptions), for the backoff.
    failures: Cell<u32>,
    /// Wakes the task that keeps the placement in line with the map.
    pub wake: LocalNotify,
    /// The client left or reset: nothing is placed any more.
    pub closed: Cell<bool>,
}

impl Outlet {
    pub fn new(env: &Rc<Env>, queue: &Rc<ReplyQueue>) -> Outlet {
        Outlet {
            queue: queue.clone(),
            env: env.clone(),
            limit: env.shared.config().client.output_buffer_limit,
            wanted: RefCell::new(Names::default()),
            topo: RefCell::new(Arc::new(Topology::empty())),
            dirty: Cell::new(false),
            failures: Cell::new(0),
            wake: LocalNotify::new(),
            closed: Cell::new(false),
        }
    }

    /// Hands a message to the client after everything queued so far; a client holding more
    /// than its limit is disconnected (it does not read: memory stays bounded).
    pub fn push(&self, frame: Bytes) {
        self.queue.push_unsolicited(frame);
        self.check_limit(0);
    }

    /// Disconnects the client when its held replies plus `extra` bytes pass the limit.
    pub fn check_limit(&self, extra: usize) {
        if self.queue.held_bytes() + extra > self.limit {
            self.queue
                .kill("output buffer limit reached by a subscriber that does not read");
        }
    }

    /// Something could not be placed or was lost: place again after the backoff.
    pub fn retry_later(&self) {
        self.dirty.set(true);
        self.failures.set(self.failures.get().saturating_add(1));
        self.wake.notify();
    }

    /// A node acknowledged a request: the failures in a row are over.
    pub fn succeeded(&self) {
        self.failures.set(0);
    }

    /// How long to wait before placing again.
    pub fn backoff(&self) -> Duration {
        match self.failures.get() {
            0 => Duration::ZERO,
            n => BACKOFF_BASE * 2u32.pow(n.min(BACKOFF_STEPS) - 1),
        }
    }

    /// True when the master at `addr` serves the slot of `channel` in the placement's map:
    /// the one connection whose copy of a published message is delivered.
    pub fn owns(&self, addr: &str, channel: &[u8]) -> bool {
        let topo = self.topo.borrow();
        topo.master_of(key_slot(channel))
            .is_some_and(|m| &*topo.node(m).addr == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::shared::Shared;

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let shared = Shared::new(Config::default());
        let env = Env::new(shared.clone(), shared.stats.add_worker());
        let out = Outlet::new(&env, &Rc::new(ReplyQueue::new()));
        assert_eq!(out.backoff(), Duration::ZERO);
        out.retry_later();
        assert_eq!(out.backoff(), Duration::from_millis(50));
        out.retry_later();
        assert_eq!(out.backoff(), Duration::from_millis(100));
        for _ in 0..20 {
            out.retry_later();
        }
        assert_eq!(out.backoff(), Duration::from_millis(6400));
        out.succeeded();
        assert_eq!(out.backoff(), Duration::ZERO);
    }
}
