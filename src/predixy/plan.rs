//! The DataCenter section in meridian's terms: validated DC names, AddrPrefix → CIDRs (with
//! the servers' DCs checked before and after), and ReadPolicy → latency rows and weights.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use super::dc::{self, LEVEL_STEP_MS, NEVER_MS};
use super::{Dc, Model, Pool, PredixyError};
use crate::config::{UNKNOWN_DC, split_host_port};

/// The DataCenter section in meridian's terms.
pub(super) struct Plan {
    pub(super) local_dc: Option<String>,
    /// (name, cidrs, nodes), in predixy's order.
    pub(super) dcs: Vec<(String, Vec<IpNet>, Vec<String>)>,
    pub(super) rows: Vec<(String, BTreeMap<String, f64>)>,
    pub(super) weights: Vec<(String, u32)>,
    /// Some row keeps a DC at [`NEVER_MS`]: max_latency_ms fences it off.
    pub(super) fenced: bool,
    pub(super) dc_notes: Vec<String>,
    pub(super) latency_notes: Vec<String>,
    pub(super) policy_notes: Vec<String>,
}

/// Checks the DataCenter section as predixy would (names, ReadPolicy targets, LocalDC) and
/// works out its meridian form; problems that still convert become `warnings`.
pub(super) fn plan_dcs(
    m: &Model,
    pool: &Pool,
    dcs: &[Dc],
    warnings: &mut Vec<String>,
) -> Result<Plan, PredixyError> {
    let names: Vec<String> = dcs.iter().map(|d| d.name.clone()).collect();
    let invalid = |at: &str, message: String| PredixyError::Invalid {
        at: at.to_string(),
        message,
    };
    for (i, d) in dcs.iter().enumerate() {
        let usable = !d.name.is_empty()
            && d.name != UNKNOWN_DC
            && d.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !usable {
            let msg = format!(
                "DC name `{}` cannot be used: meridian DC names use letters, digits, '-' and '_', \
                 and `unknown` is reserved",
                d.name
            );
            return Err(invalid(&d.at, msg));
        }
        if names[..i].contains(&d.name) {
            return Err(invalid(&d.at, format!("DC `{}` is defined twice", d.name)));
        }
        for e in d.policy.iter().flatten() {
            if !names.contains(&e.dc) {
                let msg = format!(
                    "DC `{}` ReadPolicy names `{}`, which is not a DC",
                    d.name, e.dc
                );
                return Err(invalid(&d.at, msg));
            }
        }
    }
    let mut plan = Plan {
        local_dc: None,
        dcs: Vec::new(),
        rows: Vec::new(),
        weights: Vec::new(),
        fenced: false,
        dc_notes: Vec::new(),
        latency_notes: Vec::new(),
        policy_notes: Vec::new(),
    };
    match &m.local_dc {
        Some((name, _)) if names.contains(name) => plan.local_dc = Some(name.clone()),
        Some((name, at)) => {
            return Err(invalid(at, format!("LocalDC `{name}` is not a DC of DataCenter")));
        }
        None => plan.dc_notes.push(
            "predixy's LocalDC is not set in the file (given with --LocalDC?): start each meridian \
             with --local-dc <dc> or MERIDIAN_LOCAL_DC"
                .into(),
        ),
    }
    place_networks(&mut plan, pool, dcs, warnings)?;
    plan_latency(&mut plan, dcs, &names);
    Ok(plan)
}

/// AddrPrefix → CIDRs (carved so DCs never overlap) and, for prefixes that are not IPv4
/// prefixes, the seeds they matched as explicit nodes.
fn place_networks(
    plan: &mut Plan,
    pool: &Pool,
    dcs: &[Dc],
    warnings: &mut Vec<String>,
) -> Result<(), PredixyError> {
    let string_prefixes: Vec<(String, String)> = dcs
        .iter()
        .flat_map(|d| d.prefixes.iter().map(|(p, _)| (d.name.clone(), p.clone())))
        .collect();
    let mut nets: Vec<(String, IpNet, String)> = Vec::new();
    let mut nodes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in dcs {
        for (prefix, at) in &d.prefixes {
            let Some(net) = dc::prefix_to_cidr(prefix) else {
                let matched: Vec<String> = pool
                    .seeds
                    .iter()
                    .filter(|s| dc::predixy_dc_of(&string_prefixes, s) == Some(d.name.as_str()))
                    .filter(|s| s.starts_with(prefix.as_str()))
                    .cloned()
                    .collect();
                let what = if matched.is_empty() {
                    "no server matches it; place its nodes with `nodes` or `hosts`"
                } else {
                    "the servers it matched are listed in `nodes`; discovered nodes need `nodes` or \
                     `hosts` entries"
                };
                warnings.push(format!(
                    "AddrPrefix `{prefix}` of DC {} ({at}) is not an IPv4 prefix and has no CIDR: {what}",
                    d.name
                ));
                nodes.entry(d.name.clone()).or_default().extend(matched);
                continue;
            };
            if let Some((other, _, theirs)) =
                nets.iter().find(|(o, n, _)| *n == net && *o != d.name)
            {
                return Err(PredixyError::Invalid {
                    at: at.clone(),
                    message: format!(
                        "AddrPrefix `{prefix}` of DC {} and `{theirs}` of DC {other} are the same network {net}",
                        d.name
                    ),
                });
            }
            if !nets.iter().any(|(o, n, _)| *n == net && *o == d.name) {
                nets.push((d.name.clone(), net, prefix.clone()));
            }
        }
    }
    if let Some((_, net, prefix)) = nets.iter().find(|(_, n, _)| n.prefix_len() < 32) {
        plan.dc_notes.push(format!(
            "AddrPrefix string prefixes became CIDRs: `{prefix}` is now {net}, so addresses are \
             matched by network, not by text (`10.1` no longer matches 10.10.x.x); a node no CIDR \
             contains is in DC `unknown`, read from only as a last resort (predixy never read from it)"
        ));
    }
    let mut placed: Vec<(String, IpNet)> = Vec::new();
    for d in dcs {
        let mut cidrs = Vec::new();
        for (owner, net, prefix) in nets.iter().filter(|(o, _, _)| *o == d.name) {
            let holes: Vec<IpNet> = nets
                .iter()
                .filter(|(o, n, _)| o != owner && n != net && net.contains(n))
                .map(|(_, n, _)| *n)
                .collect();
            let parts = dc::subtract(*net, &holes);
            if !holes.is_empty() {
                let holes: Vec<String> = holes.iter().map(IpNet::to_string).collect();
                plan.dc_notes.push(format!(
                    "{owner}'s `{prefix}` ({net}) contains {} of other DCs; it is written as {} \
                     networks around them, so no two DCs overlap and every address keeps the DC \
                     predixy's longest prefix gave it",
                    holes.join(", "),
                    parts.len()
                ));
            }
            placed.extend(parts.iter().map(|p| (owner.clone(), *p)));
            cidrs.extend(parts);
        }
        let listed = nodes.remove(&d.name).unwrap_or_default();
        plan.dcs.push((d.name.clone(), cidrs, listed));
    }
    for seed in &pool.seeds {
        let ip = split_host_port(seed)
            .ok()
            .and_then(|(h, _)| h.parse::<IpAddr>().ok());
        let Some(ip) = ip else { continue };
        let before = dc::predixy_dc_of(&string_prefixes, seed);
        let after = dc::cidr_dc_of(&placed, ip);
        if before != after {
            warnings.push(format!(
                "server {seed} was in DC {} by predixy's text prefix and is in DC {} by CIDR",
                before.unwrap_or(UNKNOWN_DC),
                after.unwrap_or(UNKNOWN_DC)
            ));
        }
    }
    Ok(())
}

/// ReadPolicy priorities → latency rows; LocalDC's weights → read_policy.weights.
fn plan_latency(plan: &mut Plan, dcs: &[Dc], names: &[String]) {
    for d in dcs {
        let row = match &d.policy {
            Some(policy) => dc::latency_row(policy, names),
            None => {
                plan.latency_notes.push(format!(
                    "DC {} has no ReadPolicy, so predixy could read nowhere with it as LocalDC; \
                     here it reads its own DC first and the others as a fallback",
                    d.name
                ));
                let mut row: BTreeMap<String, f64> =
                    names.iter().map(|n| (n.clone(), NEVER_MS)).collect();
                row.insert(d.name.clone(), 0.0);
                row
            }
        };
        plan.fenced |= row.values().any(|&v| v >= NEVER_MS);
        plan.rows.push((d.name.clone(), row));
    }
    plan.latency_notes.insert(
        0,
        format!(
            "ReadPolicy priorities became this synthetic latency map: in each row the highest \
             priority is 0 ms and each lower priority level {LEVEL_STEP_MS} ms more, so DCs of \
             equal priority stay one tier. They are not real latencies; replace them with \
             measured ones before switching latency_source to hybrid."
        ),
    );
    if plan.fenced {
        plan.latency_notes.push(format!(
            "DCs a ReadPolicy never read from (priority 0 or not listed) are at {NEVER_MS} ms, beyond \
             read_policy.max_latency_ms: meridian reads them only when nothing nearer can answer, \
             where predixy failed the read"
        ));
    }
    let policy_of = |name: &str| {
        dcs.iter()
            .find(|d| d.name == name)
            .and_then(|d| d.policy.as_ref())
    };
    if let Some(local) = plan.local_dc.clone()
        && let Some(policy) = policy_of(&local)
        && dc::weights_matter(policy)
    {
        plan.weights = policy
            .iter()
            .filter(|e| e.priority > 0)
            .map(|e| (e.dc.clone(), u32::try_from(e.weight).unwrap_or(u32::MAX)))
            .collect();
        plan.policy_notes.push(format!(
            "weights come from LocalDC {local}'s ReadPolicy; the file has one weights map, so a \
             gateway started with another --local-dc uses these same weights"
        ));
    }
    for d in dcs {
        let Some(policy) = &d.policy else { continue };
        if Some(&d.name) == plan.local_dc.as_ref() || !dc::weights_matter(policy) {
            continue;
        }
        let listed: Vec<String> = policy
            .iter()
            .filter(|e| e.priority > 0)
            .map(|e| format!("{} {}", e.dc, e.weight))
            .collect();
        plan.policy_notes.push(format!(
            "DC {}'s ReadPolicy weights ({}) are not carried over",
            d.name,
            listed.join(", ")
        ));
    }
}
