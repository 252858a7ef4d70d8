//! Errors of the backend layer and how each one reads to a client.

use crate::resp::ProtocolError;

/// Why a request could not be answered by its backend.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    #[error("connection to {addr} timed out")]
    ConnectTimeout { addr: String },
    #[error("connection to {addr} lost: {reason}")]
    Lost { addr: String, reason: String },
    #[error("{addr} sent a malformed reply: {err}")]
    Protocol { addr: String, err: ProtocolError },
    #[error("{addr} refused the handshake: {reply}")]
    Handshake { addr: String, reply: String },
    #[error("{addr} did not answer within {ms} ms")]
    Timeout { addr: String, ms: u64 },
}

impl BackendError {
    /// The RESP error line (without `-` and CRLF) a client receives.
    pub fn client_message(&self) -> String {
        format!("ERR meridian: {self}")
    }

    /// The error for a request that was sent before the connection failed: it may or may not
    /// have run, so it is not retried, and the client is told so.
    pub fn unknown_outcome_message(&self) -> String {
        format!("ERR meridian: {self}; the request was sent, its outcome is unknown (not retried)")
    }
}
