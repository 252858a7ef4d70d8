//! What `lab up` prints and what `lab status` shows: the nodes with their roles and slots,
//! the gateways with how to connect, and whether each process runs.

use super::LabError;
use super::cluster;
use super::options::LabOptions;
use super::state::{LabState, describe};
use super::table::table;
use super::users::{LAB_USER, READER};

/// The `lab up` table: nodes (DC, node, role, slots, address) and gateways with how to connect.
pub fn up_table(state: &LabState) -> String {
    let nodes: Vec<Vec<String>> = state
        .nodes
        .iter()
        .map(|n| {
            let slots = if n.planned_role == "master" {
                n.slots.clone()
            } else {
                String::new()
            };
            vec![
                n.dc.clone(),
                n.name.clone(),
                n.planned_role.clone(),
                slots,
                n.relay.clone(),
                n.addr.clone(),
            ]
        })
        .collect();
    let gateways = gateway_rows(state);
    format!(
        "lab {} ({} nodes, {} gateways)\n\n{}\n{}{}\nstop it with: meridian lab down {}",
        state.name,
        state.nodes.len(),
        state.gateways.len(),
        table(
            &["DC", "NODE", "ROLE", "SLOTS", "ADDRESS", "REDIS (no delay)"],
            &nodes
        ),
        table(&["DC", "GATEWAY", "CONNECT", "DASHBOARD"], &gateways),
        users_note(state),
        state.topology
    )
}

/// Where a `users: true` lab keeps its passwords (never the passwords), or nothing.
fn users_note(state: &LabState) -> String {
    match &state.users_file {
        Some(file) => format!(
            "gateway users: {LAB_USER} (admin), {READER} (read), `default` disabled; \
             passwords in {file} (mode 0600)\n"
        ),
        None => String::new(),
    }
}

fn gateway_rows(state: &LabState) -> Vec<Vec<String>> {
    state
        .gateways
        .iter()
        .map(|g| {
            let (host, port) = g.addr.rsplit_once(':').unwrap_or((&g.addr, ""));
            let login = match state.users_file {
                Some(_) => format!(" --user {LAB_USER} --askpass"),
                None => String::new(),
            };
            vec![
                g.dc.clone(),
                g.addr.clone(),
                format!("redis-cli -h {host} -p {port}{login}"),
                g.dashboard.clone(),
            ]
        })
        .collect()
}

/// The `lab status` report: live roles and slots (from the nodes), process states.
pub async fn status(opts: &LabOptions) -> Result<String, LabError> {
    let Some(state) = LabState::read(&opts.dir)? else {
        return Err(LabError::NotRunning(opts.dir.display().to_string()));
    };
    let opts = &opts.clone().with_offset_of(&state)?;
    let supervisor = if state.supervisor_alive() {
        "running"
    } else {
        "DEAD (run `lab down` to clean up)"
    };
    let live = cluster::live_shards(&opts.plan).await;
    let role_of = |name: &str| -> (String, String) {
        let Ok(shards) = &live else {
            return ("?".into(), String::new());
        };
        for (i, (master, replicas)) in shards.iter().enumerate() {
            let slots = opts
                .plan
                .shard_nodes(i)
                .next()
                .map(|n| n.slots_text())
                .unwrap_or_default();
            if master == name {
                return ("master".into(), slots);
            }
            if replicas.iter().any(|r| r == name) {
                return ("replica".into(), String::new());
            }
        }
        ("-".into(), String::new())
    };
    let nodes: Vec<Vec<String>> = state
        .nodes
        .iter()
        .map(|n| {
            let (role, slots) = role_of(&n.name);
            let planned = if n.planned_role == role {
                String::new()
            } else {
                format!(" (planned {})", n.planned_role)
            };
            vec![
                n.dc.clone(),
                n.name.clone(),
                format!("{role}{planned}"),
                slots,
                n.relay.clone(),
                describe(n.pid).to_string(),
            ]
        })
        .collect();
    let gateways: Vec<Vec<String>> = gateway_rows(&state)
        .into_iter()
        .zip(&state.gateways)
        .map(|(mut row, g)| {
            row.push(describe(g.pid).to_string());
            row
        })
        .collect();
    let view = match &live {
        Ok(_) => String::new(),
        Err(e) => format!("cluster view unavailable: {e}\n"),
    };
    Ok(format!(
        "lab {} in {}: supervisor pid {} {supervisor}, control {}\n{view}\n{}\n{}{}",
        state.name,
        opts.dir.display(),
        state.supervisor_pid,
        state.control,
        table(
            &["DC", "NODE", "ROLE", "SLOTS", "ADDRESS", "PROCESS"],
            &nodes
        ),
        table(
            &["DC", "GATEWAY", "CONNECT", "DASHBOARD", "PROCESS"],
            &gateways
        ),
        users_note(&state),
    ))
}
