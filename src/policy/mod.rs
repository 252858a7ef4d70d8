//! Node selection: (candidates of a slot, access, read policy) → node. Pure, so it is tested
//! with a fake clock and a seeded RNG; the data path calls [`choose`] and nothing else.
//!
//! The caller (the `route` layer) builds [`Candidate`]s from the topology snapshot and the
//! health table; [`choose`] applies the write rule ([`choose_write`]: the master, or a fast
//! refusal while its breaker is open) or the DC-aware read policy ([`choose_read`]).

mod read;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::config::{Config, LatencySource};
use crate::health::breaker::BreakerState;
use crate::slot::Slot;
use crate::topology::{Node, NodeId, Role};

pub use read::choose_read;

/// What a request does to its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// The node a request for one slot goes to. `cands[0]` is the slot's master, the rest its
/// replicas. Writes — and reads when no read policy is configured (`params` is None) — go to
/// the master under the write rule; reads otherwise follow the read policy, whose
/// [`Choice::None`] (no candidate may be read from) the caller turns into the master.
pub fn choose(
    params: Option<&PolicyParams>,
    access: Access,
    cands: &[Candidate],
    now: Instant,
    rng: &mut impl Rng,
) -> Result<Choice, WriteRefusal> {
    match (access, params) {
        (Access::Read, Some(params)) => Ok(choose_read(params, cands, now, rng)),
        _ => match cands.first() {
            Some(master) => choose_write(master, now).map(Choice::Node),
            None => Ok(Choice::None),
        },
    }
}

/// The role of a candidate as the read priorities see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplicaKind {
    /// The slot's master.
    Master,
    /// A replica listed in `cluster.seeds`.
    StaticReplica,
    /// A replica discovered from the cluster.
    DynamicReplica,
}

impl ReplicaKind {
    /// The kind of a topology node.
    pub fn of(node: &Node) -> ReplicaKind {
        match (node.role, node.is_static) {
            (Role::Master, _) => ReplicaKind::Master,
            (Role::Replica, true) => ReplicaKind::StaticReplica,
            (Role::Replica, false) => ReplicaKind::DynamicReplica,
        }
    }
}

/// One node that could serve a slot, with what the health layer knows about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub node: NodeId,
    pub kind: ReplicaKind,
    /// Datacenter; `None` when the node matches no DC.
    pub dc: Option<Arc<str>>,
    /// Breaker state as of the snapshot; an Open breaker whose `retry_at` has passed is
    /// treated as HalfOpen.
    pub breaker: BreakerState,
    /// When an Open breaker lets a probe through.
    pub retry_at: Option<Instant>,
    /// The node answered `-LOADING` or its INFO says it is loading its dataset.
    pub loading: bool,
    /// A replica's `master_link_status:up`; always true for masters.
    pub link_up: bool,
    /// Replication offset lag behind the master, in bytes (0 for masters).
    pub lag_bytes: u64,
    /// Requests this worker has in flight on the node.
    pub outstanding: u32,
    /// Peak-EWMA round-trip time in milliseconds, when measured.
    pub rtt_ms: Option<f64>,
    /// Whether `rtt_ms` has a recent sample (the `hybrid` source uses it only then).
    pub rtt_fresh: bool,
}

impl Candidate {
    /// A healthy, idle, unmeasured candidate for a topology node; the caller fills in health.
    pub fn new(id: NodeId, node: &Node) -> Candidate {
        Candidate {
            node: id,
            kind: ReplicaKind::of(node),
            dc: node.dc.clone(),
            breaker: BreakerState::Closed,
            retry_at: None,
            loading: false,
            link_up: true,
            lag_bytes: 0,
            outstanding: 0,
            rtt_ms: None,
            rtt_fresh: false,
        }
    }

    /// The breaker state at `now`: Open turns HalfOpen once `retry_at` has passed.
    pub fn breaker_at(&self, now: Instant) -> BreakerState {
        match (self.breaker, self.retry_at) {
            (BreakerState::Open, Some(at)) if at <= now => BreakerState::HalfOpen,
            (state, _) => state,
        }
    }
}

/// The read policy's settings, built once per config (snapshot) by [`PolicyParams::from_config`].
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyParams {
    /// The DC this gateway serves.
    pub local_dc: Option<Arc<str>>,
    /// `latency_ms[local_dc]`: milliseconds from the local DC to each DC. The local DC is at 0
    /// unless the map says otherwise.
    pub latency_row: BTreeMap<String, f64>,
    pub master_priority: u8,
    pub static_replica_priority: u8,
    pub dynamic_replica_priority: u8,
    pub latency_source: LatencySource,
    /// Distances within this of the nearest are one tier.
    pub tolerance_ms: f64,
    /// Distances above this are used only as a fallback; 0 = no limit.
    pub max_latency_ms: f64,
    /// Shares of equally near DCs; a DC not named gets no share while a named one is in the
    /// tier. Empty = no weights (power of two choices over the whole tier).
    pub weights: BTreeMap<String, u32>,
    /// Replicas lagging more bytes than this are skipped; 0 = off.
    pub max_replica_lag: u64,
}

impl PolicyParams {
    /// The parameters `cfg` describes for its `local_dc`.
    pub fn from_config(cfg: &Config) -> PolicyParams {
        let local_dc = cfg.local_dc.as_deref();
        let mut latency_row = local_dc
            .and_then(|dc| cfg.latency_ms.get(dc))
            .cloned()
            .unwrap_or_default();
        if let Some(dc) = local_dc {
            latency_row.entry(dc.to_string()).or_insert(0.0);
        }
        let policy = &cfg.read_policy;
        PolicyParams {
            local_dc: local_dc.map(Arc::from),
            latency_row,
            master_priority: policy.master_priority,
            static_replica_priority: policy.static_replica_priority,
            dynamic_replica_priority: policy.dynamic_replica_priority,
            latency_source: policy.latency_source,
            tolerance_ms: non_negative(policy.tolerance_ms),
            max_latency_ms: non_negative(policy.max_latency_ms),
            weights: policy.weights.clone(),
            max_replica_lag: cfg.health.max_replica_lag,
        }
    }

    /// The read priority of a role; 0 = never read from it.
    pub fn priority(&self, kind: ReplicaKind) -> u8 {
        match kind {
            ReplicaKind::Master => self.master_priority,
            ReplicaKind::StaticReplica => self.static_replica_priority,
            ReplicaKind::DynamicReplica => self.dynamic_replica_priority,
        }
    }
}

/// Validation rejects negative and NaN values; this keeps a hand-built config harmless too.
fn non_negative(ms: f64) -> f64 {
    if ms.is_finite() && ms > 0.0 { ms } else { 0.0 }
}

/// The outcome of a read decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// A usable node of the nearest tier.
    Node(NodeId),
    /// The nearest tier had no usable node; chosen by the fallback steps.
    Fallback(NodeId),
    /// No candidate may be read from (none, or every one has role priority 0).
    None,
}

impl Choice {
    /// The chosen node, whichever way it was chosen.
    pub fn node(self) -> Option<NodeId> {
        match self {
            Choice::Node(id) | Choice::Fallback(id) => Some(id),
            Choice::None => None,
        }
    }
}

/// A write refused because the slot master's breaker is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit open, retry in {}ms", ceil_ms(*retry_in))]
pub struct WriteRefusal {
    /// Time until the breaker lets a probe through.
    pub retry_in: Duration,
}

impl WriteRefusal {
    /// The RESP error line (without `-` and CRLF) the client receives.
    pub fn client_message(&self, master_addr: &str, slot: Slot) -> String {
        format!("TRYAGAIN meridian: master {master_addr} for slot {slot} unavailable ({self})")
    }
}

/// Whole milliseconds, rounded up so a client waiting that long finds the probe allowed.
fn ceil_ms(d: Duration) -> u128 {
    d.as_micros().div_ceil(1000)
}

/// The node a write goes to: the slot master, whatever its DC — never a replica. An Open
/// breaker fails the write at once with the time left until the next probe.
pub fn choose_write(master: &Candidate, now: Instant) -> Result<NodeId, WriteRefusal> {
    match master.breaker_at(now) {
        BreakerState::Open => Err(WriteRefusal {
            retry_in: master
                .retry_at
                .map_or(Duration::ZERO, |at| at.saturating_duration_since(now)),
        }),
        BreakerState::Closed | BreakerState::HalfOpen => Ok(master.node),
    }
}

/// How far a candidate is from the local DC, per `latency_source`: `map` reads the latency
/// row, `measured` the RTT EWMA, `hybrid` the EWMA when fresh and the row otherwise. `None`
/// means unknown, which the policy treats as farther than anything known.
pub fn distance_ms(params: &PolicyParams, cand: &Candidate) -> Option<f64> {
    let mapped = || {
        cand.dc
            .as_deref()
            .and_then(|dc| params.latency_row.get(dc).copied())
    };
    let measured = cand.rtt_ms.filter(|ms| ms.is_finite() && *ms >= 0.0);
    match params.latency_source {
        LatencySource::Map => mapped(),
        LatencySource::Measured => measured,
        LatencySource::Hybrid => measured.filter(|_| cand.rtt_fresh).or_else(mapped),
    }
}
