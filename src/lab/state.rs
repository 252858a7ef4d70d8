//! The lab directory and its state file (`state.yaml`): what runs, with which pids, and where
//! the supervisor's control port is. Written by the supervisor, read by `lab down/status` and
//! drills.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabError;
use super::procs::{self, ProcState};

/// File name of the state inside the lab dir.
pub const STATE_FILE: &str = "state.yaml";

/// The default lab directory of a topology: `<tmp>/meridian-lab-<name>`.
pub fn default_dir(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("meridian-lab-{name}"))
}

/// One node as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeState {
    /// Node name, e.g. `east-1`.
    pub name: String,
    /// Its DC.
    pub dc: String,
    /// Its shard.
    pub shard: usize,
    /// Role it was planned with (`master` or `replica`).
    pub planned_role: String,
    /// Slots of its shard, `a-b`.
    pub slots: String,
    /// The redis-server's own address.
    pub addr: String,
    /// The relay address clients use (and the cluster announces).
    pub relay: String,
    /// Its pid, while it runs.
    pub pid: Option<u32>,
    /// Its log file.
    pub log: String,
}

/// One gateway as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayState {
    /// Its DC.
    pub dc: String,
    /// Where clients connect.
    pub addr: String,
    /// Its pid.
    pub pid: Option<u32>,
    /// Its generated config.
    pub config: String,
    /// Its log file.
    pub log: String,
    /// Its live dashboard (admin endpoint), `http://ADDR/`.
    #[serde(default)]
    pub dashboard: String,
}

/// The whole state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabState {
    /// Topology name.
    pub name: String,
    /// Topology file as given.
    pub topology: String,
    /// Port offset the lab was started with.
    pub port_offset: u16,
    /// Pid of the supervisor process (`lab up --foreground`).
    pub supervisor_pid: u32,
    /// Control port of the supervisor, `127.0.0.1:PORT`.
    pub control: String,
    /// True once everything is up.
    pub ready: bool,
    /// The gateway users' passwords (`users: true` labs), never the passwords themselves.
    #[serde(default)]
    pub users_file: Option<String>,
    /// The nodes.
    pub nodes: Vec<NodeState>,
    /// The gateways.
    pub gateways: Vec<GatewayState>,
}

impl LabState {
    /// Reads `dir/state.yaml`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<LabState>, LabError> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LabError::io(format!("read {}", path.display()), e)),
        };
        serde_yaml_ng::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::Process {
                what: path.display().to_string(),
                message: format!("unreadable lab state: {e}"),
            })
    }

    /// Writes `dir/state.yaml` atomically (a reader never sees half a file).
    pub fn write(&self, dir: &Path) -> Result<(), LabError> {
        let text = serde_yaml_ng::to_string(self).map_err(|e| LabError::Process {
            what: "lab state".into(),
            message: e.to_string(),
        })?;
        let tmp = dir.join(format!("{STATE_FILE}.tmp"));
        let path = dir.join(STATE_FILE);
        std::fs::write(&tmp, text)
            .map_err(|e| LabError::io(format!("write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| LabError::io(format!("rename to {}", path.display()), e))
    }

    /// Whether the supervisor is alive.
    pub fn supervisor_alive(&self) -> bool {
        procs::alive(self.supervisor_pid) && procs::cmdline(self.supervisor_pid).contains("lab")
    }

    /// Kills every recorded process that is still alive and still ours; returns how many.
    pub fn kill_leftovers(&self) -> usize {
        let nodes = self
            .nodes
            .iter()
            .filter_map(|n| n.pid)
            .map(|p| (p, "redis-server"));
        let gateways = self
            .gateways
            .iter()
            .filter_map(|g| g.pid)
            .map(|p| (p, "serve"));
        let supervisor = std::iter::once((self.supervisor_pid, "lab"));
        supervisor
            .chain(gateways)
            .chain(nodes)
            .filter(|(pid, marker)| procs::kill_if_ours(*pid, marker))
            .count()
    }
}

/// `up`, `stopped` or `down` for a pid.
pub fn describe(pid: Option<u32>) -> &'static str {
    match pid.map(procs::state) {
        Some(ProcState::Running) => "up",
        Some(ProcState::Stopped) => "stopped",
        _ => "down",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file() {
        let dir =
            std::env::temp_dir().join(format!("meridian-lab-state-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(LabState::read(&dir).unwrap(), None);
        let state = LabState {
            name: "t".into(),
            topology: "t.yaml".into(),
            port_offset: 0,
            supervisor_pid: std::process::id(),
            control: "127.0.0.1:1".into(),
            ready: true,
            users_file: None,
            nodes: vec![NodeState {
                name: "east-1".into(),
                dc: "east".into(),
                shard: 0,
                planned_role: "master".into(),
                slots: "0-16383".into(),
                addr: "127.0.1.1:7001".into(),
                relay: "127.0.1.1:7101".into(),
                pid: None,
                log: "x".into(),
            }],
            gateways: vec![],
        };
        state.write(&dir).unwrap();
        assert_eq!(LabState::read(&dir).unwrap(), Some(state));
        assert_eq!(describe(None), "down");
        assert_eq!(describe(Some(std::process::id())), "up");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
