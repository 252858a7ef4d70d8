//! Starting and stopping the gateway: worker threads with their listeners (plain and/or TLS),
//! the refresher, the admin endpoint, certificate reloads, and graceful shutdown on
//! SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::router::worker::Worker;
use crate::session;
use crate::shared::Shared;
use crate::tls::acceptor::HandshakeError;
use crate::tls::{ServerTls, TlsState};
use crate::topology::refresh;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long startup waits for a first cluster map before serving anyway.
const FIRST_MAP_WAIT: Duration = Duration::from_secs(5);

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
    let workers = config.effective_workers();
    let path = path.map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
    let shared = Shared::from_file(config, path.clone());
    shared.set_tls(tls.clone());
    if let Some(path) = path {
        shared.identity.set_config_file(path);
    }
    // Up before the first map is read, so probes see the gateway start (not ready yet).
    let admin = crate::admin::start(&shared, workers)?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;

    // First map before accepting clients, so the first requests do not fail needlessly.
    control.block_on(async {
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
    for id in 0..workers {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = shared.clone();
        let server_tls = tls.server.clone();
        let handle = std::thread::Builder::new()
            .name(format!("meridian-w{id}"))
            .spawn(move || worker_thread(id, shared, bound, server_tls, tx))
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
        let prober = tokio::spawn(crate::health::probe::run(shared.clone()));
        let reloaders = tls.is_on().then(|| {
            (
                tokio::spawn(crate::tls::reload::on_sighup(tls.clone())),
                tokio::spawn(crate::tls::reload::on_file_change(tls.clone())),
            )
        });
        wait_for_signal().await;
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
        prober.abort();
        if let Some((hup, watch)) = reloaders {
            hup.abort();
            watch.abort();
        }
    });
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn worker_thread(
    id: usize,
    shared: Arc<Shared>,
    addrs: Addrs,
    tls: Option<Arc<ServerTls>>,
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
        let tls_side = tls_listener.zip(tls);
        accept_loop(worker, plain, tls_side).await;
        shared.set_listening(false);
        // Let sessions finish their in-flight requests; the main thread bounds the wait.
        while shared.client_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
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
    tls: Option<(TcpListener, Arc<ServerTls>)>,
) {
    let mut shutdown = worker.shared.shutdown_signal();
    let tls_listener = tls.as_ref().map(|(l, _)| l);
    loop {
        let (r, secure) = tokio::select! {
            r = accept_on(plain.as_ref()) => (r, false),
            r = accept_on(tls_listener) => (r, true),
            _ = shutdown.changed() => return,
        };
        match r {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                worker.stats.accepts.add(1);
                match tls.as_ref().filter(|_| secure) {
                    None => {
                        tokio::task::spawn_local(session::run(worker.clone(), stream, peer));
                    }
                    Some((_, acceptor)) => {
                        let (worker, acceptor) = (worker.clone(), acceptor.clone());
                        tokio::task::spawn_local(tls_session(worker, acceptor, stream, peer));
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
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
