//! One standalone redis-server (cluster mode off), the reference meridian's answers are compared with.

use super::raw::{Raw, encode};
use super::{INSTALL, LAUNCH_TIMEOUT, START_ATTEMPTS, TempDir, next_port, require_binary, spawn};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A running standalone redis-server on 127.0.0.1; dropping it kills the process.
pub struct Standalone {
    /// `"127.0.0.1:port"`.
    pub addr: String,
    child: Child,
    _dir: TempDir,
}

impl Standalone {
    /// Starts a redis-server with `args` added (e.g. `&["--notify-keyspace-events", "Ex"]`),
    /// trying fresh ports until one binds.
    pub fn start(args: &[&str]) -> Standalone {
        require_binary("redis-server", INSTALL);
        let dir = TempDir::new();
        let mut failures = Vec::new();
        for attempt in 0..START_ATTEMPTS {
            let port = next_port(if attempt == 0 { 1 } else { 97 }).to_string();
            let mut cmd = Command::new("redis-server");
            #[rustfmt::skip]
            cmd.args([
                "--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--protected-mode", "no", "--daemonize", "no",
            ]);
            cmd.args(args).current_dir(dir.path());
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = match spawn(cmd) {
                Ok(child) => child,
                Err(e) => panic!("spawn redis-server: {e}"),
            };
            let addr = format!("127.0.0.1:{port}");
            let deadline = Instant::now() + LAUNCH_TIMEOUT;
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    failures.push(format!("{addr}: exited at start ({status})"));
                    break;
                }
                // Another process may own the port; only our own pid counts as started.
                if answering_pid(&addr) == Some(child.id()) {
                    return Standalone {
                        addr,
                        child,
                        _dir: dir,
                    };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    failures.push(format!("{addr}: not reachable within {LAUNCH_TIMEOUT:?}"));
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("could not start a standalone redis-server: {failures:#?}");
    }

    /// A raw client connected to it.
    pub fn raw(&self) -> Raw {
        Raw::connect(&self.addr)
    }
}

/// `process_id` from `INFO server` of whatever answers at `addr`.
fn answering_pid(addr: &str) -> Option<u32> {
    let mut raw = Raw::try_connect(addr).ok()?;
    let reply = raw.try_request(&encode(&["INFO", "server"])).ok()?;
    let text = String::from_utf8_lossy(&reply).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
}

impl Drop for Standalone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
