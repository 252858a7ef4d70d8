//! TLS with rustls: certificate files ([`files`]), the client-facing acceptor whose
//! certificates reload without dropping connections ([`acceptor`]), the connector used for
//! every connection to a node ([`connector`]) and the reload triggers ([`reload`]).
//!
//! Everything here is built from the config's `tls` and `cluster.tls` sections and knows
//! nothing of sessions or backends: they receive a ready stream.

pub mod acceptor;
pub mod connector;
pub mod files;
pub mod mint;
pub mod reload;

pub use acceptor::ServerTls;
pub use connector::ClientTls;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

use crate::config::TlsVersion;

/// Why a TLS setting could not be put in force.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or held no usable PEM item.
    #[error("{key}: {path}: {reason}")]
    File {
        key: &'static str,
        path: String,
        reason: String,
    },
    /// rustls refused the combination (e.g. a key that does not match its certificate).
    #[error("{key}: {reason}")]
    Rustls { key: &'static str, reason: String },
}

/// The crypto provider every config is built with (ring: no C toolchain surprises).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The protocol versions accepted from `min` up.
fn versions(min: TlsVersion) -> &'static [&'static rustls::SupportedProtocolVersion] {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    match min {
        TlsVersion::Tls12 => &BOTH,
        TlsVersion::Tls13 => &BOTH[..1],
    }
}

/// The TLS sides the config turns on, built once at start and reloaded in place.
#[derive(Debug, Default)]
pub struct TlsState {
    /// The client-facing listener's TLS, when `tls.listen` is set.
    pub server: Option<Arc<ServerTls>>,
    /// TLS to the nodes, when `cluster.tls.enabled`.
    pub client: Option<Arc<ClientTls>>,
}

impl TlsState {
    /// Loads every file the config names; the first failure is returned.
    pub fn from_config(config: &crate::config::Config) -> Result<TlsState, TlsError> {
        let server = if config.tls.enabled() {
            Some(Arc::new(ServerTls::new(&config.tls)?))
        } else {
            None
        };
        let client = if config.cluster.tls.enabled {
            Some(Arc::new(ClientTls::new(&config.cluster.tls)?))
        } else {
            None
        };
        Ok(TlsState { server, client })
    }

    /// Re-reads every certificate file: new handshakes use what loaded, connections already
    /// up are untouched, and a side whose files do not load keeps its current certificates.
    /// Returns the failures (empty when all loaded). The entry point a general config reload
    /// calls.
    pub fn reload(&self) -> Vec<TlsError> {
        let mut errors = Vec::new();
        if let Some(server) = &self.server
            && let Err(e) = server.reload()
        {
            errors.push(e);
        }
        if let Some(client) = &self.client
            && let Err(e) = client.reload()
        {
            errors.push(e);
        }
        errors
    }

    /// Files to watch for changes (the listener's only when `tls.watch`; the backend's always).
    pub fn watched_files(&self) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        if let Some(server) = self.server.as_ref().filter(|s| s.watch()) {
            out.extend(server.files());
        }
        if let Some(client) = &self.client {
            out.extend(client.files());
        }
        out
    }

    /// Whether any side is on.
    pub fn is_on(&self) -> bool {
        self.server.is_some() || self.client.is_some()
    }
}
