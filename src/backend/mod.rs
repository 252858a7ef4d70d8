//! One pipelined connection per backend node per worker: every client of the worker queues its
//! requests here; replies come back in FIFO order and are handed to their [`pending::Sink`].

pub mod conn;
pub mod dedicated;
pub mod pending;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::health::ewma::PeakEwma;
use crate::health::table::NodeHealth;
use crate::notify::LocalNotify;
use crate::resp::encode;
use crate::stats::NodeStats;
use crate::worker::Worker;

use pending::Pending;

/// Time constant of the round-trip EWMA.
const RTT_DECAY: Duration = Duration::from_secs(5);

/// Where a pub/sub connection's frames go, and whether every frame (not only pushes) does.
type PushHandler = (Rc<dyn Fn(Bytes)>, bool);

/// Connection state of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Down,
    Connecting,
    Up,
}

struct State {
    /// Bytes queued for the next write (one syscall for all of them).
    out: BytesMut,
    /// Requests queued or sent, oldest first; replies are matched to them in this order.
    pending: VecDeque<Pending>,
    /// When each entry of `pending` was queued (same order).
    queued_at: VecDeque<Instant>,
    link: Link,
    /// The node left the cluster: close once nothing is pending.
    retired: bool,
    /// Close now, failing whatever is pending (a dedicated connection whose client left).
    closed: bool,
}

/// A worker's connection to one node, speaking one protocol version.
pub struct Backend {
    pub addr: Arc<str>,
    /// RESP version negotiated on this connection (2 or 3).
    pub proto: u8,
    pub stats: Arc<NodeStats>,
    /// Longest wait for a reply before the connection is declared failed.
    timeout: Option<Duration>,
    /// Where results are reported (the node's breaker).
    pub health: Arc<NodeHealth>,
    /// Send READONLY on connect (the node is a replica that serves reads).
    readonly: std::cell::Cell<bool>,
    rtt: RefCell<PeakEwma>,
    state: RefCell<State>,
    wake: LocalNotify,
    /// Pub/sub mode: where unsolicited frames go.
    push: RefCell<Option<PushHandler>>,
    /// Called when the connection is lost (not when closed on purpose).
    lost_hook: RefCell<Option<Rc<dyn Fn()>>>,
}

impl Backend {
    /// A backend connection; `timeout` fails requests that wait longer (None for a client's
    /// own connections, where blocking for long is the point).
    pub fn new(
        addr: Arc<str>,
        proto: u8,
        stats: Arc<NodeStats>,
        health: Arc<NodeHealth>,
        timeout: Option<Duration>,
    ) -> Rc<Backend> {
        Rc::new(Backend {
            addr,
            proto,
            stats,
            health,
            readonly: std::cell::Cell::new(false),
            timeout,
            rtt: RefCell::new(PeakEwma::new(RTT_DECAY)),
            state: RefCell::new(State {
                out: BytesMut::with_capacity(16 * 1024),
                pending: VecDeque::new(),
                queued_at: VecDeque::new(),
                link: Link::Down,
                retired: false,
                closed: false,
            }),
            wake: LocalNotify::new(),
            push: RefCell::new(None),
            lost_hook: RefCell::new(None),
        })
    }

    /// Queues `request` (complete RESP bytes) and remembers where its reply goes. Opens the
    /// connection first when there is none.
    pub fn send(self: &Rc<Self>, worker: &Rc<Worker>, request: &[u8], pending: Pending) {
        self.ensure_connecting(worker);
        let mut st = self.state.borrow_mut();
        st.out.extend_from_slice(request);
        st.pending.push_back(pending);
        st.queued_at.push_back(worker.now());
        drop(st);
        self.stats.requests.add(1);
        self.wake.notify();
    }

    /// Queues bytes whose replies are not matched to requests (a pub/sub connection, where a
    /// push handler takes every frame).
    pub fn send_raw(self: &Rc<Self>, worker: &Rc<Worker>, request: &[u8]) {
        self.ensure_connecting(worker);
        self.state.borrow_mut().out.extend_from_slice(request);
        self.stats.requests.add(1);
        self.wake.notify();
    }

    /// Queues `ASKING` followed by `request`, back to back (an ASK redirection).
    pub fn send_asking(self: &Rc<Self>, worker: &Rc<Worker>, request: &[u8], pending: Pending) {
        self.send(worker, b"*1\r\n$6\r\nASKING\r\n", Pending::ignored());
        self.send(worker, request, pending);
    }

    /// Requests waiting for a reply.
    pub fn pending_len(&self) -> usize {
        self.state.borrow().pending.len()
    }

    /// True while a connection is open or being opened.
    pub fn is_connected(&self) -> bool {
        self.state.borrow().link != Link::Down
    }

    /// The node left the cluster: finish what is pending, then close.
    pub fn retire(&self) {
        self.state.borrow_mut().retired = true;
        self.wake.notify();
    }

    /// Reads may be served by this node as a replica: send READONLY on every connect.
    pub fn set_readonly(&self) {
        self.readonly.set(true);
    }

    /// Closes the connection now (its client left); pending requests are dropped.
    pub fn close(&self) {
        let mut st = self.state.borrow_mut();
        if st.link != Link::Down {
            st.closed = true;
        }
        drop(st);
        self.wake.notify();
    }

    /// Installs a handler that receives every push frame (and, on a RESP2 connection, every
    /// reply once `all_frames` is set): the pub/sub mode of a dedicated connection.
    pub fn set_push_handler(&self, handler: Rc<dyn Fn(Bytes)>, all_frames: bool) {
        *self.push.borrow_mut() = Some((handler, all_frames));
    }

    fn push_handler(&self, reply: &Bytes) -> Option<Rc<dyn Fn(Bytes)>> {
        let push = self.push.borrow();
        let (handler, all) = push.as_ref()?;
        // Handshake replies (AUTH, HELLO) still belong to their pending entries.
        let handshake = matches!(
            self.state.borrow().pending.front(),
            Some(Pending {
                sink: pending::Sink::Internal { .. },
                ..
            })
        );
        (is_push(reply) || (*all && !handshake)).then(|| handler.clone())
    }

    /// Runs `hook` when the connection ends for any reason but [`Backend::close`].
    pub fn on_lost(&self, hook: Rc<dyn Fn()>) {
        *self.lost_hook.borrow_mut() = Some(hook);
    }

    fn run_lost_hook(&self) {
        let closed_by_us = self.state.borrow().closed;
        let hook = self.lost_hook.borrow().clone();
        if let (false, Some(hook)) = (closed_by_us, hook) {
            hook();
        }
    }

    fn ensure_connecting(self: &Rc<Self>, worker: &Rc<Worker>) {
        let mut st = self.state.borrow_mut();
        if st.link != Link::Down {
            return;
        }
        st.link = Link::Connecting;
        st.retired = false;
        st.closed = false;
        let creds = worker.shared.credentials();
        let password = creds.password.as_deref().map(str::as_bytes);
        let user = creds.username.as_deref().unwrap_or("default").as_bytes();
        // The handshake goes first: nothing else can be queued while the link is Down.
        match (self.proto, password) {
            (3, Some(pw)) => {
                encode::command(&mut st.out, &[b"HELLO", b"3", b"AUTH", user, pw]);
                st.pending.push_back(Pending::handshake());
                st.queued_at.push_back(Instant::now());
            }
            (3, None) => {
                encode::command(&mut st.out, &[b"HELLO", b"3"]);
                st.pending.push_back(Pending::handshake());
                st.queued_at.push_back(Instant::now());
            }
            (_, Some(_)) => {
                if let Some(auth) = creds.auth_command() {
                    encode::command(&mut st.out, &auth);
                    st.pending.push_back(Pending::handshake());
                    st.queued_at.push_back(Instant::now());
                }
            }
            (_, None) => {}
        }
        if self.readonly.get() {
            encode::command(&mut st.out, &[b"READONLY"]);
            st.pending.push_back(Pending::ignored());
            st.queued_at.push_back(Instant::now());
        }
        drop(st);
        tokio::task::spawn_local(conn::run(worker.clone(), self.clone()));
    }

    /// Fails every pending request with `msg` and marks the link down.
    fn fail_all(&self, msg: &str) {
        self.run_lost_hook();
        let drained: Vec<Pending> = {
            let mut st = self.state.borrow_mut();
            st.link = Link::Down;
            st.out.clear();
            st.queued_at.clear();
            st.pending.drain(..).collect()
        };
        let mut failed = 0;
        for p in drained {
            if !matches!(p.sink, pending::Sink::Internal { .. }) {
                failed += 1;
            }
            p.sink.fail(msg);
        }
        self.stats.failures.add(failed);
    }

    /// The oldest pending request and how long it waited for its reply, as of `now`.
    fn pop_pending(&self, now: Instant) -> Option<(Pending, Option<Duration>)> {
        let mut st = self.state.borrow_mut();
        let p = st.pending.pop_front()?;
        let waited = st
            .queued_at
            .pop_front()
            .map(|t| now.saturating_duration_since(t));
        Some((p, waited))
    }

    /// How long the oldest pending request has waited.
    fn oldest_wait(&self) -> Option<Duration> {
        self.state.borrow().queued_at.front().map(|t| t.elapsed())
    }

    /// Round-trip time of this connection's requests (peak-EWMA), in milliseconds.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.rtt.borrow().value_ms()
    }

    /// The RTT estimate and whether its last sample is younger than `max_age`.
    pub fn rtt(&self, now: Instant, max_age: Duration) -> Option<(f64, bool)> {
        let e = self.rtt.borrow();
        e.value_ms().map(|ms| (ms, e.is_fresh(now, max_age)))
    }

    fn mark_up(&self) {
        self.state.borrow_mut().link = Link::Up;
    }

    /// Moves the queued bytes into `buf` (which must be empty); false when nothing is queued.
    fn take_out(&self, buf: &mut BytesMut) -> bool {
        let mut st = self.state.borrow_mut();
        if st.out.is_empty() {
            return false;
        }
        std::mem::swap(&mut st.out, buf);
        true
    }

    fn should_close(&self) -> bool {
        let st = self.state.borrow();
        st.closed || (st.retired && st.pending.is_empty() && st.out.is_empty())
    }
}

/// RESP3 push frames are out-of-band messages, not replies to a pending request.
pub(crate) fn is_push(reply: &Bytes) -> bool {
    reply.first() == Some(&b'>')
}
