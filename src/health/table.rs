//! The health of every node, shared by all workers: the breaker (a decision behind a lock,
//! taken only when a result changes something) and a gate the request path reads with plain
//! atomic loads. Probe results (RTT, LOADING, replica link, lag) live here too.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::breaker::{Breaker, BreakerParams, BreakerState, Transition};
use super::ewma::PeakEwma;
use crate::events::{EventKind, EventLog};
use crate::stats::Counter;

/// Gate values: Open also stands for HalfOpen, told apart by `retry_at_ns`.
const CLOSED: u8 = 0;
const OPEN: u8 = 1;

/// Health of one node.
#[derive(Debug)]
pub struct NodeHealth {
    pub addr: Arc<str>,
    breaker: Mutex<Breaker>,
    /// The breaker state as last decided (the gate the request path reads).
    gate: AtomicU8,
    /// Mirror of the consecutive failure count, so a success on a healthy node takes no lock.
    failures: AtomicU32,
    /// Nanoseconds after `epoch` at which an Open breaker allows a probe.
    retry_at_ns: AtomicU64,
    epoch: Instant,
    /// Total failures reported (for INFO).
    pub failures_total: AtomicU64,
    /// Breaker transitions (for INFO).
    pub transitions: AtomicU64,
    pub loading: AtomicBool,
    pub link_up: AtomicBool,
    pub lag_bytes: AtomicU64,
    probe_rtt: Mutex<PeakEwma>,
    /// Probe RTT in microseconds, for lock-free reads.
    probe_rtt_us: AtomicU64,
    probe_at_ns: AtomicU64,
    /// The node's DC as the last cluster map placed it, for events.
    dc: Mutex<Option<Arc<str>>>,
    /// The current opening's HalfOpen step was recorded.
    half_open_noted: AtomicBool,
    events: Arc<EventLog>,
}

impl NodeHealth {
    fn new(addr: Arc<str>, params: BreakerParams, events: Arc<EventLog>) -> NodeHealth {
        NodeHealth {
            addr,
            dc: Mutex::new(None),
            half_open_noted: AtomicBool::new(false),
            events,
            breaker: Mutex::new(Breaker::new(params)),
            gate: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            retry_at_ns: AtomicU64::new(0),
            epoch: Instant::now(),
            failures_total: AtomicU64::new(0),
            transitions: AtomicU64::new(0),
            loading: AtomicBool::new(false),
            link_up: AtomicBool::new(true),
            lag_bytes: AtomicU64::new(0),
            probe_rtt: Mutex::new(PeakEwma::new(Duration::from_secs(5))),
            probe_rtt_us: AtomicU64::new(u64::MAX),
            probe_at_ns: AtomicU64::new(0),
        }
    }

    fn ns(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_nanos() as u64
    }

    /// True while the breaker is Closed: one atomic load, no clock.
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.gate.load(Ordering::Acquire) == CLOSED
    }

    /// The breaker state at `now`, from the gate (no lock).
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.gate.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            _ if self.ns(now) >= self.retry_at_ns.load(Ordering::Acquire) => BreakerState::HalfOpen,
            _ => BreakerState::Open,
        }
    }

    /// When an Open breaker lets a probe through.
    pub fn retry_at(&self) -> Option<Instant> {
        (self.gate.load(Ordering::Acquire) != CLOSED)
            .then(|| self.epoch + Duration::from_nanos(self.retry_at_ns.load(Ordering::Acquire)))
    }

    /// Whether a request may go to this node now: always while Closed; while HalfOpen only the
    /// one probe (decided under the lock); never while Open.
    pub fn allow(&self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => self.breaker.lock().allow(now),
        }
    }

    /// Time until an Open breaker allows a probe.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        self.retry_at().map(|at| at.saturating_duration_since(now))
    }

    fn publish(&self, b: &Breaker, now: Instant) {
        let state = b.state(now);
        if let Some(at) = b.retry_at() {
            self.retry_at_ns.store(self.ns(at), Ordering::Release);
        }
        self.gate.store(
            if state == BreakerState::Closed {
                CLOSED
            } else {
                OPEN
            },
            Ordering::Release,
        );
        self.failures
            .store(b.consecutive_failures(), Ordering::Release);
    }

    /// A request succeeded (any reply, error replies included).
    pub fn on_success(&self, now: Instant) {
        if self.gate.load(Ordering::Acquire) == CLOSED && self.failures.load(Ordering::Acquire) == 0
        {
            return;
        }
        let mut b = self.breaker.lock();
        let t = b.on_success(now);
        self.publish(&b, now);
        drop(b);
        if let Some(t) = t {
            self.transitioned(t, 0);
        }
    }

    /// Records the Open -> HalfOpen step once per opening. Called by the prober each turn
    /// (the breaker turns HalfOpen by the clock alone; the request-path gate records nothing).
    pub fn note_half_open(&self, now: Instant) {
        if self.state(now) == BreakerState::HalfOpen
            && !self.half_open_noted.swap(true, Ordering::AcqRel)
        {
            let t = Transition {
                from: BreakerState::Open,
                to: BreakerState::HalfOpen,
            };
            self.transitioned(t, 0);
        }
    }

    /// Counts a breaker transition and records it as an event (outside the breaker lock).
    fn transitioned(&self, t: Transition, failures: u32) {
        if t.to == BreakerState::Open {
            self.half_open_noted.store(false, Ordering::Release);
        }
        self.transitions.fetch_add(1, Ordering::Relaxed);
        let kind = match t.to {
            BreakerState::Open => EventKind::BreakerOpen,
            BreakerState::HalfOpen => EventKind::BreakerHalfOpen,
            BreakerState::Closed => EventKind::BreakerClose,
        };
        let dc = self.dc.lock().clone();
        let message = if t.to == BreakerState::Open {
            format!(
                "breaker {} -> {} after {failures} consecutive failures",
                t.from.as_str(),
                t.to.as_str()
            )
        } else {
            format!("breaker {} -> {}", t.from.as_str(), t.to.as_str())
        };
        self.events
            .record(kind, Some(&self.addr), dc.as_deref(), None, message);
    }

    /// Sets the DC the cluster map places this node in (named in its events).
    pub fn set_dc(&self, dc: Option<Arc<str>>) {
        let mut cur = self.dc.lock();
        if *cur != dc {
            *cur = dc;
        }
    }

    /// Gives the breaker new parameters (a reload); its state and counts stay.
    pub fn set_params(&self, params: BreakerParams) {
        self.breaker.lock().set_params(params);
    }

    /// A request or connection failed (connect error, timeout, I/O error, node closed on us).
    pub fn on_failure(&self, now: Instant) {
        self.failures_total.fetch_add(1, Ordering::Relaxed);
        let mut b = self.breaker.lock();
        let t = b.on_failure(now);
        let failures = b.consecutive_failures();
        self.publish(&b, now);
        drop(b);
        if let Some(t) = t {
            self.transitioned(t, failures);
        }
    }

    /// Consecutive failures now.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.load(Ordering::Acquire)
    }

    /// Records a probe's round trip.
    pub fn observe_probe(&self, rtt: Duration, now: Instant) {
        let mut e = self.probe_rtt.lock();
        e.observe(rtt, now);
        if let Some(ms) = e.value_ms() {
            self.probe_rtt_us
                .store((ms * 1000.0) as u64, Ordering::Release);
            self.probe_at_ns.store(self.ns(now), Ordering::Release);
        }
    }

    /// The probe RTT in milliseconds and whether it is younger than `max_age`.
    pub fn probe_rtt(&self, now: Instant, max_age: Duration) -> Option<(f64, bool)> {
        let us = self.probe_rtt_us.load(Ordering::Acquire);
        if us == u64::MAX {
            return None;
        }
        let age = self
            .ns(now)
            .saturating_sub(self.probe_at_ns.load(Ordering::Acquire));
        Some((us as f64 / 1000.0, age <= max_age.as_nanos() as u64))
    }
}

/// Health of all nodes.
#[derive(Debug)]
pub struct HealthTable {
    params: Mutex<BreakerParams>,
    nodes: Mutex<HashMap<Arc<str>, Arc<NodeHealth>>>,
    /// Breaker transitions over all nodes.
    pub transitions: Counter,
    events: Arc<EventLog>,
}

impl HealthTable {
    /// An empty table whose breakers record their transitions in `events`.
    pub fn new(params: BreakerParams, events: Arc<EventLog>) -> HealthTable {
        HealthTable {
            params: Mutex::new(params),
            nodes: Mutex::new(HashMap::new()),
            transitions: Counter::default(),
            events,
        }
    }

    /// The health record of `addr`, created on first use.
    pub fn node(&self, addr: &Arc<str>) -> Arc<NodeHealth> {
        let params = *self.params.lock();
        self.nodes
            .lock()
            .entry(addr.clone())
            .or_insert_with(|| Arc::new(NodeHealth::new(addr.clone(), params, self.events.clone())))
            .clone()
    }

    /// New breaker parameters for every node, now and created later (a reload).
    pub fn set_params(&self, params: BreakerParams) {
        *self.params.lock() = params;
        for n in self.nodes.lock().values() {
            n.set_params(params);
        }
    }

    /// The record of `addr` if one exists.
    pub fn get(&self, addr: &str) -> Option<Arc<NodeHealth>> {
        self.nodes.lock().get(addr).cloned()
    }

    /// Forgets nodes that left the cluster.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.nodes.lock().retain(|a, _| keep(a));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> HealthTable {
        HealthTable::new(
            BreakerParams {
                failure_limit: 3,
                retry_timeout: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
            },
            Arc::default(),
        )
    }

    #[test]
    fn transitions_are_recorded_as_events_and_params_swap() {
        let t = table();
        let n = t.node(&Arc::from("a:1"));
        n.set_dc(Some(Arc::from("east")));
        let now = Instant::now();
        for _ in 0..3 {
            n.on_failure(now);
        }
        let later = now + Duration::from_millis(150);
        n.note_half_open(later);
        n.note_half_open(later);
        assert!(n.allow(later));
        n.on_success(later);
        let kinds: Vec<_> = t.events.recent().iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::BreakerOpen,
                EventKind::BreakerHalfOpen,
                EventKind::BreakerClose
            ]
        );
        let first = &t.events.recent()[0];
        assert_eq!(first.node.as_deref(), Some("a:1"));
        assert_eq!(first.dc.as_deref(), Some("east"));
        // A reload's limit applies to the existing node.
        t.set_params(BreakerParams {
            failure_limit: 1,
            retry_timeout: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        });
        n.on_failure(later);
        assert_eq!(n.state(later), BreakerState::Open);
    }

    #[test]
    fn gate_follows_the_breaker() {
        let t = table();
        let n = t.node(&Arc::from("a:1"));
        let now = Instant::now();
        assert!(n.allow(now));
        n.on_failure(now);
        n.on_success(now);
        n.on_failure(now);
        n.on_failure(now);
        assert_eq!(
            n.state(now),
            BreakerState::Closed,
            "a success reset the count"
        );
        n.on_failure(now);
        assert_eq!(n.state(now), BreakerState::Open);
        assert!(!n.allow(now));
        let later = now + Duration::from_millis(150);
        assert_eq!(n.state(later), BreakerState::HalfOpen);
        assert!(n.allow(later), "one probe");
        assert!(!n.allow(later), "only one probe");
        n.on_success(later);
        assert_eq!(n.state(later), BreakerState::Closed);
        assert!(n.transitions.load(Ordering::Relaxed) >= 2);
    }

    #[test]
    fn probe_rtt_freshness() {
        let t = table();
        let n = t.node(&Arc::from("a:1"));
        let now = Instant::now();
        assert!(n.probe_rtt(now, Duration::from_secs(1)).is_none());
        n.observe_probe(Duration::from_millis(4), now);
        let (ms, fresh) = n.probe_rtt(now, Duration::from_secs(1)).unwrap();
        assert!((ms - 4.0).abs() < 0.01 && fresh);
        let (_, fresh) = n
            .probe_rtt(now + Duration::from_secs(5), Duration::from_secs(1))
            .unwrap();
        assert!(!fresh);
    }
}
