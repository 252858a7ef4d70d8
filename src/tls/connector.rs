//! The backend TLS side: one rustls client config (behind an `ArcSwap`, so a reload of the
//! client certificate affects only new connections) used by every connection to a node —
//! data connections, dedicated ones, the refresher and the prober.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::{TlsError, files, provider, versions};
use crate::config::BackendTlsConfig;

/// The `cluster.tls` settings and the current rustls client config.
pub struct ClientTls {
    settings: BackendTlsConfig,
    current: ArcSwap<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca", &self.settings.ca)
            .field("server_name", &self.settings.server_name)
            .finish_non_exhaustive()
    }
}

/// Builds a rustls client config from the files `settings` name.
pub fn build(settings: &BackendTlsConfig) -> Result<ClientConfig, TlsError> {
    let roots = files::roots("cluster.tls.ca", &settings.ca)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(settings.min_version))
        .map_err(|e| TlsError::Rustls {
            key: "cluster.tls.min_version",
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let certs = files::certs("cluster.tls.cert", cert)?;
            let key = files::private_key("cluster.tls.key", key)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError::Rustls {
                    key: "cluster.tls.key",
                    reason: format!("does not go with cluster.tls.cert: {e}"),
                })
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

impl ClientTls {
    /// Loads the CA (and client certificate) files.
    pub fn new(settings: &BackendTlsConfig) -> Result<ClientTls, TlsError> {
        let config = build(settings)?;
        Ok(ClientTls {
            settings: settings.clone(),
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Re-reads the files; the config in force stays when they do not load.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.settings)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// The files a watcher should follow.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let s = &self.settings;
        let mut out = vec![s.ca.clone()];
        out.extend(s.cert.clone());
        out.extend(s.key.clone());
        out
    }

    /// The name the node at `host` must prove: `server_name` when set, else the host itself
    /// (an IP address is checked against the certificate's IP SANs).
    fn server_name(&self, host: &str) -> std::io::Result<ServerName<'static>> {
        let name = self.settings.server_name.as_deref().unwrap_or(host);
        let name = name.trim_start_matches('[').trim_end_matches(']');
        ServerName::try_from(name.to_string()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("`{name}` is not a valid TLS server name: {e}"),
            )
        })
    }

    /// Runs the client handshake with the node at `addr` (`host:port`) over `stream`.
    pub async fn connect(
        &self,
        addr: &str,
        stream: TcpStream,
    ) -> std::io::Result<TlsStream<TcpStream>> {
        let host = crate::config::split_host_port(addr).map_or(addr, |(host, _)| host);
        let name = self.server_name(host)?;
        TlsConnector::from(self.current.load_full())
            .connect(name, stream)
            .await
    }
}
