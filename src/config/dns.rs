//! The `dns` section: which name servers resolve seeds and `datacenters.<dc>.hosts` names.
//! Left out, the system's resolver configuration (/etc/resolv.conf, /etc/hosts) is used.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

use super::Config;
use super::checks::Errors;

/// The port a name server listens on unless the entry names another.
pub const DNS_PORT: u16 = 53;

/// The `dns` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers asked instead of /etc/resolv.conf's, in order: `ip` (port 53) or
    /// `ip:port` (`[v6]:port`). Empty: the system's configuration.
    pub nameservers: Vec<String>,
}

impl DnsConfig {
    /// The configured name servers' addresses (entries that do not parse are left out:
    /// validation reports them).
    pub fn nameserver_addrs(&self) -> Vec<SocketAddr> {
        self.nameservers
            .iter()
            .filter_map(|s| nameserver_addr(s))
            .collect()
    }
}

/// `ip` or `ip:port` (`[v6]:port`) as a socket address.
fn nameserver_addr(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DNS_PORT));
    }
    text.parse::<SocketAddr>().ok().filter(|a| a.port() != 0)
}

/// Every `dns.nameservers` entry is an IP address with an optional port.
pub(super) fn check_dns(cfg: &Config, out: &mut Errors) {
    for (i, entry) in cfg.dns.nameservers.iter().enumerate() {
        if nameserver_addr(entry).is_none() {
            out.push(
                format!("dns.nameservers[{i}]"),
                format!(
                    "`{entry}` is not a name server address; write an IP address, optionally with a port (10.0.0.2, 10.0.0.2:5353, [fd00::2]:53)"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_port_53_unless_given() {
        let dns = DnsConfig {
            nameservers: vec![
                "10.0.0.2".into(),
                "127.0.0.1:5353".into(),
                "[::1]:54".into(),
                "fd00::2".into(),
            ],
        };
        let want: Vec<SocketAddr> = ["10.0.0.2:53", "127.0.0.1:5353", "[::1]:54", "[fd00::2]:53"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(dns.nameserver_addrs(), want);
    }

    #[test]
    fn names_and_bad_ports_are_errors() {
        let cfg = Config::parse(
            "cluster: { seeds: [127.0.0.1:7001] }\ndns: { nameservers: [ns1.example.com, '10.0.0.2:0', '10.0.0.3:99999', 10.0.0.4] }\n",
            "t.yaml",
        );
        let errors = cfg.expect_err("bad name servers").to_string();
        for bad in ["nameservers[0]", "nameservers[1]", "nameservers[2]"] {
            assert!(errors.contains(bad), "{bad} missing in: {errors}");
        }
        assert!(!errors.contains("nameservers[3]"), "{errors}");
    }
}
