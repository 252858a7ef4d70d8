//! Test support: a throwaway `redis-server` on a loopback port and a tiny blocking client.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::ops::Range;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::resp::Value;
use crate::resp::value::decode;

/// Builds the buffer and spans of a `ReqArgs` from argument byte strings.
pub(crate) fn req(args: &[&[u8]]) -> (Vec<u8>, Vec<Range<usize>>) {
    let mut buf = Vec::new();
    let mut spans = Vec::new();
    for a in args {
        let start = buf.len();
        buf.extend_from_slice(a);
        spans.push(start..buf.len());
        // A separator keeps spans from being accidentally contiguous.
        buf.push(b' ');
    }
    (buf, spans)
}

/// Where the binary is: `$REDIS_SERVER`, else `redis-server` on `$PATH`. Missing → the test
/// fails with instructions; these tests never skip.
fn redis_server_path() -> PathBuf {
    if let Some(p) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(p);
    }
    let dirs = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&dirs)
        .chain(["/usr/bin".into(), "/usr/local/bin".into()])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "redis-server not found on PATH: these tests need a real Redis 7.0 \
                 (apt-get install redis-server, or set REDIS_SERVER=/path/to/redis-server)"
            )
        })
}

/// A `redis-server` child process, killed when dropped.
pub(crate) struct TestServer {
    child: Child,
    port: u16,
}

impl TestServer {
    /// Starts a server on a free loopback port (retrying if another process takes the port
    /// between the probe and the start).
    pub(crate) fn start() -> TestServer {
        let bin = redis_server_path();
        for _attempt in 0..5 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("probe a free loopback port");
            let child = Command::new(&bin)
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
            let mut server = TestServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // exited: most likely the port was taken; try another
                }
                if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                    return server;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            server.stop();
        }
        panic!(
            "redis-server at {} did not start after 5 attempts",
            bin.display()
        );
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new client connection.
    pub(crate) fn connect(&self) -> Conn {
        let stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// `redis_version` from `INFO server`.
    pub(crate) fn version(&self) -> String {
        let info = match self.connect().call(&[b"INFO", b"server"]) {
            Value::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::Verbatim { text, .. } => String::from_utf8_lossy(&text).into_owned(),
            other => panic!("INFO reply {other:?}"),
        };
        info.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .map(|v| v.trim().to_string())
            .expect("redis_version in INFO")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A blocking RESP client connection.
pub(crate) struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Sends one command and returns its reply.
    pub(crate) fn call(&mut self, args: &[&[u8]]) -> Value {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream.write_all(&out).expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((value, used)) = decode(&self.buf, 64).expect("valid RESP from server") {
                self.buf.drain(..used);
                return value;
            }
            assert!(Instant::now() < deadline, "no reply within 10 s");
            let mut chunk = [0u8; 64 * 1024];
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command that must fail and returns the error text.
    pub(crate) fn call_error(&mut self, args: &[&[u8]]) -> String {
        match self.call(args) {
            Value::Error(e) => e,
            other => panic!("expected an error for {args:?}, got {other:?}"),
        }
    }
}
