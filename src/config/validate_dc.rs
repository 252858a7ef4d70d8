//! Semantic checks of the datacenter map and the latency map: names, CIDRs that must not
//! overlap across DCs, nodes listed once, and latency rows that match the DCs.

use super::Config;
use super::addr::{is_host_name, same_node, split_host_port};
use super::checks::Errors;
use super::dc::UNKNOWN_DC;

/// Local DC defined, DC names, CIDRs (no host bits, no overlap across DCs), hosts and nodes.
pub(super) fn check_datacenters(cfg: &Config, out: &mut Errors) {
    let defined = || {
        let names: Vec<&str> = cfg.datacenters.keys().map(String::as_str).collect();
        if names.is_empty() {
            "none are defined".to_string()
        } else {
            format!("defined: {}", names.join(", "))
        }
    };
    if let Some(local) = &cfg.local_dc
        && !cfg.datacenters.contains_key(local)
    {
        out.push(
            "local_dc",
            format!("`{local}` is not a defined datacenter ({})", defined()),
        );
    }
    for (name, dc) in &cfg.datacenters {
        let path = format!("datacenters.{name}");
        if name == UNKNOWN_DC {
            out.push(
                &path,
                "`unknown` is reserved for nodes that match no datacenter; choose another name",
            );
        } else if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            out.push(
                &path,
                "datacenter names use only letters, digits, '-' and '_'",
            );
        }
        for (i, net) in dc.cidrs.iter().enumerate() {
            if net.trunc() != *net {
                out.push(
                    format!("{path}.cidrs[{i}]"),
                    format!("`{net}` has host bits set; did you mean {}?", net.trunc()),
                );
            }
        }
        for (i, host) in dc.hosts.iter().enumerate() {
            if !is_host_name(host) {
                out.push(
                    format!("{path}.hosts[{i}]"),
                    format!("`{host}` is not a host name"),
                );
            }
        }
        for (i, node) in dc.nodes.iter().enumerate() {
            if let Err(err) = split_host_port(node) {
                out.push(format!("{path}.nodes[{i}]"), err.to_string());
            }
        }
    }
    // Each pair of DCs once, in map order, so the later DC's entry carries the error.
    let dcs: Vec<_> = cfg.datacenters.iter().collect();
    for (b, (name_b, dc_b)) in dcs.iter().enumerate() {
        for (name_a, dc_a) in &dcs[..b] {
            for (j, net_b) in dc_b.cidrs.iter().enumerate() {
                let clash = dc_a
                    .cidrs
                    .iter()
                    .find(|net_a| net_a.contains(net_b) || net_b.contains(*net_a));
                if let Some(net_a) = clash {
                    out.push(
                        format!("datacenters.{name_b}.cidrs[{j}]"),
                        format!(
                            "{net_b} of datacenter `{name_b}` overlaps {net_a} of datacenter \
                             `{name_a}`; a network may belong to one datacenter only"
                        ),
                    );
                }
            }
            for (j, node) in dc_b.nodes.iter().enumerate() {
                if dc_a.nodes.iter().any(|other| same_node(other, node)) {
                    out.push(
                        format!("datacenters.{name_b}.nodes[{j}]"),
                        format!("node `{node}` is listed in datacenters `{name_a}` and `{name_b}`"),
                    );
                }
            }
        }
    }
}

/// The latency map: a row for the local DC, defined DC names, finite values >= 0.
pub(super) fn check_latency(cfg: &Config, out: &mut Errors) {
    if let Some(local) = &cfg.local_dc
        && !cfg.latency_ms.is_empty()
        && cfg.datacenters.contains_key(local)
        && !cfg.latency_ms.contains_key(local)
    {
        out.push(
            "latency_ms",
            format!("has no row for the local datacenter `{local}`"),
        );
    }
    for (from, row) in &cfg.latency_ms {
        if !cfg.datacenters.contains_key(from) {
            out.push(
                format!("latency_ms.{from}"),
                format!("`{from}` is not a defined datacenter"),
            );
        }
        for (to, ms) in row {
            let path = format!("latency_ms.{from}.{to}");
            if !cfg.datacenters.contains_key(to) {
                out.push(&path, format!("`{to}` is not a defined datacenter"));
            }
            if !ms.is_finite() || *ms < 0.0 {
                out.push(
                    &path,
                    format!("{ms} is not a latency; use milliseconds >= 0"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::tests::{BASE, errors, one};

    #[test]
    fn local_dc_must_be_defined() {
        let yaml = format!("{BASE}local_dc: mars\ndatacenters:\n  east: {{}}\n");
        one(
            &yaml,
            "local_dc",
            Some(6),
            "`mars` is not a defined datacenter (defined: east)",
        );
        one(
            &format!("{BASE}local_dc: mars\n"),
            "local_dc",
            Some(6),
            "none are defined",
        );
    }

    const DCS: &str = "\
datacenters:
  east:
    cidrs:
      - 10.1.0.0/16
  west:
    cidrs:
      - 10.10.0.0/16
      - 10.1.2.0/24
";

    #[test]
    fn overlapping_cidrs_across_dcs() {
        // BASE is 5 lines, so `- 10.1.2.0/24` is line 13.
        one(
            &format!("{BASE}{DCS}"),
            "datacenters.west.cidrs[1]",
            Some(13),
            "10.1.2.0/24 of datacenter `west` overlaps 10.1.0.0/16 of datacenter `east`",
        );
        // The wider network in the later DC is caught too.
        let wide = DCS.replace("10.1.2.0/24", "10.0.0.0/8");
        one(
            &format!("{BASE}{wide}"),
            "datacenters.west.cidrs[1]",
            Some(13),
            "10.0.0.0/8 of datacenter `west` overlaps 10.1.0.0/16 of datacenter `east`",
        );
        // 10.1/16 and 10.10/16 share a string prefix, not addresses.
        let disjoint = DCS.replace("      - 10.1.2.0/24\n", "");
        assert!(errors(&format!("{BASE}{disjoint}")).is_empty());
        // Overlap inside one DC is harmless.
        let same_dc = DCS.replace("10.1.2.0/24", "10.10.1.0/24");
        assert!(errors(&format!("{BASE}{same_dc}")).is_empty());
    }

    #[test]
    fn ipv6_overlap_and_mixed_families() {
        let yaml = format!(
            "{BASE}datacenters:\n  a:\n    cidrs: [fd00::/16, 10.0.0.0/8]\n  b:\n    cidrs:\n      - fd00:1::/48\n      - ::ffff:0:0/96\n"
        );
        one(
            &yaml,
            "datacenters.b.cidrs[0]",
            Some(11),
            "overlaps fd00::/16",
        );
    }

    #[test]
    fn cidr_host_bits() {
        let yaml = format!("{BASE}datacenters:\n  a:\n    cidrs:\n      - 10.1.2.3/16\n");
        one(
            &yaml,
            "datacenters.a.cidrs[0]",
            Some(9),
            "did you mean 10.1.0.0/16?",
        );
    }

    #[test]
    fn node_listed_in_two_dcs() {
        let yaml = format!(
            "{BASE}datacenters:\n  a:\n    nodes: [127.0.0.1:7001]\n  b:\n    nodes:\n      - 127.0.0.1:7002\n      - 127.0.0.1:7001\n"
        );
        one(
            &yaml,
            "datacenters.b.nodes[1]",
            Some(12),
            "listed in datacenters `a` and `b`",
        );
        let bad = format!("{BASE}datacenters:\n  a:\n    nodes:\n      - nope\n");
        one(&bad, "datacenters.a.nodes[0]", Some(9), "no port");
        let bad = format!(
            "{BASE}datacenters:\n  a:\n    hosts:\n      - ok.internal\n      - redis east\n"
        );
        one(&bad, "datacenters.a.hosts[1]", Some(10), "not a host name");
    }

    #[test]
    fn dc_names() {
        let yaml = format!("{BASE}datacenters:\n  east: {{}}\n  unknown: {{}}\n");
        one(&yaml, "datacenters.unknown", Some(8), "reserved");
        let yaml = format!("{BASE}datacenters:\n  \"us east\": {{}}\n");
        one(&yaml, "datacenters.us east", Some(7), "letters, digits");
    }

    const LATENCY: &str = "\
local_dc: east
datacenters:
  east: {}
  west: {}
latency_ms:
  east:
    east: 0.3
    west: 40
";

    #[test]
    fn latency_row_for_local_dc() {
        assert!(errors(&format!("{BASE}{LATENCY}")).is_empty());
        let yaml = format!(
            "{BASE}{}",
            LATENCY.replace("local_dc: east", "local_dc: west")
        );
        one(
            &yaml,
            "latency_ms",
            Some(10),
            "no row for the local datacenter `west`",
        );
        // Without a latency map there is nothing to require.
        let yaml = format!("{BASE}local_dc: west\ndatacenters:\n  west: {{}}\n");
        assert!(errors(&yaml).is_empty());
    }

    #[test]
    fn latency_values_finite_and_not_negative() {
        let yaml = format!("{BASE}{}", LATENCY.replace("west: 40", "west: -1"));
        one(
            &yaml,
            "latency_ms.east.west",
            Some(13),
            "-1 is not a latency",
        );
        let yaml = format!("{BASE}{}", LATENCY.replace("west: 40", "west: .nan"));
        one(
            &yaml,
            "latency_ms.east.west",
            Some(13),
            "NaN is not a latency",
        );
        let yaml = format!("{BASE}{}", LATENCY.replace("east: 0.3", "east: .inf"));
        one(
            &yaml,
            "latency_ms.east.east",
            Some(12),
            "inf is not a latency",
        );
    }

    #[test]
    fn latency_names_defined_dcs() {
        let yaml = format!("{BASE}{LATENCY}  eu: {{eu: 1}}\n");
        let errs = errors(&yaml);
        let got: Vec<_> = errs.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
        assert_eq!(
            got,
            [("latency_ms.eu", Some(14)), ("latency_ms.eu.eu", Some(14))]
        );
    }
}
