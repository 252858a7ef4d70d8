//! The lab spec, read from a topology file: datacenters with their loopback ranges, the latency
//! matrix, shards with the DC of their master and replicas, one gateway per DC, cluster timing
//! and base ports.
//!
//! ```yaml
//! name: three-regions
//! datacenters:
//!   - { name: east, cidr: 127.0.1.0/24 }
//!   - { name: west, cidr: 127.0.2.0/24 }
//! latency_ms:                  # round trip between DCs, symmetric; the diagonal is in-DC
//!   east: { east: 0.3, west: 40 }
//!   west: { east: 40, west: 0.3 }
//! shards:                      # slots split evenly, in order, like `redis-cli --cluster create`
//!   - { master: east, replicas: [west] }
//!   - { master: west, replicas: [east] }
//!   - { master: east, replicas: [west] }
//! gateways:
//!   - { dc: east }             # listens on the DC's .100 address at ports.gateway
//!   - { dc: west, workers: 1 }
//! cluster: { node_timeout: 2s, require_full_coverage: false }
//! ports: { node: 7711, relay: 7811, gateway: 7617 }
//! gateway_config:              # optional: extra keys for every generated gateway config
//!   breaker: { failure_limit: 3 }
//! tls: false                   # true: nodes and gateways talk TLS (lab-made CA, certificates)
//! users: false                 # true: gateways require AUTH; users `lab` (admin) and `reader`
//!                              # (read) get random passwords in <lab dir>/users.secret (0600)
//! ```
//!
//! Every struct denies unknown fields. Reading a file and its rules live in `spec_check.rs`, a
//! layer above the plan: [`LabSpec::parse`] reports every semantic problem at once, each with its
//! key path and (when found) line, in the same form as `meridian check`.

use std::collections::BTreeMap;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::config::parse_duration;

/// Host number of a DC's gateway inside its range (`127.0.N.100`); nodes use 1..GATEWAY_HOST.
pub const GATEWAY_HOST: u8 = 100;
/// Gap between a client port and its cluster bus port, as Redis does by default.
pub const BUS_OFFSET: u16 = 10000;
/// Gap between a node's (and its relay's) plain port and its TLS port, in a `tls: true` lab.
pub const TLS_OFFSET: u16 = 1000;
/// Highest latency accepted in the matrix, in milliseconds.
pub const MAX_LATENCY_MS: f64 = 10_000.0;

/// A lab spec: the whole topology file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSpec {
    /// Name of the lab; the default lab directory is `/tmp/meridian-lab-<name>`.
    pub name: String,
    /// Free text shown by `lab status`.
    #[serde(default)]
    pub description: Option<String>,
    /// The datacenters, each with its own loopback range.
    pub datacenters: Vec<DcSpec>,
    /// Round-trip latency between DCs in milliseconds: `latency_ms[a][b]`.
    pub latency_ms: BTreeMap<String, BTreeMap<String, f64>>,
    /// The shards: where each master and replica lives.
    pub shards: Vec<ShardSpec>,
    /// One meridian gateway per listed DC.
    pub gateways: Vec<GatewaySpec>,
    /// Redis Cluster settings of every node.
    #[serde(default)]
    pub cluster: ClusterSpec,
    /// Base ports.
    #[serde(default)]
    pub ports: PortsSpec,
    /// Extra top-level keys merged into every generated gateway config (e.g. `breaker`).
    #[serde(default)]
    pub gateway_config: Option<serde_yaml_ng::Mapping>,
    /// Nodes speak TLS (cluster bus, replication, gateways), with certificates the lab makes.
    #[serde(default)]
    pub tls: bool,
    /// Gateways require AUTH: the lab makes users `lab` (admin) and `reader` (read) with random
    /// passwords, disables `default`, and its own clients log in as `lab`.
    #[serde(default)]
    pub users: bool,
}

/// One datacenter.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DcSpec {
    /// DC name, as used in the gateways' `datacenters` map.
    pub name: String,
    /// Its loopback range, e.g. `127.0.1.0/24`: nodes get `.1`, `.2`, …, the gateway `.100`.
    pub cidr: String,
}

/// One shard: the DC of its master and of each replica (a DC may appear more than once).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSpec {
    /// DC of the master.
    pub master: String,
    /// DC of each replica.
    #[serde(default)]
    pub replicas: Vec<String>,
}

/// One gateway.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySpec {
    /// The DC it serves (`local_dc`) and whose range it lives in.
    pub dc: String,
    /// Worker threads of this gateway.
    #[serde(default = "one")]
    pub workers: usize,
}

fn one() -> usize {
    1
}

/// The `cluster` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSpec {
    /// `cluster-node-timeout` of every node.
    #[serde(deserialize_with = "duration")]
    pub node_timeout: Duration,
    /// `cluster-require-full-coverage`: off by default, so a dead shard fails only its slots.
    pub require_full_coverage: bool,
}

impl Default for ClusterSpec {
    fn default() -> ClusterSpec {
        ClusterSpec {
            node_timeout: Duration::from_secs(3),
            require_full_coverage: false,
        }
    }
}

/// The `ports` section. Every node has its own address, so all nodes share these numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortsSpec {
    /// Port every redis-server listens on (cluster bus: +10000).
    pub node: u16,
    /// Port of every node's delay relay (bus relay: +10000); clients only see this one.
    pub relay: u16,
    /// Port every gateway listens on, at its DC's `.100` address.
    pub gateway: u16,
}

impl Default for PortsSpec {
    fn default() -> PortsSpec {
        PortsSpec {
            node: 7711,
            relay: 7811,
            gateway: 7617,
        }
    }
}

/// Serde: a duration such as `2s`; the error is raised inside the value so it names the key.
fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    struct DurationVisitor;
    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as 2s or 500ms")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            parse_duration(v).map_err(E::custom)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
            self.visit_str(&v.to_string())
        }
    }
    deserializer.deserialize_any(DurationVisitor)
}

impl LabSpec {
    /// The loopback range of each DC, in file order (only the ones that parse).
    pub fn ranges(&self) -> Vec<(String, Ipv4Net)> {
        self.datacenters
            .iter()
            .filter_map(|dc| Some((dc.name.clone(), dc.cidr.parse().ok()?)))
            .collect()
    }

    /// Round-trip latency between two DCs, 0 when the matrix lacks it.
    pub fn latency(&self, a: &str, b: &str) -> f64 {
        self.latency_ms
            .get(a)
            .and_then(|row| row.get(b))
            .copied()
            .unwrap_or(0.0)
    }

    /// Number of nodes placed in `dc`.
    pub fn nodes_in(&self, dc: &str) -> usize {
        let shards = self.shards.iter();
        shards
            .map(|s| usize::from(s.master == dc) + s.replicas.iter().filter(|r| *r == dc).count())
            .sum()
    }
}
