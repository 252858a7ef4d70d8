//! predixy's latency monitors through meridian (issue 10 item 2) against a real cluster: after
//! GETs and SETs, `INFO LatencyMonitor <name>` and `INFO latency <name>` show predixy's layout,
//! the buckets add up to the `T` line, the overall count is the number of requests counted,
//! there is a section per backend node whose counts add up to the overall one, and CONFIG
//! RESETSTAT starts them again. Two workers, so the sums over workers are exercised. A
//! reload puts other monitors (or none) in force without dropping a client, also while a
//! pipelined load has replies in flight across the switch.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::gateway::render_config;
use common::raw::{Raw, encode};
use common::reload::{rewrite, state, version};
use common::{Cluster, Gateway, GatewayOptions, signal, wait_until};

const MONITORS: &str = "\
latency_monitors:
  - name: all
    commands: [all]
    exclude: [info, config, ping, client]
    buckets_us: [100, 1000, 10000]
  - name: get
    commands: [get]
    buckets_us: [500, 5000]
";

/// One histogram: its bucket lines' bounds and counts and the `T` line's (mean, total,
/// count).
#[derive(Debug, Default)]
struct Hist {
    bounds: Vec<u64>,
    buckets: Vec<u64>,
    totals: Vec<u64>,
    t: Option<(u64, u64, u64)>,
}

/// The histograms of an INFO latency text, by section header line (`LatencyMonitorName:all`,
/// `ServerLatencyMonitorName:ADDR all`).
fn histograms(text: &str) -> BTreeMap<String, Hist> {
    let mut out: BTreeMap<String, Hist> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("LatencyMonitorName:") || line.starts_with("ServerLatencyMonitorName:")
        {
            current = Some(line.to_string());
            out.entry(line.to_string()).or_default();
            continue;
        }
        let (Some(name), Some(kind)) = (&current, fields.first()) else {
            continue;
        };
        let n = |i: usize| -> u64 {
            fields
                .get(i)
                .and_then(|f| f.parse().ok())
                .unwrap_or_else(|| panic!("field {i} of {line:?}"))
        };
        let h = out.get_mut(name).expect("entry made above");
        match *kind {
            "<=" | ">" => {
                assert!(fields[4].ends_with('%'), "{line}");
                h.bounds.push(n(1));
                h.totals.push(n(2));
                h.buckets.push(n(3));
            }
            "T" => h.t = Some((n(1), n(2), n(3))),
            _ => {}
        }
    }
    out
}

#[test]
fn latency_monitors_count_requests_overall_and_per_node() {
    let cluster = Cluster::start(3, 0);
    let opts = GatewayOptions {
        workers: 2,
        extra_yaml: MONITORS.to_string(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts);
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let r = gw.raw().call_text(&["GET", "lat:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });
    let mut admin = gw.raw();
    assert_eq!(admin.call_text(&["CONFIG", "RESETSTAT"]), "+OK\r\n");

    // Several connections (spread over both workers): 40 SETs and 60 GETs on every master.
    for c in 0..4 {
        let mut conn = gw.raw();
        for i in 0..10 {
            let key = format!("lat:{c}:{i}");
            assert_eq!(conn.call_text(&["SET", &key, "v"]), "+OK\r\n");
            for _ in 0..3 {
                if i % 2 == 0 {
                    assert_eq!(conn.call_text(&["GET", &key]), "$1\r\nv\r\n");
                }
            }
            if i % 2 == 1 {
                assert_eq!(conn.call_text(&["GET", &key]), "$1\r\nv\r\n");
            }
        }
    }
    let (sets, gets) = (40u64, 4 * (5 * 3 + 5));

    // The reply of a request is counted as it leaves for its client: the last GET of each
    // connection was read back above, so every count is in.
    let text = admin.call_text(&["INFO", "LatencyMonitor", "all"]);
    assert!(text.contains("# LatencyMonitor\r\n"), "{text}");
    assert!(text.contains("# ServerLatencyMonitor\r\n"), "{text}");
    let hists = histograms(&text);
    let all = &hists["LatencyMonitorName:all"];
    let (mean, total, count) = all.t.unwrap_or_else(|| panic!("no T line in {text}"));
    assert_eq!(count, sets + gets, "{text}");
    assert_eq!(all.buckets.iter().sum::<u64>(), count, "{text}");
    assert_eq!(all.totals.iter().sum::<u64>(), total, "{text}");
    assert_eq!(mean, total / count, "{text}");
    // One section per backend node, whose counts add up to the overall count.
    let masters = cluster.masters();
    let mut per_node = 0;
    for m in &masters {
        let h = &hists[&format!("ServerLatencyMonitorName:{m} all")];
        let (_, _, n) = h.t.unwrap_or_else(|| panic!("{m} counted nothing: {text}"));
        assert_eq!(h.buckets.iter().sum::<u64>(), n, "{text}");
        per_node += n;
    }
    assert_eq!(per_node, count, "{text}");

    // `INFO latency get`: only GETs, in its own buckets; an unknown name is predixy's error.
    let text = admin.call_text(&["INFO", "latency", "get"]);
    let hists = histograms(&text);
    assert_eq!(
        hists["LatencyMonitorName:get"].t.map(|t| t.2),
        Some(gets),
        "{text}"
    );
    assert!(!text.contains("LatencyMonitorName:all"), "{text}");
    assert_eq!(
        admin.call_text(&["INFO", "latency", "nope"]),
        "-ERR latency \"nope\" no exists\r\n"
    );
    // `INFO LatencyMonitor` alone: every monitor, overall only.
    let text = admin.call_text(&["INFO", "LatencyMonitor"]);
    assert!(
        text.contains("LatencyMonitorName:get\r\n") && !text.contains("Server"),
        "{text}"
    );

    // RESETSTAT starts them again.
    assert_eq!(admin.call_text(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    let text = admin.call_text(&["INFO", "latency"]);
    assert!(histograms(&text).values().all(|h| h.t.is_none()), "{text}");
}

/// Section headers of an INFO latency text (`LatencyMonitorName:…`, `ServerLatencyMonitorName:…`).
fn headers(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("LatencyMonitorName:"))
        .collect()
}

/// Puts `monitors_yaml` in force by rewriting the config file and sending SIGHUP; waits until
/// `/api/state` shows config version `want` and checks nothing needs a restart.
fn reload(gw: &Gateway, cluster: &Cluster, opts: &GatewayOptions, monitors_yaml: &str, want: u64) {
    let mut opts = opts.clone();
    opts.extra_yaml = monitors_yaml.to_string();
    rewrite(gw.config_path(), &render_config(&cluster.seeds(), &opts));
    signal(gw.pid(), libc::SIGHUP);
    let admin = gw.admin_addr();
    let s = wait_until("the reload in force", Duration::from_secs(20), || {
        let s = state(&admin, &[]);
        if version(&s) == want {
            Ok(s)
        } else {
            Err(s["config"].to_string())
        }
    });
    assert_eq!(
        s["config"]["needs_restart"],
        serde_json::json!([]),
        "{}",
        s["config"]
    );
    assert!(s["config"]["last_error"].is_null(), "{}", s["config"]);
}

/// `n` GETs (of keys on every master) and `n` SETs on each connection; returns the GETs.
fn gets_and_sets(conns: &mut [Raw], round: &str, n: usize) -> u64 {
    let mut gets = 0;
    for (c, conn) in conns.iter_mut().enumerate() {
        for i in 0..n {
            let key = format!("lat:{round}:{c}:{i}");
            assert_eq!(conn.call_text(&["SET", &key, round]), "+OK\r\n");
            let want = format!("${}\r\n{round}\r\n", round.len());
            assert_eq!(conn.call_text(&["GET", &key]), want);
            gets += 1;
        }
    }
    gets
}

#[test]
fn latency_monitors_reload_without_dropping_a_client() {
    let cluster = Cluster::start(3, 0);
    // Default monitors at start (predixy's four).
    let opts = GatewayOptions::with_workers(2);
    let gw = Gateway::start_with(&cluster, opts.clone());
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let r = gw.raw().call_text(&["GET", "lat:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });
    // Connections kept open throughout (spread over both workers); the first also asks INFO.
    let mut conns: Vec<Raw> = (0..4).map(|_| gw.raw()).collect();
    let ids: Vec<String> = conns
        .iter_mut()
        .map(|c| c.call_text(&["CLIENT", "ID"]))
        .collect();
    let workers = conns[0].call_text(&["INFO", "workers"]);
    for w in ["worker0", "worker1"] {
        let clients = workers
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{w}:clients=")))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{w} in {workers}"));
        assert!(
            clients >= 1,
            "every worker serves some of the clients: {workers}"
        );
    }
    assert_eq!(conns[0].call_text(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    let before = gets_and_sets(&mut conns, "a", 6);
    let text = conns[0].call_text(&["INFO", "latency"]);
    let hists = histograms(&text);
    assert_eq!(
        hists["LatencyMonitorName:get"].t.map(|t| t.2),
        Some(before),
        "{text}"
    );
    assert!(text.contains("LatencyMonitorName:blist\r\n"), "{text}");

    // One custom monitor: only GETs, in its own buckets (7 µs is shorter than any GET through
    // the gateway, so every GET lands in the 10 s bucket).
    let reads =
        "latency_monitors:\n  - { name: reads, commands: [get], buckets_us: [7, 10000000] }\n";
    reload(&gw, &cluster, &opts, reads, 2);
    let gets = gets_and_sets(&mut conns, "b", 5);
    let masters = cluster.masters();
    let text = conns[0].call_text(&["INFO", "latency"]);
    let mut want_headers = vec!["LatencyMonitorName:reads".to_string()];
    for m in &masters {
        want_headers.push(format!("ServerLatencyMonitorName:{m} reads"));
    }
    let mut got_headers = headers(&text);
    got_headers[1..].sort();
    want_headers[1..].sort();
    assert_eq!(got_headers, want_headers, "exactly the new monitor: {text}");
    let hists = histograms(&text);
    let overall = &hists["LatencyMonitorName:reads"];
    assert_eq!(
        overall.t.map(|t| t.2),
        Some(gets),
        "GETs since the reload only: {text}"
    );
    assert_eq!(overall.bounds, [10_000_000], "the new bounds: {text}");
    assert_eq!(overall.buckets, [gets], "{text}");
    let mut per_node = 0;
    for m in &masters {
        let h = &hists[&format!("ServerLatencyMonitorName:{m} reads")];
        let (_, _, n) = h.t.unwrap_or_else(|| panic!("{m} counted nothing: {text}"));
        assert_eq!(h.bounds, [10_000_000], "{text}");
        per_node += n;
    }
    assert_eq!(per_node, gets, "per node as well: {text}");
    assert_eq!(
        conns[1].call_text(&["INFO", "latency", "get"]),
        "-ERR latency \"get\" no exists\r\n",
        "the old monitors are gone"
    );

    // `[]`: no monitors, nothing counted.
    reload(&gw, &cluster, &opts, "latency_monitors: []\n", 3);
    gets_and_sets(&mut conns, "c", 3);
    let text = conns[0].call_text(&["INFO", "latency"]);
    assert!(headers(&text).is_empty(), "{text}");
    assert!(
        text.contains("# LatencyMonitor\r\n# ServerLatencyMonitor\r\n"),
        "{text}"
    );

    // And back on, with other bounds: fresh histograms, counting from this reload.
    let again =
        "latency_monitors:\n  - { name: reads, commands: [get], buckets_us: [8, 20000000] }\n";
    reload(&gw, &cluster, &opts, again, 4);
    let gets = gets_and_sets(&mut conns, "d", 4);
    let text = conns[2].call_text(&["INFO", "latency", "reads"]);
    let hists = histograms(&text);
    let overall = &hists["LatencyMonitorName:reads"];
    assert_eq!(overall.t.map(|t| t.2), Some(gets), "{text}");
    assert_eq!(overall.bounds, [20_000_000], "{text}");
    let per_node: u64 = masters
        .iter()
        .filter_map(|m| hists[&format!("ServerLatencyMonitorName:{m} reads")].t)
        .map(|t| t.2)
        .sum();
    assert_eq!(per_node, gets, "{text}");

    // The same connections throughout: none was dropped or replaced, none opened since the
    // RESETSTAT before the first reload.
    for (conn, id) in conns.iter_mut().zip(&ids) {
        assert_eq!(&conn.call_text(&["CLIENT", "ID"]), id);
    }
    let stats = conns[0].call_text(&["INFO", "stats"]);
    assert!(stats.contains("\r\nAccept:0\r\n"), "{stats}");
    assert!(stats.contains("\r\nClientConnections:4\r\n"), "{stats}");
    let s = state(&gw.admin_addr(), &[]);
    assert_eq!(s["config"]["reloads_ok"], 3, "{}", s["config"]);
}

/// One client's pipelined load until `stop`: each round 20 SETs and their 20 GETs in one
/// write, every reply checked. Returns the rounds run.
fn pipelined_load(gw: &Gateway, id: usize, stop: &AtomicBool) -> usize {
    let mut conn = gw.raw();
    let mut rounds = 0;
    // Bounded in count as well as by the flag.
    while !stop.load(Ordering::Relaxed) && rounds < 100_000 {
        let keys: Vec<String> = (0..20).map(|k| format!("load:{id}:{k}")).collect();
        let value = format!("r{rounds}");
        let mut wire = Vec::new();
        for k in &keys {
            wire.extend(encode(&["SET", k.as_str(), value.as_str()]));
            wire.extend(encode(&["GET", k.as_str()]));
        }
        conn.write(&wire);
        for k in &keys {
            assert_eq!(conn.read_text(), "+OK\r\n", "SET {k} in round {rounds}");
            let want = format!("${}\r\n{value}\r\n", value.len());
            assert_eq!(conn.read_text(), want, "GET {k} in round {rounds}");
        }
        rounds += 1;
    }
    rounds
}

#[test]
fn latency_monitor_reloads_under_pipelined_load_lose_nothing() {
    let cluster = Cluster::start(3, 0);
    let opts = GatewayOptions::with_workers(2);
    let gw = Arc::new(Gateway::start_with(&cluster, opts.clone()));
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let r = gw.raw().call_text(&["GET", "lat:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let loaders: Vec<_> = (0..4)
        .map(|id| {
            let (gw, stop) = (gw.clone(), stop.clone());
            thread::spawn(move || pipelined_load(&gw, id, &stop))
        })
        .collect();
    // Replies in flight across each switch: monitors on (two sets in turn) and off.
    let sets = [
        "latency_monitors:\n  - { name: reads, commands: [get], buckets_us: [100, 1000] }\n",
        "latency_monitors: []\n",
        "latency_monitors:\n  - { name: all, commands: [all], buckets_us: [50] }\n  - { name: writes, commands: [set], buckets_us: [200] }\n",
    ];
    let reloads = 12;
    for round in 0..reloads {
        reload(
            &gw,
            &cluster,
            &opts,
            sets[round % sets.len()],
            round as u64 + 2,
        );
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for (id, l) in loaders.into_iter().enumerate() {
        let rounds = l.join().unwrap_or_else(|_| panic!("client {id} failed"));
        assert!(rounds > 0, "client {id} ran no round");
    }
    // The last set (`all` and `writes`) is in force and counting.
    let mut admin = gw.raw();
    for i in 0..10 {
        assert_eq!(
            admin.call_text(&["SET", &format!("after:{i}"), "v"]),
            "+OK\r\n"
        );
    }
    let text = admin.call_text(&["INFO", "LatencyMonitor"]);
    let hists = histograms(&text);
    assert_eq!(
        hists.keys().collect::<Vec<_>>(),
        ["LatencyMonitorName:all", "LatencyMonitorName:writes"],
        "{text}"
    );
    let writes = hists["LatencyMonitorName:writes"].t.map_or(0, |t| t.2);
    assert!(writes >= 10, "{text}");
}
