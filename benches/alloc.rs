//! Heap allocations per request on the GET/SET path, counted by a counting global allocator
//! while a real meridian (in this process) serves a client in front of a real one-node
//! redis-server cluster.
//!
//! `cargo bench --bench alloc` runs 200,000 requests per load; under `cargo test` it runs 2,000
//! (a smoke run). The figure printed is allocations (alloc + realloc) in the whole process per
//! request, less what the process allocates when idle for as long (the refresher and prober).
//! It is measured, never asserted.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use meridian::config::Config;
use support::{call, encode, free_port, start_node, wait_for};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the counter is an atomic
// that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts meridian (one worker, metrics on) in this process's threads; returns its port.
fn start_meridian(node_port: u16) -> u16 {
    let port = free_port();
    let yaml = format!(
        "listen: 127.0.0.1:{port}\nworkers: 1\ncluster:\n  seeds: [\"127.0.0.1:{node_port}\"]\nadmin:\n  listen: 127.0.0.1:0\n"
    );
    let config = Config::parse(&yaml, "alloc bench").expect("bench config");
    std::thread::spawn(move || {
        if let Err(e) = meridian::server::run(config, None) {
            eprintln!("meridian stopped: {e}");
        }
    });
    wait_for("meridian to answer PING", || {
        call(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG"))
    });
    port
}

/// A client that sends pre-encoded requests and reads replies of known length into a fixed
/// buffer: it allocates nothing while measuring.
struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to meridian");
        stream.set_nodelay(true).expect("nodelay");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        Client {
            stream,
            buf: vec![0; 1 << 20],
        }
    }

    /// Writes `batch` and reads exactly `reply_len` bytes back, checking them.
    fn round(&mut self, batch: &[u8], expect: &[u8]) {
        self.stream.write_all(batch).expect("write requests");
        let got = &mut self.buf[..expect.len()];
        self.stream.read_exact(got).expect("read replies");
        assert!(got == expect, "unexpected reply bytes");
    }
}

/// One load: `requests` requests in batches of `depth`; allocations per request, net of idle.
fn measure(client: &mut Client, name: &str, one: &[u8], reply: &[u8], depth: usize, n: usize) {
    let batch: Vec<u8> = one.repeat(depth);
    let expect: Vec<u8> = reply.repeat(depth);
    let rounds = (n / depth).max(1);
    for _ in 0..(rounds / 10).max(10) {
        client.round(&batch, &expect);
    }
    let a0 = ALLOCS.load(Ordering::Relaxed);
    let t0 = Instant::now();
    for _ in 0..rounds {
        client.round(&batch, &expect);
    }
    let busy = t0.elapsed();
    let used = ALLOCS.load(Ordering::Relaxed) - a0;
    // What the gateway's background tasks allocate in as long without requests.
    let i0 = ALLOCS.load(Ordering::Relaxed);
    std::thread::sleep(busy);
    let idle = ALLOCS.load(Ordering::Relaxed) - i0;
    let requests = (rounds * depth) as f64;
    println!(
        "{name:<16} {:>9} requests  {:>8} allocations ({idle} when idle as long)  {:.3} per request",
        rounds * depth,
        used,
        used.saturating_sub(idle) as f64 / requests
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n = if full { 200_000 } else { 2_000 };
    let (_node, node_port) = start_node();
    let port = start_meridian(node_port);
    let mut client = Client::connect(port);
    let set = encode(&["SET", "alloc:{k}", "abc"]);
    let get = encode(&["GET", "alloc:{k}"]);
    println!("heap allocations per request through meridian (whole process, net of idle):");
    measure(&mut client, "SET", &set, b"+OK\r\n", 1, n);
    measure(&mut client, "GET", &get, b"$3\r\nabc\r\n", 1, n);
    measure(&mut client, "SET pipeline 16", &set, b"+OK\r\n", 16, n * 5);
    measure(
        &mut client,
        "GET pipeline 16",
        &get,
        b"$3\r\nabc\r\n",
        16,
        n * 5,
    );
}
