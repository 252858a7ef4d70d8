//! Every YAML file shipped under conf/ parses and validates, for every datacenter it defines.

use std::path::{Path, PathBuf};

use meridian::config::Config;

/// YAML files under `dir`, sorted, descending into subdirectories (bounded depth).
fn yaml_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    assert!(depth < 8, "conf/ nests too deep at {}", dir.display());
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            yaml_files(&path, depth + 1, out);
        } else if matches!(
            path.extension().and_then(|ext| ext.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}

#[test]
fn every_conf_file_parses_and_validates() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let mut files = Vec::new();
    yaml_files(&conf, 0, &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("meridian.yaml")),
        "conf/meridian.yaml is missing: {files:?}"
    );
    for file in &files {
        let config = Config::load(file).unwrap_or_else(|errs| panic!("{errs}"));
        // The same file is deployed in every region: it must hold for each --local-dc.
        for dc in config.datacenters.keys() {
            config
                .clone()
                .with_local_dc(Some(dc.clone()))
                .unwrap_or_else(|errs| panic!("{} with --local-dc {dc}:\n{errs}", file.display()));
        }
    }
}

#[test]
fn shipped_examples_have_the_documented_shape() {
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf");
    let local = Config::load(&conf.join("meridian.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(local.listen, "127.0.0.1:7617");
    assert_eq!(
        local.cluster.seeds,
        ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
    );
    // Its comments say its values are the defaults; keep the two from drifting apart.
    let mut defaults = Config::default();
    defaults.cluster.seeds = local.cluster.seeds.clone();
    assert_eq!(
        local, defaults,
        "conf/meridian.yaml no longer shows the defaults"
    );

    let multi = Config::load(&conf.join("multi-dc.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = multi.datacenters.keys().map(String::as_str).collect();
    assert_eq!(names, ["east", "eu", "west"]);
    assert_eq!(multi.local_dc.as_deref(), Some("east"));
    for seed in &multi.cluster.seeds {
        assert!(multi.dc_of_node(seed).is_some(), "seed {seed} has no DC");
    }
}
