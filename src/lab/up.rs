//! `lab up` and `lab down`: the supervisor that owns a lab's relays, nodes and gateways, and
//! the commands that start it in the background and stop it (`lab status` is in
//! [`super::status`]).
//!
//! The supervisor is `meridian lab up FILE --foreground`: it starts everything, writes the
//! state file, then serves its control port until Ctrl-C, SIGTERM or a `shutdown` request,
//! and tears everything down. A plain `lab up` starts that same supervisor as a detached
//! child (its own process group, output in `<dir>/supervisor.log`) and returns once it is ready.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::cluster::{self, NodeProc};
use super::control::{self, Job, Request};
use super::gateways::GatewayProc;
use super::options::LabOptions;
use super::plan::Plan;
use super::procs::{self, find_program, tail};
use super::relay::{self, DcMap, LinkState, Links, RelaySpec};
use super::state::{GatewayState, LabState, NodeState, STATE_FILE};
use super::status::up_table;
use super::{INSTALL_HINT, LabError, wait_for};

/// Bound on a background supervisor becoming ready.
const UP_TIMEOUT: Duration = Duration::from_secs(180);
/// Bound on a supervisor exiting after `shutdown`.
const DOWN_TIMEOUT: Duration = Duration::from_secs(20);
/// Log of a background supervisor, inside the lab dir.
pub const SUPERVISOR_LOG: &str = "supervisor.log";

/// A running lab, owned by the supervisor.
pub struct Lab {
    opts: LabOptions,
    redis: PathBuf,
    nodes: Vec<NodeProc>,
    gateways: Vec<GatewayProc>,
    links: Links,
    relays: Vec<JoinHandle<()>>,
    control: String,
}

impl Lab {
    /// Starts relays, nodes, the cluster and the gateways, in that order.
    async fn start(opts: LabOptions, control: String) -> Result<Lab, (Lab, LabError)> {
        let plan = opts.plan.clone();
        let redis = match find_program("redis-server", INSTALL_HINT) {
            Ok(path) => path,
            Err(e) => return Err((Lab::empty(opts, control), e)),
        };
        let mut lab = Lab {
            nodes: plan
                .nodes
                .iter()
                .map(|n| NodeProc::new(n.clone(), &opts.dir))
                .collect(),
            gateways: plan
                .gateways
                .iter()
                .map(|g| GatewayProc::new(g.clone(), &opts.dir))
                .collect(),
            links: Links::new(LinkState::from_matrix(&plan.spec.latency_ms)),
            relays: Vec::new(),
            redis,
            opts,
            control,
        };
        match lab.bring_up(&plan).await {
            Ok(()) => Ok(lab),
            Err(e) => Err((lab, e)),
        }
    }

    fn empty(opts: LabOptions, control: String) -> Lab {
        Lab {
            redis: PathBuf::new(),
            nodes: Vec::new(),
            gateways: Vec::new(),
            links: Links::new(LinkState::default()),
            relays: Vec::new(),
            opts,
            control,
        }
    }

    async fn bring_up(&mut self, plan: &Plan) -> Result<(), LabError> {
        let mut needed = Vec::new();
        for n in &plan.nodes {
            needed.push((format!("node {}", n.name), n.addr()));
            needed.push((format!("node {} (cluster bus)", n.name), n.bus_addr()));
            if plan.spec.tls {
                needed.push((format!("node {} (TLS)", n.name), n.tls_addr()));
                needed.push((format!("relay of {} (TLS)", n.name), n.relay_tls_addr()));
            }
        }
        for g in &plan.gateways {
            needed.push((format!("gateway {}", g.dc), g.addr()));
        }
        cluster::check_free(&needed)?;
        if plan.spec.tls {
            super::tls::make(plan, &self.opts.dir)?;
        }
        if plan.spec.users {
            super::users::make(&self.opts.dir, &plan.spec.name)?;
        }
        let dcs = Arc::new(DcMap(plan.dcs.clone()));
        for node in &plan.nodes {
            let mut pairs = vec![
                (node.relay_addr(), node.addr()),
                (node.relay_bus_addr(), node.bus_addr()),
            ];
            if plan.spec.tls {
                pairs.push((node.relay_tls_addr(), node.tls_addr()));
            }
            for (listen, upstream) in pairs {
                let spec = RelaySpec {
                    listen,
                    upstream,
                    node_dc: node.dc.clone(),
                };
                let listener = relay::bind(&spec).await.map_err(|e| {
                    LabError::io(format!("bind the relay of {} on {listen}", node.name), e)
                })?;
                self.relays.push(tokio::spawn(relay::run(
                    listener,
                    spec,
                    dcs.clone(),
                    self.links.clone(),
                )));
            }
        }
        eprintln!(
            "lab {}: starting {} redis-server nodes",
            plan.spec.name,
            plan.nodes.len()
        );
        for node in &mut self.nodes {
            node.start(&self.redis, plan).await?;
        }
        self.write_state(false)?;
        eprintln!(
            "lab {}: forming the cluster through the relays",
            plan.spec.name
        );
        cluster::form(plan).await?;
        eprintln!(
            "lab {}: starting {} gateways",
            plan.spec.name,
            plan.gateways.len()
        );
        let meridian =
            std::env::current_exe().map_err(|e| LabError::io("find the meridian binary", e))?;
        for gw in &mut self.gateways {
            gw.start(&meridian, plan).await?;
        }
        self.write_state(true)
    }

    /// The state file contents.
    fn state(&self, ready: bool) -> LabState {
        let plan = &self.opts.plan;
        LabState {
            name: plan.spec.name.clone(),
            topology: self.opts.topology.display().to_string(),
            port_offset: self.opts.port_offset,
            supervisor_pid: std::process::id(),
            control: self.control.clone(),
            ready,
            users_file: plan
                .spec
                .users
                .then(|| super::users::path(&self.opts.dir).display().to_string()),
            nodes: self
                .nodes
                .iter()
                .map(|p| NodeState {
                    name: p.node.name.clone(),
                    dc: p.node.dc.clone(),
                    shard: p.node.shard,
                    planned_role: if p.node.master { "master" } else { "replica" }.into(),
                    slots: p.node.slots_text(),
                    addr: p.node.addr().to_string(),
                    relay: p.node.relay_addr().to_string(),
                    pid: p.pid(),
                    log: p.log().display().to_string(),
                })
                .collect(),
            gateways: self
                .gateways
                .iter()
                .map(|g| GatewayState {
                    dc: g.gw.dc.clone(),
                    addr: g.gw.addr().to_string(),
                    pid: g.pid(),
                    config: g.config.display().to_string(),
                    log: g.log.display().to_string(),
                    dashboard: super::scrape::dashboard_url(super::gateway_config::admin_addr(
                        &g.gw,
                    )),
                })
                .collect(),
        }
    }

    fn write_state(&self, ready: bool) -> Result<(), LabError> {
        self.state(ready).write(&self.opts.dir)
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut NodeProc, String> {
        self.nodes
            .iter_mut()
            .find(|p| p.node.name == name)
            .ok_or_else(|| format!("no node `{name}`"))
    }

    fn dc_known(&self, dc: &str) -> Result<(), String> {
        let known: BTreeSet<&str> = self.opts.plan.dcs.iter().map(|(n, _)| n.as_str()).collect();
        if known.contains(dc) {
            Ok(())
        } else {
            Err(format!("no datacenter `{dc}`"))
        }
    }

    /// Carries out one control request.
    async fn handle(&mut self, request: Request) -> Result<String, String> {
        let signal_node = |lab: &mut Lab, name: &str, sig: &str| -> Result<String, String> {
            let node = lab.node_mut(name)?;
            let pid = node
                .pid()
                .ok_or_else(|| format!("node {name} is not running"))?;
            procs::signal(pid, sig).map_err(|e| e.to_string())?;
            Ok(format!("{sig} sent to {name} (pid {pid})"))
        };
        let done = match request {
            Request::Ping => Ok("pong".to_string()),
            Request::Shutdown => Ok("shutting down".to_string()),
            Request::Latency(a, b, ms) => {
                self.dc_known(&a)?;
                self.dc_known(&b)?;
                self.links.update(|s| s.set_latency(&a, &b, ms));
                Ok(format!("{a} <-> {b} round trip is now {ms} ms"))
            }
            Request::Partition(dc) => {
                self.dc_known(&dc)?;
                self.links.update(|s| {
                    s.partitioned.insert(dc.clone());
                });
                Ok(format!("{dc} is cut off from the other datacenters"))
            }
            Request::Heal => {
                let fresh = LinkState::from_matrix(&self.opts.plan.spec.latency_ms);
                self.links.update(|s| *s = fresh);
                Ok("latencies restored, partitions lifted".to_string())
            }
            Request::Kill(name) => {
                let node = self.node_mut(&name)?;
                let pid = node
                    .pid()
                    .ok_or_else(|| format!("node {name} is not running"))?;
                node.kill().await;
                Ok(format!("killed {name} (pid {pid})"))
            }
            Request::Stop(name) => signal_node(self, &name, "STOP"),
            Request::Cont(name) => signal_node(self, &name, "CONT"),
            Request::Restart(name) => {
                let (redis, plan) = (self.redis.clone(), self.opts.plan.clone());
                let node = self.node_mut(&name)?;
                if !node.exited() {
                    return Err(format!("node {name} is still running"));
                }
                node.start(&redis, &plan).await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "restarted {name} (pid {})",
                    node.pid().unwrap_or(0)
                ))
            }
        };
        // Pids change on kill and restart; keep the file current for `lab status`.
        let _ = self.write_state(true);
        done
    }

    /// Kills gateways, then nodes, then stops the relays.
    async fn teardown(&mut self) {
        for gw in &mut self.gateways {
            gw.kill().await;
        }
        for node in &mut self.nodes {
            node.kill().await;
        }
        for relay in self.relays.drain(..) {
            relay.abort();
        }
    }
}

/// Makes `dir` ready for a new lab: refuses if a supervisor is alive there, kills what a dead
/// one left behind, and removes old files (but not a supervisor log being written).
pub fn prepare_dir(dir: &Path) -> Result<(), LabError> {
    if let Some(state) = LabState::read(dir).ok().flatten() {
        if state.supervisor_alive() && state.supervisor_pid != std::process::id() {
            return Err(LabError::AlreadyRunning {
                dir: dir.display().to_string(),
                pid: state.supervisor_pid,
            });
        }
        let killed = state.kill_leftovers();
        if killed > 0 {
            eprintln!(
                "lab: killed {killed} processes left by a dead lab in {}",
                dir.display()
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten().take(10_000) {
            let path = entry.path();
            if entry.file_name() == SUPERVISOR_LOG {
                continue;
            }
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| LabError::io(format!("create {}", dir.display()), e))
}

/// Runs a lab in this process until Ctrl-C, SIGTERM or a `shutdown` request; removes its
/// files afterwards. Prints the lab's table once it is up.
pub async fn supervise(opts: LabOptions) -> Result<(), LabError> {
    prepare_dir(&opts.dir)?;
    let listener = control::bind().await?;
    let control_addr = listener
        .local_addr()
        .map_err(|e| LabError::io("read the control address", e))?
        .to_string();
    let (jobs_tx, mut jobs) = mpsc::channel::<Job>(16);
    let server = tokio::spawn(control::serve(listener, jobs_tx));
    let dir = opts.dir.clone();
    let mut lab = match Lab::start(opts, control_addr).await {
        Ok(lab) => lab,
        Err((mut lab, e)) => {
            lab.teardown().await;
            server.abort();
            let _ = std::fs::remove_file(dir.join(STATE_FILE));
            return Err(e);
        }
    };
    println!("{}", up_table(&lab.state(true)));
    let mut term = signal(SignalKind::terminate()).map_err(|e| LabError::io("watch SIGTERM", e))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| LabError::io("watch SIGHUP", e))?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => break,
            job = jobs.recv() => {
                let Some((request, answer)) = job else { break };
                let shutdown = request == Request::Shutdown;
                let result = lab.handle(request).await;
                let _ = answer.send(result);
                if shutdown {
                    break;
                }
            }
        }
    }
    eprintln!("lab {}: tearing down", lab.opts.plan.spec.name);
    lab.teardown().await;
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Starts the supervisor as a detached child (`lab up --foreground`) and waits until the lab
/// is ready; returns its state.
pub async fn up_background(opts: &LabOptions) -> Result<LabState, LabError> {
    find_program("redis-server", INSTALL_HINT)?;
    prepare_dir(&opts.dir)?;
    let log_path = opts.dir.join(SUPERVISOR_LOG);
    let log = std::fs::File::create(&log_path)
        .map_err(|e| LabError::io(format!("create {}", log_path.display()), e))?;
    let err_log = log
        .try_clone()
        .map_err(|e| LabError::io("clone a log handle", e))?;
    let exe = std::env::current_exe().map_err(|e| LabError::io("find the meridian binary", e))?;
    let mut child = std::process::Command::new(exe)
        .arg("lab")
        .arg("up")
        .arg(&opts.topology)
        .arg("--foreground")
        .arg("--dir")
        .arg(&opts.dir)
        .arg("--port-offset")
        .arg(opts.port_offset.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err_log)
        // Its own process group, so it outlives this command and ignores its terminal's Ctrl-C.
        .process_group(0)
        .spawn()
        .map_err(|e| LabError::io("start the lab supervisor", e))?;
    let deadline = tokio::time::Instant::now() + UP_TIMEOUT;
    // Polled by hand: a supervisor that exited is a failure at once, not after the timeout.
    let waited = loop {
        if let Some(status) = child.try_wait().ok().flatten() {
            break Err(format!("the supervisor exited ({status})"));
        }
        match LabState::read(&opts.dir) {
            Ok(Some(state)) if state.ready => break Ok(state),
            Ok(_) => {}
            Err(e) => break Err(e.to_string()),
        }
        if tokio::time::Instant::now() >= deadline {
            break Err(format!("the lab did not come up within {UP_TIMEOUT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    match waited {
        Ok(state) => Ok(state),
        Err(e) => {
            if child.try_wait().ok().flatten().is_none() {
                let _ = procs::signal(child.id(), "TERM");
                let _ = tokio::task::spawn_blocking(move || child.wait()).await;
            }
            Err(LabError::Process {
                what: "lab up".into(),
                message: format!(
                    "{e}\n--- {} ---\n{}",
                    log_path.display(),
                    tail(&log_path, 30)
                ),
            })
        }
    }
}

/// Stops the lab in `dir`: asks the supervisor to shut down, kills whatever is left, removes
/// the dir. Returns what it did.
pub async fn down(dir: &Path) -> Result<String, LabError> {
    let Some(state) = LabState::read(dir)? else {
        let existed = dir.exists();
        let _ = std::fs::remove_dir_all(dir);
        return Ok(if existed {
            format!("no lab state in {}; removed the directory", dir.display())
        } else {
            format!("no lab in {}", dir.display())
        });
    };
    if state.supervisor_alive() {
        if control::send(&state.control, &Request::Shutdown)
            .await
            .is_err()
        {
            let _ = procs::signal(state.supervisor_pid, "TERM");
        }
        let pid = state.supervisor_pid;
        let gone = wait_for(
            "the supervisor to exit",
            DOWN_TIMEOUT,
            Duration::from_millis(100),
            || async move {
                if procs::alive(pid) {
                    Err(format!("pid {pid} alive"))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        if gone.is_err() {
            eprintln!("lab: the supervisor did not exit in {DOWN_TIMEOUT:?}; killing what is left");
        }
    }
    let killed = state.kill_leftovers();
    let _ = std::fs::remove_dir_all(dir);
    let extra = if killed > 0 {
        format!(" (killed {killed} leftover processes)")
    } else {
        String::new()
    };
    Ok(format!(
        "lab {} is down; removed {}{extra}",
        state.name,
        dir.display()
    ))
}
