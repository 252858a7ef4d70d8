//! The byte streams sessions and backend connections run over: plain TCP or TLS, behind two
//! small traits so both compile to direct calls (no boxing, no dynamic dispatch per read).
//!
//! The session never waits on a write: it hands the socket what it takes now
//! ([`WriteHalf::write_now`]) and waits for room ([`WriteHalf::writable`]) only alongside its
//! reads. TCP does that with `try_write`. A TLS stream accepts plaintext into rustls' buffer
//! even when the socket is full, so it also reports bytes still on their way
//! ([`WriteHalf::unflushed`]); `writable` then pushes those out.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
    /// The socket itself, for writing a reply from the task it arrived in while the session
    /// sleeps (see `session::writeback`); `None` where bytes pass through a TLS layer.
    fn socket(&self) -> Option<Rc<OwnedWriteHalf>> {
        None
    }
}

/// The writing half of a plain TCP stream. Shared (`Rc`) so that a reply can be written from
/// where it arrived; every write is `try_write`, never a wait holding the half.
pub struct PlainWriter(Rc<OwnedWriteHalf>);

/// Writes as much of `buf` as the socket takes now; the taken bytes are removed from `buf`.
/// Returns whether any byte was taken.
pub fn try_write_now(socket: &OwnedWriteHalf, buf: &mut BytesMut) -> io::Result<bool> {
    let mut progressed = false;
    while !buf.is_empty() {
        match socket.try_write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf.advance(n);
                progressed = true;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(progressed)
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
        try_write_now(&self.0, buf)
    }

    fn unflushed(&self) -> bool {
        false
    }

    async fn writable(&mut self) -> io::Result<()> {
        self.0.writable().await
    }

    async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match self.0.try_write(buf) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.0.writable().await?,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn socket(&self) -> Option<Rc<OwnedWriteHalf>> {
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

impl<S: AsyncRead + AsyncWrite + TcpUnder> Transport for Tls<S> {
    type Read = tokio::io::ReadHalf<S>;
    type Write = TlsWriter<S>;

    fn tcp(&self) -> &TcpStream {
        self.0.tcp()
    }

    fn split(self) -> (Self::Read, Self::Write) {
        let (rd, wr) = tokio::io::split(self.0);
        (
            rd,
            TlsWriter {
                inner: wr,
                unflushed: false,
            },
        )
    }
}

impl<S: AsyncRead> ReadHalf for tokio::io::ReadHalf<S> {
    async fn read_some(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        self.read_buf(buf).await
    }
}

/// The writing half of a TLS stream, with whether rustls still holds records for the socket.
pub struct TlsWriter<S> {
    inner: tokio::io::WriteHalf<S>,
    unflushed: bool,
}

impl<S: AsyncWrite> TlsWriter<S> {
    /// Polls once without registering for a wake-up: the caller's `writable` registers.
    fn poll_now<T>(
        &mut self,
        f: impl FnOnce(Pin<&mut tokio::io::WriteHalf<S>>, &mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let mut cx = Context::from_waker(Waker::noop());
        f(Pin::new(&mut self.inner), &mut cx)
    }
}

impl<S: AsyncWrite> WriteHalf for TlsWriter<S> {
    fn write_now(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        let mut progressed = false;
        while !buf.is_empty() {
            match self.poll_now(|w, cx| w.poll_write(cx, buf)) {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    buf.advance(n);
                    progressed = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
        }
        // rustls may hold records the socket did not take yet: push them now if it can.
        self.unflushed = match self.poll_now(|w, cx| w.poll_flush(cx)) {
            Poll::Ready(Ok(())) => false,
            Poll::Ready(Err(e)) => return Err(e),
            Poll::Pending => true,
        };
        Ok(progressed)
    }

    fn unflushed(&self) -> bool {
        self.unflushed
    }

    async fn writable(&mut self) -> io::Result<()> {
        // Flushing waits for socket room when records wait; with none waiting it returns at
        // once and the next `write_now` finds out whether the socket takes more.
        self.inner.flush().await?;
        self.unflushed = false;
        Ok(())
    }

    async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner.write_all(buf).await?;
        self.inner.flush().await?;
        self.unflushed = false;
        Ok(())
    }
}
