//! One meridian gateway per DC: its process (`meridian serve`), run on the config that
//! [`super::gateway_config`] renders for it.
//!
//! A gateway listens on its DC's `.100` address and binds its backend sockets there too
//! (`source_address`), so the relays see which DC it is in. Its seeds are the nodes' relays,
//! which is also what the cluster announces, so every backend byte crosses a relay.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::client::{Conn, Reply};
use super::gateway_config::render_config;
use super::plan::{Plan, PlannedGateway};
use super::procs::tail;
use super::{LabError, wait_for};

/// Bound on a gateway serving every shard after spawn.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A gateway process.
pub struct GatewayProc {
    /// Its place in the plan.
    pub gw: PlannedGateway,
    /// Its generated config file.
    pub config: PathBuf,
    /// Its stdout+stderr.
    pub log: PathBuf,
    /// The lab's certificates (used when the topology says `tls: true`).
    tls_dir: PathBuf,
    /// The lab directory, whose `users.secret` a `users: true` lab reads at each start.
    lab_dir: PathBuf,
    child: Option<Child>,
}

impl GatewayProc {
    /// A gateway not started yet, with its files in `lab_dir`.
    pub fn new(gw: PlannedGateway, lab_dir: &Path) -> GatewayProc {
        GatewayProc {
            config: lab_dir.join(format!("gateway-{}.yaml", gw.dc)),
            log: lab_dir.join(format!("gateway-{}.log", gw.dc)),
            tls_dir: super::tls::dir(lab_dir),
            lab_dir: lab_dir.to_path_buf(),
            gw,
            child: None,
        }
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Writes the config, starts `meridian serve` and waits until a key of every shard can be
    /// read through it (logged in as the lab user in a `users: true` lab).
    pub async fn start(&mut self, meridian: &Path, plan: &Plan) -> Result<(), LabError> {
        let what = format!("gateway {} ({})", self.gw.dc, self.gw.addr());
        let logins = match plan.spec.users {
            true => super::users::read(&self.lab_dir)?,
            false => Vec::new(),
        };
        let login = logins.iter().find(|l| l.user == super::users::LAB_USER);
        let login = login.cloned();
        let config = render_config(plan, &self.gw, &self.tls_dir, &logins);
        std::fs::write(&self.config, config)
            .map_err(|e| LabError::io(format!("write {}", self.config.display()), e))?;
        let log = File::create(&self.log)
            .map_err(|e| LabError::io(format!("create {}", self.log.display()), e))?;
        let err_log = log
            .try_clone()
            .map_err(|e| LabError::io("clone a log handle", e))?;
        let mut cmd = Command::new(meridian);
        cmd.arg("serve")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .kill_on_drop(true)
            .process_group(0);
        self.child = Some(
            cmd.spawn()
                .map_err(|e| LabError::io(format!("spawn {what}"), e))?,
        );
        let probes = probe_keys(plan);
        let addr = self.gw.addr();
        let ready = wait_for(
            &format!("{what} to serve every shard"),
            START_TIMEOUT,
            Duration::from_millis(200),
            || {
                let probes = probes.clone();
                let login = login.clone();
                let exited = match self.child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => Some(status),
                    _ => None,
                };
                async move {
                    if let Some(status) = exited {
                        return Err(format!("exited early ({status})"));
                    }
                    let timeout = Duration::from_secs(1);
                    let mut conn = Conn::open(addr, None, login.as_ref(), timeout)
                        .await
                        .map_err(|e| e.to_string())?;
                    for key in &probes {
                        match conn
                            .call(&["GET", key.as_str()], Duration::from_secs(2))
                            .await
                        {
                            Ok(Reply::Error(e)) => return Err(format!("GET {key}: {e}")),
                            Ok(_) => {}
                            Err(e) => return Err(format!("GET {key}: {e}")),
                        }
                    }
                    Ok(())
                }
            },
        )
        .await;
        ready.map_err(|e| LabError::Process {
            what,
            message: format!(
                "{e}\n--- {} ---\n{}",
                self.log.display(),
                tail(&self.log, 15)
            ),
        })
    }

    /// SIGKILLs the gateway and reaps it.
    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        }
    }
}

/// One key per shard (its first slot's range), to check that a gateway reaches every shard.
pub fn probe_keys(plan: &Plan) -> Vec<String> {
    (0..plan.shard_count())
        .filter_map(|shard| {
            let (lo, hi) = plan.shard_nodes(shard).next()?.slots;
            (0..200_000u32)
                .map(|n| format!("lab-probe-{n}"))
                .find(|k| (lo..=hi).contains(&crate::slot::key_slot(k.as_bytes()).get()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabSpec;

    use crate::lab::fixtures::TWO_DC_LAB as TEXT;

    #[test]
    fn probe_keys_hit_every_shard() {
        let plan = Plan::new(&LabSpec::parse(TEXT, "t").unwrap(), 0).unwrap();
        let keys = probe_keys(&plan);
        assert_eq!(keys.len(), 2);
        assert!(crate::slot::key_slot(keys[1].as_bytes()).get() >= 8192);
    }
}
