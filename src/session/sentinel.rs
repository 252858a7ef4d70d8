//! The rare events of a session (CLIENT KILL from any worker, the gateway stopping, the idle
//! timeout) watched by a small task of its own, which raises a flag the session polls.
//!
//! Why not in the session's own `select!`: every wake-up of the session polls every branch of
//! it, and polling a tokio timer, a `Notify` waiter and a `watch` receiver costs about 950
//! instructions per unpipelined request together (their wakers are re-registered each time),
//! a tenth of meridian's work for a GET. The flag costs a few; the sentinel itself is polled
//! only when one of its events happens (or the idle deadline passes).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clients::ClientEntry;
use crate::notify::LocalNotify;

/// CLIENT KILL: close now.
pub const KILLED: u8 = 1;
/// The gateway is stopping: finish what is in flight, then close.
pub const SHUTDOWN: u8 = 1 << 1;
/// The idle deadline passed: the session checks whether it really was idle.
pub const IDLE_CHECK: u8 = 1 << 2;

/// Between the session and its sentinel (same thread).
pub struct Signal {
    raised: Cell<u8>,
    wake: LocalNotify,
    /// When the client last sent something (set by the session).
    last_active: Cell<Instant>,
    /// The idle timeout in force (zero = never), set by the session at start and on reload.
    idle: Cell<Duration>,
    /// Wakes the sentinel when `idle` changed.
    retime: LocalNotify,
}

impl Signal {
    pub fn new(idle: Duration) -> Rc<Signal> {
        Rc::new(Signal {
            raised: Cell::new(0),
            wake: LocalNotify::new(),
            last_active: Cell::new(Instant::now()),
            idle: Cell::new(idle),
            retime: LocalNotify::new(),
        })
    }

    /// Resolves once some event was raised; returns and clears the raised flags.
    pub async fn next(&self) -> u8 {
        loop {
            let raised = self.raised.replace(0);
            if raised != 0 {
                return raised;
            }
            self.wake.notified().await;
        }
    }

    /// The client just sent something.
    #[inline]
    pub fn touch(&self, at: Instant) {
        self.last_active.set(at);
    }

    /// When the client last sent something.
    pub fn last_active(&self) -> Instant {
        self.last_active.get()
    }

    /// A reload changed the idle timeout.
    pub fn set_idle(&self, idle: Duration) {
        if self.idle.replace(idle) != idle {
            self.retime.notify();
        }
    }

    fn raise(&self, flag: u8) {
        self.raised.set(self.raised.get() | flag);
        self.wake.notify();
    }
}

/// The sentinel task of one session; stopped when dropped (the session ended).
pub struct Sentinel(tokio::task::JoinHandle<()>);

impl Sentinel {
    /// Starts watching `entry`'s kill, `shutdown` and the idle deadline for `signal`.
    pub fn start(
        signal: &Rc<Signal>,
        entry: Arc<ClientEntry>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Sentinel {
        let signal = signal.clone();
        Sentinel(tokio::task::spawn_local(async move {
            let killed = entry.kill.notified();
            tokio::pin!(killed);
            let stopping = async {
                while shutdown.changed().await.is_ok() {
                    if *shutdown.borrow() {
                        return;
                    }
                }
            };
            tokio::pin!(stopping);
            let mut stop_seen = false;
            loop {
                let deadline = idle_deadline(&signal);
                let sleep = tokio::time::sleep_until(deadline);
                tokio::select! {
                    biased;
                    _ = &mut killed => {
                        signal.raise(KILLED);
                        return;
                    }
                    _ = &mut stopping, if !stop_seen => {
                        stop_seen = true;
                        signal.raise(SHUTDOWN);
                    }
                    _ = signal.retime.notified() => {}
                    _ = sleep => {
                        let idle = signal.idle.get();
                        if !idle.is_zero() && tokio::time::Instant::now() >= idle_deadline(&signal) {
                            signal.raise(IDLE_CHECK);
                            // Not idle after all (replies still owed): look again shortly.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                }
            }
        }))
    }
}

/// When the client will have been idle for the timeout in force (far away when there is none).
/// On tokio's clock, which tests can pause and advance.
fn idle_deadline(signal: &Signal) -> tokio::time::Instant {
    let idle = signal.idle.get();
    if idle.is_zero() {
        return tokio::time::Instant::now() + Duration::from_secs(86_400);
    }
    tokio::time::Instant::from_std(signal.last_active()) + idle
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{ClientRegistry, Endpoint};

    fn entry(id: u64) -> Arc<ClientEntry> {
        let at = Endpoint {
            peer: "127.0.0.1:1".parse().expect("address"),
            local: None,
            fd: -1,
        };
        ClientRegistry::default().add(id, at, 0)
    }

    #[tokio::test(flavor = "current_thread")]
    async fn raises_idle_checks_after_the_deadline_and_follows_a_new_timeout() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let signal = Signal::new(Duration::from_millis(30));
                let (_tx, rx) = watch::channel(false);
                let _sentinel = Sentinel::start(&signal, entry(1), rx);
                let started = Instant::now();
                assert_eq!(signal.next().await, IDLE_CHECK);
                assert!(started.elapsed() >= Duration::from_millis(30));
                // Active again, with a longer timeout: the next check waits for it.
                let again = Instant::now();
                signal.touch(again);
                signal.set_idle(Duration::from_millis(80));
                assert_eq!(signal.next().await, IDLE_CHECK);
                assert!(again.elapsed() >= Duration::from_millis(80));
            })
            .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn kill_and_shutdown_are_raised() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let signal = Signal::new(Duration::ZERO);
                let client = entry(2);
                let (tx, rx) = watch::channel(false);
                let _sentinel = Sentinel::start(&signal, client.clone(), rx);
                tokio::task::yield_now().await;
                tx.send(true).expect("receiver alive");
                assert_eq!(signal.next().await, SHUTDOWN);
                client.kill.notify_one();
                assert_eq!(signal.next().await, KILLED);
            })
            .await;
    }
}
