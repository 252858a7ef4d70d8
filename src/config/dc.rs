//! The datacenter map: which DC a node lives in, by explicit node entry or by CIDR
//! (longest prefix wins; addresses are compared as networks, never as string prefixes).

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::addr::{ip_of, same_node};

/// The DC of a node that matches no datacenter; reserved, a config may not define it.
pub const UNKNOWN_DC: &str = "unknown";

/// One datacenter of the `datacenters` map.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatacenterConfig {
    /// Networks whose addresses belong to this DC, e.g. `10.1.0.0/16` or `fd00:1::/48`.
    /// A bare address is taken as a single-host network.
    #[serde(deserialize_with = "cidrs")]
    pub cidrs: Vec<IpNet>,
    /// Host names whose resolved addresses belong to this DC (resolved by the caller).
    pub hosts: Vec<String>,
    /// Nodes (`host:port`) placed in this DC explicitly; these win over CIDRs and hosts.
    pub nodes: Vec<String>,
}

/// Reads a CIDR such as `10.1.0.0/16`; a bare address becomes a /32 (or /128) network.
pub fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net);
    }
    if let Ok(addr) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(addr));
    }
    Err(format!(
        "`{text}` is not a CIDR; write a network as address/prefix, e.g. 10.1.0.0/16"
    ))
}

/// The DC whose CIDRs contain `addr`, the longest matching prefix winning across all DCs.
/// IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`) are matched as the IPv4 address they carry.
pub(crate) fn dc_of_addr(dcs: &BTreeMap<String, DatacenterConfig>, addr: IpAddr) -> Option<&str> {
    let addr = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        IpAddr::V4(_) => addr,
    };
    let mut best: Option<(&str, u8)> = None;
    for (name, dc) in dcs {
        for net in &dc.cidrs {
            let longer = best.is_none_or(|(_, len)| net.prefix_len() > len);
            if longer && net.contains(&addr) {
                best = Some((name.as_str(), net.prefix_len()));
            }
        }
    }
    best.map(|(name, _)| name)
}

/// The DC that lists `host_port` in its `nodes`, else the DC whose CIDRs contain its address.
pub(crate) fn dc_of_node<'a>(
    dcs: &'a BTreeMap<String, DatacenterConfig>,
    host_port: &str,
) -> Option<&'a str> {
    let listed = dcs
        .iter()
        .find(|(_, dc)| dc.nodes.iter().any(|node| same_node(node, host_port)));
    if let Some((name, _)) = listed {
        return Some(name.as_str());
    }
    dc_of_addr(dcs, ip_of(host_port)?)
}

/// Serde: a list of CIDR strings, each element checked on its own so errors name its index.
fn cidrs<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<IpNet>, D::Error> {
    let list = Vec::<Cidr>::deserialize(deserializer)?;
    Ok(list.into_iter().map(|Cidr(net)| net).collect())
}

struct Cidr(IpNet);

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Cidr, D::Error> {
        deserializer.deserialize_str(CidrVisitor)
    }
}

struct CidrVisitor;

impl Visitor<'_> for CidrVisitor {
    type Value = Cidr;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CIDR like 10.1.0.0/16")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Cidr, E> {
        parse_cidr(v).map(Cidr).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn map(entries: &[(&str, &[&str], &[&str])]) -> BTreeMap<String, DatacenterConfig> {
        entries
            .iter()
            .map(|(name, cidrs, nodes)| {
                let dc = DatacenterConfig {
                    cidrs: cidrs.iter().map(|c| net(c)).collect(),
                    hosts: vec![],
                    nodes: nodes.iter().map(|n| n.to_string()).collect(),
                };
                (name.to_string(), dc)
            })
            .collect()
    }

    #[test]
    fn cidr_is_not_a_string_prefix() {
        // "10.1" is a string prefix of "10.10.x.x"; as networks they are disjoint.
        let dcs = map(&[
            ("east", &["10.1.0.0/16"], &[]),
            ("west", &["10.10.0.0/16"], &[]),
        ]);
        assert_eq!(dc_of_addr(&dcs, ip("10.10.3.4")), Some("west"));
        assert_eq!(dc_of_addr(&dcs, ip("10.1.3.4")), Some("east"));
        assert_eq!(dc_of_addr(&dcs, ip("10.100.3.4")), None);
        assert_eq!(dc_of_addr(&dcs, ip("10.2.0.1")), None);
    }

    #[test]
    fn longest_prefix_wins_whatever_the_order() {
        // Nested networks never pass validation across DCs, but the lookup must still be right.
        let dcs = map(&[
            ("a", &["10.1.2.0/24"], &[]),
            ("b", &["10.0.0.0/8"], &[]),
            ("c", &["10.1.0.0/16"], &[]),
        ]);
        assert_eq!(dc_of_addr(&dcs, ip("10.1.2.9")), Some("a"));
        assert_eq!(dc_of_addr(&dcs, ip("10.1.3.9")), Some("c"));
        assert_eq!(dc_of_addr(&dcs, ip("10.9.3.9")), Some("b"));
        let dcs = map(&[("z", &["10.1.0.0/16"], &[]), ("y", &["10.0.0.0/8"], &[])]);
        assert_eq!(dc_of_addr(&dcs, ip("10.1.0.1")), Some("z"));
    }

    #[test]
    fn ipv6_cidrs() {
        let dcs = map(&[
            ("east", &["fd00:1::/48", "127.0.1.0/24"], &[]),
            ("west", &["fd00::/16"], &[]),
        ]);
        assert_eq!(dc_of_addr(&dcs, ip("fd00:1::7")), Some("east"));
        assert_eq!(dc_of_addr(&dcs, ip("fd00:2::7")), Some("west"));
        assert_eq!(dc_of_addr(&dcs, ip("fe80::1")), None);
        // IPv4 networks never match IPv6 addresses except the IPv4-mapped form.
        assert_eq!(dc_of_addr(&dcs, ip("::ffff:127.0.1.5")), Some("east"));
        assert_eq!(dc_of_addr(&dcs, ip("::127.0.1.5")), None);
    }

    #[test]
    fn explicit_nodes_win_over_cidrs() {
        let dcs = map(&[
            ("east", &["127.0.1.0/24"], &[]),
            (
                "west",
                &["127.0.2.0/24"],
                &["127.0.1.9:7001", "redis-w:7001"],
            ),
        ]);
        assert_eq!(dc_of_node(&dcs, "127.0.1.9:7001"), Some("west"));
        assert_eq!(dc_of_node(&dcs, "127.0.1.9:7002"), Some("east"));
        assert_eq!(dc_of_node(&dcs, "REDIS-W:7001"), Some("west"));
        assert_eq!(dc_of_node(&dcs, "redis-e:7001"), None);
        assert_eq!(dc_of_node(&dcs, "127.0.3.1:7001"), None);
        assert_eq!(dc_of_node(&dcs, "127.0.2.1"), Some("west"));
    }

    #[test]
    fn parses_cidrs_and_bare_addresses() {
        assert_eq!(parse_cidr("10.1.0.0/16"), Ok(net("10.1.0.0/16")));
        assert_eq!(parse_cidr("10.1.2.3"), Ok(net("10.1.2.3/32")));
        assert_eq!(parse_cidr("::1"), Ok(net("::1/128")));
        assert!(parse_cidr("10.1").unwrap_err().contains("not a CIDR"));
        assert!(parse_cidr("10.1.0.0/33").is_err());
    }
}
