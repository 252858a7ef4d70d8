//! Prometheus text expositions in tests: samples by `name{labels}`, and `promtool check
//! metrics` (the real parser) on a scrape.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use super::require_binary;

/// Samples of a Prometheus text exposition: `name{labels}` → value.
pub fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sample `key`, or a panic listing the samples of the same family.
pub fn sample(all: &HashMap<String, f64>, key: &str) -> f64 {
    all.get(key).copied().unwrap_or_else(|| {
        let family = key.split('{').next().unwrap_or(key);
        let mut near: Vec<_> = all.keys().filter(|k| k.starts_with(family)).collect();
        near.sort();
        panic!("no sample {key}; {family} has: {near:?}")
    })
}

/// Runs `promtool check metrics` on `text`; panics with promtool's findings unless clean.
pub fn promtool_check(text: &str) {
    let promtool = require_binary(
        "promtool",
        "scripts/install-deps.sh (Debian package `prometheus`)",
    );
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && findings.trim().is_empty(),
        "promtool check metrics failed ({}):\n{findings}\n--- exposition ---\n{text}",
        out.status
    );
}
