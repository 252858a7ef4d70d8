//! Socket reads that skip the extra `read()` returning EAGAIN after every short read.
//!
//! tokio keeps a socket "readable" until a read fails with WouldBlock, so the usual
//! `read_buf` loop costs one wasted syscall per request. After a short read the kernel had no
//! more bytes; clearing the readiness flag right away (through `try_io` returning WouldBlock,
//! no syscall) is safe because any byte arriving later raises a new edge-triggered event that
//! the runtime's driver sees before this task runs again.

use std::io;

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

/// Reads what is available into `buf` (which must have spare capacity), waiting if nothing is.
/// Returns 0 at end of stream.
pub async fn read_some(rd: &OwnedReadHalf, buf: &mut BytesMut) -> io::Result<usize> {
    loop {
        rd.readable().await?;
        let spare = buf.capacity() - buf.len();
        match rd.try_read_buf(buf) {
            Ok(n) => {
                if n > 0 && n < spare {
                    let stream: &TcpStream = rd.as_ref();
                    let _ = stream.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                    });
                }
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}
