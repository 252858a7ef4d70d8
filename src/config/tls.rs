//! The `tls` (client side) and `cluster.tls` (backend side) sections, their defaults, and the
//! checks that need no file system (the files themselves are loaded by `crate::tls`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::Config;
use super::checks::Errors;

/// Lowest TLS protocol version a side accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[serde(rename = "1.2")]
    #[default]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    /// How the config writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// The top-level `tls` section: a TLS listener for clients, beside (or instead of) `listen`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsListenConfig {
    /// Address of the TLS listener, `ip:port`; empty means no TLS listener.
    pub listen: String,
    /// PEM certificate chain the gateway presents (leaf first).
    pub cert: PathBuf,
    /// PEM private key of that certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates; when set, every client must present a certificate they signed.
    pub client_ca: Option<PathBuf>,
    /// Lowest protocol version accepted: "1.2" or "1.3".
    pub min_version: TlsVersion,
    /// Longest a client may take to finish its handshake before it is closed.
    #[serde(deserialize_with = "super::units::duration")]
    pub handshake_timeout: Duration,
    /// Reload the certificate files when they change on disk (SIGHUP always reloads).
    pub watch: bool,
}

impl Default for TlsListenConfig {
    fn default() -> TlsListenConfig {
        TlsListenConfig {
            listen: String::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
            client_ca: None,
            min_version: TlsVersion::Tls12,
            handshake_timeout: Duration::from_secs(5),
            watch: true,
        }
    }
}

impl TlsListenConfig {
    /// Whether a TLS listener is configured.
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }
}

/// The `cluster.tls` section: how meridian connects to nodes that listen with `tls-port`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendTlsConfig {
    /// Turns TLS to the nodes on; the other keys only matter when it is true.
    pub enabled: bool,
    /// PEM CA certificates the nodes' certificates must chain to.
    pub ca: PathBuf,
    /// PEM client certificate chain, for nodes with `tls-auth-clients yes`.
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert`.
    pub key: Option<PathBuf>,
    /// Name checked against the nodes' certificates; default: the host part of each address.
    pub server_name: Option<String>,
    /// Lowest protocol version offered: "1.2" or "1.3".
    pub min_version: TlsVersion,
}

impl Default for BackendTlsConfig {
    fn default() -> BackendTlsConfig {
        BackendTlsConfig {
            enabled: false,
            ca: PathBuf::new(),
            cert: None,
            key: None,
            server_name: None,
            min_version: TlsVersion::Tls12,
        }
    }
}

/// Checks both TLS sections and that the gateway listens somewhere.
pub(super) fn check_tls(cfg: &Config, out: &mut Errors) {
    let tls = &cfg.tls;
    if tls.enabled() {
        if tls.listen.parse::<SocketAddr>().is_err() {
            out.push(
                "tls.listen",
                format!(
                    "`{}` is not a socket address; write ip:port, e.g. 0.0.0.0:7643",
                    tls.listen
                ),
            );
        }
        if tls.cert.as_os_str().is_empty() {
            out.push(
                "tls.cert",
                "required with tls.listen: a PEM certificate file",
            );
        }
        if tls.key.as_os_str().is_empty() {
            out.push(
                "tls.key",
                "required with tls.listen: a PEM private key file",
            );
        }
        out.positive("tls.handshake_timeout", tls.handshake_timeout);
    }
    let be = &cfg.cluster.tls;
    if be.enabled {
        if be.ca.as_os_str().is_empty() {
            out.push(
                "cluster.tls.ca",
                "required with cluster.tls.enabled: the CA that signed the nodes' certificates",
            );
        }
        match (&be.cert, &be.key) {
            (Some(_), None) => out.push("cluster.tls.key", "required with cluster.tls.cert"),
            (None, Some(_)) => out.push("cluster.tls.cert", "required with cluster.tls.key"),
            _ => {}
        }
        if let Some(name) = &be.server_name
            && rustls_pki_types::ServerName::try_from(name.as_str()).is_err()
        {
            out.push(
                "cluster.tls.server_name",
                format!("`{name}` is not a DNS name or IP address"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::validate::tests::{BASE, errors};

    /// The paths of every error in `yaml`.
    fn paths(yaml: &str) -> Vec<String> {
        errors(yaml).into_iter().map(|e| e.0).collect()
    }

    #[test]
    fn tls_sections_default_off_and_are_checked() {
        assert!(errors(BASE).is_empty());
        let ok = format!(
            "{BASE}tls:\n  listen: 127.0.0.1:7643\n  cert: a.pem\n  key: a.key\n  min_version: \"1.3\"\n"
        );
        assert!(errors(&ok).is_empty(), "{:?}", errors(&ok));
        let no_cert = format!("{BASE}tls:\n  listen: 127.0.0.1:7643\n  key: a.key\n");
        assert_eq!(paths(&no_cert), ["tls.cert"]);
        let bad = format!("{BASE}tls:\n  listen: nowhere\n  cert: a\n  key: b\n");
        assert_eq!(paths(&bad), ["tls.listen"]);
        let be = format!("{BASE}  tls:\n    enabled: true\n    cert: c.pem\n");
        assert_eq!(paths(&be), ["cluster.tls.ca", "cluster.tls.key"]);
    }

    #[test]
    fn tls_only_gateway_may_leave_listen_empty() {
        let yaml = BASE.replace("127.0.0.1:7617", "\"\"");
        assert_eq!(paths(&yaml), ["listen"]);
        let tls_only = format!("{yaml}tls:\n  listen: 127.0.0.1:7643\n  cert: a\n  key: b\n");
        assert!(errors(&tls_only).is_empty(), "{:?}", errors(&tls_only));
    }

    #[test]
    fn unknown_min_version_is_refused() {
        let yaml = format!("{BASE}tls:\n  min_version: \"1.1\"\n");
        assert!(!errors(&yaml).is_empty());
    }
}
