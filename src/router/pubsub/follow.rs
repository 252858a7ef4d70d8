//! The task that keeps one client's subscriptions where the cluster map says they belong:
//! after a failover or a slot move the new master gets them, a node that left or became a
//! replica is dropped, a lost connection is replaced (after a backoff while it keeps failing).
//! It runs while the client has subscriptions or connections left to close.

use std::rc::Rc;
use std::time::Duration;

use crate::client::subs::Hub;

use crate::router::worker::Worker;

/// How often the map is compared with the placement when nothing wakes the task earlier.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

/// Starts the task for `hub` unless it runs already or there is nothing to follow.
pub fn ensure(worker: &Rc<Worker>, hub: &Rc<Hub>) {
    if hub.is_idle() || !hub.start_following() {
        return;
    }
    let (worker, hub) = (worker.clone(), hub.clone());
    tokio::task::spawn_local(async move {
        follow(&worker, &hub).await;
        hub.stop_following();
    });
}

async fn follow(worker: &Worker, hub: &Hub) {
    loop {
        tokio::select! {
            _ = hub.woken() => {}
            _ = tokio::time::sleep(FOLLOW_INTERVAL) => {}
        }
        if let Some(wait) = hub.backoff()
            && !wait.is_zero()
        {
            tokio::time::sleep(wait).await;
        }
        if hub.is_closed() {
            return;
        }
        let topo = worker.topology();
        if hub.needs_reconcile(&topo) {
            hub.reconcile(&topo, None);
        }
        if hub.is_idle() {
            return;
        }
    }
}
