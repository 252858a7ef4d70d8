//! `host:port` strings as written for seeds and DC node lists: splitting and comparing them.

use std::net::{IpAddr, SocketAddr};

use super::errors::HostPortError;

/// Splits `host:port` (IPv6 as `[addr]:port`) into the host, without brackets, and the port.
///
/// Host names are allowed (seeds may be DNS names); they are only checked for plausible
/// characters here, resolution is the caller's business.
pub fn split_host_port(text: &str) -> Result<(&str, u16), HostPortError> {
    let owned = || text.to_string();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| HostPortError::InvalidHost(owned()))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| HostPortError::MissingPort(owned()))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(HostPortError::InvalidHost(owned()));
        }
        (host, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| HostPortError::MissingPort(owned()))?;
        if host.contains(':') {
            return Err(HostPortError::BareIpv6(owned()));
        }
        if host.is_empty() {
            return Err(HostPortError::MissingHost(owned()));
        }
        if host.parse::<IpAddr>().is_err() && !is_host_name(host) {
            return Err(HostPortError::InvalidHost(owned()));
        }
        (host, port)
    };
    // u16's parser takes a leading '+', which is no way to write a port.
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostPortError::InvalidPort(owned()));
    }
    match port.parse::<u16>() {
        Ok(number) if number != 0 => Ok((host, number)),
        _ => Err(HostPortError::InvalidPort(owned())),
    }
}

/// The IP address of a `host:port` (or bare address) string, when the host is a literal IP.
pub(crate) fn ip_of(host_port: &str) -> Option<IpAddr> {
    if let Ok(sock) = host_port.parse::<SocketAddr>() {
        return Some(sock.ip());
    }
    if let Ok(ip) = host_port.parse::<IpAddr>() {
        return Some(ip);
    }
    let (host, _) = split_host_port(host_port).ok()?;
    host.parse().ok()
}

/// Whether two `host:port` strings name the same node: literal addresses compare as socket
/// addresses (so `[::1]:7001` equals `[0:0::1]:7001`), host names without regard to case.
pub(crate) fn same_node(a: &str, b: &str) -> bool {
    match (a.parse::<SocketAddr>(), b.parse::<SocketAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

/// Letters, digits, `-`, `_` and dots between non-empty labels: enough to catch typos such
/// as a stray space or slash without pretending to implement DNS rules.
pub(crate) fn is_host_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_valid_forms() {
        assert_eq!(split_host_port("127.0.0.1:7001"), Ok(("127.0.0.1", 7001)));
        assert_eq!(
            split_host_port("redis-a.internal:6379"),
            Ok(("redis-a.internal", 6379))
        );
        assert_eq!(split_host_port("[::1]:7001"), Ok(("::1", 7001)));
        assert_eq!(split_host_port("localhost:1"), Ok(("localhost", 1)));
    }

    #[test]
    fn rejects_invalid_forms() {
        use HostPortError::*;
        assert_eq!(
            split_host_port("127.0.0.1"),
            Err(MissingPort("127.0.0.1".into()))
        );
        assert_eq!(split_host_port(":7001"), Err(MissingHost(":7001".into())));
        assert_eq!(split_host_port("h:0"), Err(InvalidPort("h:0".into())));
        assert_eq!(
            split_host_port("h:70000"),
            Err(InvalidPort("h:70000".into()))
        );
        assert_eq!(split_host_port("h:+1"), Err(InvalidPort("h:+1".into())));
        assert_eq!(split_host_port("h:"), Err(InvalidPort("h:".into())));
        assert_eq!(
            split_host_port("::1:7001"),
            Err(BareIpv6("::1:7001".into()))
        );
        assert_eq!(split_host_port("a b:1"), Err(InvalidHost("a b:1".into())));
        assert_eq!(split_host_port("a..b:1"), Err(InvalidHost("a..b:1".into())));
        assert_eq!(split_host_port("[zz]:1"), Err(InvalidHost("[zz]:1".into())));
        assert_eq!(split_host_port("[::1]"), Err(MissingPort("[::1]".into())));
    }

    #[test]
    fn ip_and_node_identity() {
        assert_eq!(ip_of("10.1.2.3:7001"), "10.1.2.3".parse().ok());
        assert_eq!(ip_of("[2001:db8::1]:7001"), "2001:db8::1".parse().ok());
        assert_eq!(ip_of("2001:db8::1"), "2001:db8::1".parse().ok());
        assert_eq!(ip_of("redis.internal:7001"), None);
        assert!(same_node("[::1]:7001", "[0:0::1]:7001"));
        assert!(same_node("Redis-A:7001", "redis-a:7001"));
        assert!(!same_node("127.0.0.1:7001", "127.0.0.1:7002"));
    }
}
