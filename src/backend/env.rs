//! What a worker's backend connections need from their worker, handed down instead of the
//! worker itself: shared state, statistics, the worker's clock, and where to report a
//! redirection (the router decides what to do with it).

use std::cell::OnceCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::clock::Clock;
use crate::resp::reply::Redirect;
use crate::shared::Shared;
use crate::stats::WorkerStats;
use crate::stats::monitors::LocalMonitors;

use super::Pending;

/// A MOVED or ASK reply, reported with the request it answered.
pub struct Redirected {
    pub slot: u16,
    /// The node the reply names (host filled in from the sender when the reply omitted it).
    pub addr: Arc<str>,
    /// ASK (this request only) rather than MOVED (the slot moved).
    pub ask: bool,
    /// Protocol version of the connection that got the reply.
    pub proto: u8,
    pub pending: Pending,
}

impl Redirected {
    /// The report for `redirect`, received from the node at `from`.
    pub fn new(redirect: Redirect<'_>, from: &str, proto: u8, pending: Pending) -> Redirected {
        let (slot, target, ask) = match redirect {
            Redirect::Moved { slot, addr } => (slot, addr, false),
            Redirect::Ask { slot, addr } => (slot, addr, true),
        };
        let addr: Arc<str> = if target.starts_with(':') {
            // Newer servers may omit the host they do not know: same host as the sender.
            let host = crate::dns::split_host_port(from)
                .map(|(h, _)| h)
                .unwrap_or("127.0.0.1");
            Arc::from(format!("{host}{target}"))
        } else {
            Arc::from(target)
        };
        Redirected {
            slot,
            addr,
            ask,
            proto,
            pending,
        }
    }
}

/// A request whose connection was lost after it was sent, reported for one retry.
pub struct Failed {
    pub pending: Pending,
    /// The node the connection went to.
    pub from: Arc<str>,
    pub proto: u8,
}

/// Receives redirection reports.
pub type RedirectHandler = Rc<dyn Fn(Redirected)>;
/// Receives reports of requests to retry after a lost connection.
pub type FailureHandler = Rc<dyn Fn(Failed)>;

/// The per-worker environment of backend connections.
pub struct Env {
    pub shared: Arc<Shared>,
    pub stats: Arc<WorkerStats>,
    pub clock: Clock,
    /// The latency monitors' cells this worker counts into now (the session overall, the
    /// backend connections per node).
    pub latency: LocalMonitors,
    on_redirect: OnceCell<RedirectHandler>,
    on_failure: OnceCell<FailureHandler>,
}

impl Env {
    pub fn new(shared: Arc<Shared>, stats: Arc<WorkerStats>) -> Rc<Env> {
        Rc::new(Env {
            latency: LocalMonitors::new(stats.latency.load_full()),
            shared,
            stats,
            clock: Clock::new(),
            on_redirect: OnceCell::new(),
            on_failure: OnceCell::new(),
        })
    }

    /// Installs the one handler of redirection reports (set once, by the worker's router).
    pub fn set_redirect_handler(&self, handler: RedirectHandler) {
        let _ = self.on_redirect.set(handler);
    }

    /// Installs the one handler of retry reports (set once, by the worker's router).
    pub fn set_failure_handler(&self, handler: FailureHandler) {
        let _ = self.on_failure.set(handler);
    }

    /// Reports a read to retry; without a handler it fails.
    pub(crate) fn report_failure(&self, report: Failed) {
        match self.on_failure.get() {
            Some(handler) => handler(report),
            None => report
                .pending
                .sink
                .fail("ERR meridian: connection lost and no router to retry the read"),
        }
    }

    /// Reports a redirection; without a handler the request fails with the node's reply.
    pub(crate) fn report_redirect(&self, report: Redirected) {
        match self.on_redirect.get() {
            Some(handler) => handler(report),
            None => report
                .pending
                .sink
                .fail("ERR meridian: redirection with no router to follow it"),
        }
    }
}
