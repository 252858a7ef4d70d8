//! Connections to cluster nodes: one pipelined [`Backend`] per node per worker that every
//! client of the worker queues its requests on, replies matched in FIFO order to their
//! [`Pending`] entries and handed to their [`Sink`]; the connections a client owns
//! ([`DedicatedPool`]); the worker's registry of shared connections ([`registry`]). The I/O
//! task of a connection is in [`conn`]. Redirections and failures are reported to the layer
//! above through [`env::Env`]; nothing here knows the router or the session.

pub mod conn;
pub mod env;
pub mod registry;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::clock::Tick;
use crate::error::BackendError;
use crate::health::ewma::PeakEwma;
use crate::health::table::NodeHealth;
use crate::notify::LocalNotify;
use crate::reply::merge::Merge;
use crate::reply::queue::{ReplyQueue, Seq};
use crate::reply::sink::Sink;
use crate::resp::encode;
use crate::slot::Slot;
use crate::stats::NodeStats;
use crate::stats::monitors::NodeCells;

use env::{Env, Failed};

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
    queued_at: VecDeque<Tick>,
    link: Link,
    /// The node left the cluster: close once nothing is pending.
    retired: bool,
    /// Close now, failing whatever is pending (a dedicated connection whose client left).
    closed: bool,
    /// How many entries at the back of `pending` still have their bytes in `out` (never
    /// handed to the socket): if the connection fails they were certainly not executed.
    unsent: usize,
}

/// A worker's connection to one node, speaking one protocol version.
pub struct Backend {
    pub(crate) env: Rc<Env>,
    pub addr: Arc<str>,
    /// RESP version negotiated on this connection (2 or 3).
    pub proto: u8,
    pub stats: Arc<NodeStats>,
    /// This node's latency monitor histograms in the worker's current cells.
    pub(crate) latency: NodeCells,
    /// Longest wait for a reply before the connection is declared failed.
    timeout: Option<Duration>,
    /// Where results are reported (the node's breaker).
    pub health: Arc<NodeHealth>,
    /// Send READONLY on connect (the node is a replica that serves reads).
    readonly: std::cell::Cell<bool>,
    rtt: RefCell<PeakEwma>,
    state: RefCell<State>,
    wake: LocalNotify,
    /// Set by the connection's reply watchdog when a reply is overdue (see `conn::serve`).
    timed_out: LocalNotify,
    /// Pub/sub mode: where unsolicited frames go.
    push: RefCell<Option<PushHandler>>,
    /// Called when the connection is lost (not when closed on purpose).
    lost_hook: RefCell<Option<Rc<dyn Fn()>>>,
}

impl Backend {
    /// A backend connection; `timeout` fails requests that wait longer (None for a client's
    /// own connections, where blocking for long is the point).
    pub fn new(env: &Rc<Env>, addr: Arc<str>, proto: u8, timeout: Option<Duration>) -> Rc<Backend> {
        Rc::new(Backend {
            stats: env.stats.node(&addr),
            latency: NodeCells::default(),
            health: env.shared.health.node(&addr),
            env: env.clone(),
            addr,
            proto,
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
                unsent: 0,
            }),
            wake: LocalNotify::new(),
            timed_out: LocalNotify::new(),
            push: RefCell::new(None),
            lost_hook: RefCell::new(None),
        })
    }

    /// Queues `request` (complete RESP bytes) and remembers where its reply goes. Opens the
    /// connection first when there is none.
    pub fn send(self: &Rc<Self>, request: &[u8], pending: Pending) {
        self.ensure_connecting();
        let mut st = self.state.borrow_mut();
        st.out.extend_from_slice(request);
        st.pending.push_back(pending);
        st.queued_at.push_back(self.env.clock.now_tick());
        st.unsent += 1;
        drop(st);
        self.stats.requests.add(1);
        self.wake.notify();
    }

    /// Queues bytes whose replies are not matched to requests (a pub/sub connection, where a
    /// push handler takes every frame).
    pub fn send_raw(self: &Rc<Self>, request: &[u8]) {
        self.ensure_connecting();
        self.state.borrow_mut().out.extend_from_slice(request);
        self.stats.requests.add(1);
        self.wake.notify();
    }

    /// Queues `ASKING` followed by `request`, back to back (an ASK redirection).
    pub fn send_asking(self: &Rc<Self>, request: &[u8], pending: Pending) {
        self.send(b"*1\r\n$6\r\nASKING\r\n", Pending::ignored());
        self.send(request, pending);
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
                sink: Sink::Internal { .. },
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

    fn ensure_connecting(self: &Rc<Self>) {
        let mut st = self.state.borrow_mut();
        if st.link != Link::Down {
            return;
        }
        st.link = Link::Connecting;
        st.retired = false;
        st.closed = false;
        let creds = self.env.shared.credentials();
        let password = creds.password.as_deref().map(str::as_bytes);
        let user = creds.username.as_deref().unwrap_or("default").as_bytes();
        // The handshake goes first: nothing else can be queued while the link is Down.
        let now = self.env.clock.read_tick();
        match (self.proto, password) {
            (3, Some(pw)) => {
                encode::command(&mut st.out, &[b"HELLO", b"3", b"AUTH", user, pw]);
                st.pending.push_back(Pending::handshake());
                st.queued_at.push_back(now);
                st.unsent += 1;
            }
            (3, None) => {
                encode::command(&mut st.out, &[b"HELLO", b"3"]);
                st.pending.push_back(Pending::handshake());
                st.queued_at.push_back(now);
                st.unsent += 1;
            }
            (_, Some(_)) => {
                if let Some(auth) = creds.auth_command() {
                    encode::command(&mut st.out, &auth);
                    st.pending.push_back(Pending::handshake());
                    st.queued_at.push_back(now);
                    st.unsent += 1;
                }
            }
            (_, None) => {}
        }
        if self.readonly.get() {
            encode::command(&mut st.out, &[b"READONLY"]);
            st.pending.push_back(Pending::ignored());
            st.queued_at.push_back(now);
            st.unsent += 1;
        }
        drop(st);
        // The connection's I/O task: it drives this backend and reports back through `env`.
        tokio::task::spawn_local(conn::run(self.clone()));
    }

    /// Marks the link down and answers every pending request of the failed connection: one
    /// never sent gets `TRYAGAIN` (clients may retry it), a read that was sent is reported
    /// for one retry on another candidate, a write that was sent fails saying that its
    /// outcome is unknown (never retried).
    fn fail_all(&self, err: &BackendError) {
        self.run_lost_hook();
        let (drained, unsent) = self.take_all();
        let sent = drained.len().saturating_sub(unsent);
        let mut failed = 0;
        for (i, p) in drained.into_iter().enumerate() {
            if p.sink.is_internal() {
                continue;
            }
            if i >= sent {
                failed += 1;
                p.sink
                    .fail(&format!("TRYAGAIN meridian: {err} (request not sent)"));
            } else if p.retryable() {
                self.env.report_failure(Failed {
                    pending: p,
                    from: self.addr.clone(),
                    proto: self.proto,
                });
            } else {
                failed += 1;
                p.sink.fail(&err.unknown_outcome_message());
            }
        }
        self.stats.failures.add(failed);
    }

    /// Marks the link down and takes every pending request (the link's bytes are dropped),
    /// with how many of them were never handed to the socket.
    fn take_all(&self) -> (Vec<Pending>, usize) {
        let mut st = self.state.borrow_mut();
        st.link = Link::Down;
        st.out.clear();
        st.queued_at.clear();
        let unsent = std::mem::take(&mut st.unsent);
        (st.pending.drain(..).collect(), unsent)
    }

    /// Closes on purpose (retired node, client gone): what is left pending fails plainly.
    fn fail_closed(&self) {
        let (drained, _) = self.take_all();
        for p in drained {
            p.sink.fail("ERR meridian: backend connection closed");
        }
    }

    /// The oldest pending request and how long it waited for its reply, as of `now`.
    fn pop_pending(&self, now: Tick) -> Option<(Pending, Option<Duration>)> {
        let mut st = self.state.borrow_mut();
        let p = st.pending.pop_front()?;
        let waited = st.queued_at.pop_front().map(|t| now.since(t));
        Some((p, waited))
    }

    /// How long the oldest request handed to the socket has waited for its reply. Requests
    /// not written yet do not count: when the worker itself was held up (a starved CPU), the
    /// node never had the chance to answer, and connecting has its own timeout.
    fn oldest_wait(&self) -> Option<Duration> {
        let st = self.state.borrow();
        if st.pending.len() <= st.unsent {
            return None;
        }
        let now = self.env.clock.read_tick();
        st.queued_at.front().map(|t| now.since(*t))
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
        st.unsent = 0;
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
    /// For a read of one slot: that slot, so a connection lost before the reply can be
    /// retried once on another candidate.
    pub read_slot: Option<Slot>,
    /// Already retried once after a lost connection.
    pub retried: bool,
    /// For the latency monitors: what the node's histograms count when its reply comes.
    pub timing: Option<Timing>,
}

/// What a request tells the latency monitors of the node that answers it.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// The monitors it counts in (bit i = monitor i)...
    pub mask: u32,
    /// ...of this generation of the monitor set (a reply that comes after a reload changed
    /// the set is not counted per node: its bits name other monitors now).
    pub generation: u32,
    /// When its request was read, on the worker's clock.
    pub at: Tick,
}

impl Pending {
    /// Whether a lost connection may resend this request: a read on a shared connection,
    /// not retried before.
    pub fn retryable(&self) -> bool {
        self.read_slot.is_some() && self.request.is_some() && self.pool.is_none() && !self.retried
    }

    /// Marks the request as a read of `slot` (retryable once).
    pub fn reading(mut self, slot: Slot) -> Pending {
        self.read_slot = Some(slot);
        self
    }

    /// A request whose reply goes to `sink`; redirectable when `request` is kept.
    pub fn new(sink: Sink, request: Option<Bytes>) -> Pending {
        Pending {
            sink,
            request,
            redirects: 0,
            pool: None,
            read_slot: None,
            retried: false,
            timing: None,
        }
    }

    /// A request whose reply goes straight to a client; redirectable when `request` is kept.
    pub fn to_client(queue: Rc<ReplyQueue>, seq: Seq, request: Option<Bytes>) -> Pending {
        Pending::new(Sink::Client { queue, seq }, request)
    }

    /// A request whose reply is one part of a merge; not redirectable when `request` is None.
    pub fn to_part(merge: Rc<Merge>, part: usize, request: Option<Bytes>) -> Pending {
        Pending::new(Sink::Part { merge, part }, request)
    }

    /// A handshake step whose error reply is fatal to the connection.
    pub fn handshake() -> Pending {
        Pending::new(Sink::Internal { fatal: true }, None)
    }

    /// A step whose reply is ignored (ASKING, MULTI of a transaction).
    pub fn ignored() -> Pending {
        Pending::new(Sink::Internal { fatal: false }, None)
    }
}

/// Connections owned by one client: for blocking commands, transactions and subscriptions,
/// so that nothing a client waits for holds up the shared pipelined connections. All of them
/// close when the client leaves. At most one per (node, protocol).
#[derive(Default)]
pub struct DedicatedPool {
    conns: RefCell<Vec<Rc<Backend>>>,
}

impl DedicatedPool {
    pub fn new() -> Rc<DedicatedPool> {
        Rc::new(DedicatedPool::default())
    }

    /// The client's connection to `addr`, opened on first use.
    pub fn get(&self, env: &Rc<Env>, addr: &Arc<str>, proto: u8) -> Rc<Backend> {
        let mut conns = self.conns.borrow_mut();
        if let Some(be) = conns.iter().find(|b| b.addr == *addr && b.proto == proto) {
            return be.clone();
        }
        let be = Backend::new(env, addr.clone(), proto, None);
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
