//! Driving hot reloads in tests: rewriting a config file atomically, `/api/state` fields,
//! `meridian reload` as a child process, an admin token file.

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value as Json;

use super::{Cluster, ClusterBuilder, TempDir, binary, http, try_run, value_text};

/// The east masters' addresses of [`east_west_cluster`].
pub const EAST: [&str; 3] = ["127.0.1.1", "127.0.1.2", "127.0.1.3"];
/// The west replicas' addresses of [`east_west_cluster`] (replica i of master i).
pub const WEST: [&str; 3] = ["127.0.2.1", "127.0.2.2", "127.0.2.3"];

/// Three masters in east (127.0.1.x), one replica of each in west (127.0.2.x).
pub fn east_west_cluster() -> Cluster {
    let mut b = ClusterBuilder::new().node_timeout_ms(15000);
    for ip in EAST {
        b = b.master(ip);
    }
    for (m, ip) in WEST.iter().enumerate() {
        b = b.replica(ip, m);
    }
    b.start()
}

/// Replaces the gateway's config file atomically (write aside, rename over), as a deploy
/// tool or a ConfigMap update does.
pub fn rewrite(path: &Path, text: &str) {
    let aside = path.with_extension("yaml.new");
    fs::write(&aside, text).unwrap();
    fs::rename(&aside, path).unwrap();
}

pub fn state(admin: &str, auth: &[(&str, &str)]) -> Json {
    let r = http::request(admin, "GET", "/api/state", auth);
    assert_eq!(r.status, 200, "/api/state: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("/api/state JSON: {e}\n{}", r.body))
}

pub fn version(s: &Json) -> u64 {
    s["config"]["version"].as_u64().expect("config.version")
}

/// Reads counted per DC in `/api/state`.
pub fn reads(s: &Json, dc: &str) -> u64 {
    s["reads"]
        .as_array()
        .expect("reads")
        .iter()
        .find(|r| r["dc"] == dc)
        .and_then(|r| r["reads"].as_u64())
        .unwrap_or(0)
}

/// Reads counted per DC now, for `dcs`.
pub fn read_counts(admin: &str, dcs: &[&str]) -> Vec<u64> {
    let s = state(admin, &[]);
    dcs.iter().map(|dc| reads(&s, dc)).collect()
}

/// Sends `n` GETs of distinct keys `<prefix>:<i>` (spread over every shard) on `conn`; none
/// may fail.
pub fn gets(conn: &mut redis::Connection, prefix: &str, n: usize) {
    for i in 0..n {
        let r = try_run(conn, &["GET", &format!("{prefix}:{i}")]).expect("GET");
        assert!(
            value_text(&r).is_none_or(|t| !t.starts_with("ERR")),
            "{r:?}"
        );
    }
}

pub fn events_of<'a>(s: &'a Json, kind: &str) -> Vec<&'a Json> {
    s["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == kind)
        .collect()
}

/// A token file in `dir`; returns the token.
pub fn token_file(dir: &TempDir) -> (String, String) {
    let token = "reload-test-token-0123456789";
    let file = dir.path().join("admin.token");
    fs::write(&file, format!("{token}\n")).unwrap();
    (token.to_string(), file.display().to_string())
}

pub fn meridian_reload(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = Command::new(binary());
    cmd.arg("reload")
        .args(args)
        .env_remove("MERIDIAN_ADMIN_PASSWORD");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run meridian reload");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Standard base64 (the test's own, to check the server's decoder independently).
pub fn base64(raw: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in raw.chunks(3) {
        let n = c.iter().fold(0u32, |n, &b| (n << 8) | u32::from(b)) << (8 * (3 - c.len()));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
        out.push_str(&"=".repeat(3 - c.len()));
    }
    out
}
