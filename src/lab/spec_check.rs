//! Reading a lab spec: the YAML, then every rule of the topology file, the last one being that
//! the gateway configs it generates are valid. Each problem carries its key path and line.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::gateway_config;
use super::spec::{BUS_OFFSET, GATEWAY_HOST, LabSpec, MAX_LATENCY_MS, TLS_OFFSET};
use crate::config::{ConfigError, ConfigErrors, line_of};

/// Collects problems with their key paths.
struct Problems(Vec<ConfigError>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }
}

impl LabSpec {
    /// Parses and validates YAML `text`; `source` names it in errors (usually the file path).
    pub fn parse(text: &str, source: &str) -> Result<LabSpec, ConfigErrors> {
        let fail = |errors| ConfigErrors {
            source: source.to_string(),
            errors,
        };
        let spec: LabSpec = serde_yaml_ng::from_str(text).map_err(|err| {
            let (path, message) = split_yaml_error(&err.to_string());
            fail(vec![ConfigError {
                path,
                line: err.location().map(|l| l.line()),
                message,
            }])
        })?;
        let mut errors = spec.validate();
        if errors.is_empty() {
            return Ok(spec);
        }
        for err in &mut errors {
            err.line = line_of(text, &err.path);
        }
        Err(fail(errors))
    }

    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<LabSpec, ConfigErrors> {
        let source = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => LabSpec::parse(&text, &source),
            Err(err) => Err(ConfigErrors {
                source,
                errors: vec![ConfigError::new("", format!("cannot read the file: {err}"))],
            }),
        }
    }

    /// Every semantic problem of the topology.
    pub fn validate(&self) -> Vec<ConfigError> {
        let mut out = Problems(Vec::new());
        if self.name.is_empty() || !self.name.chars().all(name_char) {
            out.push(
                "name",
                "use only letters, digits, '-' and '_' (it names the lab dir)",
            );
        }
        let dcs = self.check_datacenters(&mut out);
        self.check_latency(&dcs, &mut out);
        self.check_shards(&dcs, &mut out);
        self.check_gateways(&dcs, &mut out);
        self.check_ports(&mut out);
        if self.cluster.node_timeout < Duration::from_millis(100) {
            out.push("cluster.node_timeout", "must be at least 100ms");
        }
        if out.0.is_empty() {
            // Only a spec that is sound otherwise can be laid out and rendered.
            out.0 = gateway_config::override_problems(self);
        }
        out.0
    }

    fn check_datacenters(&self, out: &mut Problems) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        let mut nets: Vec<(usize, Ipv4Net)> = Vec::new();
        if self.datacenters.is_empty() {
            out.push("datacenters", "at least one datacenter is required");
        }
        let loopback: Ipv4Net = Ipv4Net::new(Ipv4Addr::new(127, 0, 0, 0), 8).unwrap_or_default();
        for (i, dc) in self.datacenters.iter().enumerate() {
            let path = format!("datacenters[{i}]");
            if dc.name.is_empty() || !dc.name.chars().all(name_char) || dc.name == "unknown" {
                out.push(
                    format!("{path}.name"),
                    "use letters, digits, '-' and '_' (`unknown` is reserved)",
                );
            }
            if !names.insert(dc.name.clone()) {
                out.push(
                    format!("{path}.name"),
                    format!("`{}` is defined twice", dc.name),
                );
            }
            let net: Ipv4Net = match dc.cidr.parse() {
                Ok(net) => net,
                Err(_) => {
                    out.push(
                        format!("{path}.cidr"),
                        format!("`{}` is not an IPv4 CIDR like 127.0.1.0/24", dc.cidr),
                    );
                    continue;
                }
            };
            let cidr = format!("{path}.cidr");
            if net.trunc() != net {
                out.push(
                    &cidr,
                    format!("`{net}` has host bits set; use {}", net.trunc()),
                );
            } else if !loopback.contains(&net) {
                out.push(
                    &cidr,
                    "the lab only uses loopback: pick a range inside 127.0.0.0/8",
                );
            } else if net.prefix_len() > 24 {
                out.push(
                    &cidr,
                    "needs at least a /24 (nodes use .1-.99, the gateway .100)",
                );
            } else if net.contains(&Ipv4Addr::LOCALHOST) {
                out.push(
                    &cidr,
                    "must not contain 127.0.0.1 (unplaced clients live there)",
                );
            } else if let Some((j, other)) = nets
                .iter()
                .find(|(_, o)| o.contains(&net) || net.contains(o))
            {
                out.push(&cidr, format!("{net} overlaps {other} of datacenters[{j}]"));
            }
            nets.push((i, net));
        }
        names
    }

    fn check_latency(&self, dcs: &BTreeSet<String>, out: &mut Problems) {
        for (from, row) in &self.latency_ms {
            if !dcs.contains(from) {
                out.push(
                    format!("latency_ms.{from}"),
                    format!("`{from}` is not a defined datacenter"),
                );
                continue;
            }
            for (to, ms) in row {
                let path = format!("latency_ms.{from}.{to}");
                if !dcs.contains(to) {
                    out.push(path, format!("`{to}` is not a defined datacenter"));
                } else if !ms.is_finite() || *ms < 0.0 || *ms > MAX_LATENCY_MS {
                    out.push(path, format!("must be between 0 and {MAX_LATENCY_MS} ms"));
                } else if let Some(back) = self.latency_ms.get(to).and_then(|r| r.get(from))
                    && back != ms
                {
                    out.push(path, format!("is {ms} but latency_ms.{to}.{from} is {back}; the matrix must be symmetric"));
                }
            }
        }
        for from in dcs {
            for to in dcs {
                let has = self
                    .latency_ms
                    .get(from)
                    .is_some_and(|r| r.contains_key(to));
                if !has {
                    out.push(
                        format!("latency_ms.{from}"),
                        format!("missing the latency to `{to}`"),
                    );
                }
            }
        }
    }

    fn check_shards(&self, dcs: &BTreeSet<String>, out: &mut Problems) {
        if self.shards.is_empty() {
            out.push("shards", "at least one shard is required");
        }
        let mut check = |path: String, dc: &str| {
            if !dcs.contains(dc) {
                out.push(path, format!("`{dc}` is not a defined datacenter"));
            }
        };
        for (i, shard) in self.shards.iter().enumerate() {
            check(format!("shards[{i}].master"), &shard.master);
            for (j, replica) in shard.replicas.iter().enumerate() {
                check(format!("shards[{i}].replicas[{j}]"), replica);
            }
        }
        if self.shards.len() > crate::slot::SLOT_COUNT {
            out.push("shards", "more shards than slots");
        }
        for dc in dcs {
            if self.nodes_in(dc) >= usize::from(GATEWAY_HOST) {
                out.push(
                    "shards",
                    format!(
                        "at most {} nodes fit in datacenter `{dc}`",
                        GATEWAY_HOST - 1
                    ),
                );
            }
        }
    }

    fn check_gateways(&self, dcs: &BTreeSet<String>, out: &mut Problems) {
        let mut seen = BTreeSet::new();
        for (i, gw) in self.gateways.iter().enumerate() {
            let path = format!("gateways[{i}]");
            if !dcs.contains(&gw.dc) {
                out.push(
                    format!("{path}.dc"),
                    format!("`{}` is not a defined datacenter", gw.dc),
                );
            } else if !seen.insert(gw.dc.as_str()) {
                out.push(
                    format!("{path}.dc"),
                    format!("datacenter `{}` already has a gateway", gw.dc),
                );
            }
            if gw.workers == 0 || gw.workers > 64 {
                out.push(format!("{path}.workers"), "must be 1..64");
            }
        }
    }

    fn check_ports(&self, out: &mut Problems) {
        let p = self.ports;
        for (key, port) in [("ports.node", p.node), ("ports.relay", p.relay)] {
            if port < 1024 || u32::from(port) + u32::from(BUS_OFFSET) > 65535 {
                out.push(
                    key,
                    "must be 1024..55535 (its cluster bus port is 10000 above)",
                );
            }
        }
        if p.gateway < 1024 {
            out.push("ports.gateway", "must be 1024 or above");
        }
        let used = [
            p.node,
            p.relay,
            p.node.wrapping_add(BUS_OFFSET),
            p.relay.wrapping_add(BUS_OFFSET),
        ];
        if used[..2].contains(&used[2]) || used[..3].contains(&used[3]) || p.node == p.relay {
            out.push(
                "ports",
                "node, relay and their bus ports (+10000) must all differ",
            );
        } else if self.tls {
            let tls = [
                p.node.wrapping_add(TLS_OFFSET),
                p.relay.wrapping_add(TLS_OFFSET),
            ];
            if tls.iter().any(|t| used.contains(t))
                || u32::from(p.node.max(p.relay)) + u32::from(TLS_OFFSET) > 65535
            {
                out.push(
                    "ports",
                    "with tls: true, the TLS ports (node and relay +1000) must differ from node, relay and bus ports",
                );
            }
        }
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// serde_yaml_ng says `path: message at line L column C`; the line is carried separately.
fn split_yaml_error(text: &str) -> (String, String) {
    let text = match text.rfind(" at line ") {
        Some(at) => &text[..at],
        None => text,
    };
    match text.split_once(": ") {
        Some((path, rest)) if !path.is_empty() && !path.contains(char::is_whitespace) => {
            (path.to_string(), rest.to_string())
        }
        _ => (String::new(), text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::fixtures::two_dc_head;
    use crate::lab::spec::PortsSpec;

    const GOOD: &str = concat!(
        two_dc_head!(),
        "\
shards:
  - { master: east, replicas: [west] }
  - { master: west, replicas: [east, east] }
gateways:
  - { dc: east }
  - { dc: west }
"
    );

    fn errors(text: &str) -> Vec<ConfigError> {
        LabSpec::parse(text, "t.yaml").unwrap_err().errors
    }

    #[test]
    fn good_file_parses_with_defaults() {
        let t = LabSpec::parse(GOOD, "t").unwrap();
        assert_eq!(t.cluster.node_timeout, Duration::from_secs(3));
        assert_eq!(t.ports, PortsSpec::default());
        assert_eq!(t.nodes_in("east"), 3);
        assert_eq!(t.latency("west", "east"), 40.0);
        assert_eq!(t.gateways[1].workers, 1);
    }

    #[test]
    fn unknown_field_is_named() {
        let errs = errors(&GOOD.replace("  - { dc: east }", "  - { dc: east, port: 1 }"));
        assert!(errs[0].message.contains("unknown field `port`"), "{errs:?}");
        assert_eq!(errs[0].line, Some(12));
    }

    #[test]
    fn semantic_errors_are_named() {
        let text = GOOD
            .replace("127.0.2.0/24", "127.0.1.0/24")
            .replace(
                "west: { east: 40, west: 0.3 }",
                "west: { east: 41, west: 0.3 }",
            )
            .replace("[east, east]", "[mars]")
            .replace("  - { dc: west }", "  - { dc: east }");
        let errs = errors(&text);
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "datacenters[1].cidr",
                "latency_ms.east.west",
                "latency_ms.west.east",
                "shards[1].replicas[0]",
                "gateways[1].dc"
            ],
            "{errs:?}"
        );
        assert!(errs[0].message.contains("overlaps"));
        assert_eq!(errs[3].line, Some(10));
    }

    #[test]
    fn ranges_must_be_loopback_and_big_enough() {
        for (cidr, says) in [
            ("10.0.1.0/24", "loopback"),
            ("127.0.1.0/25", "at least a /24"),
            ("127.0.0.0/16", "127.0.0.1"),
            ("127.0.1.1/24", "host bits"),
            ("127.0.1", "not an IPv4 CIDR"),
        ] {
            let errs = errors(&GOOD.replace("127.0.1.0/24", cidr));
            assert!(errs[0].message.contains(says), "{cidr}: {errs:?}");
            assert_eq!(errs[0].path, "datacenters[0].cidr");
        }
    }

    #[test]
    fn matrix_must_be_complete_and_ports_sane() {
        let errs = errors(&GOOD.replace("east: { east: 0.3, west: 40 }", "east: { east: 0.3 }"));
        assert_eq!(errs[0].path, "latency_ms.east");
        assert!(errs[0].message.contains("`west`"));
        let errs = errors(&format!("{GOOD}ports: {{ node: 7711, relay: 17711 }}\n"));
        assert_eq!(errs[0].path, "ports");
        let errs = errors(&format!("{GOOD}cluster: {{ node_timeout: 5 }}\n"));
        assert_eq!(errs[0].path, "cluster.node_timeout");
    }

    #[test]
    fn gateway_config_is_checked() {
        let errs = errors(&format!("{GOOD}gateway_config: {{ listen: 1.2.3.4:1 }}\n"));
        assert_eq!(errs[0].path, "gateway_config.listen");
        let errs = errors(&format!(
            "{GOOD}gateway_config: {{ breaker: {{ failure_limit: 0 }} }}\n"
        ));
        assert_eq!(
            errs[0].path, "gateway_config.breaker.failure_limit",
            "{errs:?}"
        );
        let ok = format!("{GOOD}gateway_config: {{ breaker: {{ failure_limit: 3 }} }}\n");
        LabSpec::parse(&ok, "t").unwrap();
    }
}
