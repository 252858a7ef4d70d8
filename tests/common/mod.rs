//! Integration-test harness: real redis-server clusters and the meridian binary as child processes.
//!
//! This file holds the plumbing and one redis-server [`Node`]; `cluster` forms nodes into a
//! Redis Cluster, `standalone` runs one plain (non-cluster) server, `gateway` runs meridian,
//! `tls` makes certificates and runs a cluster that speaks TLS only.
//! Every child is spawned by one long-lived spawner thread with `PR_SET_PDEATHSIG`, so none
//! outlives the test process, even a killed one.
// Not every test file uses every helper.
#![allow(dead_code, unused_imports)]

pub mod client;
pub mod cluster;
pub mod dns;
pub mod gateway;
pub mod http;
pub mod prom;
pub mod raw;
pub mod reload;
pub mod standalone;
pub mod tls;

pub use client::{cmd, err, int, run, strings, text, try_run};
pub use cluster::{Cluster, ClusterBuilder, key_in_slot, key_slot};
pub use gateway::{Gateway, GatewayOptions, binary};
pub use standalone::Standalone;

use redis::{ConnectionLike, Value};
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, Once, OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

/// How often every `wait_*` helper polls.
pub const POLL: Duration = Duration::from_millis(50);
/// Read timeout of the harness's own polling queries (a SIGSTOPped node must not hang a poll).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Read timeout of queries asked for by tests.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one redis-server process becoming reachable after spawn.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Fresh ports tried before giving up on starting one node.
const START_ATTEMPTS: usize = 20;
/// How to install redis-server, for [`require_binary`].
pub const INSTALL: &str = "apt-get install redis-server";

/// First port handed to redis-server; its cluster bus port is `port + 10000`.
const PORT_BASE: usize = 20000;
/// Number of ports in the pool (`PORT_BASE..PORT_BASE + PORT_SPAN`).
const PORT_SPAN: usize = 10000;
/// Prefix of every temp dir; the pid after it lets a later run remove dirs of dead runs.
const DIR_PREFIX: &str = "meridian-test-";

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `cmd` from the harness's spawner thread and returns the child.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, and test threads
/// exit after each test, so all children are forked by one thread that lives as long as the
/// test process.
pub fn spawn(cmd: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<mpsc::Sender<SpawnJob>> = OnceLock::new();
    let jobs = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        thread::Builder::new()
            .name("harness-spawner".into())
            .spawn(move || {
                for (cmd, reply) in rx {
                    // The requester may have gone away (panicked); nothing to do then.
                    let _ = reply.send(spawn_here(cmd));
                }
            })
            .expect("start the harness spawner thread");
        tx
    });
    let gone = || io::Error::other("the harness spawner thread is gone");
    let (reply_tx, reply_rx) = mpsc::channel();
    jobs.send((cmd, reply_tx)).map_err(|_| gone())?;
    reply_rx.recv().map_err(|_| gone())?
}

/// Forks on the current (spawner) thread, arming the parent-death signal in the child.
fn spawn_here(mut cmd: Command) -> io::Result<Child> {
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are allowed: it calls prctl and getppid only and allocates nothing (errors are
    // raw OS errors). If the parent already died before prctl, getppid differs and the exec
    // is abandoned, so the child cannot outlive it.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Sends signal `sig` (e.g. `libc::SIGSTOP`) to process `pid`; panics if it cannot be sent.
pub fn signal(pid: u32, sig: libc::c_int) {
    let target = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; `target` is a child we spawned and
    // have not reaped yet, so the pid cannot have been reused by another process.
    let rc = unsafe { libc::kill(target, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> u64 {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {path}"))
}

/// The next port to try for a redis-server (20000..30000) after skipping `skip - 1`, starting
/// at a pid-based offset so that concurrent test processes mostly stay apart; callers still
/// retry on a failed bind (skipping more then: the neighbours likely belong to the same cluster).
pub fn next_port(skip: usize) -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let offset = (std::process::id() as usize).wrapping_mul(7919) % PORT_SPAN;
    let n = NEXT.fetch_add(skip, Ordering::Relaxed) + skip - 1;
    u16::try_from(PORT_BASE + (offset + n) % PORT_SPAN).expect("port below 65536")
}

/// Returns the path of `name` on PATH, or panics telling how to install it (tests fail, never skip).
pub fn require_binary(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` was not found on PATH; the integration tests need it: install it with `{install}`")
        })
}

/// A directory under the system temp dir, removed on drop (kept if `MERIDIAN_KEEP_TEST_DIRS` is set).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `temp_dir()/meridian-test-<pid>-<n>`, first removing dirs left by dead test runs.
    pub fn new() -> TempDir {
        static CLEAN: Once = Once::new();
        static N: AtomicUsize = AtomicUsize::new(0);
        CLEAN.call_once(remove_stale_dirs);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{DIR_PREFIX}{}-{n}", std::process::id()));
        // A dir of that name can only be left by an earlier process with the same pid.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("MERIDIAN_KEEP_TEST_DIRS").is_some() {
            eprintln!("keeping test dir {}", self.path.display());
        } else {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Removes `meridian-test-<pid>-*` dirs whose process no longer exists (a killed earlier run).
fn remove_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten().take(10_000) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix(DIR_PREFIX)
            .and_then(|rest| rest.split('-').next());
        if let Some(pid) = pid.and_then(|p| p.parse::<u32>().ok())
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Polls `probe` every [`POLL`] until it returns `Ok`, or panics after `timeout` naming `what`
/// and the last state the probe reported.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(value) => return value,
            Err(state) => state,
        };
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}; last state: {last}");
        }
        thread::sleep(POLL);
    }
}

/// The last `n` lines of a (log) file, or a note saying why it could not be read.
pub fn tail(path: &Path, n: usize) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(n)..].join("\n")
        }
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// Locks a mutex, ignoring poisoning: the harness must still clean up after a panicking test.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The text of a string-like or integer reply (`None` for arrays, nil, errors …).
pub fn value_text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".to_string()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// The error text (`"MOVED 42 127.0.0.1:20001"`) of an error reply, `None` for other replies.
pub fn error_text(value: &Value) -> Option<String> {
    match value {
        Value::ServerError(err) => Some(match err.details() {
            Some(detail) => format!("{} {detail}", err.code()),
            None => err.code().to_string(),
        }),
        _ => None,
    }
}

/// `field:value` lines of INFO / CLUSTER INFO.
pub type Fields = HashMap<String, String>;

/// Replication role of a node, as it reports it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `ROLE` says `master`.
    Master,
    /// `ROLE` says `slave`.
    Replica,
}

/// One redis-server process of a [`Cluster`] (or a [`Standalone`] server); it keeps its port
/// and dir across restarts.
///
/// All methods take `&self` (state behind locks), so a test can kill a node in one thread
/// while another drives traffic.
pub struct Node {
    /// `"ip:port"`, as the cluster announces it.
    pub addr: String,
    /// Loopback IP the node binds (and announces).
    pub ip: String,
    /// Client port; the cluster bus is on `port + 10000`.
    pub port: u16,
    dir: PathBuf,
    args: Vec<String>,
    child: Mutex<Option<Child>>,
    stopped: AtomicBool,
    /// Cached connection for queries, so polling does not pile up TIME_WAIT sockets.
    conn: Mutex<Option<redis::Connection>>,
    id: OnceLock<String>,
}

impl Node {
    /// Starts a redis-server on `ip`, trying fresh ports until one binds.
    /// `args(port, dir)` gives the redis-server arguments for a candidate port.
    pub fn launch(ip: &str, root: &Path, args: impl Fn(u16, &Path) -> Vec<String>) -> Node {
        require_binary("redis-server", INSTALL);
        let loopback = ip
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback());
        assert!(
            loopback,
            "node IP {ip:?} is not in 127.0.0.0/8: tests stay on loopback"
        );
        let mut failures = Vec::new();
        for attempt in 0..START_ATTEMPTS {
            let port = next_port(if attempt == 0 { 1 } else { 97 });
            let dir = root.join(port.to_string());
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
            let node = Node {
                addr: format!("{ip}:{port}"),
                ip: ip.to_string(),
                port,
                args: args(port, &dir),
                dir,
                child: Mutex::new(None),
                stopped: AtomicBool::new(false),
                conn: Mutex::new(None),
                id: OnceLock::new(),
            };
            match node.spawn_process() {
                Ok(()) => {
                    // A standalone server (no --cluster-enabled) has no cluster id.
                    if node.args.iter().any(|a| a == "--cluster-enabled") {
                        let id = node.query(&["CLUSTER", "MYID"]);
                        let id = value_text(&id)
                            .unwrap_or_else(|| panic!("CLUSTER MYID of {}: {id:?}", node.addr));
                        node.id.get_or_init(|| id);
                    }
                    return node;
                }
                Err(why) => {
                    failures.push(why);
                    let _ = fs::remove_dir_all(&node.dir);
                }
            }
        }
        panic!("could not start redis-server on {ip} in {START_ATTEMPTS} attempts: {failures:#?}");
    }

    /// Spawns the process and waits until *this* process (checked by pid) answers.
    fn spawn_process(&self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path());
        let log = log.map_err(|e| format!("open the log of {}: {e}", self.addr))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("clone a file handle: {e}"))?;
        let mut cmd = Command::new("redis-server");
        cmd.args(&self.args).current_dir(&self.dir);
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        let mut child =
            spawn(cmd).map_err(|e| format!("spawn redis-server for {}: {e}", self.addr))?;
        let deadline = Instant::now() + LAUNCH_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let log = tail(&self.log_path(), 5);
                return Err(format!("{} exited at start ({status}):\n{log}", self.addr));
            }
            // Another process may own the port; only our own pid counts as started.
            if self.answering_pid() == Some(child.id()) {
                break;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{} not reachable within {LAUNCH_TIMEOUT:?}",
                    self.addr
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
        *lock(&self.child) = Some(child);
        *lock(&self.conn) = None;
        self.stopped.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// `process_id` from `INFO server` over a fresh connection, if anything answers.
    fn answering_pid(&self) -> Option<u32> {
        let mut conn = connect(&self.addr).ok()?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
        info_fields(&info).get("process_id")?.parse().ok()
    }

    /// The node's cluster id (stable across restarts: nodes.conf is kept).
    pub fn id(&self) -> &str {
        self.id.get().map(String::as_str).unwrap_or_default()
    }

    /// Pid of the running (or stopped) process, `None` after kill.
    pub fn pid(&self) -> Option<u32> {
        lock(&self.child).as_ref().map(Child::id)
    }

    fn live_pid(&self, what: &str) -> u32 {
        let pid = self.pid();
        pid.unwrap_or_else(|| panic!("{what}(): {} is not running", self.addr))
    }

    /// Whether the process exists (a SIGSTOPped process is alive).
    pub fn is_alive(&self) -> bool {
        let mut child = lock(&self.child);
        let exited = match child.as_mut() {
            None => return false,
            Some(c) => !matches!(c.try_wait(), Ok(None)),
        };
        if exited {
            // It died on its own (crash); try_wait has reaped it.
            *child = None;
        }
        !exited
    }

    /// Whether the process was SIGSTOPped by [`Node::stop`] and not continued.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }

    /// Alive and not stopped, so it can answer queries.
    pub fn is_running(&self) -> bool {
        self.is_alive() && !self.is_stopped()
    }

    /// SIGKILLs the process and reaps it; no-op if it is not alive.
    pub fn kill(&self) {
        if let Some(mut child) = lock(&self.child).take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        *lock(&self.conn) = None;
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// SIGSTOPs the process (it keeps its sockets but answers nothing).
    pub fn stop(&self) {
        signal(self.live_pid("stop"), libc::SIGSTOP);
        self.stopped.store(true, Ordering::SeqCst);
        *lock(&self.conn) = None;
    }

    /// SIGCONTs a stopped process.
    pub fn cont(&self) {
        signal(self.live_pid("cont"), libc::SIGCONT);
        self.stopped.store(false, Ordering::SeqCst);
    }

    /// Kills the process if alive and starts it again on the same port and dir (nodes.conf),
    /// so it rejoins the cluster with its old identity.
    pub fn restart(&self) {
        self.kill();
        let mut failures = Vec::new();
        for _ in 0..10 {
            match self.spawn_process() {
                Ok(()) => return,
                Err(why) => failures.push(why),
            }
            thread::sleep(Duration::from_millis(200));
        }
        panic!("could not restart {}: {failures:#?}", self.addr);
    }

    /// The role the node reports now; panics if it does not answer.
    pub fn role(&self) -> Role {
        self.try_role()
            .unwrap_or_else(|| panic!("{} did not answer ROLE", self.addr))
    }

    /// The role the node reports now, `None` if it does not answer.
    pub fn try_role(&self) -> Option<Role> {
        let reply = self.try_query(&["ROLE"], PROBE_TIMEOUT).ok()?;
        match reply {
            Value::Array(items) => match items.first().and_then(value_text).as_deref() {
                Some("master") => Some(Role::Master),
                Some("slave") => Some(Role::Replica),
                _ => None,
            },
            _ => None,
        }
    }

    /// Runs one command; the reply may be an error value. Panics on I/O errors.
    pub fn query(&self, args: &[&str]) -> Value {
        self.try_query(args, QUERY_TIMEOUT)
            .unwrap_or_else(|e| panic!("{args:?} on {}: {e}", self.addr))
    }

    /// Runs commands one after the other on the same connection (e.g. `ASKING` then `GET`).
    pub fn query_many(&self, commands: &[&[&str]]) -> Vec<Value> {
        let mut conn = connect(&self.addr).unwrap_or_else(|e| panic!("connect {}: {e}", self.addr));
        commands
            .iter()
            .map(|args| {
                conn.req_command(&cmd(args))
                    .unwrap_or_else(|e| panic!("{args:?} on {}: {e}", self.addr))
            })
            .collect()
    }

    /// Runs one command with a read timeout, reusing the cached connection.
    pub fn try_query(&self, args: &[&str], timeout: Duration) -> redis::RedisResult<Value> {
        let cached = lock(&self.conn).take();
        let mut conn = match cached {
            Some(conn) => conn,
            None => connect(&self.addr)?,
        };
        conn.set_read_timeout(Some(timeout))?;
        let reply = conn.req_command(&cmd(args))?;
        // Only a connection that answered cleanly is reused; after a timeout it is out of sync.
        *lock(&self.conn) = Some(conn);
        Ok(reply)
    }

    /// Runs a command and asserts that it answers `+OK`.
    pub fn ok(&self, args: &[&str]) {
        let reply = self.query(args);
        let shown = error_text(&reply).unwrap_or_else(|| format!("{reply:?}"));
        assert!(
            matches!(reply, Value::Okay),
            "{args:?} on {}: {shown}",
            self.addr
        );
    }

    /// `INFO <section>` as a field → value map; panics if the node does not answer.
    pub fn info(&self, section: &str) -> Fields {
        let fields = self.try_fields(&["INFO", section], QUERY_TIMEOUT);
        fields.unwrap_or_else(|e| panic!("INFO {section}: {e}"))
    }

    /// A numeric field of `INFO <section>`; panics if the node does not answer or lacks it.
    pub fn info_i64(&self, section: &str, field: &str) -> i64 {
        let info = self.info(section);
        let value = info
            .get(field)
            .unwrap_or_else(|| panic!("no {field} in INFO {section} of {}", self.addr));
        value
            .parse()
            .unwrap_or_else(|_| panic!("{field}:{value} in INFO {section} of {}", self.addr))
    }

    /// `CLUSTER INFO` as a field → value map; panics if the node does not answer.
    pub fn cluster_info(&self) -> Fields {
        let fields = self.try_fields(&["CLUSTER", "INFO"], QUERY_TIMEOUT);
        fields.unwrap_or_else(|e| panic!("CLUSTER INFO: {e}"))
    }

    /// Runs a command that answers `field:value` lines (INFO, CLUSTER INFO) and parses them.
    pub fn try_fields(&self, args: &[&str], timeout: Duration) -> Result<Fields, String> {
        let reply = self
            .try_query(args, timeout)
            .map_err(|e| format!("{}: {e}", self.addr))?;
        let text = value_text(&reply)
            .ok_or_else(|| format!("{}: INFO {args:?} replied {reply:?}", self.addr))?;
        Ok(info_fields(&text))
    }

    /// The node's data dir (holds nodes.conf and redis.log).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file that receives the process's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }
}

fn connect(addr: &str) -> redis::RedisResult<redis::Connection> {
    let conn = redis::Client::open(format!("redis://{addr}/"))?
        .get_connection_with_timeout(PROBE_TIMEOUT)?;
    conn.set_read_timeout(Some(PROBE_TIMEOUT))?;
    conn.set_write_timeout(Some(PROBE_TIMEOUT))?;
    Ok(conn)
}

/// `field:value` lines (INFO, CLUSTER INFO) keyed by field; later duplicates win.
pub fn info_fields(text: &str) -> Fields {
    text.lines()
        .filter_map(|line| line.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
