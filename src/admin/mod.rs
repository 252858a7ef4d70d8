//! The admin HTTP endpoint: the `/` dashboard, `/metrics` (Prometheus text), `/healthz`,
//! `/readyz` and `/api/state`, served by a thread and runtime of its own so the workers stay shared-nothing.
//!
//! [`server`] speaks HTTP and routes, [`auth`] checks the bearer token, [`metrics`] sums the
//! per-worker counters at scrape time, [`ready`] decides readiness, [`state`] renders the JSON
//! (its per-command figures from [`commands`]), [`dashboard`] is the page at `/`.

pub mod auth;
pub mod commands;
pub mod dashboard;
pub mod metrics;
pub mod ready;
pub mod server;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::shared::Shared;

/// Why the admin endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin.listen: invalid address '{0}'")]
    BadListen(String),
    #[error(
        "admin.listen: cannot listen on {addr}: {err} (set admin.listen to another address, or \"\" to turn the endpoint off)"
    )]
    Bind { addr: String, err: std::io::Error },
    #[error("admin.token_file: {0}")]
    Token(String),
    #[error("cannot start the admin thread: {0}")]
    Thread(std::io::Error),
}

/// Starts the endpoint when `admin.listen` is set, on its own thread; returns the address it
/// listens on. `workers` is how many workers readiness waits for.
pub fn start(shared: &Arc<Shared>, workers: usize) -> Result<Option<SocketAddr>, AdminError> {
    let config = shared.config();
    let cfg = &config.admin;
    if !cfg.enabled() {
        return Ok(None);
    }
    let listen = cfg.listen.trim();
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| AdminError::BadListen(listen.to_string()))?;
    let token = match &cfg.token_file {
        Some(path) => Some(auth::Token::load(path).map_err(AdminError::Token)?),
        None => None,
    };
    let listener = std::net::TcpListener::bind(addr).map_err(|err| AdminError::Bind {
        addr: addr.to_string(),
        err,
    })?;
    let bound = listener.local_addr().unwrap_or(addr);
    listener
        .set_nonblocking(true)
        .map_err(|err| AdminError::Bind {
            addr: addr.to_string(),
            err,
        })?;
    let app = server::Admin::new(shared.clone(), token, workers);
    std::thread::Builder::new()
        .name("meridian-admin".into())
        .spawn(move || server::run(listener, app))
        .map_err(AdminError::Thread)?;
    Ok(Some(bound))
}
