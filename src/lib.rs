//! meridian: a multi-datacenter aware gateway for Redis Cluster.
//!
//! The data path, top to bottom; each layer uses only the layers below it:
//! - [`server`]: worker threads, listeners, shutdown.
//! - [`session`]: one client socket: read, parse, write replies back in request order.
//! - [`router`]: command class → handler: keyed (split by slot), fan-out, transactions,
//!   pub/sub, commands answered locally; [`router::worker`] is the per-thread context.
//! - [`client`]: what meridian knows about one client (transaction, subscriptions, own
//!   connections).
//! - [`route`]: slot + access → node, through the one decision in [`policy`].
//! - [`backend`]: pipelined connections, pending FIFO, registry of nodes; redirections and
//!   failures reported upward through [`backend::env`].
//! - [`reply`]: the client reply queue, merges of split replies, the SCAN cursor codec.
//!
//! Off the workers, on a thread of its own: [`admin`] (metrics, health, state over HTTP);
//! [`reload`] (SIGHUP, `POST /reload`, the config file watch) swaps the config snapshot;
//! [`logging`] sets up the log once at start.
//!
//! Beside it, shared and swapped atomically: [`topology`], [`health`], [`snapshot`],
//! [`shared`], [`stats`], [`identity`], [`events`]. At the bottom, pure: [`command`], [`resp`],
//! [`config`], [`slot`], [`clock`]. Under sessions and backend connections alike: [`transport`]
//! (plain TCP or TLS) and [`tls`] (rustls configs, certificate reload).
#![forbid(unsafe_code)]

pub mod acl;
pub mod admin;
pub mod backend;
pub mod balance;
pub mod client;
pub mod clients;
pub mod clock;
pub mod command;
pub mod config;
pub mod control;
pub mod dns;
pub mod error;
pub mod events;
pub mod health;
pub mod identity;
pub mod io;
pub mod lab;
pub mod logging;
pub mod notify;
pub mod policy;
pub mod predixy;
pub mod reload;
pub mod reply;
pub mod resp;
pub mod route;
pub mod router;
pub mod server;
pub mod session;
pub mod shared;
pub mod slot;
pub mod snapshot;
pub mod stats;
pub mod tls;
pub mod topology;
pub mod transport;
