//! Scripted fake Redis Cluster nodes for fault tests that a real redis-server cannot stage on
//! demand: a reply cut in half, a node that never answers, a MOVED storm.
//!
//! A [`FakeNode`] listens on 127.0.0.1:0, claims every slot for itself in `CLUSTER SLOTS`, says
//! `cluster_state:ok`, refuses `COMMAND` (so meridian falls back to its built-in table), and
//! hands every other request to the test's script. Threads stop when the fake is dropped.
//! A test crate that declares `mod fakes;` declares `mod common;` too: tests talk to fakes (and
//! to meridian in front of them) with the raw client in `common::raw`.
// Not every test file uses every helper.
#![allow(dead_code)]

pub mod probe;
pub mod resp;

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// How often fake threads look at their stop flag.
const TICK: Duration = Duration::from_millis(20);
/// Bound on connections one fake serves (each one is a thread).
const MAX_CONNECTIONS: usize = 1000;

/// What the fake does with one request.
#[derive(Clone, Debug)]
pub enum Action {
    /// Answer these bytes (complete RESP, or deliberately not).
    Reply(Vec<u8>),
    /// Answer these bytes, then close the connection.
    ReplyThenClose(Vec<u8>),
    /// Never answer: keep the connection open and ignore everything that follows on it.
    Hang,
    /// Close the connection without answering.
    Close,
}

/// Decides the fate of a request (its arguments; then the fake's own `ip:port`, for
/// redirections to itself); `None` falls back to the defaults.
pub type Script = dyn Fn(&[Vec<u8>], &str) -> Option<Action> + Send + Sync;

/// A fake cluster node owning all 16384 slots.
pub struct FakeNode {
    addr: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Vec<String>>>>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl FakeNode {
    /// Starts the fake; `script` sees every request first.
    pub fn start(
        script: impl Fn(&[Vec<u8>], &str) -> Option<Action> + Send + Sync + 'static,
    ) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a fake node");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local addr").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::new(Mutex::new(Vec::new()));
        let script: Arc<Script> = Arc::new(script);
        let acceptor = {
            let (stop, seen, threads, addr) =
                (stop.clone(), seen.clone(), threads.clone(), addr.clone());
            thread::spawn(move || {
                let mut served = 0;
                while !stop.load(Ordering::SeqCst) && served < MAX_CONNECTIONS {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            served += 1;
                            let (stop, seen, script, addr) =
                                (stop.clone(), seen.clone(), script.clone(), addr.clone());
                            let handle =
                                thread::spawn(move || serve(stream, &addr, &*script, &seen, &stop));
                            threads.lock().unwrap().push(handle);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(TICK),
                        Err(_) => thread::sleep(TICK),
                    }
                }
            })
        };
        FakeNode {
            addr,
            stop,
            seen,
            threads,
            acceptor: Some(acceptor),
        }
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Every request received so far (arguments as lossy text), in arrival order.
    pub fn seen(&self) -> Vec<Vec<String>> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests received so far were exactly `args` (command name case-insensitive).
    pub fn count(&self, args: &[&str]) -> usize {
        let same = |req: &Vec<String>| {
            req.len() == args.len()
                && req[0].eq_ignore_ascii_case(args[0])
                && req[1..].iter().zip(&args[1..]).all(|(a, b)| a == b)
        };
        self.seen.lock().unwrap().iter().filter(|r| same(r)).count()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let threads: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// The answers every fake gives unless the script says otherwise.
fn default_action(args: &[Vec<u8>], addr: &str) -> Action {
    let name = String::from_utf8_lossy(&args[0]).to_uppercase();
    let sub = args
        .get(1)
        .map(|s| String::from_utf8_lossy(s).to_uppercase())
        .unwrap_or_default();
    let (ip, port) = addr.rsplit_once(':').unwrap();
    let reply = match (name.as_str(), sub.as_str()) {
        ("CLUSTER", "SLOTS") => format!(
            "*1\r\n*3\r\n:0\r\n:16383\r\n*3\r\n${}\r\n{ip}\r\n:{port}\r\n$40\r\n{}\r\n",
            ip.len(),
            "f".repeat(40)
        )
        .into_bytes(),
        ("CLUSTER", "INFO") => {
            let text = "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:1\r\n";
            format!("${}\r\n{text}\r\n", text.len()).into_bytes()
        }
        ("COMMAND", _) => b"-ERR fake node: COMMAND is not scripted\r\n".to_vec(),
        ("PING", _) => b"+PONG\r\n".to_vec(),
        ("ASKING" | "AUTH" | "READONLY", _) => b"+OK\r\n".to_vec(),
        // Enough of a RESP3 handshake for a RESP3 client's backend connection.
        ("HELLO", _) => b"%1\r\n$6\r\nserver\r\n$4\r\nfake\r\n".to_vec(),
        ("INFO", _) => b"$12\r\n# Keyspace\r\n\r\n".to_vec(),
        _ => format!("-ERR fake node: unscripted command '{name}'\r\n").into_bytes(),
    };
    Action::Reply(reply)
}

/// Serves one connection until it is closed by either side or the fake stops.
fn serve(
    mut stream: TcpStream,
    addr: &str,
    script: &Script,
    seen: &Mutex<Vec<Vec<String>>>,
    stop: &AtomicBool,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(TICK));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut hung = false;
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) if hung => {
                let _ = n;
                continue;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        let mut out = Vec::new();
        let mut close = false;
        while let Some((args, len)) = resp::parse_request(&buf) {
            buf.drain(..len);
            if args.is_empty() {
                continue;
            }
            seen.lock().unwrap().push(
                args.iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect(),
            );
            match script(&args, addr).unwrap_or_else(|| default_action(&args, addr)) {
                Action::Reply(bytes) => out.extend_from_slice(&bytes),
                Action::ReplyThenClose(bytes) => {
                    out.extend_from_slice(&bytes);
                    close = true;
                    break;
                }
                Action::Close => {
                    close = true;
                    break;
                }
                Action::Hang => {
                    hung = true;
                    break;
                }
            }
        }
        if !out.is_empty() && stream.write_all(&out).is_err() {
            return;
        }
        if close {
            close_cleanly(&mut stream, stop);
            return;
        }
    }
}

/// Closes like a dying server whose kernel still delivers what was written: FIN first, then
/// read and drop whatever the peer still sends until it closes too (bounded). A plain close
/// with unread input would send a RST, which makes the peer's kernel discard replies it has
/// not read yet, so the test could not tell what the gateway did from what TCP did.
fn close_cleanly(stream: &mut TcpStream, stop: &AtomicBool) {
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 16 * 1024];
    for _ in 0..250 {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
}
