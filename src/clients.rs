//! The registry of connected clients, shared by all workers: what CLIENT LIST / INFO show and
//! how CLIENT KILL reaches a session on another worker. Touched on connect, disconnect and
//! rare changes (a name), never per request except one relaxed store of the idle clock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

/// One client as the registry sees it.
#[derive(Debug)]
pub struct ClientEntry {
    pub id: u64,
    pub addr: SocketAddr,
    pub worker: usize,
    pub created: Instant,
    /// Milliseconds since `created` of the last request (written by the owning worker).
    pub last_active_ms: AtomicU64,
    pub name: Mutex<String>,
    pub lib: Mutex<(String, String)>,
    /// Wakes the session so it closes (CLIENT KILL).
    pub kill: Notify,
}

impl ClientEntry {
    /// Notes activity at `now`.
    pub fn touch_at(&self, now: Instant) {
        self.last_active_ms.store(
            now.saturating_duration_since(self.created).as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    /// The CLIENT LIST line (without the newline).
    pub fn line(&self, now: Instant) -> String {
        let age = now.saturating_duration_since(self.created).as_secs();
        let active = self.last_active_ms.load(Ordering::Relaxed) / 1000;
        let idle = age.saturating_sub(active);
        let (lib_name, lib_ver) = self.lib.lock().clone();
        let mut s = String::new();
        let _ = write!(
            s,
            "id={} addr={} laddr= fd=-1 name={} age={age} idle={idle} flags=N db=0 worker={} user=default lib-name={lib_name} lib-ver={lib_ver}",
            self.id,
            self.addr,
            self.name.lock(),
            self.worker,
        );
        s
    }
}

/// All connected clients.
#[derive(Debug, Default)]
pub struct ClientRegistry {
    clients: Mutex<BTreeMap<u64, Arc<ClientEntry>>>,
}

/// Which clients CLIENT KILL selects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct KillFilter {
    pub id: Option<u64>,
    pub addr: Option<String>,
    /// Spare the calling client (default yes, as Redis).
    pub skip: Option<u64>,
}

impl ClientRegistry {
    /// Registers a new client.
    pub fn add(&self, id: u64, addr: SocketAddr, worker: usize) -> Arc<ClientEntry> {
        let entry = Arc::new(ClientEntry {
            id,
            addr,
            worker,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            name: Mutex::new(String::new()),
            lib: Mutex::new((String::new(), String::new())),
            kill: Notify::new(),
        });
        self.clients.lock().insert(id, entry.clone());
        entry
    }

    /// Forgets a client that left.
    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// CLIENT LIST text, optionally only some ids.
    pub fn list(&self, ids: Option<&[u64]>) -> String {
        let now = Instant::now();
        let mut out = String::new();
        for (id, e) in self.clients.lock().iter() {
            if ids.is_some_and(|ids| !ids.contains(id)) {
                continue;
            }
            out.push_str(&e.line(now));
            out.push('\n');
        }
        out
    }

    /// Signals every client matching `filter` to close; returns how many.
    pub fn kill(&self, filter: &KillFilter) -> usize {
        let clients = self.clients.lock();
        let mut n = 0;
        for (id, e) in clients.iter() {
            if filter.skip == Some(*id)
                || filter.id.is_some_and(|want| want != *id)
                || filter
                    .addr
                    .as_deref()
                    .is_some_and(|a| a != e.addr.to_string())
            {
                continue;
            }
            e.kill.notify_one();
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_and_kill_filters() {
        let reg = ClientRegistry::default();
        let a = reg.add(1, "127.0.0.1:1000".parse().unwrap(), 0);
        let _b = reg.add(2, "127.0.0.1:2000".parse().unwrap(), 1);
        *a.name.lock() = "app".into();
        let list = reg.list(None);
        assert!(
            list.contains("id=1 addr=127.0.0.1:1000 laddr= fd=-1 name=app"),
            "{list}"
        );
        assert_eq!(list.lines().count(), 2);
        assert_eq!(reg.list(Some(&[2])).lines().count(), 1);
        let by_addr = KillFilter {
            addr: Some("127.0.0.1:2000".into()),
            ..Default::default()
        };
        assert_eq!(reg.kill(&by_addr), 1);
        let all_but_me = KillFilter {
            skip: Some(1),
            ..Default::default()
        };
        assert_eq!(reg.kill(&all_but_me), 1);
        reg.remove(2);
        assert_eq!(reg.list(None).lines().count(), 1);
    }
}
