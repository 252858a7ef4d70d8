//! predixy's latency monitors through meridian (issue 10 item 2) against a real cluster: after
//! GETs and SETs, `INFO LatencyMonitor <name>` and `INFO latency <name>` show predixy's layout,
//! the buckets add up to the `T` line, the overall count is the number of requests counted,
//! there is a section per backend node whose counts add up to the overall one, and CONFIG
//! RESETSTAT starts them again. Two workers, so the sums over workers are exercised.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Cluster, Gateway, GatewayOptions, wait_until};

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

/// One histogram: its bucket lines' counts and the `T` line's (mean, total, count).
#[derive(Debug, Default)]
struct Hist {
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
