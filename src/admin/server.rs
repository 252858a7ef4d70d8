//! The admin HTTP/1.1 server: its own thread and current-thread runtime, bounded connections
//! and header sizes, GET/HEAD (and `POST /reload`), bearer token on everything but the probe
//! and scrape paths and the dashboard page (which holds no data: its `api/state` polls carry
//! the token); `/reload` always needs an admin credential.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderValue,
    WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use tracing::{info, warn};

use super::auth::Token;
use crate::shared::Shared;

/// Admin connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 32;
/// A request's head must arrive within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest life of one connection, keep-alive included.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);
/// Largest request head (request line and headers); larger ones get 431.
const MAX_HEAD: usize = 16 * 1024;
/// Paths served without the token: for probes and scrapers, and the static dashboard page.
const PUBLIC: [&str; 4] = ["/healthz", "/readyz", "/metrics", "/"];

/// What the handlers need.
pub struct Admin {
    shared: Arc<Shared>,
    token: Option<Token>,
    /// Whether the token is checked (off loopback, or `admin.require_token`).
    token_required: bool,
    registry: Registry,
    workers: usize,
}

type Reply = Response<Full<Bytes>>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut body = body.into();
    body.push('\n');
    reply(status, "text/plain; charset=utf-8", body)
}

impl Admin {
    pub fn new(shared: Arc<Shared>, token: Option<Token>, workers: usize) -> Arc<Admin> {
        let token_required = shared.config().admin.token_required().unwrap_or(true);
        Arc::new(Admin {
            registry: super::metrics::registry(shared.clone()),
            shared,
            token,
            token_required,
            workers,
        })
    }

    /// Whether the request carries an admin credential: the token, or Basic credentials of
    /// a gateway user with the `admin` role.
    fn is_admin<B>(&self, req: &Request<B>) -> bool {
        let given = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
        self.token.as_ref().is_some_and(|t| t.accepts(given))
            || self
                .shared
                .users()
                .is_some_and(|u| super::auth::admin_user(&u, given))
    }

    /// `POST /reload`: reads the config file again (see [`crate::reload`]).
    fn reload<B>(&self, req: &Request<B>) -> Reply {
        if req.method() != Method::POST {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "reload with POST");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("POST"));
            return r;
        }
        if self.token.is_none() && !self.shared.has_users() {
            return text(
                StatusCode::FORBIDDEN,
                "reload needs an admin credential: set admin.token_file or configure a user with role admin",
            );
        }
        if !self.is_admin(req) {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "reload needs the admin token (Bearer) or an admin user's credentials (Basic)",
            );
            r.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer, Basic realm=\"meridian\""),
            );
            return r;
        }
        let outcome = crate::reload::reload(&self.shared, "admin");
        let status = if outcome.ok {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        };
        let body = serde_json::to_string(&outcome).unwrap_or_default();
        reply(status, "application/json", body)
    }

    /// Answers one request.
    pub fn handle<B>(&self, req: &Request<B>) -> Reply {
        let path = req.uri().path();
        if path == "/reload" {
            return self.reload(req);
        }
        if self.token_required && !PUBLIC.contains(&path) {
            let given = req.headers().get(AUTHORIZATION).map(HeaderValue::as_bytes);
            if !self.token.as_ref().is_some_and(|t| t.accepts(given)) {
                let mut r = text(StatusCode::UNAUTHORIZED, "a bearer token is required");
                r.headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return r;
            }
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match path {
            "/" => {
                let mut r = reply(
                    StatusCode::OK,
                    "text/html; charset=utf-8",
                    super::dashboard::PAGE,
                );
                let h = r.headers_mut();
                h.insert(
                    CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(super::dashboard::CSP),
                );
                h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
                r
            }
            "/healthz" => text(StatusCode::OK, "ok"),
            "/readyz" => match super::ready::check(&self.shared, self.workers) {
                Ok(()) => text(StatusCode::OK, "ready"),
                Err(why) => text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}")),
            },
            "/metrics" => match super::metrics::render(&self.registry) {
                Ok(body) => reply(StatusCode::OK, super::metrics::CONTENT_TYPE, body),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot encode the metrics",
                ),
            },
            "/api/state" => reply(
                StatusCode::OK,
                "application/json",
                super::state::render(&self.shared, self.workers),
            ),
            _ => text(
                StatusCode::NOT_FOUND,
                "not found; try /, /healthz, /readyz, /metrics, /api/state or POST /reload",
            ),
        }
    }
}

/// Runs the endpoint on the calling thread until the process exits.
pub fn run(listener: std::net::TcpListener, app: Arc<Admin>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return warn!(error = %e, "admin endpoint: cannot start its runtime"),
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => return warn!(error = %e, "admin endpoint: cannot use its listener"),
        };
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "admin endpoint listening");
        }
        let open = Arc::new(AtomicUsize::new(0));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "admin endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if open.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
                open.fetch_sub(1, Ordering::AcqRel);
                drop(stream);
                continue;
            }
            let app = app.clone();
            let open = open.clone();
            tokio::spawn(async move {
                serve_connection(app, stream).await;
                open.fetch_sub(1, Ordering::AcqRel);
            });
        }
    });
}

async fn serve_connection(app: Arc<Admin>, stream: tokio::net::TcpStream) {
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let r = app.handle(&req);
        async move { Ok::<_, Infallible>(r) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(64)
        .serve_connection(TokioIo::new(stream), service);
    // Errors (bad requests, resets, timeouts) end only this connection.
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
}
