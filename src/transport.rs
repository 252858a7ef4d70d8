//! The byte streams sessions and backend connections run over: plain TCP or TLS, behind two
//! small traits so both compile to direct calls (no boxing, no dynamic dispatch per read).
//!
//! The session never waits on a write: it hands the socket what it takes now
//! ([`WriteHalf::write_now`]) and waits for room ([`WriteHalf::writable`]) only alongside its
//! reads. TCP does that with `try_write`. A TLS stream accepts plaintext into rustls' buffer
//! even when the socket is full, so it also reports bytes still on their way
//! ([`WriteHalf::unflushed`]); `writable` then pushes those out.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// A connected stream that splits into halves one task drives at once.
pub trait Transport: Sized {
    /// The reading half.
    type Read: ReadHalf;
    /// The writing half.
    type Write: WriteHalf;
    /// The TCP socket underneath (for addresses and the descriptor CLIENT LIST shows).
    fn tcp(&self) -> &TcpStream;
    /// Splits into halves.
    fn split(self) -> (Self::Read, Self::Write);
}

/// Reading half of a [`Transport`].
pub trait ReadHalf {
    /// Reads what is available into `buf` (which must have spare capacity), waiting if
    /// nothing is; 0 at end of stream. Cancel-safe: a dropped call loses no byte.
    fn read_some(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>>;
}

/// Writing half of a [`Transport`].
pub trait WriteHalf {
    /// Hands over as much of `buf` as the stream takes now, without waiting; the taken bytes
    /// are removed from `buf`. Returns whether any byte was taken.
    fn write_now(&mut self, buf: &mut BytesMut) -> io::Result<bool>;
    /// Whether bytes taken by [`write_now`](Self::write_now) still wait to reach the socket.
    fn unflushed(&self) -> bool;
    /// Waits until the stream can take more (TLS: pushes out what waits, first).
    fn writable(&mut self) -> impl Future<Output = io::Result<()>>;
    /// Writes all of `buf` and waits until it reached the socket.
    fn write_all(&mut self, buf: &[u8]) -> impl Future<Output = io::Result<()>>;
    /// A handle that writes to the same stream without waiting, for a reply written from the
    /// task it arrived in while the session sleeps (see `session::writeback`).
    fn direct(&self) -> Option<Rc<dyn DirectWrite>>;
}

/// Writing to a client's stream from outside its session, never waiting.
pub trait DirectWrite {
    /// Hands over as much of `buf` as the stream takes now and returns how many bytes that
    /// was (an error only when none was taken).
    fn write_direct(&self, buf: &[u8]) -> io::Result<usize>;
    /// Whether bytes it took still wait to reach the socket (TLS records the socket did not
    /// take): the session must push them out.
    fn pending(&self) -> bool;
}

/// The writing half of a plain TCP stream, shared (`Rc`) with the [`DirectWrite`] handle.
pub struct PlainWriter(Rc<OwnedWriteHalf>);

/// Writes as much of `buf` as the socket takes now; an error only when no byte was taken (a
/// later call meets it again).
fn write_some(socket: &OwnedWriteHalf, buf: &[u8]) -> io::Result<usize> {
    let mut taken = 0;
    while taken < buf.len() {
        match socket.try_write(&buf[taken..]) {
            Ok(0) if taken == 0 => return Err(io::ErrorKind::WriteZero.into()),
            Ok(0) => break,
            Ok(n) => taken += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if taken == 0 => return Err(e),
            Err(_) => break,
        }
    }
    Ok(taken)
}

impl DirectWrite for OwnedWriteHalf {
    fn write_direct(&self, buf: &[u8]) -> io::Result<usize> {
        write_some(self, buf)
    }

    fn pending(&self) -> bool {
        false
    }
}

impl Transport for TcpStream {
    type Read = OwnedReadHalf;
    type Write = PlainWriter;

    fn tcp(&self) -> &TcpStream {
        self
    }

    fn split(self) -> (OwnedReadHalf, PlainWriter) {
        let (rd, wr) = self.into_split();
        (rd, PlainWriter(Rc::new(wr)))
    }
}

impl ReadHalf for OwnedReadHalf {
    fn read_some(&mut self, buf: &mut BytesMut) -> impl Future<Output = io::Result<usize>> {
        crate::io::read_some(self, buf)
    }
}

impl WriteHalf for PlainWriter {
    fn write_now(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        let n = write_some(&self.0, buf)?;
        buf.advance(n);
        Ok(n > 0)
    }

    fn unflushed(&self) -> bool {
        false
    }

    async fn writable(&mut self) -> io::Result<()> {
        self.0.writable().await
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match write_some(&self.0, buf)? {
                0 => self.0.writable().await?,
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    fn direct(&self) -> Option<Rc<dyn DirectWrite>> {
        Some(self.0.clone())
    }
}

/// A TLS stream over TCP (server or client side).
pub struct Tls<S>(pub S);

/// The TCP socket under a TLS stream.
pub trait TcpUnder {
    /// The socket.
    fn tcp(&self) -> &TcpStream;
}

impl TcpUnder for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl TcpUnder for tokio_rustls::client::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

impl<S: AsyncRead + AsyncWrite + TcpUnder + 'static> Transport for Tls<S> {
    type Read = tokio::io::ReadHalf<S>;
    type Write = TlsWriter<S>;

    fn tcp(&self) -> &TcpStream {
        self.0.tcp()
    }

    fn split(self) -> (Self::Read, Self::Write) {
        let (rd, wr) = tokio::io::split(self.0);
        let shared = TlsShared {
            inner: RefCell::new(wr),
            unflushed: Cell::new(false),
        };
        (rd, TlsWriter(Rc::new(shared)))
    }
}

impl<S: AsyncRead> ReadHalf for tokio::io::ReadHalf<S> {
    async fn read_some(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.read_buf(buf).await
    }
}

/// The writing half of a TLS stream, shared (`Rc`) with the [`DirectWrite`] handle.
pub struct TlsWriter<S>(Rc<TlsShared<S>>);

/// The TLS writer and whether rustls still holds records for the socket. Borrowed only for
/// one poll at a time, never across an await.
pub struct TlsShared<S> {
    inner: RefCell<tokio::io::WriteHalf<S>>,
    unflushed: Cell<bool>,
}

impl<S: AsyncWrite> TlsShared<S> {
    /// Hands rustls as much of `buf` as it takes now and pushes its records to the socket as
    /// far as the socket takes them, never waiting (a no-op waker: the session's `writable`
    /// registers). Returns the bytes taken; an error only when none was.
    fn write_now(&self, buf: &[u8]) -> io::Result<usize> {
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return Ok(0);
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut taken = 0;
        while taken < buf.len() {
            match Pin::new(&mut *inner).poll_write(&mut cx, &buf[taken..]) {
                Poll::Ready(Ok(0)) if taken == 0 => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(0)) | Poll::Pending => break,
                Poll::Ready(Ok(n)) => taken += n,
                Poll::Ready(Err(e)) if taken == 0 => return Err(e),
                Poll::Ready(Err(_)) => break,
            }
        }
        // rustls may hold records the socket did not take yet: push them now if it can.
        match Pin::new(&mut *inner).poll_flush(&mut cx) {
            Poll::Ready(Ok(())) => self.unflushed.set(false),
            Poll::Ready(Err(e)) if taken == 0 => return Err(e),
            Poll::Ready(Err(_)) | Poll::Pending => self.unflushed.set(true),
        }
        Ok(taken)
    }

    /// Flushes rustls' records, waiting for socket room.
    async fn flush(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| Pin::new(&mut *self.inner.borrow_mut()).poll_flush(cx)).await?;
        self.unflushed.set(false);
        Ok(())
    }
}

impl<S: AsyncWrite> DirectWrite for TlsShared<S> {
    fn write_direct(&self, buf: &[u8]) -> io::Result<usize> {
        self.write_now(buf)
    }

    fn pending(&self) -> bool {
        self.unflushed.get()
    }
}

impl<S: AsyncWrite + 'static> WriteHalf for TlsWriter<S> {
    fn write_now(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        let n = self.0.write_now(buf)?;
        buf.advance(n);
        Ok(n > 0)
    }

    fn unflushed(&self) -> bool {
        self.0.unflushed.get()
    }

    async fn writable(&mut self) -> io::Result<()> {
        // Flushing waits for socket room when records wait; with none waiting it returns at
        // once and the next `write_now` finds out whether the socket takes more.
        self.0.flush().await
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = std::future::poll_fn(|cx| {
                Pin::new(&mut *self.0.inner.borrow_mut()).poll_write(cx, buf)
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        self.0.flush().await
    }

    fn direct(&self) -> Option<Rc<dyn DirectWrite>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, DuplexStream};
    use tokio_rustls::{TlsAcceptor, TlsConnector};

    use super::*;
    use crate::config::{BackendTlsConfig, TlsListenConfig};
    use crate::tls::mint::Authority;

    /// A TLS server and client over an in-memory pipe that holds `pipe` bytes.
    async fn tls_pair(
        pipe: usize,
    ) -> (
        tokio_rustls::server::TlsStream<DuplexStream>,
        tokio_rustls::client::TlsStream<DuplexStream>,
    ) {
        let dir = std::env::temp_dir().join(format!("meridian-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = Authority::new("transport test CA").unwrap();
        ca.write_cert(&dir.join("ca.crt")).unwrap();
        let leaf = ca.issue("localhost", &["localhost"]).unwrap();
        let files = leaf.write(&dir, "server").unwrap();
        let server = crate::tls::acceptor::build(&TlsListenConfig {
            cert: files.cert,
            key: files.key,
            ..TlsListenConfig::default()
        })
        .unwrap();
        let client = crate::tls::connector::build(&BackendTlsConfig {
            enabled: true,
            ca: dir.join("ca.crt"),
            ..BackendTlsConfig::default()
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let (s, c) = tokio::io::duplex(pipe);
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let (s, c) = tokio::join!(
            TlsAcceptor::from(Arc::new(server)).accept(s),
            TlsConnector::from(Arc::new(client)).connect(name, c)
        );
        (s.unwrap(), c.unwrap())
    }

    /// A reply rustls takes whole while the peer has no room for its records: the direct
    /// write reports it taken *and* pending (so the session is woken to push the records),
    /// and the session's flush delivers every byte once the peer reads.
    #[tokio::test]
    async fn records_the_peer_has_no_room_for_are_pending_until_flushed() {
        let (server, client) = tls_pair(4096).await;
        let (_rd, wr) = tokio::io::split(server);
        let shared = TlsShared {
            inner: RefCell::new(wr),
            unflushed: Cell::new(false),
        };
        let reply = vec![b'r'; 16 * 1024];
        assert_eq!(shared.write_direct(&reply).unwrap(), reply.len());
        assert!(
            shared.pending(),
            "records beyond the pipe's 4 KB still wait"
        );

        let (mut crd, _cwr) = tokio::io::split(client);
        let read = async {
            let mut got = vec![0u8; reply.len()];
            crd.read_exact(&mut got).await.unwrap();
            got
        };
        let (got, flushed) = tokio::join!(read, shared.flush());
        flushed.unwrap();
        assert!(!shared.pending());
        assert!(got == reply, "the reply arrives whole");

        // With room for all its records, a write leaves nothing pending.
        assert_eq!(shared.write_direct(b"+OK\r\n").unwrap(), 5);
        assert!(!shared.pending());
        let mut ok = [0u8; 5];
        crd.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"+OK\r\n");
    }
}
