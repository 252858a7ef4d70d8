//! A wake-up flag for tasks on one thread: cheaper than `tokio::sync::Notify` because no
//! other thread can ever touch it (no atomics, no lock).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Remembers one pending notification and wakes the one task waiting for it.
#[derive(Default)]
pub struct LocalNotify {
    set: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl LocalNotify {
    pub fn new() -> LocalNotify {
        LocalNotify::default()
    }

    /// Marks the flag and wakes the waiting task, if any.
    pub fn notify(&self) {
        if !self.set.replace(true)
            && let Some(w) = self.waker.take()
        {
            w.wake();
        }
    }

    /// Whether a notification waits to be taken.
    #[cfg(test)]
    pub fn set_for_test(&self) -> bool {
        self.set.get()
    }

    /// Forgets a notification not taken yet.
    pub fn clear(&self) {
        self.set.set(false);
    }

    /// Resolves once the flag is set, clearing it.
    pub fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }
}

/// Future returned by [`LocalNotify::notified`].
pub struct Notified<'a> {
    notify: &'a LocalNotify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.set.replace(false) {
            return Poll::Ready(());
        }
        // Polled again by the same task (most polls): keep its waker rather than clone a new
        // one and drop the old (two atomic reference-count updates per poll).
        let waker = match self.notify.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        self.notify.waker.set(Some(waker));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[tokio::test(flavor = "current_thread")]
    async fn wakes_a_waiting_task_once() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let n = Rc::new(LocalNotify::new());
                let n2 = n.clone();
                let waiter = tokio::task::spawn_local(async move {
                    n2.notified().await;
                    1
                });
                tokio::task::yield_now().await;
                n.notify();
                n.notify();
                assert_eq!(waiter.await.unwrap(), 1);
                // Two notifications before the waiter ran collapse into one.
                assert!(!n.set.get());
            })
            .await;
    }
}
