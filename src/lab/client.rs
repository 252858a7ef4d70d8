//! The lab's own small RESP2 client over tokio: encode commands, pipeline them, read replies
//! one at a time. Used for forming clusters, sampling nodes and the drill load.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Deepest reply nesting accepted (the lab never needs more than CLUSTER SLOTS' three).
const MAX_DEPTH: usize = 8;
/// Largest reply accepted, so a confused stream cannot eat the memory.
const MAX_REPLY: usize = 64 << 20;

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`
    Error(String),
    /// `:1`
    Int(i64),
    /// `$…`; `None` is the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*…`; `None` is the null array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The text of a simple string, bulk string or error.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) | Reply::Error(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The integer of an integer reply or of a number written as text.
    pub fn int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            other => other.text()?.parse().ok(),
        }
    }

    /// The items of an array reply.
    pub fn items(&self) -> &[Reply] {
        match self {
            Reply::Array(Some(items)) => items,
            _ => &[],
        }
    }
}

/// Why a request got no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Could not connect.
    #[error("connect {addr}: {reason}")]
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// Why not.
        reason: String,
    },
    /// No reply within the timeout; the connection must be dropped (a late reply would be
    /// taken for the next request's).
    #[error("timed out")]
    Timeout,
    /// The connection failed or closed.
    #[error("connection lost: {0}")]
    Io(String),
    /// The bytes are not RESP.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server refused the connection's AUTH (its reply, never the password).
    #[error("AUTH refused: {0}")]
    Auth(String),
}

impl ClientError {
    /// Short name of the error kind, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Connect { .. } => "connect",
            ClientError::Timeout => "timeout",
            ClientError::Io(_) => "io",
            ClientError::Protocol(_) => "protocol",
            ClientError::Auth(_) => "auth",
        }
    }
}

/// A gateway user and password the lab's clients send with `AUTH` on every new connection to a
/// gateway of a `users: true` lab. Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The user name.
    pub user: String,
    /// The password, in plaintext (kept in memory only, read from the lab's secrets file).
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({}, <redacted>)", self.user)
    }
}

/// One connection.
pub struct Conn {
    stream: TcpStream,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
}

impl Conn {
    /// Connects to `addr` within `timeout`, from `source` when given (port chosen by the kernel).
    pub async fn connect(
        addr: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<Conn, ClientError> {
        let fail = |reason: String| ClientError::Connect { addr, reason };
        let socket = match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|e| fail(e.to_string()))?;
        if let Some(src) = source {
            socket
                .bind(SocketAddr::new(src, 0))
                .map_err(|e| fail(format!("bind {src}: {e}")))?;
        }
        let stream = tokio::time::timeout(timeout, socket.connect(addr))
            .await
            .map_err(|_| fail("timed out".into()))?
            .map_err(|e| fail(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        Ok(Conn {
            stream,
            rbuf: BytesMut::with_capacity(16 * 1024),
            wbuf: Vec::with_capacity(1024),
        })
    }

    /// Connects like [`Conn::connect`], then authenticates with `login` when given.
    pub async fn open(
        addr: SocketAddr,
        source: Option<IpAddr>,
        login: Option<&Login>,
        timeout: Duration,
    ) -> Result<Conn, ClientError> {
        let mut conn = Conn::connect(addr, source, timeout).await?;
        if let Some(login) = login {
            let args = ["AUTH", login.user.as_str(), login.password.as_str()];
            match conn.call(&args, timeout).await? {
                Reply::Simple(ok) if ok == "OK" => {}
                other => {
                    let text = other.text().unwrap_or_else(|| format!("{other:?}"));
                    return Err(ClientError::Auth(text));
                }
            }
        }
        Ok(conn)
    }

    /// Queues one command; nothing is sent before [`Conn::flush`].
    pub fn queue<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        encode(&mut self.wbuf, args);
    }

    /// Sends everything queued.
    pub async fn flush(&mut self) -> Result<(), ClientError> {
        let res = self.stream.write_all(&self.wbuf).await;
        self.wbuf.clear();
        res.map_err(|e| ClientError::Io(e.to_string()))
    }

    /// Reads the next reply, waiting at most `timeout`.
    pub async fn read(&mut self, timeout: Duration) -> Result<Reply, ClientError> {
        tokio::time::timeout(timeout, self.read_reply())
            .await
            .map_err(|_| ClientError::Timeout)?
    }

    async fn read_reply(&mut self) -> Result<Reply, ClientError> {
        loop {
            if let Some((reply, used)) = parse(&self.rbuf, 0)? {
                self.rbuf.advance(used);
                return Ok(reply);
            }
            if self.rbuf.len() > MAX_REPLY {
                return Err(ClientError::Protocol("reply too large".into()));
            }
            let n = self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| ClientError::Io(e.to_string()))?;
            if n == 0 {
                return Err(ClientError::Io("closed by peer".into()));
            }
        }
    }

    /// Sends one command and reads its reply within `timeout`.
    pub async fn call<A: AsRef<[u8]>>(
        &mut self,
        args: &[A],
        timeout: Duration,
    ) -> Result<Reply, ClientError> {
        self.queue(args);
        tokio::time::timeout(timeout, self.flush())
            .await
            .map_err(|_| ClientError::Timeout)??;
        self.read(timeout).await
    }
}

/// Connects to `addr` and runs one command (a short-lived connection for admin work).
pub async fn query<A: AsRef<[u8]>>(
    addr: SocketAddr,
    args: &[A],
    timeout: Duration,
) -> Result<Reply, ClientError> {
    let mut conn = Conn::connect(addr, None, timeout).await?;
    conn.call(args, timeout).await
}

/// Appends a command as a RESP array of bulk strings.
pub fn encode<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses one reply at the start of `buf`: `Ok(None)` when more bytes are needed, else the
/// reply and the bytes it used.
pub fn parse(buf: &[u8], depth: usize) -> Result<Option<(Reply, usize)>, ClientError> {
    if depth > MAX_DEPTH {
        return Err(ClientError::Protocol("reply nested too deep".into()));
    }
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let Some((&kind, line)) = buf[..end].split_first() else {
        return Err(ClientError::Protocol("empty line".into()));
    };
    let text = || String::from_utf8_lossy(line).into_owned();
    let number = || -> Result<i64, ClientError> {
        text()
            .parse()
            .map_err(|_| ClientError::Protocol(format!("bad length `{}`", text())))
    };
    let head = end + 2;
    Ok(Some(match kind {
        b'+' => (Reply::Simple(text()), head),
        b'-' => (Reply::Error(text()), head),
        b':' => (Reply::Int(number()?), head),
        b'_' => (Reply::Bulk(None), head),
        b'$' => {
            let len = number()?;
            if len < 0 {
                return Ok(Some((Reply::Bulk(None), head)));
            }
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > MAX_REPLY {
                return Err(ClientError::Protocol("bulk too large".into()));
            }
            if buf.len() < head + len + 2 {
                return Ok(None);
            }
            if &buf[head + len..head + len + 2] != b"\r\n" {
                return Err(ClientError::Protocol("bulk not followed by CRLF".into()));
            }
            (
                Reply::Bulk(Some(buf[head..head + len].to_vec())),
                head + len + 2,
            )
        }
        b'*' => {
            let count = number()?;
            if count < 0 {
                return Ok(Some((Reply::Array(None), head)));
            }
            let mut items = Vec::new();
            let mut at = head;
            for _ in 0..count {
                match parse(&buf[at..], depth + 1)? {
                    Some((item, used)) => {
                        items.push(item);
                        at += used;
                    }
                    None => return Ok(None),
                }
            }
            (Reply::Array(Some(items)), at)
        }
        other => {
            return Err(ClientError::Protocol(format!(
                "unexpected reply type byte {other:#04x}"
            )));
        }
    }))
}

/// The `field:value` lines of an INFO reply.
pub fn info_fields(text: &str) -> impl Iterator<Item = (&str, &str)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> Reply {
        let (reply, used) = parse(bytes, 0).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        reply
    }

    #[test]
    fn encodes_commands() {
        let mut out = Vec::new();
        encode(&mut out, &["SET", "k", ""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
    }

    #[test]
    fn parses_every_type() {
        assert_eq!(whole(b"+OK\r\n"), Reply::Simple("OK".into()));
        assert_eq!(whole(b"-ERR x\r\n"), Reply::Error("ERR x".into()));
        assert_eq!(whole(b":-5\r\n"), Reply::Int(-5));
        assert_eq!(whole(b"$-1\r\n"), Reply::Bulk(None));
        assert_eq!(whole(b"$2\r\na\n\r\n"), Reply::Bulk(Some(b"a\n".to_vec())));
        assert_eq!(whole(b"*-1\r\n"), Reply::Array(None));
        let nested = whole(b"*2\r\n*1\r\n:1\r\n$1\r\nx\r\n");
        assert_eq!(nested.items().len(), 2);
        assert_eq!(nested.items()[0].items()[0].int(), Some(1));
        assert_eq!(nested.items()[1].text().as_deref(), Some("x"));
    }

    #[test]
    fn waits_for_more_and_rejects_garbage() {
        for partial in [&b"+OK"[..], b"$3\r\nab", b"*2\r\n:1\r\n", b""] {
            assert_eq!(parse(partial, 0).unwrap(), None);
        }
        assert!(parse(b"?x\r\n", 0).is_err());
        assert!(parse(b"$1\r\nabc\r\n", 0).is_err());
        assert!(parse(b":x\r\n", 0).is_err());
    }

    #[test]
    fn reads_info_fields() {
        let info = "# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n";
        let fields: Vec<_> = info_fields(info).collect();
        assert_eq!(fields, [("role", "slave"), ("master_link_status", "up")]);
    }
}
