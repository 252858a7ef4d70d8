//! Name resolution for seeds and DC host lists, through hickory-resolver (which reads
//! /etc/resolv.conf and /etc/hosts, or asks the name servers of `dns.nameservers`). IP
//! literals never touch the resolver.

use std::net::{IpAddr, SocketAddr};
use std::sync::OnceLock;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

/// A name that could not be resolved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DnsError {
    #[error("invalid address '{0}': expected host:port")]
    BadAddress(String),
    #[error("cannot resolve '{host}': {reason}")]
    Lookup { host: String, reason: String },
    #[error("cannot resolve '{host}': no answer within {ms} ms")]
    Timeout { host: String, ms: u128 },
}

/// The process's resolver, made at the first lookup (or by [`use_nameservers`]).
static RESOLVER: OnceLock<Option<TokioResolver>> = OnceLock::new();

fn resolver() -> Option<&'static TokioResolver> {
    RESOLVER.get_or_init(|| build(&[])).as_ref()
}

/// Makes names resolve through `servers` (UDP, TCP when an answer is truncated) instead of
/// the system's name servers; /etc/hosts is still read first. Takes effect only before the
/// first lookup of the process (the gateway calls it at start): returns whether it did.
pub fn use_nameservers(servers: &[SocketAddr]) -> bool {
    let mut made = false;
    RESOLVER.get_or_init(|| {
        made = true;
        build(servers)
    });
    made
}

/// A resolver asking `servers`, or the system's configuration when there are none.
fn build(servers: &[SocketAddr]) -> Option<TokioResolver> {
    if servers.is_empty() {
        return TokioResolver::builder_tokio()
            .ok()
            .and_then(|b| b.build().ok());
    }
    let on_port = |mut c: ConnectionConfig, port: u16| {
        c.port = port;
        c
    };
    let servers = servers
        .iter()
        .map(|a| {
            let connections = vec![
                on_port(ConnectionConfig::udp(), a.port()),
                on_port(ConnectionConfig::tcp(), a.port()),
            ];
            NameServerConfig::new(a.ip(), true, connections)
        })
        .collect();
    TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    )
    .build()
    .ok()
}

/// Splits `host:port` (or `[v6]:port`) into its parts.
pub fn split_host_port(addr: &str) -> Result<(&str, u16), DnsError> {
    let bad = || DnsError::BadAddress(addr.to_string());
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// All IP addresses of `host` (an IP literal resolves to itself).
pub async fn lookup_host(host: &str) -> Result<Vec<IpAddr>, DnsError> {
    Ok(lookup_host_ttl(host).await?.0)
}

/// The addresses of `host` and until when the answer may be kept (its DNS TTL; literals and
/// hosts-file answers for a minute).
pub async fn lookup_host_ttl(host: &str) -> Result<(Vec<IpAddr>, std::time::Instant), DnsError> {
    let minute = std::time::Instant::now() + Duration::from_secs(60);
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((vec![ip], minute));
    }
    let fail = |reason: String| DnsError::Lookup {
        host: host.to_string(),
        reason,
    };
    let resolver = resolver().ok_or_else(|| fail("no resolver configuration".into()))?;
    let found = resolver
        .lookup_ip(host)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let ips: Vec<IpAddr> = found.iter().collect();
    if ips.is_empty() {
        return Err(fail("no addresses".into()));
    }
    Ok((
        ips,
        found
            .valid_until()
            .min(minute)
            .max(std::time::Instant::now()),
    ))
}

/// Resolves `host:port` to socket addresses, giving up after `within` (a name server that
/// does not answer would otherwise hold the caller for the resolver's own timeout, 15 s by
/// default).
pub async fn resolve(addr: &str, within: Duration) -> Result<Vec<SocketAddr>, DnsError> {
    let (host, port) = split_host_port(addr)?;
    let found = tokio::time::timeout(within, lookup_host(host))
        .await
        .map_err(|_| DnsError::Timeout {
            host: host.to_string(),
            ms: within.as_millis(),
        })??;
    Ok(found
        .into_iter()
        .map(|ip| SocketAddr::new(ip, port))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_addresses() {
        assert_eq!(
            split_host_port("127.0.0.1:7001").unwrap(),
            ("127.0.0.1", 7001)
        );
        assert_eq!(split_host_port("[::1]:7001").unwrap(), ("::1", 7001));
        assert_eq!(
            split_host_port("redis.local:6379").unwrap(),
            ("redis.local", 6379)
        );
        assert!(split_host_port("nohost").is_err());
        assert!(split_host_port(":80").is_err());
        assert!(split_host_port("h:99999").is_err());
    }

    #[tokio::test]
    async fn literals_and_localhost_resolve() {
        assert_eq!(
            resolve("127.0.0.2:5", Duration::from_secs(5))
                .await
                .unwrap(),
            vec!["127.0.0.2:5".parse().unwrap()]
        );
        let local = resolve("localhost:6379", Duration::from_secs(5))
            .await
            .unwrap();
        assert!(local.iter().all(|a| a.ip().is_loopback()), "{local:?}");
    }
}
