//! The task behind a [`Backend`]: connect, then write queued bytes and read replies until the
//! connection fails or the node is retired.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use tokio::net::{TcpSocket, TcpStream};
use tracing::debug;

use crate::error::BackendError;
use crate::reply::sink::Sink;
use crate::resp::reply::{ReplyScanner, parse_redirect};
use crate::transport::{ReadHalf, Tls, Transport, WriteHalf};

use super::env::Redirected;
use super::{Backend, Pending, is_push};

/// Most redirections followed for one request (as redis-cli and cluster clients do).
pub const MAX_REDIRECTS: u8 = 5;
/// Reply nesting accepted from a backend.
const MAX_REPLY_DEPTH: usize = 128;
const READ_CHUNK: usize = 16 * 1024;

/// Runs one connection of `be` from connect to close.
pub async fn run(be: Rc<Backend>) {
    let err = match connect(&be).await {
        Ok(stream) => {
            be.mark_up();
            be.stats.connects.add(1);
            be.stats.connections.add(1);
            let result = match stream {
                Connected::Plain(s) => serve(&be, s).await,
                Connected::Tls(s) => serve(&be, Tls(*s)).await,
            };
            be.stats.connections.sub(1);
            result
        }
        Err(e) => Err(e),
    };
    match err {
        Ok(()) => be.fail_closed(),
        Err(e) => {
            debug!(addr = %be.addr, error = %e, "backend connection ended");
            be.health.on_failure(std::time::Instant::now());
            be.fail_all(&e);
            be.env.shared.request_refresh();
        }
    }
}

/// A connection just made: plain, or TLS with the handshake done (`cluster.tls`).
enum Connected {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

async fn connect(be: &Backend) -> Result<Connected, BackendError> {
    let addr: &str = &be.addr;
    let config = be.env.shared.config();
    let timeout = config.breaker.connect_timeout;
    let fail = |reason: String| BackendError::Connect {
        addr: addr.to_string(),
        reason,
    };
    let targets = crate::dns::resolve(addr, timeout)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let target: SocketAddr = *targets.first().ok_or_else(|| fail("no address".into()))?;
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| fail(e.to_string()))?;

    if let Some(src) = config.source_address
        && src.is_ipv4() == target.is_ipv4()
    {
        socket
            .bind(SocketAddr::new(src, 0))
            .map_err(|e| fail(format!("bind {src}: {e}")))?;
    }
    let stream = tokio::time::timeout(timeout, socket.connect(target))
        .await
        .map_err(|_| BackendError::ConnectTimeout {
            addr: addr.to_string(),
        })?
        .map_err(|e| fail(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    // TCP keepalive probes after `breaker.keepalive` of silence, so a peer that vanished
    // without a FIN or RST is noticed even on an idle connection.
    let keepalive = socket2::TcpKeepalive::new().with_time(config.breaker.keepalive);
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    let Some(tls) = be.env.shared.tls().and_then(|t| t.client.clone()) else {
        return Ok(Connected::Plain(stream));
    };
    let tls = tokio::time::timeout(timeout, tls.connect(addr, stream))
        .await
        .map_err(|_| BackendError::ConnectTimeout {
            addr: addr.to_string(),
        })?
        .map_err(|e| fail(format!("TLS handshake: {e}")))?;
    Ok(Connected::Tls(Box::new(tls)))
}

async fn serve<T: Transport>(be: &Rc<Backend>, stream: T) -> Result<(), BackendError> {
    let (mut rd, mut wr) = stream.split();
    let lost = |reason: String| BackendError::Lost {
        addr: be.addr.to_string(),
        reason,
    };
    let write_loop = async {
        let mut buf = BytesMut::with_capacity(READ_CHUNK);
        loop {
            if !be.take_out(&mut buf) {
                if be.should_close() {
                    return Ok(());
                }
                be.wake.notified().await;
                continue;
            }
            be.stats.send_bytes.add(buf.len() as u64);
            wr.write_all(&buf).await.map_err(|e| lost(e.to_string()))?;
            buf.clear();
        }
    };
    let read_loop = async {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let mut scanner = ReplyScanner::new(MAX_REPLY_DEPTH);
        loop {
            if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
                rbuf.reserve(READ_CHUNK);
            }
            let n = rd
                .read_some(&mut rbuf)
                .await
                .map_err(|e| lost(e.to_string()))?;
            if n == 0 {
                return Err(lost("closed by the server".into()));
            }
            be.stats.recv_bytes.add(n as u64);
            let now = be.env.clock.tick();
            let now_tick = be.env.clock.now_tick();
            loop {
                let len = match scanner.scan(&rbuf) {
                    Ok(Some(len)) => len,
                    Ok(None) => break,
                    Err(err) => {
                        return Err(BackendError::Protocol {
                            addr: be.addr.to_string(),
                            err,
                        });
                    }
                };
                let reply = rbuf.split_to(len).freeze();
                if let Some(handler) = be.push_handler(&reply) {
                    handler(reply);
                    continue;
                }
                if is_push(&reply) {
                    continue;
                }
                let Some((p, waited)) = be.pop_pending(now_tick) else {
                    return Err(lost("reply without a request".into()));
                };
                if let Some(rtt) = waited {
                    if be.env.stats.metrics.is_some() {
                        be.stats.duration.observe(rtt);
                    }
                    be.rtt.borrow_mut().observe(rtt, now);
                }
                deliver(be, p, reply)?;
            }
            if be.should_close() {
                be.wake.notify();
            }
        }
    };
    // The reply timeout is watched by a task of its own that raises a flag: a timer in this
    // select would be polled, and its waker re-registered, on every wake-up of the
    // connection (~240 instructions per request); the flag costs a few.
    be.timed_out.clear();
    let _watchdog = be.timeout.map(|limit| Watchdog::start(be, limit));
    let timeout_loop = async {
        let Some(limit) = be.timeout else {
            return std::future::pending().await;
        };
        be.timed_out.notified().await;
        Err(BackendError::Timeout {
            addr: be.addr.to_string(),
            ms: limit.as_millis() as u64,
        })
    };
    // Biased: after a stall of the whole worker, replies already waiting in the socket are read
    // before the timer that expired meanwhile gets a say.
    tokio::select! {
        biased;
        r = read_loop => r,
        r = write_loop => r,
        r = timeout_loop => r,
    }
}

/// The task that checks, every quarter of `limit` (at least 5 ms), whether the oldest request
/// sent on a connection has waited longer than `limit` for its reply; stopped when dropped.
struct Watchdog(tokio::task::JoinHandle<()>);

impl Watchdog {
    fn start(be: &Rc<Backend>, limit: std::time::Duration) -> Watchdog {
        let be = be.clone();
        let tick = (limit / 4).max(std::time::Duration::from_millis(5));
        Watchdog(tokio::task::spawn_local(async move {
            loop {
                tokio::time::sleep(tick).await;
                if be.oldest_wait().is_some_and(|w| w > limit) {
                    be.timed_out.notify();
                    return;
                }
            }
        }))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Hands a reply to its sink; a MOVED/ASK reply is reported to the router instead.
fn deliver(be: &Backend, p: Pending, reply: Bytes) -> Result<(), BackendError> {
    be.stats.responses.add(1);
    if let Some(t) = p.timing {
        let us = be.env.clock.now_tick().micros_since(t.at);
        be.env
            .latency
            .count_node(&be.latency, &be.addr, t.mask, t.generation, us);
    }
    if !be.health.is_closed() || be.health.consecutive_failures() > 0 {
        be.health.on_success(std::time::Instant::now());
    }
    if reply.first() == Some(&b'-') {
        if p.redirects < MAX_REDIRECTS
            && p.request.is_some()
            && let Some(redirect) = parse_redirect(&reply)
        {
            be.env
                .report_redirect(Redirected::new(redirect, &be.addr, be.proto, p));
            return Ok(());
        }
        if reply.starts_with(b"-READONLY") || reply.starts_with(b"-CLUSTERDOWN") {
            be.env.shared.request_refresh();
        }
        if let Sink::Internal { fatal: true } = p.sink {
            return Err(BackendError::Handshake {
                addr: be.addr.to_string(),
                reply: String::from_utf8_lossy(&reply[1..]).trim_end().to_string(),
            });
        }
    }
    p.sink.complete(reply);
    Ok(())
}
