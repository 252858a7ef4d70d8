//! A name server on loopback for tests: it answers A questions for the names a test gives it
//! (TTL 1 s, so a resolver asks again soon), NXDOMAIN for any other name, and counts the
//! questions asked per name. Messages are read and written with hickory's own codec (the
//! resolver's crate), over UDP.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::A;
use hickory_resolver::proto::rr::{RData, Record, RecordType};

/// TTL of every answer, in seconds.
pub const TTL: u32 = 1;

#[derive(Default)]
struct Zone {
    answers: HashMap<String, Vec<Ipv4Addr>>,
    asked: HashMap<String, usize>,
    /// Names whose questions are counted and never answered (a name server that is down).
    silent: HashSet<String>,
}

/// The server; stops when dropped.
pub struct NameServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl NameServer {
    /// Listens on a free UDP port of 127.0.0.1.
    pub fn start() -> NameServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the test name server");
        // Bounds how long a stop waits for the thread.
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, stop) = (zone.clone(), stop.clone());
            std::thread::spawn(move || serve(&socket, &zone, &stop))
        };
        NameServer {
            addr,
            zone,
            stop,
            thread: Some(thread),
        }
    }

    /// Where it listens (`ip:port`, as `dns.nameservers` takes it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `name` resolves to `ips` from now on.
    pub fn set(&self, name: &str, ips: &[&str]) {
        let ips = ips.iter().map(|ip| ip.parse().expect("an IPv4 address"));
        let mut zone = self.zone.lock().unwrap();
        zone.answers.insert(key(name), ips.collect());
    }

    /// `name` no longer exists (NXDOMAIN).
    pub fn remove(&self, name: &str) {
        self.zone.lock().unwrap().answers.remove(&key(name));
    }

    /// Questions for `name` go unanswered from now on (`false`: answered again).
    pub fn silence(&self, name: &str, silent: bool) {
        let mut zone = self.zone.lock().unwrap();
        match silent {
            true => zone.silent.insert(key(name)),
            false => zone.silent.remove(&key(name)),
        };
    }

    /// Questions asked for `name` so far (any type).
    pub fn asked(&self, name: &str) -> usize {
        let zone = self.zone.lock().unwrap();
        zone.asked.get(&key(name)).copied().unwrap_or(0)
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn serve(socket: &UdpSocket, zone: &Mutex<Zone>, stop: &AtomicBool) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = socket.recv_from(&mut buf) else {
            continue;
        };
        if let Some(reply) = answer(&buf[..n], zone) {
            let _ = socket.send_to(&reply, from);
        }
    }
}

/// The reply to one query message (`None` for what is not a query).
fn answer(query: &[u8], zone: &Mutex<Zone>) -> Option<Vec<u8>> {
    let query = Message::from_vec(query).ok()?;
    let question = query.queries.first()?.clone();
    let name = key(&question.name().to_ascii());
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.add_query(question.clone());
    let mut zone = zone.lock().unwrap();
    *zone.asked.entry(name.clone()).or_default() += 1;
    if zone.silent.contains(&name) {
        return None;
    }
    match zone.answers.get(&name) {
        // A name with addresses has no AAAA records: an empty answer, not an error.
        Some(ips) if question.query_type() == RecordType::A => {
            for ip in ips {
                let rdata = RData::A(A(*ip));
                reply.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
            }
        }
        Some(_) => {}
        None => reply.metadata.response_code = ResponseCode::NXDomain,
    }
    reply.to_vec().ok()
}
