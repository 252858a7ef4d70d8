//! Drills: bring up (or reuse) a lab, run the load through every gateway, inject a fault at a
//! third of the duration, heal it at two thirds, keep going through a settle window, and
//! report what the clients saw ([`Report`]).

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::client::{Reply, query};
use super::cluster::{self, ADMIN_TIMEOUT};
use super::control::{self, Request};
use super::gateway_config::admin_addr;
use super::load::{self, LoadSpec};
use super::options::LabOptions;
use super::report::{DrillInfo, Report};
use super::sampler;
use super::scrape::{self, GatewayMetrics, dashboard_url};
use super::state::LabState;
use super::up::{down, up_background};
use super::{LabError, Plan, wait_for};

/// Extra time after the heal (beyond the cluster node timeout) before errors count as
/// "continuing after heal".
pub const SETTLE_EXTRA: Duration = Duration::from_secs(3);
/// Run time kept after the settle window, so "no errors after heal" is checked on something.
pub const CHECK_WINDOW: Duration = Duration::from_secs(2);
/// Bound on the cluster becoming healthy before and after a drill.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on waiting, at the heal of `kill-master`, for the failover to have happened.
const FAILOVER_WAIT: Duration = Duration::from_secs(30);
/// How often the cluster's shape is polled for events.
const OBSERVE_EVERY: Duration = Duration::from_millis(250);

/// The faults a drill can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// SIGKILL a master; heal: restart it (it rejoins as a replica).
    KillMaster,
    /// SIGSTOP a master; heal: SIGCONT.
    HangNode,
    /// The relays cut a DC off from the others; heal: lift it.
    PartitionDc,
    /// Raise one inter-DC link's latency; heal: restore it.
    SlowLink,
    /// CLUSTER FAILOVER onto a replica in another DC; heal: fail back.
    PromoteRemote,
}

impl Scenario {
    /// Every scenario, by name.
    pub const ALL: [(&'static str, Scenario); 5] = [
        ("kill-master", Scenario::KillMaster),
        ("hang-node", Scenario::HangNode),
        ("partition-dc", Scenario::PartitionDc),
        ("slow-link", Scenario::SlowLink),
        ("promote-remote", Scenario::PromoteRemote),
    ];
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Scenario, String> {
        Scenario::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, sc)| *sc)
            .ok_or_else(|| {
                let names: Vec<&str> = Scenario::ALL.iter().map(|(n, _)| *n).collect();
                format!("unknown scenario `{s}`; one of {}", names.join(", "))
            })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = Scenario::ALL
            .iter()
            .find(|(_, sc)| sc == self)
            .map_or("?", |(n, _)| n);
        f.write_str(name)
    }
}

/// How to run a drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// Which lab.
    pub lab: LabOptions,
    /// What to break.
    pub scenario: Scenario,
    /// Planned length (the run is extended to cover the settle and check windows).
    pub duration: Duration,
    /// Requests per second per gateway.
    pub rate: u32,
    /// The shard whose master is the target.
    pub shard: usize,
    /// `partition-dc`: the DC to cut off; `slow-link`: the far end of the link.
    pub dc: Option<String>,
    /// `slow-link`: the link's new round trip in ms.
    pub latency_ms: Option<f64>,
    /// Leave a lab this drill started running afterwards.
    pub keep: bool,
    /// Seed of the load's random choices.
    pub seed: u64,
}

/// What the drill does at the fault and at the heal.
#[derive(Debug, Clone)]
enum Action {
    Control(Request),
    Failover {
        node: String,
        addr: std::net::SocketAddr,
    },
}

struct Plot {
    target: String,
    /// `kill-master`: shard and killed node; the heal waits for the shard's failover.
    wait_failover: Option<(usize, String)>,
    fault: Action,
    heal: Action,
    affected: Vec<(u16, u16)>,
}

/// Events recorded during the drill, shared with the observer task.
type Events = Arc<Mutex<Vec<(u32, String)>>>;

fn push(events: &Events, start: Instant, what: String) {
    let at = u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX);
    if let Ok(mut list) = events.lock() {
        list.push((at, what));
    }
}

/// Runs the drill; a lab it had to start is taken down afterwards (unless `keep`).
pub async fn run(mut opts: DrillOptions) -> Result<Report, LabError> {
    if opts.rate == 0 || opts.rate > 100_000 {
        return Err(LabError::Scenario(
            "--rate must be 1..100000 requests/s per gateway".into(),
        ));
    }
    if opts.duration < Duration::from_secs(3) {
        return Err(LabError::Scenario("--duration must be at least 3s".into()));
    }
    let reuse = match LabState::read(&opts.lab.dir)? {
        Some(state) if state.supervisor_alive() && state.ready => Some(state),
        _ => None,
    };
    let started = reuse.is_none();
    let state = match reuse {
        Some(state) => {
            eprintln!("drill: reusing the lab in {}", opts.lab.dir.display());
            opts.lab = opts.lab.with_offset_of(&state)?;
            state
        }
        None => {
            eprintln!("drill: bringing up the lab in {}", opts.lab.dir.display());
            up_background(&opts.lab).await?
        }
    };
    let result = drill(&opts, &state).await;
    if started && !opts.keep {
        match down(&opts.lab.dir).await {
            Ok(_) => eprintln!("drill: lab taken down"),
            Err(e) => eprintln!("drill: taking the lab down failed: {e}"),
        }
    }
    result
}

async fn drill(opts: &DrillOptions, state: &LabState) -> Result<Report, LabError> {
    let plan = &opts.lab.plan;
    wait_for(
        "the cluster to be healthy before the drill",
        HEALTH_TIMEOUT,
        Duration::from_millis(200),
        || cluster::check_health(plan, None),
    )
    .await?;
    let plot = plot(opts, plan).await?;
    let d = opts.duration;
    let (fault_at, heal_at) = (d / 3, d * 2 / 3);
    let settle_at = heal_at + plan.node_timeout() + SETTLE_EXTRA;
    let end_at = d.max(settle_at + CHECK_WINDOW);
    let ms = |t: Duration| u32::try_from(t.as_millis()).unwrap_or(u32::MAX);
    eprintln!(
        "drill {}: {}; load {} req/s per gateway for {:.1}s",
        opts.scenario,
        plot.target,
        opts.rate,
        end_at.as_secs_f64()
    );
    let gateways: Vec<std::net::SocketAddr> = plan.gateways.iter().map(|g| g.addr()).collect();
    let admins: Vec<std::net::SocketAddr> = plan.gateways.iter().map(admin_addr).collect();
    for (g, admin) in plan.gateways.iter().zip(&admins) {
        eprintln!(
            "drill: gateway {} dashboard {}",
            g.dc,
            dashboard_url(*admin)
        );
    }
    // The gateways may have served earlier drills: the report shows what they counted during
    // this one.
    let metrics_before = scrape_all(&admins).await;
    let run_id = (std::process::id() ^ (opts.seed as u32)).wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
    let spec = LoadSpec {
        gateways,
        rate: opts.rate,
        keys: 256,
        read_ratio: 0.7,
        run: run_id,
        timeout: Duration::from_secs(3),
        seed: opts.seed,
        login: super::users::lab_login(&opts.lab.dir, plan.spec.users)?,
    };
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + end_at;
    let targets = plan
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.dc.clone(), n.addr()))
        .collect();
    let load_task = tokio::spawn(load::run(spec, start, end));
    let sample_task = tokio::spawn(sampler::run(
        targets,
        start,
        end,
        Duration::from_millis(100),
    ));
    let events: Events = Arc::new(Mutex::new(Vec::new()));
    let observer = tokio::spawn(observe(plan.clone(), events.clone(), start, end));

    tokio::time::sleep_until(start + fault_at).await;
    push(&events, start, format!("fault: {}", describe(&plot.fault)));
    if let Err(e) = act(state, &plot.fault).await {
        push(&events, start, format!("fault action failed: {e}"));
    }
    tokio::time::sleep_until(start + heal_at).await;
    if let Some((shard, killed)) = &plot.wait_failover {
        // The killed master must come back as a replica, so the heal waits for the failover.
        let waited = wait_for(
            &format!("a failover of shard {shard}"),
            FAILOVER_WAIT,
            Duration::from_millis(100),
            || async {
                match cluster::live_shards(plan).await {
                    Ok(shards) if shards[*shard].0 != *killed => Ok(shards[*shard].0.clone()),
                    Ok(_) => Err(format!("{killed} is still its master")),
                    Err(e) => Err(e),
                }
            },
        )
        .await;
        match waited {
            Ok(new) => push(
                &events,
                start,
                format!("failover done: {new} is master of shard {shard}; healing"),
            ),
            Err(e) => push(&events, start, format!("no failover before the heal: {e}")),
        }
    }
    push(&events, start, format!("heal: {}", describe(&plot.heal)));
    if let Err(e) = act(state, &plot.heal).await {
        push(&events, start, format!("heal action failed: {e}"));
    }
    let loads = load_task
        .await
        .map_err(|e| LabError::Scenario(format!("the load task failed: {e}")))?;
    let nodes = sample_task
        .await
        .map_err(|e| LabError::Scenario(format!("the sampler failed: {e}")))?;
    let _ = observer.await;
    let metrics_after = scrape_all(&admins).await;
    let healthy = wait_for(
        "the cluster to be healthy after the drill",
        HEALTH_TIMEOUT,
        Duration::from_millis(200),
        || cluster::check_health(plan, None),
    )
    .await;
    match healthy {
        Ok(()) => push(
            &events,
            start,
            "cluster healthy: every node agrees, every slot served".into(),
        ),
        Err(e) => push(
            &events,
            start,
            format!("cluster NOT healthy after the drill: {e}"),
        ),
    }
    if let Ok(shards) = cluster::live_shards(plan).await {
        let shape: Vec<String> = shards
            .iter()
            .enumerate()
            .map(|(i, (m, _))| format!("shard {i}: {m}"))
            .collect();
        push(
            &events,
            start,
            format!("masters after the drill: {}", shape.join(", ")),
        );
    }
    let mut events = events.lock().map(|e| e.clone()).unwrap_or_default();
    events.sort();
    let info = DrillInfo {
        scenario: opts.scenario.to_string(),
        topology: plan.spec.name.clone(),
        target: plot.target,
        fault_ms: ms(fault_at),
        heal_ms: ms(heal_at),
        settle_ms: ms(settle_at),
        end_ms: ms(end_at),
        rate: opts.rate,
        affected_slots: plot.affected,
        gateways: plan
            .gateways
            .iter()
            .map(|g| (g.dc.clone(), g.addr().to_string()))
            .collect(),
        dcs: plan.dcs.iter().map(|(n, _)| n.clone()).collect(),
        events,
    };
    let mut report = Report::build(info, &loads, &nodes);
    for (i, g) in report.gateways.iter_mut().enumerate() {
        let (Some(admin), Some(before), Some(after)) =
            (admins.get(i), metrics_before.get(i), metrics_after.get(i))
        else {
            continue;
        };
        g.dashboard = dashboard_url(*admin);
        g.metrics = Some(match (before, after) {
            (Ok(b), Ok(a)) => Ok(a.since(b)),
            (Err(e), _) | (_, Err(e)) => Err(e.clone()),
        });
    }
    Ok(report)
}

/// Every gateway's `/metrics`, in plan order (one after the other: a handful of gateways,
/// each read bounded).
async fn scrape_all(admins: &[std::net::SocketAddr]) -> Vec<Result<GatewayMetrics, String>> {
    let mut out = Vec::with_capacity(admins.len());
    for admin in admins {
        out.push(scrape::fetch(*admin).await);
    }
    out
}

/// Chooses the target and the fault/heal actions of the scenario on the cluster as it is now.
async fn plot(opts: &DrillOptions, plan: &Plan) -> Result<Plot, LabError> {
    let bad = LabError::Scenario;
    if opts.shard >= plan.shard_count() {
        return Err(bad(format!(
            "--shard {} but the topology has {} shards",
            opts.shard,
            plan.shard_count()
        )));
    }
    let shards = cluster::live_shards(plan)
        .await
        .map_err(|e| bad(format!("cannot read the cluster: {e}")))?;
    let (master, replicas) = shards[opts.shard].clone();
    let node = |name: &str| {
        plan.node(name)
            .ok_or_else(|| bad(format!("`{name}` is not a node of the plan")))
    };
    let m = node(&master)?;
    let slots = vec![m.slots];
    let dcs: Vec<&str> = plan.dcs.iter().map(|(n, _)| n.as_str()).collect();
    let needs_failover = |what: &str| -> Result<(), LabError> {
        if replicas.is_empty() {
            return Err(bad(format!(
                "{what} needs a replica of shard {} to fail over to",
                opts.shard
            )));
        }
        // A failover needs the votes of a majority of the masters, the failed one included.
        if plan.shard_count() < 3 {
            return Err(bad(format!(
                "{what} needs at least 3 masters (a majority must remain to vote)"
            )));
        }
        Ok(())
    };
    let plot = match opts.scenario {
        Scenario::KillMaster => {
            needs_failover("kill-master")?;
            Plot {
                target: format!(
                    "SIGKILL {} (master of shard {}, slots {}); at the heal, once failed over, restart it",
                    m.name,
                    opts.shard,
                    m.slots_text()
                ),
                wait_failover: Some((opts.shard, m.name.clone())),
                fault: Action::Control(Request::Kill(m.name.clone())),
                heal: Action::Control(Request::Restart(m.name.clone())),
                affected: slots,
            }
        }
        Scenario::HangNode => {
            needs_failover("hang-node")?;
            Plot {
                target: format!(
                    "SIGSTOP {} (master of shard {}, slots {}), SIGCONT at the heal",
                    m.name,
                    opts.shard,
                    m.slots_text()
                ),
                wait_failover: None,
                fault: Action::Control(Request::Stop(m.name.clone())),
                heal: Action::Control(Request::Cont(m.name.clone())),
                affected: slots,
            }
        }
        Scenario::PartitionDc => {
            if dcs.len() < 2 {
                return Err(bad("partition-dc needs at least two datacenters".into()));
            }
            let dc = opts.dc.clone().unwrap_or_else(|| m.dc.clone());
            if !dcs.contains(&dc.as_str()) {
                return Err(bad(format!("no datacenter `{dc}`")));
            }
            let affected = shards
                .iter()
                .filter_map(|(master, _)| plan.node(master))
                .filter(|n| n.dc == dc)
                .map(|n| n.slots)
                .collect();
            Plot {
                target: format!(
                    "cut datacenter {dc} off from the others (relays hold every byte across the cut)"
                ),
                wait_failover: None,
                fault: Action::Control(Request::Partition(dc)),
                heal: Action::Control(Request::Heal),
                affected,
            }
        }
        Scenario::SlowLink => {
            if dcs.len() < 2 {
                return Err(bad("slow-link needs at least two datacenters".into()));
            }
            let near = plan
                .gateways
                .first()
                .map_or(dcs[0].to_string(), |g| g.dc.clone());
            let far = match &opts.dc {
                Some(dc) => dc.clone(),
                None if m.dc != near => m.dc.clone(),
                None => dcs
                    .iter()
                    .find(|d| **d != near)
                    .map_or(String::new(), |d| d.to_string()),
            };
            if !dcs.contains(&far.as_str()) || far == near {
                return Err(bad(format!(
                    "slow-link needs a datacenter other than {near} (--dc)"
                )));
            }
            let old = plan.spec.latency(&near, &far);
            let new = opts.latency_ms.unwrap_or((old * 5.0).max(old + 200.0));
            let affected = shards
                .iter()
                .filter_map(|(master, _)| plan.node(master))
                .filter(|n| n.dc == far)
                .map(|n| n.slots)
                .collect();
            Plot {
                target: format!("raise the {near} <-> {far} round trip from {old} ms to {new} ms"),
                wait_failover: None,
                fault: Action::Control(Request::Latency(near, far, new)),
                heal: Action::Control(Request::Heal),
                affected,
            }
        }
        Scenario::PromoteRemote => {
            let remote = replicas
                .iter()
                .filter_map(|r| plan.node(r))
                .find(|r| r.dc != m.dc)
                .ok_or_else(|| {
                    bad(format!(
                        "promote-remote needs a replica of shard {} outside {}",
                        opts.shard, m.dc
                    ))
                })?;
            Plot {
                target: format!(
                    "CLUSTER FAILOVER onto {} ({}), replica of {} ({}); fail back at the heal",
                    remote.name, remote.dc, m.name, m.dc
                ),
                wait_failover: None,
                fault: Action::Failover {
                    node: remote.name.clone(),
                    addr: remote.addr(),
                },
                heal: Action::Failover {
                    node: m.name.clone(),
                    addr: m.addr(),
                },
                affected: slots,
            }
        }
    };
    Ok(plot)
}

fn describe(action: &Action) -> String {
    match action {
        Action::Control(request) => request.line(),
        Action::Failover { node, .. } => format!("CLUSTER FAILOVER on {node}"),
    }
}

async fn act(state: &LabState, action: &Action) -> Result<String, LabError> {
    match action {
        Action::Control(request) => control::send(&state.control, request).await,
        Action::Failover { node, addr } => {
            match query(*addr, &["CLUSTER", "FAILOVER"], ADMIN_TIMEOUT * 5).await {
                Ok(Reply::Simple(_)) => {}
                Ok(other) => {
                    return Err(LabError::Process {
                        what: format!("node {node}"),
                        message: format!("CLUSTER FAILOVER: {other:?}"),
                    });
                }
                Err(e) => {
                    return Err(LabError::Process {
                        what: format!("node {node}"),
                        message: e.to_string(),
                    });
                }
            }
            let addr = *addr;
            wait_for(
                &format!("{node} to become master"),
                Duration::from_secs(15),
                Duration::from_millis(100),
                || async move {
                    let info = query(addr, &["INFO", "replication"], ADMIN_TIMEOUT)
                        .await
                        .map_err(|e| e.to_string())?;
                    let text = info.text().unwrap_or_default();
                    if text.contains("role:master") {
                        Ok(())
                    } else {
                        Err("still a replica".into())
                    }
                },
            )
            .await?;
            Ok(format!("{node} is master"))
        }
    }
}

/// Records changes of each shard's master as events until `end`.
async fn observe(plan: Plan, events: Events, start: Instant, end: Instant) {
    let mut last: Option<Vec<String>> = None;
    while Instant::now() < end {
        // Bounded: each pass sleeps OBSERVE_EVERY and the loop ends at `end`.
        if let Ok(shards) = cluster::live_shards(&plan).await {
            let masters: Vec<String> = shards.into_iter().map(|(m, _)| m).collect();
            if let Some(before) = &last {
                for (i, (old, new)) in before.iter().zip(&masters).enumerate() {
                    if old != new {
                        push(
                            &events,
                            start,
                            format!("{new} is now master of shard {i} (was {old})"),
                        );
                    }
                }
            }
            last = Some(masters);
        }
        tokio::time::sleep(OBSERVE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_names_round_trip() {
        for (name, sc) in Scenario::ALL {
            assert_eq!(name.parse::<Scenario>(), Ok(sc));
            assert_eq!(sc.to_string(), name);
        }
        let err = "reboot".parse::<Scenario>().unwrap_err();
        assert!(err.contains("kill-master"), "{err}");
    }
}
