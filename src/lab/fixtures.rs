//! Lab spec texts shared by the lab's unit tests: two DCs on loopback with their latency map.

/// The start of a two-DC lab spec (name, DCs, latency map); each test adds its shards and
/// gateways.
macro_rules! two_dc_head {
    () => {
        "\
name: t
datacenters:
  - { name: east, cidr: 127.0.1.0/24 }
  - { name: west, cidr: 127.0.2.0/24 }
latency_ms:
  east: { east: 0.3, west: 40 }
  west: { east: 40, west: 0.3 }
"
    };
}
pub(crate) use two_dc_head;

/// Two shards mastered in different DCs, a gateway per DC, a gateway config override.
pub const TWO_DC_LAB: &str = concat!(
    two_dc_head!(),
    "\
shards:
  - { master: east, replicas: [west] }
  - { master: west, replicas: [east] }
gateways:
  - { dc: east }
  - { dc: west, workers: 2 }
gateway_config:
  breaker: { failure_limit: 3 }
  cluster: { refresh_interval: 2s, seeds: [1.2.3.4:1] }
"
);
