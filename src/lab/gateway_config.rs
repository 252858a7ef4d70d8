//! The config file of each lab gateway: the lab's own keys, the sections with explicit values,
//! and the spec's `gateway_config` overrides on top; and the check that those overrides leave
//! every generated config valid.

use serde_yaml_ng::{Mapping, Value};

use super::client::Login;
use super::plan::{Plan, PlannedGateway};
use super::spec::LabSpec;
use crate::config::{Config, ConfigError};

/// Top-level keys the lab sets per gateway; `gateway_config` may not override them.
pub const LAB_KEYS: [&str; 6] = [
    "listen",
    "workers",
    "source_address",
    "local_dc",
    "datacenters",
    "latency_ms",
];

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
///
/// In a `tls: true` lab the seeds are the nodes' relayed TLS ports and `cluster.tls` names the
/// lab's certificates in `tls_dir`. In a `users: true` lab the `users` section holds the
/// digests of `logins`' passwords (see [`super::users`]).
pub fn render_config(
    plan: &Plan,
    gw: &PlannedGateway,
    tls_dir: &std::path::Path,
    logins: &[Login],
) -> String {
    let seed_of = |n: &super::plan::PlannedNode| match plan.spec.tls {
        true => n.relay_tls_addr(),
        false => n.relay_addr(),
    };
    let seeds: Vec<Value> = plan
        .nodes
        .iter()
        .map(|n| s(seed_of(n).to_string()))
        .collect();
    let mut dcs = Mapping::new();
    for (name, net) in &plan.dcs {
        dcs.insert(
            s(name.as_str()),
            map(vec![("cidrs", Value::Sequence(vec![s(net.to_string())]))]),
        );
    }
    let mut matrix = Mapping::new();
    for (from, row) in &plan.spec.latency_ms {
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
        // The admin endpoint on the gateway's own address, one port above its listen port
        // (7618 by default), so gateways and labs with other port offsets never collide.
        (
            "admin",
            map(vec![("listen", s(admin_addr(gw).to_string()))]),
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
    ]);
    if let (Value::Mapping(base), Some(extra)) = (&mut root, &plan.spec.gateway_config) {
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
                .map(|n| s(seed_of(n).to_string()))
                .collect();
            cluster.insert(s("seeds"), Value::Sequence(seeds));
        }
    }
    if plan.spec.tls
        && let Value::Mapping(base) = &mut root
        && let Some(Value::Mapping(cluster)) = base.get_mut("cluster")
    {
        cluster.insert(s("tls"), super::tls::gateway_section(tls_dir));
    }
    if plan.spec.users
        && let Value::Mapping(base) = &mut root
    {
        base.insert(s("users"), super::users::gateway_section(logins));
    }
    let body = serde_yaml_ng::to_string(&root).unwrap_or_default();
    format!(
        "# Generated by `meridian lab` for topology `{}`, gateway of DC `{}`.\n\
         # Seeds are the nodes' delay relays; backend sockets leave from {} so the relays\n\
         # know this gateway's DC.\n{body}",
        plan.spec.name, gw.dc, gw.ip
    )
}

/// What is wrong with the spec's `gateway_config`: a key the lab sets itself, or an override
/// that makes a generated config invalid (reported for the first such gateway). Asked only of a
/// spec that is otherwise valid, since the configs are rendered from its plan.
pub(super) fn override_problems(spec: &LabSpec) -> Vec<ConfigError> {
    let Some(extra) = &spec.gateway_config else {
        return Vec::new();
    };
    let reserved: Vec<ConfigError> = extra
        .keys()
        .map(|key| key.as_str().unwrap_or(""))
        .filter(|key| LAB_KEYS.contains(key) || (spec.users && *key == "users"))
        .map(|key| {
            let why = match key {
                "users" => "is set by the lab when the topology says `users: true`",
                _ => "is set by the lab for each gateway and cannot be overridden",
            };
            ConfigError::new(format!("gateway_config.{key}"), why)
        })
        .collect();
    if !reserved.is_empty() {
        return reserved;
    }
    let Ok(plan) = Plan::new(spec, 0) else {
        return Vec::new();
    };
    for gw in &plan.gateways {
        let logins = super::users::placeholders();
        let text = render_config(&plan, gw, std::path::Path::new("/lab/tls"), &logins);
        if let Err(errs) = Config::parse(&text, "generated") {
            return errs
                .errors
                .into_iter()
                .map(|err| {
                    ConfigError::new(
                        format!("gateway_config.{}", err.path),
                        format!(
                            "makes the config of gateway `{}` invalid: {}",
                            gw.dc, err.message
                        ),
                    )
                })
                .collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    use crate::lab::fixtures::TWO_DC_LAB as TEXT;

    #[test]
    fn generated_config_is_valid_and_complete() {
        let plan = Plan::new(&LabSpec::parse(TEXT, "t").unwrap(), 0).unwrap();
        let dir = std::path::Path::new("/lab/tls");
        let text = render_config(&plan, &plan.gateways[1], dir, &[]);
        let cfg = Config::parse(&text, "gen").unwrap();
        assert_eq!(cfg.listen, "127.0.2.100:7617");
        assert_eq!(cfg.workers, 2);
        assert_eq!(cfg.source_address, Some("127.0.2.100".parse().unwrap()));
        assert_eq!(cfg.local_dc.as_deref(), Some("west"));
        assert_eq!(cfg.admin.listen, "127.0.2.100:7618");
        assert_eq!(admin_addr(&plan.gateways[1]).to_string(), cfg.admin.listen);
        assert_eq!(cfg.cluster.seeds.len(), 4);
        assert!(cfg.cluster.seeds.contains(&"127.0.1.1:7811".to_string()));
        assert_eq!(cfg.cluster.refresh_interval, Duration::from_secs(2));
        assert_eq!(cfg.latency_ms["east"]["west"], 40.0);
        assert_eq!(cfg.breaker.failure_limit, 3);
        assert_eq!(cfg.breaker.server_timeout, Duration::from_secs(1));
        assert_eq!(cfg.dc_of("127.0.1.1".parse().unwrap()), Some("east"));
        assert_eq!(cfg.health.probe_interval, Duration::from_millis(500));
    }
}
