//! The multi-DC lab and its failover drills: a topology file made real on loopback.
//!
//! Layout:
//! - [`spec`]: the topology file's schema, [`LabSpec`] (read and checked in `spec_check.rs`);
//!   [`plan`]: where every node, relay and gateway goes (addresses, ports, slots);
//!   [`gateway_config`]: the config each gateway is given ([`tls`] and [`users`] what a
//!   `tls: true` / `users: true` lab adds).
//! - [`relay`]: the user-space delay relay in front of each node (latency, partitions).
//! - [`cluster`]: redis-server nodes and cluster formation; [`gateways`]: one meridian per DC.
//! - [`options`]: which lab a command means; [`up`]: the lab supervisor (`lab up/down`),
//!   [`status`] what it shows, [`state`] its state file, [`control`] the control port drills use
//!   to break things.
//! - [`client`]: the lab's own small RESP client (`AUTH` on connect in a users lab); [`load`]
//!   and [`values`]: the drill load and the checks of every reply; [`sampler`]: the nodes' own
//!   counters.
//! - [`drill`]: the scenarios; [`report`] what clients saw, written out by [`summary`] (table,
//!   JSON via [`json`]) and [`html`]; [`scrape`] each gateway's own `/metrics` figures and
//!   dashboard URL; [`table`] lays out every text table.
//! - [`cli`]: the `lab`, `drill` and `check --topology` command lines.

pub mod cli;
pub mod client;
pub mod cluster;
pub mod control;
pub mod drill;
#[cfg(test)]
mod fixtures;
pub mod gateway_config;
pub mod gateways;
pub mod html;
pub mod json;
pub mod load;
pub mod options;
pub mod plan;
pub mod procs;
pub mod relay;
pub mod report;
pub mod sampler;
pub mod scrape;
pub mod spec;
mod spec_check;
pub mod state;
pub mod status;
pub mod summary;
pub mod table;
pub mod tls;
pub mod up;
pub mod users;
pub mod values;

use std::time::Duration;

use crate::config::ConfigErrors;

pub use plan::{Plan, PlannedGateway, PlannedNode};
pub use spec::LabSpec;

/// What the install hint says when `redis-server` is not on PATH.
pub const INSTALL_HINT: &str =
    "install it with `sudo apt-get install redis-server` (or run scripts/install-deps.sh)";

/// Everything that can go wrong while building, running or breaking a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology file is invalid (every problem, with its key path and line).
    #[error("{0}")]
    Topology(ConfigErrors),
    /// A required program is not installed.
    #[error("`{program}` was not found on PATH; {hint}")]
    Missing {
        /// The program looked for.
        program: String,
        /// How to install it.
        hint: &'static str,
    },
    /// A file or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Something did not happen within its bound.
    #[error("timed out after {after:?} waiting for {what}; last state: {last}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long it was awaited.
        after: Duration,
        /// The last state observed.
        last: String,
    },
    /// A process of the lab failed (exited early, refused a command).
    #[error("{what}: {message}")]
    Process {
        /// The process, e.g. `node east-1` or `gateway west`.
        what: String,
        /// What went wrong, often with the tail of its log.
        message: String,
    },
    /// A lab is already running in the directory.
    #[error(
        "a lab is already running in {dir} (supervisor pid {pid}); run `meridian lab down` first"
    )]
    AlreadyRunning {
        /// The lab directory.
        dir: String,
        /// The supervisor's pid.
        pid: u32,
    },
    /// No lab runs in the directory.
    #[error("no lab is running in {0}")]
    NotRunning(String),
    /// The control port refused or failed a command.
    #[error("lab control: {0}")]
    Control(String),
    /// The scenario cannot run on this topology, or its arguments are wrong.
    #[error("scenario: {0}")]
    Scenario(String),
}

impl LabError {
    /// An [`LabError::Io`] error saying what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> LabError {
        LabError::Io {
            what: what.into(),
            source,
        }
    }
}

/// Polls `probe` every `every` until it returns `Ok`, or fails after `timeout` naming `what`
/// and the last state the probe reported.
pub async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    mut probe: F,
) -> Result<T, LabError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(value) => return Ok(value),
            Err(state) => state,
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(LabError::Timeout {
                what: what.to_string(),
                after: timeout,
                last,
            });
        }
        tokio::time::sleep(every).await;
    }
}
