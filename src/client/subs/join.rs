//! One client command carried out on several subscription connections: its reply slot is filled
//! once every connection has acknowledged its part, with the messages those connections sent
//! before their acknowledgement first and meridian's own answer (or the first error) last.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::reply::queue::{ReplyQueue, Seq};

/// Undoes what a command changed when it fails (run before its error is delivered).
pub type Undo = Box<dyn FnOnce()>;

/// A client command waiting for its parts.
pub struct Join {
    queue: Rc<ReplyQueue>,
    seq: Seq,
    /// Parts not acknowledged yet, plus one until [`Join::seal`].
    left: Cell<usize>,
    /// Messages that came before some part's acknowledgement: they precede the answer.
    before: RefCell<BytesMut>,
    error: RefCell<Option<Bytes>>,
    answer: RefCell<Option<(Bytes, Option<Undo>)>>,
}

impl Join {
    /// A command answering request `seq` of the client whose replies go to `queue`.
    pub fn new(queue: Rc<ReplyQueue>, seq: Seq) -> Rc<Join> {
        Rc::new(Join {
            queue,
            seq,
            left: Cell::new(1),
            before: RefCell::new(BytesMut::new()),
            error: RefCell::new(None),
            answer: RefCell::new(None),
        })
    }

    /// One more part to wait for.
    pub fn add_part(&self) {
        self.left.set(self.left.get() + 1);
    }

    /// A part is acknowledged (or abandoned with its connection): `messages` came before it,
    /// `error` is what its node refused the part with.
    pub fn part_done(&self, messages: &[u8], error: Option<Bytes>) {
        self.before.borrow_mut().extend_from_slice(messages);
        if let Some(e) = error {
            self.error.borrow_mut().get_or_insert(e);
        }
        self.step();
    }

    /// Every part was sent: `answer` is the reply when they all succeed; `undo` runs if one
    /// fails.
    pub fn seal(&self, answer: Bytes, undo: Option<Undo>) {
        *self.answer.borrow_mut() = Some((answer, undo));
        self.step();
    }

    fn step(&self) {
        let left = self.left.get().saturating_sub(1);
        self.left.set(left);
        if left > 0 {
            return;
        }
        let (answer, undo) = self.answer.borrow_mut().take().unwrap_or_default();
        let mut out = std::mem::take(&mut *self.before.borrow_mut());
        match self.error.borrow_mut().take() {
            Some(err) => {
                if let Some(undo) = undo {
                    undo();
                }
                out.extend_from_slice(&err);
            }
            None => out.extend_from_slice(&answer),
        }
        self.queue.fill(self.seq, out.freeze());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(queue: &ReplyQueue) -> Vec<u8> {
        let mut out = BytesMut::new();
        queue.drain_ready(&mut out, usize::MAX);
        out.to_vec()
    }

    #[test]
    fn answers_after_every_part_with_messages_first() {
        let queue = Rc::new(ReplyQueue::new());
        let join = Join::new(queue.clone(), queue.reserve());
        join.add_part();
        join.add_part();
        join.seal(Bytes::from_static(b"+answer\r\n"), None);
        join.part_done(b"+m1\r\n", None);
        assert!(drain(&queue).is_empty());
        join.part_done(b"", None);
        assert_eq!(drain(&queue), b"+m1\r\n+answer\r\n");
    }

    #[test]
    fn an_error_replaces_the_answer_and_undoes() {
        let queue = Rc::new(ReplyQueue::new());
        let join = Join::new(queue.clone(), queue.reserve());
        let undone = Rc::new(Cell::new(false));
        let flag = undone.clone();
        join.add_part();
        join.part_done(b"", Some(Bytes::from_static(b"-NOPERM no\r\n")));
        join.seal(
            Bytes::from_static(b"+answer\r\n"),
            Some(Box::new(move || flag.set(true))),
        );
        assert!(undone.get());
        assert_eq!(drain(&queue), b"-NOPERM no\r\n");
    }

    #[test]
    fn no_parts_answers_at_once() {
        let queue = Rc::new(ReplyQueue::new());
        let join = Join::new(queue.clone(), queue.reserve());
        join.seal(Bytes::from_static(b"+x\r\n"), None);
        assert_eq!(drain(&queue), b"+x\r\n");
    }
}
