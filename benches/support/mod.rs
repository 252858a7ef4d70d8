//! What the benches that drive a real gateway share: a one-node redis-server cluster owning
//! every slot, free loopback ports, and blocking one-line commands for setup.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Bound on waiting for redis-server and meridian to come up.
pub const START_WAIT: Duration = Duration::from_secs(30);

/// A redis-server in cluster mode owning every slot; killed on drop.
pub struct Node {
    child: Child,
    dir: PathBuf,
}

impl Node {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that is free now (and whose cluster bus port +10000 exists).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("bind a loopback port");
        if port < 55_000 {
            return port;
        }
    }
    panic!("no free loopback port below 55000 in 100 tries");
}

/// Sends one command and reads one reply line (enough for the setup commands).
pub fn call(port: u16, args: &[&str]) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(&encode(args))?;
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

pub fn wait_for(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + START_WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "{what} within {START_WAIT:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn start_node() -> (Node, u16) {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("meridian-alloc-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the node's dir");
    let child = Command::new("redis-server")
        .args(["--maxclients", "20000"])
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--cluster-enabled",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("redis-server not found or not startable ({e}); apt-get install redis-server")
        });
    let node = Node { child, dir };
    wait_for("redis-server to answer PING", || {
        call(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG"))
    });
    let added = call(port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).expect("ADDSLOTSRANGE");
    assert!(added.starts_with("+OK"), "ADDSLOTSRANGE: {added}");
    wait_for("the one-node cluster to be ok", || {
        call(port, &["CLUSTER", "INFO"]).is_ok_and(|r| r.contains("cluster_state:ok"))
    });
    (node, port)
}

/// Resident memory of process `pid` now (VmRSS), in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}
