//! `meridian reload`: asks a running gateway to reload through its admin endpoint
//! (`POST /reload`), with the admin token or an admin user's credentials.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long the command waits for the gateway.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest answer read.
const MAX_ANSWER: u64 = 1 << 20;

/// Why the request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReloadCliError {
    #[error("cannot reach the admin endpoint at {addr}: {err}")]
    Connect { addr: String, err: std::io::Error },
    #[error("admin endpoint at {addr}: {err}")]
    Io { addr: String, err: std::io::Error },
    #[error("admin endpoint at {0}: not an HTTP answer")]
    BadAnswer(String),
}

/// Sends `POST /reload` to `addr` with an optional `Authorization` value; returns the HTTP
/// status and the body.
pub fn post_reload(
    addr: &str,
    authorization: Option<&str>,
) -> Result<(u16, String), ReloadCliError> {
    let io = |err| ReloadCliError::Io {
        addr: addr.to_string(),
        err,
    };
    let mut stream = TcpStream::connect(addr).map_err(|err| ReloadCliError::Connect {
        addr: addr.to_string(),
        err,
    })?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut head = format!(
        "POST /reload HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n"
    );
    if let Some(a) = authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&answer);
    let bad = || ReloadCliError::BadAnswer(addr.to_string());
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(bad)?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, body.trim_end().to_string()))
}
