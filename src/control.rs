//! A small request/reply client for the control plane (topology, COMMAND, INFO probes).
//! Not used on the data path: it decodes whole values.

use std::time::Duration;

use bytes::BytesMut;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::tls::ClientTls;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::BackendError;
use crate::resp::{Value, encode, value};

/// Nesting limit for control-plane replies.
const MAX_DEPTH: usize = 64;
/// Largest control-plane reply accepted (COMMAND on a module-heavy server is ~100 KB).
const MAX_REPLY: usize = 64 << 20;

/// How connections to nodes are made: the credentials sent on every new connection, the
/// local address they leave from (`source_address`) and TLS (`cluster.tls`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub source_address: Option<std::net::IpAddr>,
    /// Set when the nodes speak TLS: every connection runs its handshake first.
    pub tls: Option<Arc<ClientTls>>,
}

impl Credentials {
    /// The AUTH command for these credentials, if any.
    pub fn auth_command(&self) -> Option<Vec<&[u8]>> {
        let password = self.password.as_deref()?;
        Some(match self.username.as_deref() {
            Some(user) => vec![b"AUTH", user.as_bytes(), password.as_bytes()],
            None => vec![b"AUTH", password.as_bytes()],
        })
    }
}

/// The stream under a control connection: the control plane is not hot, one `match` per
/// call is fine.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// One control connection to a node.
pub struct ControlConn {
    addr: String,
    stream: Stream,
    buf: BytesMut,
    timeout: Duration,
}

impl ControlConn {
    /// Connects (resolving the name; each of the two within `timeout`), and authenticates when
    /// credentials are set.
    pub async fn connect(
        addr: &str,
        creds: &Credentials,
        timeout: Duration,
    ) -> Result<ControlConn, BackendError> {
        let connect_err = |reason: String| BackendError::Connect {
            addr: addr.to_string(),
            reason,
        };
        let targets = crate::dns::resolve(addr, timeout)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let mut last = connect_err("no address".into());
        for target in targets {
            let socket = if target.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(|e| connect_err(e.to_string()))?;
            if let Some(src) = creds.source_address
                && src.is_ipv4() == target.is_ipv4()
            {
                socket
                    .bind(std::net::SocketAddr::new(src, 0))
                    .map_err(|e| connect_err(format!("bind {src}: {e}")))?;
            }
            match tokio::time::timeout(timeout, socket.connect(target)).await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = match &creds.tls {
                        None => Stream::Plain(stream),
                        Some(tls) => {
                            match tokio::time::timeout(timeout, tls.connect(addr, stream)).await {
                                Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                                Ok(Err(e)) => {
                                    last = connect_err(format!("TLS handshake: {e}"));
                                    continue;
                                }
                                Err(_) => {
                                    last = BackendError::ConnectTimeout {
                                        addr: addr.to_string(),
                                    };
                                    continue;
                                }
                            }
                        }
                    };
                    let mut conn = ControlConn {
                        addr: addr.to_string(),
                        stream,
                        buf: BytesMut::with_capacity(16 * 1024),
                        timeout,
                    };
                    if let Some(auth) = creds.auth_command() {
                        let reply = conn.call(&auth).await?;
                        if let Value::Error(e) = reply {
                            return Err(BackendError::Handshake {
                                addr: addr.to_string(),
                                reply: e,
                            });
                        }
                    }
                    return Ok(conn);
                }
                Ok(Err(e)) => last = connect_err(e.to_string()),
                Err(_) => {
                    last = BackendError::ConnectTimeout {
                        addr: addr.to_string(),
                    }
                }
            }
        }
        Err(last)
    }

    /// The address this connection was opened to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends one command and waits (bounded by the timeout) for its reply.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<Value, BackendError> {
        let mut out = BytesMut::new();
        encode::command(&mut out, args);
        let addr = self.addr.clone();
        let ms = self.timeout.as_millis() as u64;
        tokio::time::timeout(self.timeout, self.exchange(&out))
            .await
            .map_err(|_| BackendError::Timeout { addr, ms })?
    }

    async fn exchange(&mut self, out: &[u8]) -> Result<Value, BackendError> {
        match &mut self.stream {
            Stream::Plain(s) => exchange_on(s, &mut self.buf, &self.addr, out).await,
            Stream::Tls(s) => exchange_on(s.as_mut(), &mut self.buf, &self.addr, out).await,
        }
    }
}

/// Writes `out` on `stream` and reads one whole reply (buffered in `buf`).
async fn exchange_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    addr: &str,
    out: &[u8],
) -> Result<Value, BackendError> {
    let lost = |reason: String| BackendError::Lost {
        addr: addr.to_string(),
        reason,
    };
    stream
        .write_all(out)
        .await
        .map_err(|e| lost(e.to_string()))?;
    // TLS holds records until flushed; for TCP this is a no-op.
    stream.flush().await.map_err(|e| lost(e.to_string()))?;
    loop {
        match value::decode(buf, MAX_DEPTH) {
            Ok(Some((v, used))) => {
                let _ = buf.split_to(used);
                return Ok(v);
            }
            Ok(None) => {}
            Err(err) => {
                return Err(BackendError::Protocol {
                    addr: addr.to_string(),
                    err,
                });
            }
        }
        if buf.len() > MAX_REPLY {
            return Err(lost("reply too large".into()));
        }
        buf.reserve(16 * 1024);
        let n = stream
            .read_buf(buf)
            .await
            .map_err(|e| lost(e.to_string()))?;
        if n == 0 {
            return Err(lost("closed by peer".into()));
        }
    }
}
