//! A lab with `tls: true`: its own CA and one certificate for every lab address (made with
//! rcgen through `crate::tls::mint`), the redis-server TLS arguments (`tls-port`,
//! `tls-cluster`, `tls-replication`), and the `cluster.tls` section of its gateways.
//!
//! Nodes keep their plain port for the lab's own observers and drills; the cluster bus,
//! replication and the gateways run TLS (each node's TLS port has a relay too, announced with
//! `cluster-announce-tls-port`, so CLUSTER SLOTS gives TLS clients the relayed TLS ports).

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::LabError;
use super::plan::{Plan, PlannedNode};
use crate::tls::mint::Authority;

/// The lab's certificate directory.
pub fn dir(lab_dir: &Path) -> PathBuf {
    lab_dir.join("tls")
}

/// Makes the CA (`ca.crt`) and the certificate every node and gateway uses (`lab.crt`,
/// `lab.key`), valid for every address of the plan.
pub fn make(plan: &Plan, lab_dir: &Path) -> Result<(), LabError> {
    let dir = dir(lab_dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io(format!("create {}", dir.display()), e))?;
    let fail = |e: crate::tls::mint::MintError| {
        LabError::io("make the lab certificates", std::io::Error::other(e))
    };
    let ca = Authority::new(&format!("meridian lab {} CA", plan.spec.name)).map_err(fail)?;
    ca.write_cert(&dir.join("ca.crt")).map_err(fail)?;
    let mut names: Vec<String> = plan.nodes.iter().map(|n| n.ip.to_string()).collect();
    names.extend(plan.gateways.iter().map(|g| g.ip.to_string()));
    names.push("localhost".into());
    names.sort();
    names.dedup();
    let sans: Vec<&str> = names.iter().map(String::as_str).collect();
    let cert = ca.issue("meridian lab", &sans).map_err(fail)?;
    cert.write(&dir, "lab").map_err(fail)?;
    Ok(())
}

/// The redis-server arguments that turn TLS on for `node`.
pub fn node_args(node: &PlannedNode, tls_dir: &Path) -> Vec<String> {
    let p = |name: &str| tls_dir.join(name).to_string_lossy().into_owned();
    #[rustfmt::skip]
    let args = [
        "--tls-port", &node.tls_addr().port().to_string(),
        "--cluster-announce-tls-port", &node.relay_tls_addr().port().to_string(),
        "--tls-cluster", "yes", "--tls-replication", "yes",
        "--tls-cert-file", &p("lab.crt"), "--tls-key-file", &p("lab.key"),
        "--tls-ca-cert-file", &p("ca.crt"),
    ].iter().map(|s| s.to_string()).collect();
    args
}

/// The `cluster.tls` section of a gateway config.
pub fn gateway_section(tls_dir: &Path) -> Value {
    let p = |name: &str| Value::String(tls_dir.join(name).to_string_lossy().into_owned());
    let mut m = Mapping::new();
    m.insert("enabled".into(), Value::Bool(true));
    m.insert("ca".into(), p("ca.crt"));
    m.insert("cert".into(), p("lab.crt"));
    m.insert("key".into(), p("lab.key"));
    Value::Mapping(m)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::lab::fixtures::TWO_DC_LAB;
    use crate::lab::gateway_config::render_config;
    use crate::lab::plan::Plan;
    use crate::lab::spec::LabSpec;

    #[test]
    fn a_tls_lab_seeds_its_gateways_with_the_relayed_tls_ports() {
        let text = format!("{TWO_DC_LAB}tls: true\n");
        let plan = Plan::new(&LabSpec::parse(&text, "t").unwrap(), 0).unwrap();
        let dir = std::path::Path::new("/lab/tls");
        let cfg = Config::parse(&render_config(&plan, &plan.gateways[0], dir, &[]), "gen").unwrap();
        let tls_relays: Vec<String> = plan
            .nodes
            .iter()
            .map(|n| n.relay_tls_addr().to_string())
            .collect();
        assert_eq!(cfg.cluster.seeds, tls_relays);
        assert!(cfg.cluster.tls.enabled);
        assert_eq!(cfg.cluster.tls.ca, dir.join("ca.crt"));
        let node = &plan.nodes[0];
        let args = super::node_args(node, dir).join(" ");
        assert!(
            args.contains(&format!("--tls-port {}", node.port + 1000)),
            "{args}"
        );
        assert!(
            args.contains("--tls-cluster yes --tls-replication yes"),
            "{args}"
        );
    }

    #[test]
    fn a_plain_lab_is_unchanged() {
        let plan = Plan::new(&LabSpec::parse(TWO_DC_LAB, "t").unwrap(), 0).unwrap();
        let text = render_config(&plan, &plan.gateways[0], std::path::Path::new("/x"), &[]);
        let cfg = Config::parse(&text, "gen").unwrap();
        assert!(!cfg.cluster.tls.enabled);
        assert_eq!(cfg.cluster.seeds[0], plan.nodes[0].relay_addr().to_string());
    }
}
