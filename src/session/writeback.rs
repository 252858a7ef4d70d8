//! Replies written from the task they arrived in. An unpipelined client has one request in
//! flight; when its reply arrives the session is asleep with nothing else to write, so waking
//! it only to copy the reply to the socket costs a task wake-up and a whole session turn. The
//! session arms its queue before it sleeps in that state (`ReplyQueue::arm`), and the reply is
//! written here instead, with the same accounting the session would do. What the stream does
//! not take at once is kept for the session, which is then woken and writes it first (for TLS,
//! also when rustls holds records the socket did not take: the session waits to push them).

use std::cell::Cell;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};

use crate::clock::Tick;
use crate::reply::queue::{ReplyQueue, Tag, Writeback};
use crate::router::worker::Worker;
use crate::transport::DirectWrite;

/// Counts a reply leaving for the client in the request metrics and latency monitors: its
/// latency runs from the step its request was read in to `now` (the worker clock).
pub(super) fn observe_reply(worker: &Worker, monitored: bool, now: Tick, tag: Tag, reply: &[u8]) {
    if let Some(m) = &worker.stats.metrics {
        m.observe(tag.command, now.since(tag.at), reply);
    }
    if monitored {
        worker.count_latency(tag.command, now.micros_since(tag.at));
    }
}

/// The [`Writeback`] of a client session.
pub(super) struct Direct {
    socket: Rc<dyn DirectWrite>,
    worker: Rc<Worker>,
    /// What the stream did not take (the rest of the one reply written since the session last
    /// ran: the queue disarms on a partial write): written by the session before anything else.
    spill: Cell<Option<Bytes>>,
}

impl Direct {
    /// Installs a writeback on `queue` writing to `socket`; it is removed again when the
    /// returned guard is dropped (the session ended, or its future was dropped).
    pub(super) fn install(
        queue: &Rc<ReplyQueue>,
        socket: Rc<dyn DirectWrite>,
        worker: Rc<Worker>,
    ) -> Installed {
        let direct = Rc::new(Direct {
            socket,
            worker,
            spill: Cell::new(None),
        });
        queue.set_writeback(Some(direct.clone()));
        Installed {
            queue: queue.clone(),
            direct,
        }
    }
}

impl Writeback for Direct {
    fn write(&self, tag: Option<Tag>, mut reply: Bytes) -> bool {
        let worker = &self.worker;
        if let Some(tag) = tag {
            let monitored = worker.latency_monitored();
            if worker.stats.metrics.is_some() || monitored {
                let now = worker.env.clock.now_tick();
                observe_reply(worker, monitored, now, tag, &reply);
            }
        }
        worker.stats.responses.add(1);
        // An error leaves the reply to the session, whose own write meets it again.
        let taken = self.socket.write_direct(&reply).unwrap_or(0);
        worker.stats.send_client_bytes.add(taken as u64);
        reply.advance(taken);
        if reply.is_empty() && !self.socket.pending() {
            return true;
        }
        // The rest (or TLS records still on their way) is the session's to finish.
        self.spill.set(Some(reply));
        false
    }
}

/// A writeback installed on a client's queue, removed on drop.
pub(super) struct Installed {
    queue: Rc<ReplyQueue>,
    direct: Rc<Direct>,
}

impl Installed {
    /// Puts what the stream did not take from a direct write at the front of `wbuf` (which is
    /// empty whenever a direct write could have happened).
    pub(super) fn take_spill(&self, wbuf: &mut BytesMut) {
        if let Some(rest) = self.direct.spill.take() {
            debug_assert!(wbuf.is_empty());
            wbuf.extend_from_slice(&rest);
        }
    }

    /// Lets the next reply be written without the session (`on`), or not.
    pub(super) fn arm(&self, on: bool) {
        self.queue.arm(on);
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        self.queue.set_writeback(None);
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::io;

    use super::*;
    use crate::config::Config;
    use crate::shared::Shared;

    /// A stream that takes up to `room` bytes per write and says whether records wait.
    struct Stream {
        room: Cell<usize>,
        held: bool,
        got: RefCell<Vec<u8>>,
    }

    impl DirectWrite for Stream {
        fn write_direct(&self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.room.get());
            self.room.set(self.room.get() - n);
            self.got.borrow_mut().extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn pending(&self) -> bool {
            self.held
        }
    }

    fn direct(room: usize, held: bool) -> (Rc<Stream>, Direct) {
        let stream = Rc::new(Stream {
            room: Cell::new(room),
            held,
            got: RefCell::new(Vec::new()),
        });
        let worker = Worker::new(0, Shared::new(Config::default()));
        let direct = Direct {
            socket: stream.clone(),
            worker,
            spill: Cell::new(None),
        };
        (stream, direct)
    }

    fn spilled(d: &Direct) -> Option<Vec<u8>> {
        d.spill.take().map(|b| b.to_vec())
    }

    #[test]
    fn a_reply_the_stream_takes_whole_needs_no_session() {
        let (stream, d) = direct(64, false);
        assert!(d.write(None, Bytes::from_static(b"$3\r\nabc\r\n")));
        assert_eq!(&stream.got.borrow()[..], b"$3\r\nabc\r\n");
        assert_eq!(spilled(&d), None);
        assert_eq!(d.worker.stats.responses.get(), 1);
        assert_eq!(d.worker.stats.send_client_bytes.get(), 9);
    }

    #[test]
    fn the_rest_of_a_reply_is_kept_for_the_session() {
        let (stream, d) = direct(4, false);
        assert!(!d.write(None, Bytes::from_static(b"$3\r\nabc\r\n")));
        assert_eq!(&stream.got.borrow()[..], b"$3\r\n");
        assert_eq!(spilled(&d).as_deref(), Some(&b"abc\r\n"[..]));
        assert_eq!(d.worker.stats.send_client_bytes.get(), 4);
    }

    #[test]
    fn records_still_held_by_the_stream_wake_the_session() {
        // TLS: rustls took the whole reply but the socket not all its records.
        let (stream, d) = direct(64, true);
        assert!(!d.write(None, Bytes::from_static(b"+OK\r\n")));
        assert_eq!(&stream.got.borrow()[..], b"+OK\r\n");
        assert_eq!(spilled(&d).as_deref(), Some(&b""[..]));
    }
}
