//! `/metrics`: a prometheus-client collector that sums the per-worker counters, the health
//! table and the topology at scrape time; nothing on the request path knows it exists.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::config::UNKNOWN_DC;
use crate::health::breaker::BreakerState;
use crate::shared::Shared;
use crate::stats::errors::ErrorKind;
use crate::stats::requests::LATENCY_BOUNDS;
use crate::topology::Role;
use crate::topology::dc_hosts::HostState;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The registry `/metrics` encodes: one collector over the whole gateway.
pub fn registry(shared: Arc<Shared>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(GatewayCollector { shared }));
    registry
}

/// Encodes every metric in the Prometheus text format (0.0.4).
pub fn render(registry: &Registry) -> Result<String, fmt::Error> {
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

/// Reads the gateway's state at each scrape.
struct GatewayCollector {
    shared: Arc<Shared>,
}

impl fmt::Debug for GatewayCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GatewayCollector")
    }
}

/// The breaker state as the `meridian_breaker_state` gauge shows it.
fn breaker_value(state: BreakerState) -> i64 {
    match state {
        BreakerState::Closed => 0,
        BreakerState::HalfOpen => 1,
        BreakerState::Open => 2,
    }
}

/// Writes one metric family: its descriptor, then one sample per label set.
fn family<L, M>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    samples: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: prometheus_client::encoding::EncodeLabelSet,
    M: EncodeMetric,
{
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A family without labels.
fn single<M: EncodeMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: M,
) -> fmt::Result {
    let kind = value.metric_type();
    value.encode(enc.encode_descriptor(name, help, None, kind)?)
}

fn counter(v: u64) -> ConstCounter<u64> {
    ConstCounter::new(v)
}

fn gauge<N>(v: N) -> ConstGauge<N> {
    ConstGauge::new(v)
}

impl Collector for GatewayCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let shared = &*self.shared;
        let totals = shared.stats.totals();
        let requests = shared.stats.request_totals();
        let names = shared.command_names.names();
        let command = |id: usize| names.get(id).map_or("unknown", |n| &**n);

        family(
            &mut enc,
            "meridian_requests",
            "Requests received from clients, by command (names of the command table; anything else is unknown).",
            MetricType::Counter,
            requests
                .commands
                .iter()
                .enumerate()
                .filter(|(_, t)| t.requests > 0)
                .map(|(id, t)| ([("command", command(id))], counter(t.requests))),
        )?;
        let mut hist = enc.encode_descriptor(
            "meridian_request_duration_seconds",
            "Time from reading a request to handing its reply to the client socket, by command (worker clock: one reading per event-loop step).",
            None,
            MetricType::Histogram,
        )?;
        for (id, t) in requests.commands.iter().enumerate() {
            let count = t.count();
            if count == 0 {
                continue;
            }
            let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(t.buckets.iter().copied())
                .collect();
            let labels = [("command", command(id))];
            hist.encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(t.sum_ns as f64 / 1e9, count, &buckets, None)?;
        }
        let mut errors = requests.errors;
        errors[ErrorKind::Protocol as usize] += totals.protocol_errors;
        family(
            &mut enc,
            "meridian_errors",
            "Error replies sent to clients, by kind (protocol errors included).",
            MetricType::Counter,
            ErrorKind::ALL
                .iter()
                .map(|k| ([("kind", k.as_str())], counter(errors[*k as usize]))),
        )?;
        let dcs = shared.dc_names();
        family(
            &mut enc,
            "meridian_reads",
            "Reads sent to backend nodes, by the node's datacenter.",
            MetricType::Counter,
            dcs.iter().map(|(i, dc)| {
                let n = requests.reads_by_dc.get(*i).copied().unwrap_or(0);
                ([("dc", &**dc)], counter(n))
            }),
        )?;
        single(
            &mut enc,
            "meridian_redirects",
            "MOVED and ASK redirections followed.",
            counter(totals.redirects),
        )?;
        single(
            &mut enc,
            "meridian_read_retries",
            "Reads resent once after their backend connection was lost.",
            counter(totals.read_retries),
        )?;
        single(
            &mut enc,
            "meridian_client_connections",
            "Clients connected now.",
            gauge(totals.client_connections as i64),
        )?;
        single(
            &mut enc,
            "meridian_client_connections_accepted",
            "Client connections accepted.",
            counter(totals.accepts),
        )?;
        single(
            &mut enc,
            "meridian_client_received_bytes",
            "Bytes read from clients.",
            counter(totals.recv_client_bytes),
        )?;
        single(
            &mut enc,
            "meridian_client_sent_bytes",
            "Bytes written to clients.",
            counter(totals.send_client_bytes),
        )?;
        family(
            &mut enc,
            "meridian_tls_handshakes",
            "Client TLS handshakes, by result: ok, failed (not TLS, bad certificate, client left) or timeout (tls.handshake_timeout).",
            MetricType::Counter,
            [
                ("ok", totals.tls_handshakes),
                ("failed", totals.tls_handshake_failures),
                ("timeout", totals.tls_handshake_timeouts),
            ]
            .map(|(result, n)| ([("result", result)], counter(n))),
        )?;
        self.encode_nodes(&mut enc)?;
        self.encode_process(&mut enc)
    }
}

impl GatewayCollector {
    /// Per-node families, labelled with the node's address and DC from the topology.
    fn encode_nodes(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let shared = &*self.shared;
        let (_, topo) = shared.topology.load();
        let now = Instant::now();
        // Probe RTTs are shown however old: the gauge is the last measurement.
        let any_age = Duration::MAX;
        struct Row<'a> {
            node: &'a str,
            dc: &'a str,
            role: Role,
            stats: crate::stats::NodeTotals,
            health: Option<Arc<crate::health::table::NodeHealth>>,
        }
        let rows: Vec<Row> = topo
            .nodes
            .iter()
            .map(|n| Row {
                node: &n.addr,
                dc: n.dc.as_deref().unwrap_or(UNKNOWN_DC),
                role: n.role,
                stats: shared.stats.node_totals(&n.addr),
                health: shared.health.get(&n.addr),
            })
            .collect();
        let labels = |r: &Row<'_>| [("node", r.node.to_string()), ("dc", r.dc.to_string())];
        family(
            enc,
            "meridian_node_info",
            "Nodes of the cluster map with their datacenter and role (always 1).",
            MetricType::Gauge,
            rows.iter().map(|r| {
                let role = match r.role {
                    Role::Master => "master",
                    Role::Replica => "replica",
                };
                (
                    [("node", r.node), ("dc", r.dc), ("role", role)],
                    gauge(1i64),
                )
            }),
        )?;
        type Pick = fn(&crate::stats::NodeTotals) -> u64;
        let backend: [(&str, &str, Pick); 6] = [
            (
                "meridian_backend_requests",
                "Requests sent to the node.",
                |s| s.requests,
            ),
            (
                "meridian_backend_responses",
                "Replies read from the node.",
                |s| s.responses,
            ),
            (
                "meridian_backend_failures",
                "Requests that failed because the node's connection failed.",
                |s| s.failures,
            ),
            (
                "meridian_backend_connects",
                "Connections opened to the node.",
                |s| s.connects,
            ),
            (
                "meridian_backend_sent_bytes",
                "Bytes written to the node.",
                |s| s.send_bytes,
            ),
            (
                "meridian_backend_received_bytes",
                "Bytes read from the node.",
                |s| s.recv_bytes,
            ),
        ];
        for (name, help, pick) in backend {
            family(
                enc,
                name,
                help,
                MetricType::Counter,
                rows.iter().map(|r| (labels(r), counter(pick(&r.stats)))),
            )?;
        }
        family(
            enc,
            "meridian_backend_connections",
            "Connections open to the node now.",
            MetricType::Gauge,
            rows.iter()
                .map(|r| (labels(r), gauge(r.stats.connections as i64))),
        )?;
        let mut node_hist = enc.encode_descriptor(
            "meridian_backend_request_duration_seconds",
            "Time from queueing a request for the node to reading its reply, by node and DC (the node's round trip, plus any wait for the connection).",
            None,
            MetricType::Histogram,
        )?;
        for r in rows.iter().filter(|r| r.stats.duration.count() > 0) {
            let d = &r.stats.duration;
            let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(d.buckets.iter().copied())
                .collect();
            node_hist
                .encode_family(&labels(r))?
                .encode_histogram::<NoLabelSet>(d.sum_ns as f64 / 1e9, d.count(), &buckets, None)?;
        }
        let with_health = || rows.iter().filter_map(|r| Some((r, r.health.as_ref()?)));
        family(
            enc,
            "meridian_breaker_state",
            "The node's circuit breaker: 0 closed, 1 half-open, 2 open.",
            MetricType::Gauge,
            with_health().map(|(r, h)| (labels(r), gauge(breaker_value(h.state(now))))),
        )?;
        family(
            enc,
            "meridian_breaker_transitions",
            "State changes of the node's circuit breaker.",
            MetricType::Counter,
            with_health().map(|(r, h)| (labels(r), counter(h.transitions.load(Ordering::Relaxed)))),
        )?;
        family(
            enc,
            "meridian_probe_rtt_seconds",
            "Round trip of the prober's PING to the node (peak-EWMA).",
            MetricType::Gauge,
            with_health().filter_map(|(r, h)| {
                let (ms, _) = h.probe_rtt(now, any_age)?;
                Some((labels(r), gauge(ms / 1000.0)))
            }),
        )?;
        family(
            enc,
            "meridian_replica_lag_bytes",
            "Replication offset the replica is behind its master, from the prober.",
            MetricType::Gauge,
            with_health()
                .filter(|(r, _)| r.role == Role::Replica)
                .map(|(r, h)| (labels(r), gauge(h.lag_bytes.load(Ordering::Relaxed) as i64))),
        )?;
        single(
            enc,
            "meridian_slots_covered",
            "Slots the current cluster map assigns to a node (16384 when complete).",
            gauge(topo.covered_slots() as i64),
        )?;
        let hosts = shared.dc_hosts.lock().states(now);
        let labels = |h: &HostState| [("host", h.name.clone()), ("dc", h.dc.clone())];
        family(
            enc,
            "meridian_dc_host_addresses",
            "Addresses each datacenters.<dc>.hosts name places in its DC (its last good answer's; 0 before one).",
            MetricType::Gauge,
            hosts
                .iter()
                .map(|h| (labels(h), gauge(h.addresses.len() as i64))),
        )?;
        family(
            enc,
            "meridian_dc_host_lookup_failures",
            "Failed lookups in a row of each datacenters.<dc>.hosts name (0 after a good answer; its addresses are kept meanwhile).",
            MetricType::Gauge,
            hosts
                .iter()
                .map(|h| (labels(h), gauge(i64::from(h.failures)))),
        )
    }

    /// Facts about the process.
    fn encode_process(&self, enc: &mut DescriptorEncoder) -> fmt::Result {
        let shared = &*self.shared;
        let reloads = shared.reload_status.lock().clone();
        family(
            enc,
            "meridian_config_reloads",
            "Config reloads, by result (error: the file was refused and the running config kept).",
            MetricType::Counter,
            [
                ([("result", "ok")], counter(reloads.ok)),
                ([("result", "error")], counter(reloads.errors)),
            ],
        )?;
        single(
            enc,
            "meridian_config_version",
            "Version of the config in force (1 at start, +1 per reload put in force).",
            gauge(shared.config_version() as i64),
        )?;
        single(
            enc,
            "meridian_workers_listening",
            "Workers accepting clients now.",
            gauge(shared.listening_workers() as i64),
        )?;
        let started = SystemTime::now()
            .checked_sub(shared.started.elapsed())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        single(
            enc,
            "meridian_start_time_seconds",
            "When the gateway started, in seconds since the Unix epoch.",
            gauge(started),
        )?;
        family(
            enc,
            "meridian_build_info",
            "The gateway's version (always 1).",
            MetricType::Gauge,
            [([("version", env!("CARGO_PKG_VERSION"))], gauge(1i64))],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::topology::{NodeSpec, ShardSpec, Topology};

    fn lines_with<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn scrape_sums_workers_and_labels_nodes() {
        let shared = Shared::new(Config::default());
        let get = shared.commands.load().1.metric_id(b"get");
        assert_ne!(get, 0);
        let (a, b) = (shared.stats.add_worker(), shared.stats.add_worker());
        for w in [&a, &b] {
            let m = w.metrics.as_ref().unwrap();
            m.count(get);
            m.observe(get, Duration::from_micros(200), b"$1\r\nv\r\n");
            m.count_read(0);
        }
        b.protocol_errors.add(1);
        let node = |addr: &str| NodeSpec {
            addr: addr.into(),
            id: String::new(),
        };
        shared.topology.store(Topology::from_shards(vec![ShardSpec {
            master: node("10.0.0.1:7000"),
            replicas: vec![node("10.0.0.2:7000")],
            slots: vec![(0, 16383)],
        }]));
        a.node(&Arc::from("10.0.0.1:7000")).requests.add(5);
        shared.health.node(&Arc::from("10.0.0.2:7000"));
        let text = render(&registry(shared.clone())).unwrap();
        assert_eq!(
            lines_with(&text, "meridian_requests_total"),
            ["meridian_requests_total{command=\"get\"} 2"]
        );
        assert_eq!(
            lines_with(
                &text,
                "meridian_request_duration_seconds_bucket{command=\"get\",le=\"0.00025\"}"
            ),
            ["meridian_request_duration_seconds_bucket{command=\"get\",le=\"0.00025\"} 2"]
        );
        assert_eq!(
            lines_with(&text, "meridian_request_duration_seconds_sum"),
            ["meridian_request_duration_seconds_sum{command=\"get\"} 0.0004"]
        );
        assert!(text.contains("meridian_errors_total{kind=\"protocol\"} 1\n"));
        assert!(text.contains("meridian_reads_total{dc=\"unknown\"} 2\n"));
        assert!(text.contains(
            "meridian_backend_requests_total{node=\"10.0.0.1:7000\",dc=\"unknown\"} 5\n"
        ));
        assert!(text.contains(
            "meridian_node_info{node=\"10.0.0.2:7000\",dc=\"unknown\",role=\"replica\"} 1\n"
        ));
        assert_eq!(
            lines_with(&text, "meridian_breaker_state{"),
            ["meridian_breaker_state{node=\"10.0.0.2:7000\",dc=\"unknown\"} 0"],
            "only nodes the health table knows"
        );
        assert!(
            text.contains("meridian_replica_lag_bytes{node=\"10.0.0.2:7000\",dc=\"unknown\"} 0\n")
        );
        assert!(text.contains("meridian_slots_covered 16384\n"));
        // Every family is described once, in the text format (no OpenMetrics `# EOF`).
        assert_eq!(
            text.matches("# TYPE meridian_request_duration_seconds histogram\n")
                .count(),
            1
        );
        assert!(!text.contains("# EOF"));
    }
}
