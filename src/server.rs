//! Starting and stopping the gateway: worker threads with their listeners (plain and/or TLS)
//! and the hand-over of clients between them, the refresher, the admin endpoint, the config
//! watch, reload on SIGHUP, certificate reloads, and graceful shutdown on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tracing::{debug, error, info, warn};

use crate::config::{Config, Overrides};
use crate::notify::LocalNotify;
use crate::router::worker::Worker;
use crate::session;
use crate::shared::Shared;
use crate::tls::acceptor::HandshakeError;
use crate::tls::{ServerTls, TlsState};
use crate::topology::{refresh, resolve};

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long startup waits for a first cluster map before serving anyway.
const FIRST_MAP_WAIT: Duration = Duration::from_secs(5);
/// Longest wait at start for the DC host names' first answers (a dead name server delays the
/// start by this much; its lookups go on in the background).
const FIRST_NAMES_WAIT: Duration = Duration::from_secs(2);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid listen address '{0}'")]
    BadListen(String),
    #[error("cannot listen on {addr}: {err}")]
    Bind { addr: String, err: std::io::Error },
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("worker {0} failed to start")]
    Worker(usize),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error(transparent)]
    Watch(#[from] crate::reload::watch::WatchError),
}

/// The addresses a worker listens on: plain, TLS, or both.
#[derive(Debug, Clone, Copy)]
struct Addrs {
    plain: Option<SocketAddr>,
    tls: Option<SocketAddr>,
}

fn parse_addr(text: &str) -> Result<SocketAddr, ServerError> {
    text.parse()
        .map_err(|_| ServerError::BadListen(text.to_string()))
}

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Runs the gateway until a shutdown signal; returns once clients are done (or the grace
/// period ran out). `path` is the file the config was read from, shown by `/api/state`.
pub fn run(config: Config, path: Option<&Path>) -> Result<(), ServerError> {
    run_with(config, path, Overrides::default())
}

/// [`run`], with the command line's overrides, which each reload applies again.
pub fn run_with(
    config: Config,
    path: Option<&Path>,
    overrides: Overrides,
) -> Result<(), ServerError> {
    let mut bound = Addrs {
        plain: match config.listen.as_str() {
            "" if config.tls.enabled() => None,
            text => Some(parse_addr(text)?),
        },
        tls: match config.tls.enabled() {
            true => Some(parse_addr(&config.tls.listen)?),
            false => None,
        },
    };
    let tls = Arc::new(TlsState::from_config(&config)?);
    let nameservers = config.dns.nameserver_addrs();
    if !crate::dns::use_nameservers(&nameservers) && !nameservers.is_empty() {
        warn!("dns.nameservers not applied: names were resolved before the gateway started");
    }
    let workers = config.effective_workers();
    // Absolute but with symlinks kept: a Kubernetes ConfigMap mounts the file as a symlink
    // through `..data`, which an update repoints; a reload must follow the link again.
    let path = path.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
    let shared = Shared::from_file(config, path.clone());
    *shared.overrides.lock() = overrides;
    shared.set_tls(tls.clone());
    if let Some(path) = path {
        // INFO's config_file names the real file, as Redis does.
        shared
            .identity
            .set_config_file(std::fs::canonicalize(&path).unwrap_or(path));
    }
    // Up before the first map is read, so probes see the gateway start (not ready yet).
    let admin = crate::admin::start(&shared, workers)?;
    crate::reload::watch::start(&shared)?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    // Taken over now: SIGHUP's default action would end the process while it starts.
    let hup = control
        .block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) });

    // First map before accepting clients, so the first requests do not fail needlessly; DC
    // host names first (briefly), so that map places nodes by them.
    control.block_on(async {
        resolve::resolve_first(&shared, FIRST_NAMES_WAIT).await;
        let deadline = Instant::now() + FIRST_MAP_WAIT;
        loop {
            match refresh::refresh_once(&shared).await {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    warn!(error = %e, "no cluster map yet; serving anyway and retrying");
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });

    let mut handles = Vec::new();
    let (senders, mut inboxes): (Vec<_>, Vec<_>) = (0..workers)
        .map(|_| tokio::sync::mpsc::unbounded_channel::<Handoff>())
        .unzip();
    let senders = Arc::new(senders);
    for id in 0..workers {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = shared.clone();
        let server_tls = tls.server.clone();
        let peers = Peers {
            senders: senders.clone(),
            inbox: inboxes.remove(0),
        };
        let handle = std::thread::Builder::new()
            .name(format!("meridian-w{id}"))
            .spawn(move || worker_thread(id, shared, bound, server_tls, peers, tx))
            .map_err(ServerError::Runtime)?;
        match rx.recv() {
            Ok(Ok(addrs)) => bound = addrs,
            Ok(Err((addr, err))) => {
                return Err(ServerError::Bind {
                    addr: addr.to_string(),
                    err,
                });
            }
            Err(_) => return Err(ServerError::Worker(id)),
        }
        handles.push(handle);
    }
    if let Some(port) = bound.plain.or(bound.tls).map(|a| a.port()) {
        shared.identity.set_port(port);
    }
    // Plain first: tools that read the first `listening on` line get the plain port.
    if let Some(addr) = bound.plain {
        println!("meridian: listening on {addr}");
        info!(addr = %addr, workers, "meridian listening");
    }
    if let Some(addr) = bound.tls {
        println!("meridian: tls listening on {addr}");
        info!(addr = %addr, workers, "meridian listening for TLS clients");
    }
    if let Some(addr) = admin {
        println!("meridian: admin on http://{addr}");
    }

    control.block_on(async {
        let refresher = tokio::spawn(refresh::run(shared.clone()));
        let resolver = tokio::spawn(resolve::run(shared.clone()));
        let prober = tokio::spawn(crate::health::probe::run(shared.clone()));
        let reloaders = tls.is_on().then(|| {
            (
                tokio::spawn(crate::tls::reload::on_sighup(tls.clone())),
                tokio::spawn(crate::tls::reload::on_file_change(tls.clone())),
            )
        });
        wait_for_signal(&shared, hup).await;
        info!("shutdown requested: no new clients, finishing in-flight requests");
        shared.shutdown();
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while shared.client_count() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if shared.client_count() > 0 {
            warn!(
                clients = shared.client_count(),
                "grace period over, closing remaining clients"
            );
        }
        refresher.abort();
        resolver.abort();
        prober.abort();
        if let Some((hup, watch)) = reloaders {
            hup.abort();
            watch.abort();
        }
    });
    Ok(())
}

/// Waits for SIGTERM or SIGINT; reloads the config at each SIGHUP meanwhile (certificates are
/// read again by the TLS reloader's own SIGHUP listener).
async fn wait_for_signal(shared: &Shared, hup: std::io::Result<tokio::signal::unix::Signal>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        hup,
    ) else {
        error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = int.recv() => return,
            _ = hup.recv() => {
                crate::reload::reload(shared, "SIGHUP");
            }
        }
    }
}

/// A client connection accepted by one worker for another to serve: the socket, the peer,
/// and whether it came in on the TLS listener (the serving worker runs the handshake).
type Handoff = (std::net::TcpStream, SocketAddr, bool);

/// A worker's links to the others: where to send connections it hands over, and where
/// connections handed to it arrive.
struct Peers {
    senders: Arc<Vec<UnboundedSender<Handoff>>>,
    inbox: UnboundedReceiver<Handoff>,
}

fn worker_thread(
    id: usize,
    shared: Arc<Shared>,
    addrs: Addrs,
    tls: Option<Arc<ServerTls>>,
    peers: Peers,
    ready: std::sync::mpsc::Sender<Result<Addrs, (SocketAddr, std::io::Error)>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let addr = addrs
                .plain
                .or(addrs.tls)
                .unwrap_or(([0, 0, 0, 0], 0).into());
            let _ = ready.send(Err((addr, e)));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let bind_one = |addr: Option<SocketAddr>| match addr {
            None => Ok(None),
            Some(addr) => bind(addr).map(Some).map_err(|e| (addr, e)),
        };
        let (plain, tls_listener) = match (bind_one(addrs.plain), bind_one(addrs.tls)) {
            (Ok(p), Ok(t)) => (p, t),
            (Err(e), _) | (_, Err(e)) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let local_addr = |l: &Option<TcpListener>, asked: Option<SocketAddr>| {
            l.as_ref().and_then(|l| l.local_addr().ok()).or(asked)
        };
        let _ = ready.send(Ok(Addrs {
            plain: local_addr(&plain, addrs.plain),
            tls: local_addr(&tls_listener, addrs.tls),
        }));
        let worker = Worker::new(id, shared.clone());
        shared.set_listening(true);
        // A task of its own: the future `block_on` drives is polled again on every wake-up of
        // any session of this worker (how a LocalSet runs), and the accept loop's select in
        // there cost ~1,300 instructions per unpipelined request (scripts/cost_instructions.py).
        // That future waits on a flag the task raises when it ends, however it ends (a
        // JoinHandle costs ~600 instructions a poll); the handle then gives its panic, if any.
        let ended = Rc::new(LocalNotify::new());
        let raise = EndFlag(ended.clone());
        let accepting = tokio::task::spawn_local(async move {
            let _raise = raise;
            accept_loop(worker, plain, tls_listener, tls, peers).await;
        });
        ended.notified().await;
        if let Err(e) = accepting.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        shared.set_listening(false);
        // Let sessions finish their in-flight requests; the main thread bounds the wait.
        while shared.client_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Raises its flag when dropped: the end of the task that holds it, returned or unwound.
struct EndFlag(Rc<LocalNotify>);

impl Drop for EndFlag {
    fn drop(&mut self) {
        self.0.notify();
    }
}

/// The next connection on `listener`; never resolves when there is none.
async fn accept_on(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

async fn accept_loop(
    worker: Rc<Worker>,
    plain: Option<TcpListener>,
    tls_listener: Option<TcpListener>,
    acceptor: Option<Arc<ServerTls>>,
    peers: Peers,
) {
    let mut shutdown = worker.shared.shutdown_signal();
    let Peers { senders, mut inbox } = peers;
    loop {
        let (r, secure) = tokio::select! {
            r = accept_on(plain.as_ref()) => (r, false),
            r = accept_on(tls_listener.as_ref()) => (r, true),
            Some((stream, peer, secure)) = inbox.recv() => {
                match TcpStream::from_std(stream) {
                    Ok(stream) => serve(&worker, acceptor.as_ref(), stream, peer, secure),
                    Err(e) => {
                        worker.shared.balance.release(worker.id);
                        warn!(error = %e, %peer, "cannot take over a client from another worker");
                    }
                }
                continue;
            }
            _ = shutdown.changed() => return,
        };
        match r {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                worker.stats.accepts.add(1);
                let to = worker.shared.balance.assign(worker.id);
                if to == worker.id {
                    serve(&worker, acceptor.as_ref(), stream, peer, secure);
                } else {
                    hand_over(
                        &worker,
                        acceptor.as_ref(),
                        &senders,
                        to,
                        (stream, peer, secure),
                    );
                }
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Serves a client on this worker (through the TLS handshake when it came in on the TLS
/// listener); its count in the balance ends with the session.
fn serve(
    worker: &Rc<Worker>,
    acceptor: Option<&Arc<ServerTls>>,
    stream: TcpStream,
    peer: SocketAddr,
    secure: bool,
) {
    let counted = Counted {
        shared: worker.shared.clone(),
        id: worker.id,
    };
    match acceptor.filter(|_| secure) {
        None => {
            let session = session::run(worker.clone(), stream, peer);
            tokio::task::spawn_local(async move {
                let _counted = counted;
                session.await;
            });
        }
        Some(acceptor) => {
            let session = tls_session(worker.clone(), acceptor.clone(), stream, peer);
            tokio::task::spawn_local(async move {
                let _counted = counted;
                session.await;
            });
        }
    }
}

/// Sends a client to worker `to`; serves it here when that worker is gone.
fn hand_over(
    worker: &Rc<Worker>,
    acceptor: Option<&Arc<ServerTls>>,
    senders: &[UnboundedSender<Handoff>],
    to: usize,
    (stream, peer, secure): (TcpStream, SocketAddr, bool),
) {
    let balance = &worker.shared.balance;
    let std_stream = match stream.into_std() {
        Ok(s) => s,
        Err(e) => {
            balance.release(to);
            warn!(error = %e, %peer, "cannot hand a client over to another worker");
            return;
        }
    };
    let returned = match senders.get(to) {
        Some(tx) => tx.send((std_stream, peer, secure)).err().map(|e| e.0.0),
        None => Some(std_stream),
    };
    if let Some(std_stream) = returned {
        balance.release(to);
        balance.assign_to(worker.id);
        match TcpStream::from_std(std_stream) {
            Ok(stream) => serve(worker, acceptor, stream, peer, secure),
            Err(e) => {
                balance.release(worker.id);
                warn!(error = %e, %peer, "cannot serve a client");
            }
        }
    }
}

/// Takes a client off its worker's count when its session ends, however it ends.
struct Counted {
    shared: Arc<Shared>,
    id: usize,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.shared.balance.release(self.id);
    }
}

/// Runs the TLS handshake (bounded by `tls.handshake_timeout`), then the session over it. A
/// client that fails it is closed and counted; nobody else notices.
async fn tls_session(
    worker: Rc<Worker>,
    acceptor: Arc<ServerTls>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    match acceptor.accept(stream).await {
        Ok(tls) => {
            worker.stats.tls_handshakes.add(1);
            session::run(worker, crate::transport::Tls(tls), peer).await;
        }
        Err(e) => {
            match e {
                HandshakeError::TimedOut => worker.stats.tls_handshake_timeouts.add(1),
                HandshakeError::Failed(_) => worker.stats.tls_handshake_failures.add(1),
            }
            debug!(%peer, error = %e, "TLS client closed");
        }
    }
}
