//! The resolver of DC host names, beside the refresher rather than inside it: every name due
//! (see [`DcHosts::due`]) is looked up by a task of its own, so a name server that is slow or
//! gone (a lookup then takes the resolver's whole timeout, 15 s with hickory's defaults) never
//! holds up the cluster map, nor another name. An answer that changes the placement asks the
//! refresher for a new map; a name that moved is recorded as a `dc_resolved` event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::warn;

use crate::events::EventKind;
use crate::shared::Shared;

use super::dc_hosts::Outcome;

/// How often names are checked for expired answers.
const TICK: Duration = Duration::from_secs(1);

/// Runs until shutdown: starts a lookup for every name that is due, once a second.
pub async fn run(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown_signal();
    loop {
        start_due(&shared).detach_all();
        tokio::select! {
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Starts a lookup for every name due now; each takes its own answer when it ends, also when
/// the returned set is detached. Asks for a map refresh at once when a reload dropped names.
pub fn start_due(shared: &Arc<Shared>) -> JoinSet<()> {
    let config = shared.config();
    let due = shared.dc_hosts.lock().due(&config, Instant::now());
    if due.dropped {
        shared.request_refresh();
    }
    let mut lookups = JoinSet::new();
    for (dc, host) in due.names {
        let shared = shared.clone();
        lookups.spawn(async move {
            let answer = crate::dns::lookup_host_ttl(&host).await;
            if let Err(e) = &answer {
                warn!(%host, %dc, error = %e, "cannot resolve a datacenter host name");
            }
            let outcome = shared.dc_hosts.lock().answer(
                &dc,
                &host,
                answer.map_err(|e| e.to_string()),
                Instant::now(),
            );
            match outcome {
                Outcome::Same => {}
                Outcome::Placed => shared.request_refresh(),
                Outcome::Moved(message) => {
                    shared
                        .events
                        .record(EventKind::DcResolved, None, Some(&dc), None, message);
                    shared.request_refresh();
                }
            }
        });
    }
    lookups
}

/// Resolves every name due now and waits for the answers, at most `bound`: the first map then
/// places nodes by their names when the name servers answer, and a dead one delays the start
/// by `bound` only (its lookups go on in the background).
pub async fn resolve_first(shared: &Arc<Shared>, bound: Duration) {
    let mut lookups = start_due(shared);
    let all = async { while lookups.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(bound, all).await;
    lookups.detach_all();
}
