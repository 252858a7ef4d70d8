//! The `hosts` part of the DC map: names listed under `datacenters.<dc>.hosts` are resolved
//! (hickory-resolver) and their addresses placed in that DC. Answers are kept until their DNS
//! TTL runs out, then resolved again, so a name that moves to new addresses follows.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use tracing::warn;

use crate::config::Config;

/// Addresses learned from DC host names, with when they must be resolved again.
#[derive(Debug, Default)]
pub struct DcHosts {
    by_name: HashMap<String, (String, Vec<IpAddr>, Instant)>,
}

impl DcHosts {
    /// Resolves every host name whose answer expired (or whose DC a reload changed) and
    /// forgets names the config no longer lists. Returns the names whose addresses changed
    /// from a previous answer, as (DC, message).
    pub async fn refresh(&mut self, config: &Config) -> Vec<(String, String)> {
        let now = Instant::now();
        let mut changed = Vec::new();
        self.by_name.retain(|host, (dc, _, _)| {
            config
                .datacenters
                .get(dc.as_str())
                .is_some_and(|spec| spec.hosts.contains(host))
        });
        for (dc, spec) in &config.datacenters {
            for host in &spec.hosts {
                if self
                    .by_name
                    .get(host)
                    .is_some_and(|(d, _, until)| *until > now && d == dc)
                {
                    continue;
                }
                match crate::dns::lookup_host_ttl(host).await {
                    Ok((mut ips, until)) => {
                        ips.sort();
                        let before = self.by_name.insert(host.clone(), (dc.clone(), ips, until));
                        if let Some((_, old_ips, _)) = before {
                            let new_ips = &self.by_name[host].1;
                            if old_ips != *new_ips {
                                changed.push((
                                    dc.clone(),
                                    format!("{host} now resolves to {new_ips:?} (was {old_ips:?})"),
                                ));
                            }
                        }
                    }
                    Err(e) => {
                        warn!(%host, %dc, error = %e, "cannot resolve a datacenter host name");
                        // Try again at the next refresh, keeping what was known.
                        if let Some(entry) = self.by_name.get_mut(host) {
                            entry.2 = now;
                        }
                    }
                }
            }
        }
        changed
    }

    /// The DC whose host names resolve to `ip`.
    pub fn dc_of(&self, ip: IpAddr) -> Option<&str> {
        self.by_name
            .values()
            .find(|(_, ips, _)| ips.contains(&ip))
            .map(|(dc, _, _)| dc.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn host_names_place_their_addresses_in_a_dc() {
        let config = Config::parse(
            "cluster: { seeds: [127.0.0.1:7001] }\ndatacenters:\n  east: { hosts: [localhost] }\n",
            "t.yaml",
        )
        .unwrap();
        let mut hosts = DcHosts::default();
        hosts.refresh(&config).await;
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let resolved = crate::dns::lookup_host("localhost").await.unwrap();
        let expected = resolved.contains(&local).then_some("east");
        assert_eq!(hosts.dc_of(local), expected);
        assert_eq!(hosts.dc_of("10.9.9.9".parse().unwrap()), None);
    }
}
