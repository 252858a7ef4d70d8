//! Every topology under topologies/ validates (library and `meridian check --topology`), and
//! schema errors name their key and line.

use std::path::{Path, PathBuf};
use std::process::Command;

use meridian::lab::gateway_config::{admin_addr, render_config};
use meridian::lab::scrape::dashboard_url;
use meridian::lab::{LabSpec, Plan};

fn topologies() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    files
}

fn check(path: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(["check", "--topology"])
        .arg(path)
        .output()
        .expect("run meridian check");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn every_topology_file_validates() {
    let files = topologies();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for required in ["single-dc.yaml", "three-regions.yaml", "two-dc.yaml"] {
        assert!(
            names.iter().any(|n| n == required),
            "topologies/{required} is missing: {names:?}"
        );
    }
    for file in &files {
        let spec = LabSpec::load(file).unwrap_or_else(|e| panic!("{e}"));
        let plan = Plan::new(&spec, 0).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(
            !plan.nodes.is_empty() && !plan.gateways.is_empty(),
            "{}",
            file.display()
        );
        let (ok, text) = check(file);
        assert!(ok, "meridian check --topology {}: {text}", file.display());
        assert!(text.contains(": ok"), "{text}");
    }
}

#[test]
fn three_regions_is_laid_out_as_the_issue_asks() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/three-regions.yaml");
    let plan = Plan::new(&LabSpec::load(&path).unwrap(), 0).unwrap();
    assert_eq!(plan.dcs.len(), 3);
    assert_eq!(plan.shard_count(), 3);
    let mut master_dcs: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| n.master)
        .map(|n| n.dc.as_str())
        .collect();
    master_dcs.sort();
    master_dcs.dedup();
    assert_eq!(master_dcs.len(), 3, "each master in a different DC");
    for shard in 0..3 {
        let mut dcs: Vec<&str> = plan.shard_nodes(shard).map(|n| n.dc.as_str()).collect();
        dcs.sort();
        assert_eq!(
            dcs,
            ["east", "eu", "west"],
            "shard {shard} has a node in every DC"
        );
    }
    let gateways: Vec<String> = plan.gateways.iter().map(|g| g.addr().to_string()).collect();
    assert_eq!(
        gateways,
        ["127.0.1.100:7617", "127.0.2.100:7617", "127.0.3.100:7617"]
    );
    // Each gateway's dashboard is on its admin endpoint, one port above its client port, and
    // its generated config says so.
    for g in &plan.gateways {
        let admin = admin_addr(g);
        assert_eq!(admin.to_string(), format!("{}:7618", g.ip));
        assert_eq!(dashboard_url(admin), format!("http://{}:7618/", g.ip));
        let config = render_config(&plan, g, std::path::Path::new("/nonexistent-tls-dir"), &[]);
        assert!(
            config.contains(&format!("listen: {}:7618", g.ip)),
            "{config}"
        );
    }
}

#[test]
fn schema_errors_name_key_and_line() {
    let dir =
        std::env::temp_dir().join(format!("meridian-lab-topology-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/two-dc.yaml"),
    )
    .unwrap();
    let cases = [
        // An unknown key is an error, with its line.
        (
            good.replace("  - { dc: west }", "  - { dc: west, port: 1 }"),
            "unknown field `port`",
        ),
        (
            good.replace("name: two-dc", "name: two-dc\nregion: x"),
            "unknown field `region`",
        ),
        // Semantic errors name the key path.
        (
            good.replace("127.0.2.0/24", "127.0.1.0/24"),
            "datacenters[1].cidr",
        ),
        (
            good.replace("west: { east: 30,", "west: { east: 31,"),
            "latency_ms.east.west",
        ),
        (
            good.replace(
                "{ master: west, replicas: [east] }",
                "{ master: mars, replicas: [east] }",
            ),
            "shards[1].master",
        ),
        (
            good.replace("  - { dc: west }", "  - { dc: east }"),
            "gateways[1].dc",
        ),
        (good.replace("127.0.1.0/24", "10.1.0.0/24"), "loopback"),
        (
            good.replace("node_timeout: 2s", "node_timeout: 2"),
            "cluster.node_timeout",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        assert_ne!(text, &good, "case {i} changed nothing");
        let path = dir.join(format!("bad-{i}.yaml"));
        std::fs::write(&path, text).unwrap();
        let err = LabSpec::load(&path).expect_err("must be rejected");
        assert!(err.to_string().contains(expected), "case {i}: {err}");
        let (ok, out) = check(&path);
        assert!(!ok, "case {i} passed `meridian check`");
        assert!(out.contains(expected), "case {i}: {out}");
        // `<file>:<line>: …`: every error carries its line.
        let prefix = format!("{}:", path.display());
        let line = out
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_default();
        let number = line[prefix.len()..].split(':').next().unwrap_or_default();
        assert!(
            number.parse::<usize>().is_ok(),
            "case {i}: no line number in `{line}`"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
