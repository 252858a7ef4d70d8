//! Which lab a command means: its topology file, its directory, its port offset, and the plan
//! laid out from them.

use std::path::{Path, PathBuf};

use super::LabError;
use super::plan::Plan;
use super::spec::LabSpec;
use super::state::{self, LabState};

/// Which lab: the topology file, its dir and port offset.
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// The topology file.
    pub topology: PathBuf,
    /// The lab dir (default `/tmp/meridian-lab-<name>`).
    pub dir: PathBuf,
    /// Added to every port of the topology (parallel labs of one topology).
    pub port_offset: u16,
    /// The plan made from the topology.
    pub plan: Plan,
}

impl LabOptions {
    /// Loads and lays out the topology; `dir` defaults from its name.
    pub fn new(
        topology: &Path,
        dir: Option<PathBuf>,
        port_offset: u16,
    ) -> Result<LabOptions, LabError> {
        let spec = LabSpec::load(topology).map_err(LabError::Topology)?;
        let plan = Plan::new(&spec, port_offset)?;
        Ok(LabOptions {
            topology: topology.to_path_buf(),
            dir: dir.unwrap_or_else(|| state::default_dir(&spec.name)),
            port_offset,
            plan,
        })
    }

    /// The same lab laid out with the port offset a running lab was started with (a lab
    /// started with `--port-offset N` is found by its directory alone).
    pub fn with_offset_of(self, state: &LabState) -> Result<LabOptions, LabError> {
        if state.port_offset == self.port_offset {
            return Ok(self);
        }
        let plan = Plan::new(&self.plan.spec, state.port_offset)?;
        Ok(LabOptions {
            port_offset: state.port_offset,
            plan,
            ..self
        })
    }
}
