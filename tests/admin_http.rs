//! The admin endpoint through the real binary: `/metrics` counts what clients sent and passes
//! `promtool check metrics`, `/readyz` follows the slot map, `/api/state` lists every node,
//! bad requests get a 4xx or a clean close, and the bearer token guards the rest.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::{self, Response};
use common::prom::{promtool_check, sample, samples};
use common::{Cluster, Gateway, GatewayOptions, TempDir, binary, wait_until};

/// Seeds nobody listens on: the gateway starts without a map.
const UNREACHABLE: &str = "127.0.0.1:1";

fn metrics(admin: &str) -> (String, HashMap<String, f64>) {
    let r = http::get(admin, "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let all = samples(&r.body);
    (r.body, all)
}

fn json(r: &Response) -> serde_json::Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

#[test]
fn metrics_and_state_describe_the_traffic_sent() {
    let cluster = Cluster::start(3, 1);
    // Every node in one DC, so reads and node series carry its name.
    let opts = GatewayOptions {
        workers: 2,
        extra_yaml: "datacenters:\n  here: { cidrs: [127.0.0.0/8] }\n".into(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts);
    let admin = gw.admin_addr();
    wait_until("/readyz to say ready", Duration::from_secs(20), || {
        let r = http::get(&admin, "/readyz");
        (r.status == 200)
            .then_some(())
            .ok_or(format!("{} {}", r.status, r.body))
    });
    // Two clients, likely on both workers: the scrape must sum them.
    let mut a = gw.raw();
    let mut b = gw.raw();
    for i in 0..40 {
        let c = if i % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(c.call(&["SET", &format!("adm:{i}"), "v"]), b"+OK\r\n");
    }
    for i in 0..60 {
        let c = if i % 2 == 0 { &mut a } else { &mut b };
        assert_eq!(c.call(&["GET", &format!("adm:{}", i % 40)]), b"$1\r\nv\r\n");
    }
    for _ in 0..3 {
        assert!(
            a.call(&["NOSUCHCMD", "x"])
                .starts_with(b"-ERR unknown command")
        );
    }
    for _ in 0..2 {
        assert!(b.call(&["LPUSH", "adm:0", "x"]).starts_with(b"-WRONGTYPE"));
    }
    assert_eq!(a.call(&["PING"]), b"+PONG\r\n");

    let (text, m) = metrics(&admin);
    promtool_check(&text);
    let eq = |key: &str, want: f64| assert_eq!(sample(&m, key), want, "{key}");
    eq("meridian_requests_total{command=\"set\"}", 40.0);
    eq("meridian_requests_total{command=\"get\"}", 60.0);
    eq("meridian_requests_total{command=\"lpush\"}", 2.0);
    eq("meridian_requests_total{command=\"ping\"}", 1.0);
    eq("meridian_requests_total{command=\"unknown\"}", 3.0);
    eq(
        "meridian_request_duration_seconds_count{command=\"get\"}",
        60.0,
    );
    eq(
        "meridian_request_duration_seconds_bucket{command=\"get\",le=\"+Inf\"}",
        60.0,
    );
    eq(
        "meridian_request_duration_seconds_count{command=\"set\"}",
        40.0,
    );
    assert!(sample(&m, "meridian_request_duration_seconds_sum{command=\"get\"}") > 0.0);
    assert!(
        sample(
            &m,
            "meridian_request_duration_seconds_bucket{command=\"get\",le=\"10\"}"
        ) <= 60.0
    );
    eq("meridian_errors_total{kind=\"unknown_command\"}", 3.0);
    eq("meridian_errors_total{kind=\"wrongtype\"}", 2.0);
    eq("meridian_errors_total{kind=\"protocol\"}", 0.0);
    eq("meridian_reads_total{dc=\"here\"}", 60.0);
    eq("meridian_reads_total{dc=\"unknown\"}", 0.0);
    eq("meridian_redirects_total", 0.0);
    eq("meridian_read_retries_total", 0.0);
    eq("meridian_client_connections", 2.0);
    eq("meridian_slots_covered", 16384.0);
    eq("meridian_workers_listening", 2.0);
    assert!(sample(&m, "meridian_client_received_bytes_total") > 0.0);
    assert!(sample(&m, "meridian_client_sent_bytes_total") > 0.0);
    let masters = cluster.masters();
    let mut sent = 0.0;
    for node in cluster.seeds() {
        let role = if masters.contains(&node) {
            "master"
        } else {
            "replica"
        };
        let labels = format!("node=\"{node}\",dc=\"here\"");
        eq(
            &format!("meridian_node_info{{{labels},role=\"{role}\"}}"),
            1.0,
        );
        eq(&format!("meridian_breaker_state{{{labels}}}"), 0.0);
        eq(&format!("meridian_backend_failures_total{{{labels}}}"), 0.0);
        sent += sample(&m, &format!("meridian_backend_requests_total{{{labels}}}"));
        if role == "master" {
            // Every reply a master sent was timed, and lands in its node's histogram.
            let responses = sample(&m, &format!("meridian_backend_responses_total{{{labels}}}"));
            let timed = sample(
                &m,
                &format!("meridian_backend_request_duration_seconds_count{{{labels}}}"),
            );
            assert!(
                timed > 0.0 && timed <= responses,
                "{node}: {timed} timed, {responses} replies"
            );
            eq(
                &format!(
                    "meridian_backend_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}}"
                ),
                timed,
            );
        }
        if role == "replica" {
            assert!(m.contains_key(&format!("meridian_replica_lag_bytes{{{labels}}}")));
        }
    }
    // 40 SETs, 60 GETs and 2 LPUSHes reached the masters (plus READONLY/handshakes, if any).
    assert!(sent >= 102.0, "backend requests {sent}");

    let r = http::get(&admin, "/api/state");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let state = json(&r);
    assert_eq!(state["ready"], true, "{state:#}");
    assert_eq!(state["slots_covered"], 16384);
    assert_eq!(state["workers"]["listening"], 2);
    assert!(
        state["config"]["path"]
            .as_str()
            .unwrap()
            .ends_with("meridian.yaml")
    );
    assert_eq!(state["config"]["version"], 1);
    assert_eq!(state["events"], serde_json::json!([]));
    let nodes = state["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{state:#}");
    let mut covered = 0;
    for node in nodes {
        let addr = node["addr"].as_str().unwrap();
        let want = if masters.iter().any(|m| m == addr) {
            "master"
        } else {
            "replica"
        };
        assert_eq!(node["role"], want, "{node:#}");
        assert_eq!(node["breaker"], "closed", "{node:#}");
        assert_eq!(node["dc"], "here");
        if want == "master" {
            for range in node["slots"].as_array().unwrap() {
                let (lo, hi) = (range[0].as_u64().unwrap(), range[1].as_u64().unwrap());
                covered += hi - lo + 1;
            }
        }
    }
    assert_eq!(covered, 16384);
    let reads = state["reads"].as_array().unwrap();
    assert_eq!(reads[0]["dc"], "here");
    assert_eq!(reads[0]["reads"], 60);
    assert_eq!(reads[0]["share"], 1.0);
    assert_eq!(reads[1]["dc"], "unknown");
    assert_eq!(reads[1]["reads"], 0);
    // Per command, busiest first, from the same histograms as /metrics.
    let commands = state["commands"].as_array().unwrap();
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert_eq!(&names[..2], ["get", "set"], "{state:#}");
    for (c, n) in [(&commands[0], 60), (&commands[1], 40)] {
        assert_eq!(
            (c["requests"].as_u64(), c["replies"].as_u64()),
            (Some(n), Some(n))
        );
        let (p50, p99) = (c["p50_ms"].as_f64().unwrap(), c["p99_ms"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99 && p99 <= 10_000.0, "{c:#}");
        let buckets = c["buckets"].as_array().unwrap();
        assert_eq!(buckets.len(), 17, "16 bounds and +Inf");
        let sum: u64 = buckets.iter().map(|b| b.as_u64().unwrap()).sum();
        assert_eq!(sum, n, "{c:#}");
    }
    assert_eq!(state["latency_buckets_ms"][0], 0.1);
    assert_eq!(state["latency_buckets_ms"][15], 10_000.0);
    assert!(names.contains(&"unknown"), "{names:?}");
}

#[test]
fn readyz_is_503_while_the_map_is_incomplete() {
    let gw = Gateway::start_with_seeds(&[UNREACHABLE.to_string()], GatewayOptions::default());
    let admin = gw.admin_addr();
    let r = http::get(&admin, "/healthz");
    assert_eq!((r.status, r.body.as_str()), (200, "ok\n"));
    let r = http::get(&admin, "/readyz");
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        r.body.contains("the slot map covers 0 of 16384 slots"),
        "{}",
        r.body
    );
    let state = json(&http::get(&admin, "/api/state"));
    assert_eq!(state["ready"], false);
    assert_eq!(state["nodes"], serde_json::json!([]));
    // Requests that fail still count, and the exposition stays valid.
    let mut c = gw.raw();
    assert!(c.call(&["GET", "k"]).starts_with(b"-CLUSTERDOWN"));
    let (text, m) = metrics(&admin);
    promtool_check(&text);
    assert_eq!(
        sample(&m, "meridian_errors_total{kind=\"clusterdown\"}"),
        1.0
    );
    assert_eq!(sample(&m, "meridian_slots_covered"), 0.0);
}

/// Sends `bytes` on a fresh connection; returns the status of the answer, or `None` when the
/// server closed without one.
fn status_of(admin: &str, bytes: &[u8]) -> Option<u16> {
    http::parse(&http::exchange(admin, bytes)).map(|r| r.status)
}

#[test]
fn bad_requests_get_a_4xx_or_a_clean_close() {
    let mut gw = Gateway::start_with_seeds(&[UNREACHABLE.to_string()], GatewayOptions::default());
    let admin = gw.admin_addr();
    let r = http::request(&admin, "POST", "/metrics", &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        http::request(&admin, "DELETE", "/api/state", &[]).status,
        405
    );
    assert_eq!(http::get(&admin, "/nope").status, 404);
    assert_eq!(http::get(&admin, "/metrics/../api").status, 404);
    let head = http::request(&admin, "HEAD", "/healthz", &[]);
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    let cases: [(&str, Vec<u8>); 5] = [
        ("garbage", b"\x00\x01\x02 hello\r\n\r\n".to_vec()),
        ("no version", b"GET /healthz\r\n\r\n".to_vec()),
        (
            "bad header",
            b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
        ),
        (
            "huge header",
            [
                &b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "[..],
                &vec![b'a'; 100_000],
                b"\r\n\r\n",
            ]
            .concat(),
        ),
        (
            "huge path",
            [&b"GET /"[..], &vec![b'a'; 100_000], b" HTTP/1.1\r\n\r\n"].concat(),
        ),
    ];
    for (what, bytes) in cases {
        match status_of(&admin, &bytes) {
            None => {}
            Some(status) => assert!((400..500).contains(&status), "{what}: {status}"),
        }
    }
    // A head that never ends is cut off by the server, not kept forever.
    let mut slow = TcpStream::connect(&admin).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut slow, &mut rest);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "an unfinished request head held its connection for {:?}",
        started.elapsed()
    );
    // Nothing above hurt the endpoint or the gateway.
    assert_eq!(http::get(&admin, "/healthz").status, 200);
    assert_eq!(gw.raw().call(&["PING"]), b"+PONG\r\n");
    assert!(gw.is_alive());
}

#[test]
fn the_token_guards_everything_but_probes_and_metrics() {
    let dir = TempDir::new();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, "t0k3n-for-tests\n").unwrap();
    let opts = GatewayOptions {
        extra_yaml: format!(
            "admin:\n  listen: 127.0.0.1:0\n  require_token: true\n  token_file: {}\n",
            token_file.display()
        ),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with_seeds(&[UNREACHABLE.to_string()], opts);
    let admin = gw.admin_addr();
    let r = http::get(&admin, "/api/state");
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for bad in [
        "Bearer wrong",
        "Bearer t0k3n-for-test",
        "Basic t0k3n-for-tests",
        "t0k3n-for-tests",
    ] {
        let r = http::request(&admin, "GET", "/api/state", &[("Authorization", bad)]);
        assert_eq!(r.status, 401, "{bad}");
    }
    assert_eq!(
        http::get(&admin, "/nope").status,
        401,
        "unknown paths are guarded too"
    );
    let good = [("Authorization", "Bearer t0k3n-for-tests")];
    let r = http::request(&admin, "GET", "/api/state", &good);
    assert_eq!(r.status, 200);
    json(&r);
    assert_eq!(http::request(&admin, "GET", "/nope", &good).status, 404);
    assert_eq!(http::get(&admin, "/healthz").status, 200);
    assert_eq!(http::get(&admin, "/readyz").status, 503);
    assert_eq!(http::get(&admin, "/metrics").status, 200);
}

#[test]
fn a_non_loopback_admin_address_needs_a_token_file() {
    let dir = TempDir::new();
    let config = dir.path().join("meridian.yaml");
    // Port 0 and a config error before any bind: nothing ever listens off loopback.
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\ncluster:\n  seeds: [\"{UNREACHABLE}\"]\nadmin:\n  listen: 0.0.0.0:0\n"
        ),
    )
    .unwrap();
    for sub in ["check", "serve"] {
        let out = Command::new(binary())
            .args([sub, "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sub} accepted it: {stderr}");
        assert!(
            stderr.contains("meridian.yaml:4: admin.token_file: required because admin.listen (0.0.0.0:0) is not a loopback address"),
            "{sub}: {stderr}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    }
}

#[test]
fn admin_off_serves_no_endpoint() {
    let opts = GatewayOptions {
        extra_yaml: "admin:\n  listen: \"\"\n".into(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with_seeds(&[UNREACHABLE.to_string()], opts);
    assert_eq!(gw.raw().call(&["PING"]), b"+PONG\r\n");
    std::thread::sleep(Duration::from_millis(300));
    let out = std::fs::read_to_string(gw.config_path().with_file_name("stdout.log")).unwrap();
    assert!(out.contains("listening on"), "{out}");
    assert!(!out.contains("admin on"), "{out}");
}
