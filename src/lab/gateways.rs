//! One meridian gateway per DC: its generated config and its process (`meridian serve`).
//!
//! A gateway listens on its DC's `.100` address and binds its backend sockets there too
//! (`source_address`), so the relays see which DC it is in. Its seeds are the nodes' relays,
//! which is also what the cluster announces, so every backend byte crosses a relay.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};
use tokio::process::{Child, Command};

use super::client::{Conn, Reply};
use super::plan::{Plan, PlannedGateway};
use super::procs::tail;
use super::{LabError, wait_for};

/// Top-level keys the lab sets per gateway; `gateway_config` may not override them.
pub const LAB_KEYS: [&str; 6] = [
    "listen",
    "workers",
    "source_address",
    "local_dc",
    "datacenters",
    "latency_ms",
];
/// Bound on a gateway serving every shard after spawn.
const START_TIMEOUT: Duration = Duration::from_secs(30);

fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut m = Mapping::new();
    for (k, v) in entries {
        m.insert(s(k), v);
    }
    Value::Mapping(m)
}

/// Where gateway `gw` serves its admin endpoint: its address, the port after its listen port.
pub fn admin_addr(gw: &PlannedGateway) -> std::net::SocketAddr {
    std::net::SocketAddr::new(gw.ip.into(), gw.port.checked_add(1).unwrap_or(0))
}

/// The YAML config of gateway `gw`: the lab's keys, the issue-4 sections with explicit values,
/// and the topology's `gateway_config` merged over them (one level deep for sections).
pub fn render_config(plan: &Plan, gw: &PlannedGateway) -> String {
    let seeds: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| s(n.relay_addr().to_string()))
        .collect();
    let mut dcs = Mapping::new();
    for (name, net) in &plan.dcs {
        dcs.insert(
            s(name.as_str()),
            map(vec![("cidrs", Value::Sequence(vec![s(net.to_string())]))]),
        );
    }
    let mut matrix = Mapping::new();
    for (from, row) in &plan.topology.latency_ms {
        let mut r = Mapping::new();
        for (to, ms) in row {
            r.insert(s(to.as_str()), Value::Number((*ms).into()));
        }
        matrix.insert(s(from.as_str()), Value::Mapping(r));
    }
    let num = |n: u64| Value::Number(n.into());
    let mut root = map(vec![
        ("listen", s(gw.addr().to_string())),
        ("workers", num(gw.workers as u64)),
        ("source_address", s(gw.ip.to_string())),
        ("local_dc", s(gw.dc.as_str())),
        (
            "cluster",
            map(vec![
                ("seeds", Value::Sequence(seeds)),
                ("refresh_interval", s("1s")),
            ]),
        ),
        ("datacenters", Value::Mapping(dcs)),
        ("latency_ms", Value::Mapping(matrix)),
        (
            "read_policy",
            map(vec![
                ("master_priority", num(60)),
                ("static_replica_priority", num(50)),
                ("dynamic_replica_priority", num(50)),
                ("latency_source", s("hybrid")),
                ("tolerance_ms", num(2)),
                ("max_latency_ms", num(0)),
            ]),
        ),
        (
            "breaker",
            map(vec![
                ("failure_limit", num(5)),
                ("retry_timeout", s("1s")),
                ("server_timeout", s("1s")),
                ("connect_timeout", s("500ms")),
                ("keepalive", s("120s")),
            ]),
        ),
        (
            "health",
            map(vec![
                ("probe_interval", s("500ms")),
                ("max_replica_lag", num(0)),
            ]),
        ),
        // The admin endpoint on the gateway's own address, one port above its listen port
        // (7618 by default), so gateways and labs with other port offsets never collide.
        (
            "admin",
            map(vec![("listen", s(admin_addr(gw).to_string()))]),
        ),
    ]);
    if let (Value::Mapping(base), Some(extra)) = (&mut root, &plan.topology.gateway_config) {
        for (key, value) in extra {
            match (base.get_mut(key), value) {
                (Some(Value::Mapping(section)), Value::Mapping(over)) => {
                    for (k, v) in over {
                        section.insert(k.clone(), v.clone());
                    }
                }
                _ => {
                    base.insert(key.clone(), value.clone());
                }
            }
        }
        // The seeds are the relays whatever the overrides say.
        if let Some(Value::Mapping(cluster)) = base.get_mut("cluster") {
            let seeds = plan
                .nodes
                .iter()
                .map(|n| s(n.relay_addr().to_string()))
                .collect();
            cluster.insert(s("seeds"), Value::Sequence(seeds));
        }
    }
    let body = serde_yaml_ng::to_string(&root).unwrap_or_default();
    format!(
        "# Generated by `meridian lab` for topology `{}`, gateway of DC `{}`.\n\
         # Seeds are the nodes' delay relays; backend sockets leave from {} so the relays\n\
         # know this gateway's DC.\n{body}",
        plan.topology.name, gw.dc, gw.ip
    )
}

/// A gateway process.
pub struct GatewayProc {
    /// Its place in the plan.
    pub gw: PlannedGateway,
    /// Its generated config file.
    pub config: PathBuf,
    /// Its stdout+stderr.
    pub log: PathBuf,
    child: Option<Child>,
}

impl GatewayProc {
    /// A gateway not started yet, with its files in `lab_dir`.
    pub fn new(gw: PlannedGateway, lab_dir: &Path) -> GatewayProc {
        GatewayProc {
            config: lab_dir.join(format!("gateway-{}.yaml", gw.dc)),
            log: lab_dir.join(format!("gateway-{}.log", gw.dc)),
            gw,
            child: None,
        }
    }

    /// Its pid while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// Writes the config, starts `meridian serve` and waits until a key of every shard can be
    /// read through it.
    pub async fn start(&mut self, meridian: &Path, plan: &Plan) -> Result<(), LabError> {
        let what = format!("gateway {} ({})", self.gw.dc, self.gw.addr());
        std::fs::write(&self.config, render_config(plan, &self.gw))
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
                let exited = match self.child.as_mut().map(Child::try_wait) {
                    Some(Ok(Some(status))) => Some(status),
                    _ => None,
                };
                async move {
                    if let Some(status) = exited {
                        return Err(format!("exited early ({status})"));
                    }
                    let mut conn = Conn::connect(addr, None, Duration::from_secs(1))
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
    use crate::config::Config;
    use crate::lab::Topology;

    const TEXT: &str = "\
name: t
datacenters:
  - { name: east, cidr: 127.0.1.0/24 }
  - { name: west, cidr: 127.0.2.0/24 }
latency_ms:
  east: { east: 0.3, west: 40 }
  west: { east: 40, west: 0.3 }
shards:
  - { master: east, replicas: [west] }
  - { master: west, replicas: [east] }
gateways:
  - { dc: east }
  - { dc: west, workers: 2 }
gateway_config:
  breaker: { failure_limit: 3 }
  cluster: { refresh_interval: 2s, seeds: [1.2.3.4:1] }
";

    #[test]
    fn generated_config_is_valid_and_complete() {
        let plan = Plan::new(&Topology::parse(TEXT, "t").unwrap(), 0).unwrap();
        let text = render_config(&plan, &plan.gateways[1]);
        let cfg = Config::parse(&text, "gen").unwrap();
        assert_eq!(cfg.listen, "127.0.2.100:7617");
        assert_eq!(cfg.workers, 2);
        assert_eq!(cfg.source_address, Some("127.0.2.100".parse().unwrap()));
        assert_eq!(cfg.local_dc.as_deref(), Some("west"));
        assert_eq!(cfg.cluster.seeds.len(), 4);
        assert!(cfg.cluster.seeds.contains(&"127.0.1.1:7811".to_string()));
        assert_eq!(cfg.cluster.refresh_interval, Duration::from_secs(2));
        assert_eq!(cfg.latency_ms["east"]["west"], 40.0);
        assert_eq!(cfg.breaker.failure_limit, 3);
        assert_eq!(cfg.breaker.server_timeout, Duration::from_secs(1));
        assert_eq!(cfg.dc_of("127.0.1.1".parse().unwrap()), Some("east"));
        assert_eq!(cfg.health.probe_interval, Duration::from_millis(500));
        assert_eq!(cfg.admin.listen, "127.0.2.100:7618");
        assert_eq!(admin_addr(&plan.gateways[1]).to_string(), cfg.admin.listen);
    }

    #[test]
    fn probe_keys_hit_every_shard() {
        let plan = Plan::new(&Topology::parse(TEXT, "t").unwrap(), 0).unwrap();
        let keys = probe_keys(&plan);
        assert_eq!(keys.len(), 2);
        assert!(crate::slot::key_slot(keys[1].as_bytes()).get() >= 8192);
    }
}
