//! Where everything of a lab goes: each node's address, ports, relay, shard and slots, and
//! each gateway's address, derived from a validated [`LabSpec`] and a port offset.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use ipnet::Ipv4Net;

use super::LabError;
use super::spec::{BUS_OFFSET, GATEWAY_HOST, LabSpec, TLS_OFFSET};
use crate::slot::SLOT_COUNT;

/// One redis-server node of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedNode {
    /// Name: DC and host number, e.g. `east-1` for 127.0.1.1.
    pub name: String,
    /// Its DC.
    pub dc: String,
    /// Its address (in its DC's range).
    pub ip: Ipv4Addr,
    /// The port redis-server listens on; the cluster bus is `port + 10000`.
    pub port: u16,
    /// The port of its delay relay; announced to clients instead of `port`.
    pub relay_port: u16,
    /// Index of its shard.
    pub shard: usize,
    /// Whether it starts as the shard's master.
    pub master: bool,
    /// First and last slot of its shard.
    pub slots: (u16, u16),
}

impl PlannedNode {
    /// The redis-server's own client address (the lab's observers use it; clients do not).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.port))
    }

    /// The redis-server's own cluster bus address.
    pub fn bus_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.port + BUS_OFFSET))
    }

    /// The relay in front of the client port: the address the cluster announces.
    pub fn relay_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.relay_port))
    }

    /// The relay in front of the bus port: the bus address the cluster announces.
    pub fn relay_bus_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.relay_port + BUS_OFFSET))
    }

    /// The redis-server's TLS address (`tls: true` labs).
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.port + TLS_OFFSET))
    }

    /// The relay in front of the TLS port: the TLS address the cluster announces.
    pub fn relay_tls_addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.relay_port + TLS_OFFSET))
    }

    /// `a-b` slot range text.
    pub fn slots_text(&self) -> String {
        format!("{}-{}", self.slots.0, self.slots.1)
    }
}

/// One gateway of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedGateway {
    /// The DC it serves.
    pub dc: String,
    /// Its listen (and source) address, `.100` in the DC's range.
    pub ip: Ipv4Addr,
    /// Its listen port.
    pub port: u16,
    /// Worker threads.
    pub workers: usize,
}

impl PlannedGateway {
    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.ip, self.port))
    }
}

/// A lab spec laid out on loopback.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The spec it was made from.
    pub spec: LabSpec,
    /// DC ranges, in file order.
    pub dcs: Vec<(String, Ipv4Net)>,
    /// Nodes, shard by shard, master first.
    pub nodes: Vec<PlannedNode>,
    /// Gateways in file order.
    pub gateways: Vec<PlannedGateway>,
    /// The port offset applied to every port of the file.
    pub port_offset: u16,
}

impl Plan {
    /// Lays out a validated spec, adding `port_offset` to every port.
    pub fn new(spec: &LabSpec, port_offset: u16) -> Result<Plan, LabError> {
        let bad = |message: String| LabError::Scenario(message);
        let shift = |port: u16, bus: bool| {
            let top = u32::from(port)
                + u32::from(port_offset)
                + if bus { u32::from(BUS_OFFSET) } else { 0 };
            if top > 65535 {
                Err(bad(format!(
                    "--port-offset {port_offset} pushes port {port} past 65535"
                )))
            } else {
                Ok(port + port_offset)
            }
        };
        let ports = spec.ports;
        let (node_port, relay_port) = (shift(ports.node, true)?, shift(ports.relay, true)?);
        let gateway_port = shift(ports.gateway, false)?;
        let dcs = spec.ranges();
        let range_of = |dc: &str| {
            dcs.iter()
                .find(|(name, _)| name == dc)
                .map(|(_, net)| *net)
                .ok_or_else(|| bad(format!("datacenter `{dc}` has no valid range")))
        };
        let mut next_host: BTreeMap<&str, u8> = BTreeMap::new();
        let mut nodes = Vec::new();
        let count = spec.shards.len();
        for (shard, placed) in spec.shards.iter().enumerate() {
            let slots = slot_range(shard, count);
            let members = std::iter::once((&placed.master, true))
                .chain(placed.replicas.iter().map(|r| (r, false)));
            for (dc, master) in members {
                let host = next_host.entry(dc.as_str()).or_insert(0);
                *host += 1;
                if *host >= GATEWAY_HOST {
                    return Err(bad(format!("too many nodes in datacenter `{dc}`")));
                }
                nodes.push(PlannedNode {
                    name: format!("{dc}-{host}"),
                    dc: dc.clone(),
                    ip: host_in(range_of(dc)?, *host),
                    port: node_port,
                    relay_port,
                    shard,
                    master,
                    slots,
                });
            }
        }
        let gateways = spec
            .gateways
            .iter()
            .map(|gw| {
                Ok(PlannedGateway {
                    dc: gw.dc.clone(),
                    ip: host_in(range_of(&gw.dc)?, GATEWAY_HOST),
                    port: gateway_port,
                    workers: gw.workers,
                })
            })
            .collect::<Result<_, LabError>>()?;
        Ok(Plan {
            spec: spec.clone(),
            dcs,
            nodes,
            gateways,
            port_offset,
        })
    }

    /// The cluster node timeout.
    pub fn node_timeout(&self) -> Duration {
        self.spec.cluster.node_timeout
    }

    /// The DC whose range holds `ip`, if any.
    pub fn dc_of(&self, ip: Ipv4Addr) -> Option<&str> {
        self.dcs
            .iter()
            .find(|(_, net)| net.contains(&ip))
            .map(|(name, _)| name.as_str())
    }

    /// The node with this name, or whose relay or own address is `name`.
    pub fn node(&self, name: &str) -> Option<&PlannedNode> {
        self.nodes.iter().find(|n| {
            n.name == name || n.relay_addr().to_string() == name || n.addr().to_string() == name
        })
    }

    /// The nodes of shard `shard`.
    pub fn shard_nodes(&self, shard: usize) -> impl Iterator<Item = &PlannedNode> {
        self.nodes.iter().filter(move |n| n.shard == shard)
    }

    /// Number of shards (masters).
    pub fn shard_count(&self) -> usize {
        self.spec.shards.len()
    }
}

/// Host number `host` of `net`.
fn host_in(net: Ipv4Net, host: u8) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(net.network()) + u32::from(host))
}

/// Slots of shard `k` of `n`, split as `redis-cli --cluster create` does (0-5460, 5461-10922,
/// 10923-16383 for three).
pub fn slot_range(k: usize, n: usize) -> (u16, u16) {
    let last = |k: usize| ((k + 1) as f64 * SLOT_COUNT as f64 / n as f64 - 1.0).round() as u16;
    let lo = if k == 0 { 0 } else { last(k - 1) + 1 };
    let hi = if k + 1 == n {
        (SLOT_COUNT - 1) as u16
    } else {
        last(k)
    };
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::fixtures::two_dc_head;

    const TEXT: &str = concat!(
        two_dc_head!(),
        "\
shards:
  - { master: east, replicas: [west] }
  - { master: west, replicas: [east] }
  - { master: east, replicas: [west] }
gateways:
  - { dc: east }
  - { dc: west }
"
    );

    #[test]
    fn places_nodes_and_gateways() {
        let spec = LabSpec::parse(TEXT, "t").unwrap();
        let plan = Plan::new(&spec, 1000).unwrap();
        let names: Vec<&str> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            names,
            ["east-1", "west-1", "west-2", "east-2", "east-3", "west-3"]
        );
        let n = &plan.nodes[3];
        assert_eq!(
            (n.ip, n.port, n.relay_port),
            (Ipv4Addr::new(127, 0, 1, 2), 8711, 8811)
        );
        assert_eq!((n.shard, n.master, n.slots), (1, false, (5461, 10922)));
        assert_eq!(n.relay_bus_addr().to_string(), "127.0.1.2:18811");
        assert_eq!(plan.gateways[1].addr().to_string(), "127.0.2.100:8617");
        assert_eq!(plan.dc_of(Ipv4Addr::new(127, 0, 2, 100)), Some("west"));
        assert_eq!(plan.dc_of(Ipv4Addr::LOCALHOST), None);
        assert_eq!(
            plan.node("127.0.2.1:8811").map(|n| n.name.as_str()),
            Some("west-1")
        );
        assert!(Plan::new(&spec, 50000).is_err());
    }

    #[test]
    fn slot_ranges_cover_everything() {
        assert_eq!(slot_range(0, 3), (0, 5460));
        assert_eq!(slot_range(1, 3), (5461, 10922));
        assert_eq!(slot_range(2, 3), (10923, 16383));
        assert_eq!(slot_range(0, 1), (0, 16383));
    }
}
