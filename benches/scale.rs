//! Scale figures: memory per idle client, and latency with many active clients at a steady
//! offered rate, through the meridian binary (1 and 2 workers) beside the same load sent to the
//! redis-server directly, all in one run.
//!
//! `cargo bench --bench scale` uses 10,000 clients and 20,000 GET/s for 10 s per target (change
//! with MERIDIAN_SCALE_CLIENTS, MERIDIAN_SCALE_RATE, MERIDIAN_SCALE_SECONDS); under `cargo test`
//! a 200-client smoke run. Figures are printed, never asserted. The load is open
//! loop: every client sends on its own fixed schedule and latency counts from the scheduled
//! send time, so a stall shows in the percentiles instead of slowing the load down.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use support::{Node, call, encode, free_port, rss_kib, start_node, wait_for};

/// How big a run is.
struct Plan {
    clients: usize,
    rate: u64,
    seconds: u64,
}

/// The meridian binary as a child process; killed on drop.
struct Gateway {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_gateway(node_port: u16, workers: usize) -> Gateway {
    let port = free_port();
    let dir = std::env::temp_dir().join(format!("meridian-scale-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the gateway's dir");
    let config = dir.join("meridian.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nworkers: {workers}\ncluster:\n  seeds: [\"127.0.0.1:{node_port}\"]\n\
             client:\n  max_clients: 20000\nadmin:\n  listen: 127.0.0.1:0\n"
        ),
    )
    .expect("write the gateway's config");
    let child = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .arg("serve")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start meridian");
    let gw = Gateway { child, port, dir };
    wait_for("meridian to answer PING", || {
        call(port, &["PING"]).is_ok_and(|r| r.starts_with("+PONG"))
    });
    gw
}

/// Opens `n` connections, each answering one PING (so the server really holds a session).
async fn open_clients(port: u16, n: usize) -> Vec<TcpStream> {
    let ping = encode(&["PING"]);
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect (raise ulimit -n?)");
        s.set_nodelay(true).expect("nodelay");
        s.write_all(&ping).await.expect("PING");
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.expect("PONG");
        conns.push(s);
    }
    conns
}

/// Every connection sends GET on its own schedule (the rate split evenly, start times
/// staggered); returns each request's latency from its scheduled time, in µs.
async fn steady_load(conns: Vec<TcpStream>, plan: &Plan) -> Vec<u32> {
    let get = Arc::new(encode(&["GET", "scale:{k}"]));
    let period = Duration::from_secs_f64(conns.len() as f64 / plan.rate as f64);
    let per_conn = (plan.seconds as f64 / period.as_secs_f64())
        .floor()
        .max(1.0) as usize;
    let start = Instant::now() + Duration::from_millis(200);
    let n = conns.len();
    let mut tasks = Vec::with_capacity(n);
    for (i, mut s) in conns.into_iter().enumerate() {
        let get = get.clone();
        let first = start + period.mul_f64(i as f64 / n as f64);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_conn);
            let mut buf = [0u8; 64];
            let reply = b"$3\r\nabc\r\n";
            for k in 0..per_conn {
                let at = first + period * k as u32;
                tokio::time::sleep_until(at).await;
                if s.write_all(&get).await.is_err() {
                    break;
                }
                if s.read_exact(&mut buf[..reply.len()]).await.is_err() {
                    break;
                }
                assert_eq!(&buf[..reply.len()], reply, "GET reply");
                lat.push(at.elapsed().as_micros().min(u32::MAX as u128) as u32);
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("client task"));
    }
    all
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i] as f64 / 1000.0
}

/// One target: RSS before and with the clients idle, then the steady load.
async fn target(name: &str, port: u16, pid: u32, plan: &Plan) {
    let before = rss_kib(pid);
    let conns = open_clients(port, plan.clients).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = rss_kib(pid);
    let mut lat = steady_load(conns, plan).await;
    lat.sort_unstable();
    let expected = plan.rate * plan.seconds;
    println!(
        "| {name} | {:.1} | {:.1} | {:.2} | {} of ~{expected} | {:.3} | {:.3} | {:.3} |",
        before as f64 / 1024.0,
        idle as f64 / 1024.0,
        (idle.saturating_sub(before)) as f64 / plan.clients as f64,
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
    );
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut plan = if full {
        Plan {
            clients: 10_000,
            rate: 20_000,
            seconds: 10,
        }
    } else {
        Plan {
            clients: 200,
            rate: 2_000,
            seconds: 1,
        }
    };
    // Other shapes of the same run, e.g. 50 clients at 20,000 GET/s for the latency row.
    if let Some(n) = env("MERIDIAN_SCALE_CLIENTS") {
        plan.clients = n as usize;
    }
    if let Some(n) = env("MERIDIAN_SCALE_RATE") {
        plan.rate = n.max(1);
    }
    if let Some(n) = env("MERIDIAN_SCALE_SECONDS") {
        plan.seconds = n.max(1);
    }
    let (node, node_port): (Node, u16) = start_node();
    let set = call(node_port, &["SET", "scale:{k}", "abc"]).expect("SET the key");
    assert!(set.starts_with("+OK"), "SET: {set}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");
    println!(
        "{} clients, {} GET/s for {} s per target (open loop), one-node redis-server cluster",
        plan.clients, plan.rate, plan.seconds
    );
    println!(
        "| target | RSS before MiB | RSS with clients idle MiB | KiB per idle client | replies | p50 ms | p99 ms | p99.9 ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    rt.block_on(target("redis-server direct", node_port, node.pid(), &plan));
    for workers in [1, 2] {
        let gw = start_gateway(node_port, workers);
        let name = format!(
            "meridian, {workers} worker{}",
            if workers > 1 { "s" } else { "" }
        );
        rt.block_on(target(&name, gw.port, gw.child.id(), &plan));
    }
}
