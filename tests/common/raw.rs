//! The one raw RESP test client: bytes or commands out, each reply back as one frame's bytes.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Read/write timeout of raw clients: a failure guard against hangs, never a performance bound.
pub const RAW_TIMEOUT: Duration = Duration::from_secs(10);
/// Nesting accepted by [`frame_len`].
const MAX_DEPTH: usize = 64;
/// Bound on the bytes one reply may take before [`Raw::try_read`] gives up (a failure guard).
const MAX_REPLY: usize = 64 << 20;

/// `args` as a RESP multibulk request.
pub fn encode<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        let arg = arg.as_ref();
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Readable form of RESP bytes for assertion messages (CR LF shown as `\r\n`), cut after 600
/// characters; compare the bytes themselves, not this, where the whole reply matters.
pub fn show(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let shown = text.replace('\r', "\\r").replace('\n', "\\n");
    if shown.len() > 600 {
        format!(
            "{}… ({} bytes)",
            &shown[..shown.floor_char_boundary(600)],
            bytes.len()
        )
    } else {
        shown
    }
}

/// Position of the CRLF that ends the line starting at `from`, `None` if it has not arrived.
pub fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    let rest = buf.get(from..)?;
    rest.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// The decimal number in `buf[from..to]` (a length or a count).
pub fn number(buf: &[u8], from: usize, to: usize) -> Result<i64, String> {
    let text = std::str::from_utf8(&buf[from..to]).map_err(|e| e.to_string())?;
    text.parse()
        .map_err(|_| format!("bad length {text:?} at byte {from}"))
}

/// Where the element starting at `pos` ends, `None` if it is not complete yet.
fn element_end(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, String> {
    if depth > MAX_DEPTH {
        return Err("reply nests too deep".into());
    }
    let Some(&kind) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(eol) = line_end(buf, pos + 1) else {
        return Ok(None);
    };
    let after = eol + 2;
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(after)),
        b'$' | b'!' | b'=' => {
            let n = number(buf, pos + 1, eol)?;
            if n < 0 {
                return Ok(Some(after));
            }
            let end = after + n as usize + 2;
            Ok((buf.len() >= end).then_some(end))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = number(buf, pos + 1, eol)?;
            if n < 0 {
                return Ok(Some(after));
            }
            let count = if matches!(kind, b'%' | b'|') {
                2 * n as usize
            } else {
                n as usize
            };
            let mut at = after;
            for _ in 0..count {
                match element_end(buf, at, depth + 1)? {
                    Some(end) => at = end,
                    None => return Ok(None),
                }
            }
            // An attribute map is followed by the reply it describes.
            if kind == b'|' {
                return element_end(buf, at, depth + 1);
            }
            Ok(Some(at))
        }
        other => Err(format!("invalid RESP type byte {other:#04x} at {pos}")),
    }
}

/// Length of the complete reply at the start of `buf`, `None` if more bytes are needed.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    element_end(buf, 0, 0)
}

/// A raw client: writes bytes as given, returns replies as the exact bytes received.
pub struct Raw {
    /// The connection itself, for tests that read or write around the client.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects to `addr` with [`RAW_TIMEOUT`] read/write timeouts.
    pub fn connect(addr: &str) -> Raw {
        Self::try_connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"))
    }

    /// Connects to `addr`, returning the error instead of panicking.
    pub fn try_connect(addr: &str) -> io::Result<Raw> {
        let sock: SocketAddr = addr
            .parse()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let stream = TcpStream::connect_timeout(&sock, RAW_TIMEOUT)?;
        stream.set_read_timeout(Some(RAW_TIMEOUT))?;
        stream.set_write_timeout(Some(RAW_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Raw::from_stream(stream))
    }

    /// Wraps an already connected stream (its timeouts are the caller's).
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("write {} bytes: {e}", bytes.len()));
    }

    /// Writes one command.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        self.write(&encode(args));
    }

    /// Reads one reply; an error if the connection ends, the bytes are not RESP, or the guard
    /// timeout passes first.
    pub fn try_read(&mut self) -> io::Result<Vec<u8>> {
        let mut chunk = [0u8; 64 * 1024];
        // Bounded: every pass either returns or buffers at least one more byte.
        while self.buf.len() <= MAX_REPLY {
            match frame_len(&self.buf) {
                Ok(Some(len)) => return Ok(self.buf.drain(..len).collect()),
                Ok(None) => {}
                Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            }
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("closed with {:?} unparsed", show(&self.buf)),
                ));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Err(io::Error::other(format!(
            "a reply larger than {MAX_REPLY} bytes"
        )))
    }

    /// Reads one reply; panics if there is none.
    pub fn read(&mut self) -> Vec<u8> {
        self.try_read()
            .unwrap_or_else(|e| panic!("reading a reply: {e}"))
    }

    /// Reads one reply as (lossy) text.
    pub fn read_text(&mut self) -> String {
        String::from_utf8_lossy(&self.read()).into_owned()
    }

    /// Reads one reply and asserts that it is exactly `want`.
    pub fn expect(&mut self, want: impl AsRef<[u8]>) {
        let want = want.as_ref();
        let got = self.read();
        assert!(
            got == want,
            "got the reply {}, want {}",
            show(&got),
            show(want)
        );
    }

    /// Writes `request` (raw bytes) and reads one reply; I/O problems are returned, not panics.
    pub fn try_request(&mut self, request: &[u8]) -> io::Result<Vec<u8>> {
        self.stream.write_all(request)?;
        self.try_read()
    }

    /// Sends one command and returns its reply bytes.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Vec<u8> {
        self.send(args);
        self.read()
    }

    /// The reply as text (for string-ish replies in assertions).
    /// This connection's `CLIENT ID`.
    pub fn client_id(&mut self) -> u64 {
        let reply = self.call(&["CLIENT", "ID"]);
        String::from_utf8_lossy(&reply)
            .trim_start_matches(':')
            .trim_end()
            .parse()
            .unwrap_or_else(|_| panic!("CLIENT ID: {}", show(&reply)))
    }

    pub fn call_text<A: AsRef<[u8]>>(&mut self, args: &[A]) -> String {
        String::from_utf8_lossy(&self.call(args)).into_owned()
    }

    /// How many bytes have arrived beyond the replies returned so far.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Waits (bounded by [`RAW_TIMEOUT`]) for the peer to close; returns any bytes that came
    /// before the end. Panics if the connection stays open.
    pub fn expect_closed(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + RAW_TIMEOUT;
        let mut extra = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        while Instant::now() < deadline {
            match self.stream.read(&mut chunk) {
                Ok(0) => return extra,
                Ok(n) => extra.extend_from_slice(&chunk[..n]),
                // A reset is a close too (the peer closed with our bytes unread).
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return extra,
                Err(e) => panic!("expected the connection to close, got {e}"),
            }
        }
        panic!("connection still open after {RAW_TIMEOUT:?}");
    }

    /// Closes both directions now.
    pub fn close(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
