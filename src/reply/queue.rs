//! The per-client reply queue: one slot per request in arrival order, filled in any order by
//! backends, drained in order by the session. This is what keeps a client's replies in request
//! order while its requests run on many nodes at once.

use crate::clock::Tick;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::notify::LocalNotify;

/// Sequence number of a request within its client.
pub type Seq = u64;

/// What the metrics need to know about a request when its reply leaves: the command it was
/// counted under and when it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub command: u16,
    /// When the request was read, on the worker's clock.
    pub at: Tick,
}

/// Writes a reply to the client's socket from the task it arrived in, so the session need not
/// wake for it (see [`ReplyQueue::arm`]).
pub trait Writeback {
    /// Takes the reply of the client's only request in flight (with its tag, if tagged) and
    /// writes it. Returns false when the socket did not take all of it: the session is woken
    /// and writes the rest first.
    fn write(&self, tag: Option<Tag>, reply: Bytes) -> bool;
}

/// One request's place in the queue.
struct Slot {
    reply: Option<Bytes>,
    tag: Option<Tag>,
}

/// Replies of one client, in request order.
#[derive(Default)]
pub struct ReplyQueue {
    inner: RefCell<Inner>,
    ready: LocalNotify,
    closed: Cell<bool>,
    killed: Cell<Option<&'static str>>,
    kill_signal: LocalNotify,
    /// Requests whose reply has not arrived yet.
    unanswered: Cell<usize>,
    /// Moving average of reply sizes (0 until the first reply).
    avg_reply: Cell<usize>,
    /// Where a reply may be written without the session.
    writeback: RefCell<Option<Rc<dyn Writeback>>>,
    /// The session sleeps with nothing held: the reply of its only request in flight may go
    /// straight to the [`Writeback`].
    armed: Cell<bool>,
}

/// Reply size assumed before any reply was seen: conservative, so a burst of requests for
/// big values cannot fill memory before the first reply shows how big they are.
const FIRST_REPLY_GUESS: usize = 64 * 1024;

#[derive(Default)]
struct Inner {
    /// Sequence number of `slots[0]`.
    base: Seq,
    slots: VecDeque<Slot>,
    /// Bytes of filled replies not yet written.
    ready_bytes: usize,
    /// Filled replies not yet written.
    ready_count: usize,
    /// Requests whose reply is dropped on arrival (CLIENT REPLY OFF/SKIP); almost always
    /// empty, so the usual path only checks that.
    silenced: Vec<Seq>,
}

impl ReplyQueue {
    pub fn new() -> ReplyQueue {
        ReplyQueue::default()
    }

    /// Reserves the slot for the next request and returns its sequence number.
    pub fn reserve(&self) -> Seq {
        self.reserve_slot(None)
    }

    /// Like [`ReplyQueue::reserve`], for a request whose reply the metrics observe.
    pub fn reserve_tagged(&self, tag: Tag) -> Seq {
        self.reserve_slot(Some(tag))
    }

    fn reserve_slot(&self, tag: Option<Tag>) -> Seq {
        let mut inner = self.inner.borrow_mut();
        inner.slots.push_back(Slot { reply: None, tag });
        self.unanswered.set(self.unanswered.get() + 1);
        inner.base + inner.slots.len() as Seq - 1
    }

    /// The tag of request `seq`, while its reply is awaited.
    pub fn tag_of(&self, seq: Seq) -> Option<Tag> {
        let inner = self.inner.borrow();
        let idx = seq.checked_sub(inner.base)?;
        inner.slots.get(idx as usize).and_then(|s| s.tag)
    }

    /// Stores the reply of request `seq` and wakes the session when it can be written.
    pub fn fill(&self, seq: Seq, reply: Bytes) {
        if self.closed.get() {
            return;
        }
        let mut inner = self.inner.borrow_mut();
        let Some(idx) = seq.checked_sub(inner.base) else {
            return;
        };
        let Inner {
            base,
            slots,
            silenced,
            ready_bytes,
            ready_count,
        } = &mut *inner;
        let lone = slots.len() == 1;
        let Some(Slot {
            reply: slot @ None,
            tag,
        }) = slots.get_mut(idx as usize)
        else {
            return;
        };
        let mut reply = reply;
        if !silenced.is_empty()
            && let Some(pos) = silenced.iter().position(|&s| s == seq)
        {
            silenced.swap_remove(pos);
            reply = Bytes::new();
        }
        let len = reply.len();
        self.unanswered.set(self.unanswered.get().saturating_sub(1));
        let avg = self.avg_reply.get();
        self.avg_reply.set(if avg == 0 {
            len.max(1)
        } else {
            (avg * 7 + len) / 8 + 1
        });
        if idx == 0 && lone && self.armed.get() {
            // The only reply awaited, while the session sleeps with nothing else to write: out
            // from here, without waking the session (one task wake-up and one session turn
            // less per unpipelined request). The slot leaves the queue without being filled.
            let tag = *tag;
            slots.pop_front();
            *base += 1;
            drop(inner);
            self.armed.set(false);
            if let Some(wb) = &*self.writeback.borrow()
                && wb.write(tag, reply)
            {
                self.armed.set(true);
            } else {
                self.ready.notify();
            }
            return;
        }
        *slot = Some(reply);
        *ready_bytes += len;
        *ready_count += 1;
        if idx == 0 {
            self.ready.notify();
        }
    }

    /// Sets where replies may be written without the session (`None`: nowhere).
    pub fn set_writeback(&self, writeback: Option<Rc<dyn Writeback>>) {
        self.armed.set(false);
        *self.writeback.borrow_mut() = writeback;
    }

    /// While the session sleeps with no reply held and nothing unwritten (`on`), the reply of
    /// its only request in flight is written by the [`Writeback`] from where it arrived; the
    /// session disarms as soon as it runs again.
    pub fn arm(&self, on: bool) {
        self.armed.set(on && self.writeback.borrow().is_some());
    }

    /// Requests whose reply has not arrived yet.
    pub fn unanswered(&self) -> usize {
        self.unanswered.get()
    }

    /// The reply of request `seq` (not yet filled) is dropped instead of written, or, with
    /// `silent` false, written after all.
    pub fn set_silent(&self, seq: Seq, silent: bool) {
        let mut inner = self.inner.borrow_mut();
        let unfilled = seq
            .checked_sub(inner.base)
            .and_then(|idx| inner.slots.get(idx as usize))
            .is_some_and(|slot| slot.reply.is_none());
        let known = inner.silenced.iter().position(|&s| s == seq);
        match (silent, known) {
            (true, None) if unfilled => inner.silenced.push(seq),
            (false, Some(pos)) => {
                inner.silenced.swap_remove(pos);
            }
            _ => {}
        }
    }

    /// Whether another request may be sent without the replies of those waiting on backends,
    /// at their expected size, passing `limit` bytes held for this client; `unwritten` is
    /// what already left the queue but not yet the socket.
    pub fn has_room(&self, limit: usize, unwritten: usize) -> bool {
        let estimate = match self.avg_reply.get() {
            0 => FIRST_REPLY_GUESS,
            n => n,
        };
        self.held_bytes() + unwritten + self.unanswered.get() * estimate < limit
    }

    /// Stores a reply made by meridian itself (an error or a local command's answer).
    pub fn fill_local(&self, seq: Seq, reply: &[u8]) {
        self.fill(seq, Bytes::copy_from_slice(reply));
    }

    /// Appends the replies at the head of the queue that are ready to `out`, while `out` holds
    /// less than `cap` bytes; returns how many. What stays behind still counts as held.
    pub fn drain_ready(&self, out: &mut BytesMut, cap: usize) -> usize {
        self.drain_ready_with(out, cap, |_, _| {})
    }

    /// Like [`ReplyQueue::drain_ready`], handing `seen` the tag and bytes of each tagged reply
    /// that leaves.
    pub fn drain_ready_with(
        &self,
        out: &mut BytesMut,
        cap: usize,
        mut seen: impl FnMut(Tag, &[u8]),
    ) -> usize {
        let mut inner = self.inner.borrow_mut();
        let mut n = 0;
        while out.len() < cap
            && let Some(Slot { reply: Some(_), .. }) = inner.slots.front()
        {
            if let Some(Slot {
                reply: Some(reply),
                tag,
            }) = inner.slots.pop_front()
            {
                inner.ready_bytes -= reply.len();
                inner.ready_count -= 1;
                out.extend_from_slice(&reply);
                if let Some(tag) = tag {
                    seen(tag, &reply);
                }
            }
            inner.base += 1;
            n += 1;
        }
        n
    }

    /// Requests whose replies were not written yet.
    pub fn in_flight(&self) -> usize {
        self.inner.borrow().slots.len()
    }

    /// Bytes of replies held (filled but not yet written).
    pub fn held_bytes(&self) -> usize {
        self.inner.borrow().ready_bytes
    }

    /// Replies held (filled but not yet written).
    pub fn held_replies(&self) -> usize {
        self.inner.borrow().ready_count
    }

    /// Resolves when the head of the queue may have become ready.
    pub async fn wait_ready(&self) {
        self.ready.notified().await
    }

    /// Appends a message nobody asked for (a pub/sub message) after every reserved reply.
    pub fn push_unsolicited(&self, frame: Bytes) {
        if self.closed.get() {
            return;
        }
        let seq = self.reserve();
        self.fill(seq, frame);
    }

    /// Asks the session to disconnect the client (e.g. its output buffer limit was passed).
    pub fn kill(&self, reason: &'static str) {
        if self.killed.get().is_none() {
            self.killed.set(Some(reason));
        }
        self.close();
        self.ready.notify();
        self.kill_signal.notify();
    }

    /// Resolves once [`ReplyQueue::kill`] was called.
    pub async fn wait_killed(&self) {
        while self.killed.get().is_none() {
            self.kill_signal.notified().await;
        }
    }

    /// Why the client must be disconnected, if it must.
    pub fn killed(&self) -> Option<&'static str> {
        self.killed.get()
    }

    /// The client is gone: later replies are dropped on arrival.
    pub fn close(&self) {
        self.closed.set(true);
        self.set_writeback(None);
        let mut inner = self.inner.borrow_mut();
        inner.slots.clear();
        inner.silenced.clear();
        inner.ready_bytes = 0;
        inner.ready_count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_leave_in_request_order() {
        let q = ReplyQueue::new();
        let a = q.reserve();
        let b = q.reserve();
        let c = q.reserve();
        let mut out = BytesMut::new();
        q.fill(c, Bytes::from_static(b"+c\r\n"));
        q.fill(b, Bytes::from_static(b"+b\r\n"));
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 0);
        assert_eq!(q.held_bytes(), 8);
        q.fill(a, Bytes::from_static(b"+a\r\n"));
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 3);
        assert_eq!(&out[..], b"+a\r\n+b\r\n+c\r\n");
        assert_eq!(q.in_flight(), 0);
        let d = q.reserve();
        assert_eq!(d, 3);
    }

    #[test]
    fn tagged_replies_are_seen_as_they_leave() {
        let q = ReplyQueue::new();
        let at = Tick::default();
        let a = q.reserve_tagged(Tag { command: 7, at });
        let b = q.reserve();
        let c = q.reserve_tagged(Tag { command: 9, at });
        q.fill(c, Bytes::from_static(b"-ERR c\r\n"));
        q.fill(b, Bytes::from_static(b"+b\r\n"));
        let mut seen = Vec::new();
        let mut out = BytesMut::new();
        assert_eq!(
            q.drain_ready_with(&mut out, usize::MAX, |t, r| seen
                .push((t.command, r.to_vec()))),
            0
        );
        q.fill(a, Bytes::from_static(b"+a\r\n"));
        assert_eq!(
            q.drain_ready_with(&mut out, usize::MAX, |t, r| seen
                .push((t.command, r.to_vec()))),
            3
        );
        assert_eq!(seen, [(7, b"+a\r\n".to_vec()), (9, b"-ERR c\r\n".to_vec())]);
    }

    /// Records what it is handed; takes it all when `takes`.
    struct Recorder {
        seen: RefCell<Vec<(Option<u16>, Bytes)>>,
        takes: bool,
    }

    impl Writeback for Recorder {
        fn write(&self, tag: Option<Tag>, reply: Bytes) -> bool {
            self.seen.borrow_mut().push((tag.map(|t| t.command), reply));
            self.takes
        }
    }

    fn recorder(q: &ReplyQueue, takes: bool) -> Rc<Recorder> {
        let r = Rc::new(Recorder {
            seen: RefCell::default(),
            takes,
        });
        q.set_writeback(Some(r.clone()));
        r
    }

    #[test]
    fn an_armed_queue_hands_the_lone_reply_to_the_writeback() {
        let q = ReplyQueue::new();
        let r = recorder(&q, true);
        q.arm(true);
        let a = q.reserve_tagged(Tag {
            command: 3,
            at: Tick::default(),
        });
        q.fill(a, Bytes::from_static(b"+a\r\n"));
        assert_eq!(r.seen.borrow().len(), 1);
        assert_eq!(r.seen.borrow()[0].0, Some(3));
        assert_eq!((q.in_flight(), q.unanswered(), q.held_bytes()), (0, 0, 0));
        // Still armed: the next lone reply goes the same way, in sequence.
        let b = q.reserve();
        assert_eq!(b, a + 1);
        q.fill(b, Bytes::from_static(b"+b\r\n"));
        assert_eq!(r.seen.borrow().len(), 2);
        assert_eq!(q.in_flight(), 0);
    }

    #[test]
    fn replies_behind_others_or_unarmed_wait_for_the_session() {
        let q = ReplyQueue::new();
        let r = recorder(&q, true);
        // Two in flight: not a lone request, even for the head.
        q.arm(true);
        let a = q.reserve();
        let b = q.reserve();
        q.fill(a, Bytes::from_static(b"+a\r\n"));
        q.fill(b, Bytes::from_static(b"+b\r\n"));
        assert!(r.seen.borrow().is_empty());
        let mut out = BytesMut::new();
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 2);
        // Disarmed (the session runs): kept for the session.
        q.arm(false);
        let c = q.reserve();
        q.fill(c, Bytes::from_static(b"+c\r\n"));
        assert!(r.seen.borrow().is_empty());
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 1);
        assert_eq!(&out[..], b"+a\r\n+b\r\n+c\r\n");
        // No writeback after close, and arming without one does nothing.
        q.set_writeback(None);
        q.arm(true);
        let d = q.reserve();
        q.fill(d, Bytes::from_static(b"+d\r\n"));
        assert!(r.seen.borrow().is_empty());
        assert_eq!(q.held_replies(), 1);
    }

    #[test]
    fn a_writeback_that_cannot_take_it_all_disarms_and_wakes_the_session() {
        let q = ReplyQueue::new();
        let r = recorder(&q, false);
        q.arm(true);
        let a = q.reserve();
        q.fill(a, Bytes::from_static(b"+a\r\n"));
        assert_eq!(r.seen.borrow().len(), 1);
        // The session is told (the flag stays set until it looks).
        assert!(q.ready.set_for_test());
        // Disarmed: the next reply waits in the queue.
        let b = q.reserve();
        q.fill(b, Bytes::from_static(b"+b\r\n"));
        assert_eq!(r.seen.borrow().len(), 1);
        assert_eq!(q.held_replies(), 1);
    }

    #[test]
    fn closed_queue_drops_late_replies() {
        let q = ReplyQueue::new();
        let a = q.reserve();
        q.close();
        q.fill(a, Bytes::from_static(b"+late\r\n"));
        assert_eq!(q.held_bytes(), 0);
        assert_eq!(q.in_flight(), 0);
    }

    #[test]
    fn silenced_replies_keep_their_place_but_are_not_written() {
        let q = ReplyQueue::new();
        let a = q.reserve();
        let b = q.reserve();
        let c = q.reserve();
        q.set_silent(b, true);
        q.set_silent(c, true);
        q.set_silent(c, false);
        q.fill(b, Bytes::from_static(b"+b\r\n"));
        q.fill(c, Bytes::from_static(b"+c\r\n"));
        assert_eq!(q.held_replies(), 2);
        let mut out = BytesMut::new();
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 0);
        q.fill(a, Bytes::from_static(b"+a\r\n"));
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 3);
        assert_eq!(&out[..], b"+a\r\n+c\r\n");
        assert_eq!(q.held_replies(), 0);
        // A reply already in cannot be silenced any more.
        let d = q.reserve();
        q.fill(d, Bytes::from_static(b"+d\r\n"));
        q.set_silent(d, true);
        assert_eq!(q.drain_ready(&mut out, usize::MAX), 1);
        assert!(out.ends_with(b"+d\r\n"));
    }
}
