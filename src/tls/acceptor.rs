//! The client-facing TLS side: the rustls server config behind an `ArcSwap`, so a reload puts
//! new certificates in force for the next handshake while connections already up keep theirs.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{TlsError, files, provider, versions};
use crate::config::TlsListenConfig;

/// The TLS listener's settings and its current rustls config.
pub struct ServerTls {
    settings: TlsListenConfig,
    current: ArcSwap<ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.settings.cert)
            .field("client_ca", &self.settings.client_ca)
            .finish_non_exhaustive()
    }
}

/// Builds a rustls server config from the files `settings` name.
pub fn build(settings: &TlsListenConfig) -> Result<ServerConfig, TlsError> {
    let certs = files::certs("tls.cert", &settings.cert)?;
    let key = files::private_key("tls.key", &settings.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions(settings.min_version))
        .map_err(|e| TlsError::Rustls {
            key: "tls.min_version",
            reason: e.to_string(),
        })?;
    let builder = match &settings.client_ca {
        Some(path) => {
            let roots = files::roots("tls.client_ca", path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(roots.into(), provider())
                .build()
                .map_err(|e| TlsError::Rustls {
                    key: "tls.client_ca",
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    builder
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Rustls {
            key: "tls.key",
            reason: format!("does not go with tls.cert: {e}"),
        })
}

impl ServerTls {
    /// Loads the certificate files; an error names the key and file at fault.
    pub fn new(settings: &TlsListenConfig) -> Result<ServerTls, TlsError> {
        let config = build(settings)?;
        Ok(ServerTls {
            settings: settings.clone(),
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Re-reads the files; on success new handshakes use them, on failure the config in force
    /// stays (a half-written file never takes the listener down).
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = build(&self.settings)?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// The files a watcher should follow.
    pub fn files(&self) -> Vec<std::path::PathBuf> {
        let s = &self.settings;
        let mut out = vec![s.cert.clone(), s.key.clone()];
        out.extend(s.client_ca.clone());
        out
    }

    /// Whether the files are watched for changes.
    pub fn watch(&self) -> bool {
        self.settings.watch
    }

    /// Runs the handshake on `stream` with the config in force now, bounded by
    /// `tls.handshake_timeout`.
    pub async fn accept(&self, stream: TcpStream) -> Result<TlsStream<TcpStream>, HandshakeError> {
        let acceptor = TlsAcceptor::from(self.current.load_full());
        match tokio::time::timeout(self.settings.handshake_timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Ok(tls),
            Ok(Err(e)) => Err(HandshakeError::Failed(e)),
            Err(_) => Err(HandshakeError::TimedOut),
        }
    }
}

/// Why a client's handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The client sent something that is not TLS, a bad certificate, or left.
    #[error("handshake failed: {0}")]
    Failed(std::io::Error),
    /// The handshake took longer than `tls.handshake_timeout`.
    #[error("handshake not finished within tls.handshake_timeout")]
    TimedOut,
}
