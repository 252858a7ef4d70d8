//! The registry of connected clients, shared by all workers: what CLIENT LIST / INFO show, how
//! CLIENT KILL reaches a session on another worker and CLIENT UNBLOCK the backend connection a
//! client waits on. Touched on connect, disconnect and rare changes (a name, a new command
//! name); per read only relaxed stores ([`facts`]).

pub mod facts;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;

use facts::{LiveFacts, flag_letters};

/// Where a client is connected from and to.
#[derive(Debug, Clone, Copy)]
pub struct Endpoint {
    pub peer: SocketAddr,
    /// The gateway's side of the socket.
    pub local: Option<SocketAddr>,
    /// The socket's file descriptor (-1 when unknown).
    pub fd: i64,
}

/// One client as the registry sees it.
#[derive(Debug)]
pub struct ClientEntry {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: Option<SocketAddr>,
    pub fd: i64,
    pub worker: usize,
    pub created: Instant,
    /// Milliseconds since `created` of the last request (written by the owning worker).
    pub last_active_ms: AtomicU64,
    pub name: Mutex<String>,
    pub lib: Mutex<(String, String)>,
    /// Wakes the session so it closes (CLIENT KILL).
    pub kill: Notify,
    /// What the session last said about its buffers and state.
    pub live: LiveFacts,
    /// The command it ran last, as CLIENT LIST names it (`client|list`); empty for none.
    cmd: Mutex<String>,
    /// The gateway user it is authenticated as (`user=`); empty = `default`, as Redis shows
    /// a client that has not authenticated.
    user: Mutex<Arc<str>>,
    /// While it waits in a blocking command: the node and the backend's id of the connection
    /// the command waits on (what CLIENT UNBLOCK acts on).
    blocked_on: Mutex<Option<(Arc<str>, u64)>>,
}

impl ClientEntry {
    /// Notes activity at `now`.
    pub fn touch_at(&self, now: Instant) {
        self.last_active_ms.store(
            now.saturating_duration_since(self.created).as_millis() as u64,
            Ordering::Relaxed,
        );
    }

    /// Records the command the client runs now (`cmd=` of CLIENT LIST).
    pub fn set_cmd(&self, name: &str) {
        let mut cmd = self.cmd.lock();
        cmd.clear();
        cmd.push_str(name);
    }

    /// Records the user the client is now authenticated as (`user=` of CLIENT LIST).
    pub fn set_user(&self, name: &Arc<str>) {
        *self.user.lock() = name.clone();
    }

    /// Records the backend connection the client's blocking command waits on, or that it
    /// waits no more.
    pub fn set_blocked_on(&self, on: Option<(Arc<str>, u64)>) {
        *self.blocked_on.lock() = on;
    }

    /// The backend connection the client's blocking command waits on.
    pub fn blocked_on(&self) -> Option<(Arc<str>, u64)> {
        self.blocked_on.lock().clone()
    }

    /// The CLIENT LIST line (without the newline): every field of Redis 7.0 in its order,
    /// then meridian's (`lib-name`, `lib-ver` as later Redis versions print them, `worker`).
    /// `argv_mem` is the size of the command running now (the caller's own line).
    pub fn line(&self, now: Instant, argv_mem: u64) -> String {
        let age = now.saturating_duration_since(self.created).as_secs();
        let active = self.last_active_ms.load(Ordering::Relaxed) / 1000;
        let idle = age.saturating_sub(active);
        let (lib_name, lib_ver) = self.lib.lock().clone();
        let f = self.live.load();
        let blocked = self.blocked_on.lock().is_some();
        let cmd = self.cmd.lock().clone();
        let user = self.user.lock().clone();
        let user: &str = if user.is_empty() { "default" } else { &user };
        let laddr = self.laddr.map(|a| a.to_string()).unwrap_or_default();
        let tot_mem = f.rbs + argv_mem + f.multi_mem + f.obl + f.omem;
        let mut s = String::with_capacity(320);
        let _ = write!(
            s,
            "id={} addr={} laddr={laddr} fd={} name={} age={age} idle={idle} flags={} db=0 sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={argv_mem} multi-mem={} rbs={} rbp={} obl={} oll={} omem={} tot-mem={tot_mem} events={} cmd={} user={user} redir=-1 resp={} lib-name={lib_name} lib-ver={lib_ver} worker={}",
            self.id,
            self.addr,
            self.fd,
            self.name.lock(),
            flag_letters(f.flags, blocked),
            f.sub,
            f.psub,
            f.ssub,
            f.multi,
            f.qbuf,
            f.qbuf_free,
            f.multi_mem,
            f.rbs,
            f.rbp,
            f.obl,
            f.oll,
            f.omem,
            if f.writing { "rw" } else { "r" },
            if cmd.is_empty() { "NULL" } else { &cmd },
            f.resp,
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
    pub fn add(&self, id: u64, at: Endpoint, worker: usize) -> Arc<ClientEntry> {
        let entry = Arc::new(ClientEntry {
            id,
            addr: at.peer,
            laddr: at.local,
            fd: at.fd,
            worker,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            name: Mutex::new(String::new()),
            lib: Mutex::new((String::new(), String::new())),
            kill: Notify::new(),
            live: LiveFacts::default(),
            cmd: Mutex::new(String::new()),
            user: Mutex::new(Arc::from("")),
            blocked_on: Mutex::new(None),
        });
        self.clients.lock().insert(id, entry.clone());
        entry
    }

    /// Forgets a client that left.
    pub fn remove(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    /// CLIENT LIST text, optionally only some ids; `caller` is the id of the client asking
    /// and the size of its request (its `argv-mem`).
    pub fn list(&self, ids: Option<&[u64]>, caller: (u64, u64)) -> String {
        let now = Instant::now();
        let mut out = String::new();
        for (id, e) in self.clients.lock().iter() {
            if ids.is_some_and(|ids| !ids.contains(id)) {
                continue;
            }
            let argv_mem = if *id == caller.0 { caller.1 } else { 0 };
            out.push_str(&e.line(now, argv_mem));
            out.push('\n');
        }
        out
    }

    /// A client by id.
    pub fn get(&self, id: u64) -> Option<Arc<ClientEntry>> {
        self.clients.lock().get(&id).cloned()
    }

    /// Clients waiting in a blocking command now (INFO `blocked_clients`).
    pub fn blocked_count(&self) -> usize {
        self.clients
            .lock()
            .values()
            .filter(|e| e.blocked_on.lock().is_some())
            .count()
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

    fn at(peer: &str) -> Endpoint {
        Endpoint {
            peer: peer.parse().unwrap(),
            local: Some("127.0.0.1:7617".parse().unwrap()),
            fd: 9,
        }
    }

    #[test]
    fn list_and_kill_filters() {
        let reg = ClientRegistry::default();
        let a = reg.add(1, at("127.0.0.1:1000"), 0);
        let _b = reg.add(2, at("127.0.0.1:2000"), 1);
        *a.name.lock() = "app".into();
        let list = reg.list(None, (0, 0));
        assert!(
            list.contains("id=1 addr=127.0.0.1:1000 laddr=127.0.0.1:7617 fd=9 name=app"),
            "{list}"
        );
        assert_eq!(list.lines().count(), 2);
        assert_eq!(reg.list(Some(&[2]), (0, 0)).lines().count(), 1);
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
        assert_eq!(reg.list(None, (0, 0)).lines().count(), 1);
    }

    #[test]
    fn a_line_has_every_redis_7_field_in_order() {
        let reg = ClientRegistry::default();
        let a = reg.add(7, at("127.0.0.1:1000"), 0);
        a.set_cmd("client|info");
        a.set_blocked_on(Some(("n:1".into(), 12)));
        assert_eq!(reg.blocked_count(), 1);
        let line = reg.list(None, (7, 26));
        let keys: Vec<&str> = line
            .split_whitespace()
            .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k))
            .collect();
        let redis = "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem multi-mem rbs rbp obl oll omem tot-mem events cmd user redir resp";
        let redis: Vec<&str> = redis.split(' ').collect();
        assert_eq!(&keys[..redis.len()], &redis[..], "{line}");
        assert!(line.contains(" flags=b "), "{line}");
        assert!(line.contains(" argv-mem=26 "), "{line}");
        assert!(line.contains(" cmd=client|info "), "{line}");
        a.set_blocked_on(None);
        assert_eq!(reg.blocked_count(), 0);
    }
}
