//! predixy's DataCenter section in meridian's terms: string address prefixes become CIDRs
//! (carved so no two DCs overlap, keeping predixy's longest-prefix meaning), and each DC's
//! ReadPolicy priorities become a synthetic latency row.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

/// Milliseconds between two adjacent predixy priority levels in the synthetic latency map;
/// far wider than any sane `tolerance_ms`, so distinct priorities stay distinct tiers.
pub(super) const LEVEL_STEP_MS: f64 = 10.0;
/// Synthetic latency of DCs a ReadPolicy never reads from (priority 0 or not listed).
pub(super) const NEVER_MS: f64 = 1000.0;

/// The network an IPv4 string prefix meant: `10` → 10.0.0.0/8, `10.1` → 10.1.0.0/16,
/// `10.1.2` → /24, `10.1.2.3` → /32 (a trailing dot is allowed). `None` for anything else
/// (host names, IPv6, partial octets beyond 255).
pub(super) fn prefix_to_cidr(prefix: &str) -> Option<IpNet> {
    let p = prefix.trim();
    let p = p.strip_suffix('.').unwrap_or(p);
    let mut octets = [0u8; 4];
    let mut count = 0;
    for part in p.split('.') {
        if count == 4 || part.is_empty() || part.len() > 3 {
            return None;
        }
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        octets[count] = part.parse().ok()?;
        count += 1;
    }
    let len = u8::try_from(count * 8).ok()?;
    Ipv4Net::new(Ipv4Addr::from(octets), len)
        .ok()
        .map(IpNet::V4)
}

/// `net` minus every network of `holes` inside it, as the fewest CIDRs that split on bit
/// boundaries produce. Holes that do not lie inside `net` are ignored.
pub(super) fn subtract(net: IpNet, holes: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    carve(net, holes, &mut out);
    out
}

fn carve(net: IpNet, holes: &[IpNet], out: &mut Vec<IpNet>) {
    if holes.iter().any(|h| h.contains(&net)) {
        return;
    }
    if !holes.iter().any(|h| net.contains(h)) {
        out.push(net);
        return;
    }
    // Some hole lies strictly inside: split in two; depth is bounded by the address width.
    match net.subnets(net.prefix_len() + 1) {
        Ok(halves) => {
            for half in halves {
                carve(half, holes, out);
            }
        }
        Err(_) => out.push(net),
    }
}

/// The DC predixy would have placed `addr` in: the longest string prefix of the address text.
pub(super) fn predixy_dc_of<'a>(prefixes: &'a [(String, String)], addr: &str) -> Option<&'a str> {
    prefixes
        .iter()
        .filter(|(_, p)| addr.starts_with(p.as_str()))
        .max_by_key(|(_, p)| p.len())
        .map(|(dc, _)| dc.as_str())
}

/// The DC whose CIDRs contain `ip`, longest prefix winning (meridian's rule).
pub(super) fn cidr_dc_of(nets: &[(String, IpNet)], ip: IpAddr) -> Option<&str> {
    nets.iter()
        .filter(|(_, n)| n.contains(&ip))
        .max_by_key(|(_, n)| n.prefix_len())
        .map(|(dc, _)| dc.as_str())
}

/// One entry of a predixy ReadPolicy: `dc priority [weight]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PolicyEntry {
    pub dc: String,
    pub priority: i64,
    pub weight: i64,
}

/// A latency row from a ReadPolicy: the highest priority is 0 ms, each lower priority level
/// [`LEVEL_STEP_MS`] more; DCs in `all` with priority ≤ 0 or not listed get [`NEVER_MS`].
pub(super) fn latency_row(policy: &[PolicyEntry], all: &[String]) -> BTreeMap<String, f64> {
    let mut levels: Vec<i64> = policy
        .iter()
        .filter(|e| e.priority > 0)
        .map(|e| e.priority)
        .collect();
    levels.sort_unstable_by(|a, b| b.cmp(a));
    levels.dedup();
    let mut row: BTreeMap<String, f64> = all.iter().map(|dc| (dc.clone(), NEVER_MS)).collect();
    for e in policy.iter().filter(|e| e.priority > 0) {
        let rank = levels.iter().position(|&p| p == e.priority).unwrap_or(0);
        row.insert(e.dc.clone(), rank as f64 * LEVEL_STEP_MS);
    }
    row
}

/// Whether weights change anything for this policy: two DCs share its top priority level, or
/// share any level (a lower level serves when the top DCs fail).
pub(super) fn weights_matter(policy: &[PolicyEntry]) -> bool {
    let used: Vec<_> = policy.iter().filter(|e| e.priority > 0).collect();
    used.iter()
        .enumerate()
        .any(|(i, a)| used[..i].iter().any(|b| b.priority == a.priority))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_become_networks() {
        let table = [
            ("10", Some("10.0.0.0/8")),
            ("10.1", Some("10.1.0.0/16")),
            ("10.1.", Some("10.1.0.0/16")),
            ("10.1.2", Some("10.1.2.0/24")),
            ("10.1.2.3", Some("10.1.2.3/32")),
            (" 192.168.0 ", Some("192.168.0.0/24")),
            ("10.1.2.3.4", None),
            ("10.256", None),
            ("10..2", None),
            ("", None),
            ("redis-bj", None),
            ("fd00:1", None),
            ("10.1a", None),
        ];
        for (prefix, want) in table {
            assert_eq!(prefix_to_cidr(prefix), want.map(net), "{prefix:?}");
        }
    }

    #[test]
    fn carving_keeps_longest_prefix_meaning() {
        assert_eq!(subtract(net("10.1.0.0/16"), &[]), [net("10.1.0.0/16")]);
        assert_eq!(
            subtract(net("10.1.0.0/16"), &[net("10.2.0.0/16")]),
            [net("10.1.0.0/16")]
        );
        assert!(subtract(net("10.1.2.0/24"), &[net("10.1.0.0/16")]).is_empty());
        let parts = subtract(net("10.1.0.0/16"), &[net("10.1.2.0/24")]);
        assert_eq!(parts.len(), 8);
        assert!(parts.iter().all(|p| !p.contains(&net("10.1.2.0/24"))));
        for ip in ["10.1.0.1", "10.1.3.1", "10.1.255.1", "10.1.1.255"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(parts.iter().filter(|p| p.contains(&ip)).count(), 1, "{ip}");
        }
        let ip: IpAddr = "10.1.2.9".parse().unwrap();
        assert!(parts.iter().all(|p| !p.contains(&ip)));
    }

    #[test]
    fn string_and_cidr_matching_differ_at_octet_boundaries() {
        let prefixes = vec![("bj".to_string(), "10.1".to_string())];
        assert_eq!(predixy_dc_of(&prefixes, "10.10.0.5:7001"), Some("bj"));
        let nets = vec![("bj".to_string(), net("10.1.0.0/16"))];
        assert_eq!(cidr_dc_of(&nets, "10.10.0.5".parse().unwrap()), None);
        assert_eq!(cidr_dc_of(&nets, "10.1.0.5".parse().unwrap()), Some("bj"));
    }

    fn entry(dc: &str, priority: i64, weight: i64) -> PolicyEntry {
        PolicyEntry {
            dc: dc.into(),
            priority,
            weight,
        }
    }

    #[test]
    fn priorities_become_ranked_latencies() {
        let all: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
        let row = latency_row(
            &[
                entry("a", 50, 1),
                entry("b", 20, 5),
                entry("c", 20, 2),
                entry("d", 0, 1),
            ],
            &all,
        );
        assert_eq!(row["a"], 0.0);
        assert_eq!((row["b"], row["c"]), (10.0, 10.0));
        assert_eq!((row["d"], row["e"]), (NEVER_MS, NEVER_MS));
        assert!(weights_matter(&[entry("b", 20, 5), entry("c", 20, 2)]));
        assert!(!weights_matter(&[
            entry("a", 50, 1),
            entry("b", 20, 5),
            entry("c", 0, 2),
            entry("d", 0, 2)
        ]));
    }
}
