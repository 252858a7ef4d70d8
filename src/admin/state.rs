//! `/api/state`: the gateway as JSON — nodes with role, slots, breaker, RTT and lag; the
//! latency map in use; read share per DC; DC host names; per-command rates and latency; the
//! config in force; recent events.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use crate::config::{LatencySource, UNKNOWN_DC};
use crate::events::Event;
use crate::shared::Shared;
use crate::topology::Role;
use crate::topology::dc_hosts::HostState;

#[derive(Serialize)]
struct State<'a> {
    version: &'static str,
    config: ConfigInfo,
    local_dc: Option<&'a str>,
    uptime_seconds: f64,
    ready: bool,
    /// Why not ready; absent when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_ready: Option<String>,
    workers: Workers,
    slots_covered: usize,
    nodes: Vec<NodeState<'a>>,
    /// The configured DC latency map (ms), `latency_ms[from][to]`.
    latency_ms: &'a BTreeMap<String, BTreeMap<String, f64>>,
    /// Where the read policy takes node distances from.
    latency_source: &'static str,
    reads: Vec<DcReads>,
    /// `datacenters.<dc>.hosts` names: addresses, expiry, failed lookups.
    dc_hosts: Vec<HostState>,
    /// Per command: requests, replies, latency quantiles since start and the histogram behind
    /// them, busiest first.
    commands: Vec<super::commands::CommandState>,
    /// Upper bounds (ms) of the `commands` histogram buckets; a `+Inf` bucket follows.
    latency_buckets_ms: Vec<f64>,
    /// Recent events (at most [`crate::events::CAPACITY`]), newest last.
    events: Vec<Event>,
}

#[derive(Serialize)]
struct ConfigInfo {
    path: Option<String>,
    version: u64,
    /// Unix ms of the last reload attempt.
    last_reload_ms: Option<u64>,
    /// Why the last reload was refused; null once one succeeds.
    last_error: Option<String>,
    /// Changed settings the last reload could not apply without a restart.
    needs_restart: Vec<String>,
    reloads_ok: u64,
    reloads_failed: u64,
}

#[derive(Serialize)]
struct Workers {
    configured: usize,
    listening: usize,
}

#[derive(Serialize)]
struct NodeState<'a> {
    addr: &'a str,
    id: &'a str,
    dc: &'a str,
    role: &'static str,
    shard: u16,
    /// Listed in `cluster.seeds`.
    #[serde(rename = "static")]
    is_static: bool,
    /// Inclusive slot ranges of the node's shard.
    slots: &'a [(u16, u16)],
    breaker: &'static str,
    consecutive_failures: u32,
    /// While the breaker is open: time until it lets a probe through.
    retry_in_ms: Option<u64>,
    breaker_transitions: u64,
    rtt_ms: Rtt,
    /// Replicas: replication offset behind the master, from the prober.
    lag_bytes: Option<u64>,
    loading: bool,
    master_link_up: bool,
}

#[derive(Serialize)]
struct Rtt {
    /// `latency_ms[local_dc][node's dc]`, when both are known.
    configured: Option<f64>,
    /// The prober's PING round trip (peak-EWMA).
    measured: Option<f64>,
    /// Whether the measurement is recent enough for the read policy to use it.
    measured_fresh: bool,
}

#[derive(Serialize)]
struct DcReads {
    dc: String,
    reads: u64,
    /// Fraction of all reads, 0..1 (0 before any read).
    share: f64,
}

fn source_name(source: LatencySource) -> &'static str {
    match source {
        LatencySource::Map => "map",
        LatencySource::Measured => "measured",
        LatencySource::Hybrid => "hybrid",
    }
}

/// The JSON document of `/api/state`.
pub fn render(shared: &Shared, workers: usize) -> String {
    let config = shared.config();
    let (_, topo) = shared.topology.load();
    let now = Instant::now();
    let fresh_for = config.health.probe_interval * 3;
    let local_dc = config.local_dc.as_deref();
    let configured_rtt = |dc: Option<&str>| {
        let row = config.latency_ms.get(local_dc?)?;
        row.get(dc?).copied()
    };
    let nodes = topo
        .nodes
        .iter()
        .map(|n| {
            let health = shared.health.get(&n.addr);
            let probe = health.as_ref().and_then(|h| h.probe_rtt(now, fresh_for));
            let slots = topo
                .shards
                .get(usize::from(n.shard))
                .map_or(&[][..], |s| &s.slots[..]);
            NodeState {
                addr: &n.addr,
                id: &n.id,
                dc: n.dc.as_deref().unwrap_or(UNKNOWN_DC),
                role: match n.role {
                    Role::Master => "master",
                    Role::Replica => "replica",
                },
                shard: n.shard,
                is_static: n.is_static,
                slots,
                breaker: health.as_ref().map_or("closed", |h| h.state(now).as_str()),
                consecutive_failures: health.as_ref().map_or(0, |h| h.consecutive_failures()),
                retry_in_ms: health
                    .as_ref()
                    .and_then(|h| h.retry_in(now))
                    .map(|d| d.as_millis() as u64),
                breaker_transitions: health
                    .as_ref()
                    .map_or(0, |h| h.transitions.load(Ordering::Relaxed)),
                rtt_ms: Rtt {
                    configured: configured_rtt(n.dc.as_deref()),
                    measured: probe.map(|(ms, _)| ms),
                    measured_fresh: probe.is_some_and(|(_, fresh)| fresh),
                },
                lag_bytes: (n.role == Role::Replica)
                    .then(|| health.as_ref().map(|h| h.lag_bytes.load(Ordering::Relaxed)))
                    .flatten(),
                loading: health
                    .as_ref()
                    .is_some_and(|h| h.loading.load(Ordering::Relaxed)),
                master_link_up: health
                    .as_ref()
                    .is_none_or(|h| h.link_up.load(Ordering::Relaxed)),
            }
        })
        .collect();
    let totals = shared.stats.request_totals();
    let commands = super::commands::summarize(&totals.commands, &shared.command_names.names());
    let by_dc = totals.reads_by_dc;
    let all: u64 = by_dc.iter().sum();
    let reads = shared
        .dc_names()
        .into_iter()
        .map(|(i, dc)| {
            let n = by_dc.get(i).copied().unwrap_or(0);
            DcReads {
                dc: dc.to_string(),
                reads: n,
                share: if all == 0 { 0.0 } else { n as f64 / all as f64 },
            }
        })
        .collect();
    let ready = super::ready::check(shared, workers);
    let reload = shared.reload_status.lock().clone();
    let state = State {
        version: env!("CARGO_PKG_VERSION"),
        config: ConfigInfo {
            path: shared.config_path.as_ref().map(|p| p.display().to_string()),
            version: shared.config_version(),
            last_reload_ms: reload.last_reload_ms,
            last_error: reload.last_error,
            needs_restart: reload.needs_restart,
            reloads_ok: reload.ok,
            reloads_failed: reload.errors,
        },
        local_dc,
        uptime_seconds: shared.started.elapsed().as_secs_f64(),
        ready: ready.is_ok(),
        not_ready: ready.err(),
        workers: Workers {
            configured: workers,
            listening: shared.listening_workers(),
        },
        slots_covered: topo.covered_slots(),
        nodes,
        latency_ms: &config.latency_ms,
        latency_source: source_name(config.read_policy.latency_source),
        reads,
        dc_hosts: shared.dc_hosts.lock().states(Instant::now()),
        commands,
        latency_buckets_ms: super::commands::bounds_ms(),
        events: shared.events.recent(),
    };
    serde_json::to_string_pretty(&state).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
