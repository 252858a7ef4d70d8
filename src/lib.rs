//! meridian: a multi-datacenter aware gateway for Redis Cluster.
//!
//! Layout of the data path (one module each):
//! - [`server`]: worker threads, listeners, shutdown.
//! - [`session`]: one client: parse requests, keep reply order ([`session::queue`]).
//! - [`router`]: command class → keys → slot(s) → backend; multi-key split and merge.
//! - [`policy`]: pure node selection for a slot.
//! - [`backend`]: one pipelined connection per node per worker, FIFO reply matching.
//! - [`local`]: commands answered by meridian itself, INFO.
//!
//! Beside it: [`resp`] (wire format), [`command`] (command table), [`slot`] (hashing),
//! [`topology`] (cluster map and its refresher), [`config`], [`stats`], [`snapshot`].
#![forbid(unsafe_code)]

pub mod backend;
pub mod clients;
pub mod command;
pub mod config;
pub mod control;
pub mod dns;
pub mod error;
pub mod health;
pub mod io;
pub mod lab;
pub mod local;
pub mod notify;
pub mod policy;
pub mod predixy;
pub mod resp;
pub mod router;
pub mod server;
pub mod session;
pub mod shared;
pub mod slot;
pub mod snapshot;
pub mod stats;
pub mod topology;
pub mod worker;
