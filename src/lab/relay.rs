//! The delay relay: a TCP proxy in front of one node port that makes inter-DC latency real.
//!
//! The kernel here has no `netem`, so latency is added in user space. The relay listens on
//! the node's own address at the relay port, and for each connection looks at the connecting
//! side's source address: its DC (by the topology's ranges) and the node's DC give the link,
//! and each direction's bytes are held for half the link's round-trip latency, so the RTT a
//! client measures equals the matrix. A partitioned DC's links stop moving bytes in both
//! directions (held, as TCP would retransmit them, and delivered after the heal). Latencies and
//! partitions change at run time through a [`Links`] handle.
//!
//! The upstream socket is bound to the client's own address, so the node sees who connects.
//! Sources outside every range (127.0.0.1: observers, a user's redis-cli) get no delay and are
//! never partitioned.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ipnet::Ipv4Net;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Chunks in flight per direction before the relay stops reading (back pressure).
const CHUNKS_IN_FLIGHT: usize = 256;
/// Bytes read at once.
const CHUNK: usize = 16 * 1024;
/// Delays below this are not slept: the timer's 1 ms granularity would only add to them.
const MIN_SLEEP: Duration = Duration::from_micros(500);
/// Bound on connecting to the node behind the relay.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(2);

/// The state of every inter-DC link: latency and partitions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LinkState {
    /// Round-trip latency in ms per unordered DC pair (stored both ways).
    pub latency_ms: BTreeMap<(String, String), f64>,
    /// DCs cut off from every other DC.
    pub partitioned: BTreeSet<String>,
}

impl LinkState {
    /// The matrix of a topology, nothing partitioned.
    pub fn from_matrix(matrix: &BTreeMap<String, BTreeMap<String, f64>>) -> LinkState {
        let mut latency_ms = BTreeMap::new();
        for (a, row) in matrix {
            for (b, ms) in row {
                latency_ms.insert((a.clone(), b.clone()), *ms);
            }
        }
        LinkState {
            latency_ms,
            partitioned: BTreeSet::new(),
        }
    }

    /// Sets the round-trip latency between `a` and `b` (both directions).
    pub fn set_latency(&mut self, a: &str, b: &str, ms: f64) {
        self.latency_ms.insert((a.to_string(), b.to_string()), ms);
        self.latency_ms.insert((b.to_string(), a.to_string()), ms);
    }

    /// Round-trip latency between two DCs; 0 when either is unknown.
    pub fn rtt_ms(&self, a: Option<&str>, b: &str) -> f64 {
        let Some(a) = a else { return 0.0 };
        self.latency_ms
            .get(&(a.to_string(), b.to_string()))
            .copied()
            .unwrap_or(0.0)
    }

    /// The delay of one direction: half the round trip.
    pub fn one_way(&self, a: Option<&str>, b: &str) -> Duration {
        Duration::from_secs_f64(self.rtt_ms(a, b).max(0.0) / 2000.0)
    }

    /// Whether traffic between `a` and `b` is cut: they differ and one side is partitioned.
    pub fn blocked(&self, a: Option<&str>, b: &str) -> bool {
        let Some(a) = a else { return false };
        a != b && (self.partitioned.contains(a) || self.partitioned.contains(b))
    }
}

/// Shared, changeable link state: one sender, a receiver per relay direction.
#[derive(Clone)]
pub struct Links {
    tx: Arc<watch::Sender<LinkState>>,
}

impl Links {
    /// Links starting in `state`.
    pub fn new(state: LinkState) -> Links {
        Links {
            tx: Arc::new(watch::channel(state).0),
        }
    }

    /// The current state.
    pub fn get(&self) -> LinkState {
        self.tx.borrow().clone()
    }

    /// Changes the state; every relay sees it for the next bytes it moves.
    pub fn update(&self, change: impl FnOnce(&mut LinkState)) {
        self.tx.send_modify(change);
    }

    fn watch(&self) -> watch::Receiver<LinkState> {
        self.tx.subscribe()
    }
}

/// Which DC each loopback range belongs to.
#[derive(Debug, Clone)]
pub struct DcMap(pub Vec<(String, Ipv4Net)>);

impl DcMap {
    /// The DC of `ip`, if any range holds it.
    pub fn dc_of(&self, ip: IpAddr) -> Option<String> {
        let IpAddr::V4(v4) = ip else { return None };
        self.0
            .iter()
            .find(|(_, net)| net.contains(&v4))
            .map(|(name, _)| name.clone())
    }
}

/// One relay: where it listens, the node behind it, and the node's DC.
#[derive(Debug, Clone)]
pub struct RelaySpec {
    /// The relay's listener (bound by the caller, so bind errors surface at start).
    pub listen: SocketAddr,
    /// The node port behind it.
    pub upstream: SocketAddr,
    /// The node's DC.
    pub node_dc: String,
}

/// Binds the relay's listener.
pub async fn bind(spec: &RelaySpec) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(spec.listen)?;
    socket.listen(1024)
}

/// Accepts connections until the task is aborted; each is relayed on its own task, and all of
/// them end with this one (they live in its `JoinSet`).
pub async fn run(listener: TcpListener, spec: RelaySpec, dcs: Arc<DcMap>, links: Links) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((client, peer)) = accepted else {
                    // Out of descriptors or similar: back off rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let client_dc = dcs.dc_of(peer.ip());
                conns.spawn(relay_one(client, peer, spec.clone(), client_dc, links.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn relay_one(
    client: TcpStream,
    peer: SocketAddr,
    spec: RelaySpec,
    client_dc: Option<String>,
    links: Links,
) {
    let node_dc = spec.node_dc.clone();
    // A partitioned client gets silence, like a SYN that is never answered: its connection is
    // accepted by the kernel anyway, so the relay just does not connect upstream until healed.
    let mut watch = links.watch();
    if !wait_open(&mut watch, client_dc.as_deref(), &node_dc).await {
        return;
    }
    let Ok(upstream) = connect_upstream(peer.ip(), spec.upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (c_rd, c_wr) = client.into_split();
    let (n_rd, n_wr) = upstream.into_split();
    let to_node = pipe(
        c_rd,
        n_wr,
        client_dc.clone(),
        node_dc.clone(),
        links.clone(),
    );
    let to_client = pipe(n_rd, c_wr, client_dc, node_dc, links);
    tokio::pin!(to_node, to_client);
    // An error on one side ends both (like a reset); a clean close lets the other finish.
    tokio::select! {
        r = &mut to_node => if r.is_ok() { let _ = to_client.await; },
        r = &mut to_client => if r.is_ok() { let _ = to_node.await; },
    }
}

async fn connect_upstream(source: IpAddr, upstream: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Binding to the client's address lets the node see who it is; if that fails (another
    // address family, exhausted ports), connecting from anywhere still works.
    if socket.bind(SocketAddr::new(source, 0)).is_err() {
        let socket = TcpSocket::new_v4()?;
        return timeout_connect(socket, upstream).await;
    }
    timeout_connect(socket, upstream).await
}

async fn timeout_connect(socket: TcpSocket, to: SocketAddr) -> std::io::Result<TcpStream> {
    tokio::time::timeout(UPSTREAM_CONNECT, socket.connect(to))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Waits until the link is not partitioned; false if the link state is gone (shutdown).
async fn wait_open(watch: &mut watch::Receiver<LinkState>, a: Option<&str>, b: &str) -> bool {
    loop {
        if !watch.borrow_and_update().blocked(a, b) {
            return true;
        }
        if watch.changed().await.is_err() {
            return false;
        }
    }
}

/// Moves bytes one way, each chunk held until its due time (read time + one-way delay).
async fn pipe(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    client_dc: Option<String>,
    node_dc: String,
    links: Links,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(CHUNKS_IN_FLIGHT);
    let (a, b) = (client_dc.as_deref(), node_dc.as_str());
    let mut read_watch = links.watch();
    let mut write_watch = links.watch();
    let reader = async {
        loop {
            if !wait_open(&mut read_watch, a, b).await {
                return Ok::<(), std::io::Error>(());
            }
            let mut buf = BytesMut::with_capacity(CHUNK);
            if rd.read_buf(&mut buf).await? == 0 {
                return Ok(());
            }
            let due = Instant::now() + read_watch.borrow().one_way(a, b);
            if tx.send((due, buf.freeze())).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async {
        while let Some((due, data)) = rx.recv().await {
            if due.saturating_duration_since(Instant::now()) >= MIN_SLEEP {
                tokio::time::sleep_until(due).await;
            }
            if !wait_open(&mut write_watch, a, b).await {
                return Ok::<(), std::io::Error>(());
            }
            wr.write_all(&data).await?;
        }
        wr.shutdown().await
    };
    // The writer ends when the reader's sender is dropped (EOF) or on a write error; a write
    // error must also stop the reader, hence select rather than join.
    tokio::pin!(reader, writer);
    tokio::select! {
        r = &mut reader => {
            r?;
            writer.await
        }
        w = &mut writer => w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> LinkState {
        let mut matrix = BTreeMap::new();
        matrix.insert(
            "east".to_string(),
            BTreeMap::from([("east".to_string(), 0.2), ("west".to_string(), 40.0)]),
        );
        matrix.insert(
            "west".to_string(),
            BTreeMap::from([("east".to_string(), 40.0), ("west".to_string(), 0.2)]),
        );
        LinkState::from_matrix(&matrix)
    }

    #[test]
    fn delays_are_half_the_round_trip() {
        let mut s = state();
        assert_eq!(s.one_way(Some("east"), "west"), Duration::from_millis(20));
        assert_eq!(s.one_way(None, "west"), Duration::ZERO);
        s.set_latency("west", "east", 300.0);
        assert_eq!(s.rtt_ms(Some("east"), "west"), 300.0);
    }

    #[test]
    fn partitions_cut_only_cross_dc_links() {
        let mut s = state();
        s.partitioned.insert("east".into());
        assert!(s.blocked(Some("east"), "west"));
        assert!(s.blocked(Some("west"), "east"));
        assert!(!s.blocked(Some("east"), "east"));
        assert!(!s.blocked(None, "east"));
    }

    #[test]
    fn maps_sources_to_dcs() {
        let map = DcMap(vec![("east".into(), "127.0.1.0/24".parse().unwrap())]);
        assert_eq!(
            map.dc_of("127.0.1.100".parse().unwrap()).as_deref(),
            Some("east")
        );
        assert_eq!(map.dc_of("127.0.0.1".parse().unwrap()), None);
    }

    #[tokio::test]
    async fn relays_with_the_link_delay_and_holds_during_a_partition() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        // 127.0.0.1 is "east" here, the node "west": 40 ms round trip.
        let dcs = Arc::new(DcMap(vec![(
            "east".into(),
            "127.0.0.0/24".parse().unwrap(),
        )]));
        let links = Links::new(state());
        let spec = RelaySpec {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream,
            node_dc: "west".into(),
        };
        let listener = bind(&spec).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(run(listener, spec, dcs, links.clone()));
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 4];
        let start = Instant::now();
        c.write_all(b"ping").await.unwrap();
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert!(
            start.elapsed() >= Duration::from_millis(40),
            "{:?}",
            start.elapsed()
        );
        links.update(|s| {
            s.partitioned.insert("west".into());
        });
        c.write_all(b"pong").await.unwrap();
        let held = tokio::time::timeout(Duration::from_millis(150), c.read_exact(&mut buf)).await;
        assert!(held.is_err(), "bytes crossed a partition");
        links.update(|s| s.partitioned.clear());
        c.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"pong");
        task.abort();
    }
}
