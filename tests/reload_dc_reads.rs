//! Reads per DC follow a reload that adds a DC: through the real binary in front of a real
//! cluster (three masters in east, a replica of each in west), a reload carves a new DC,
//! `south`, out of west and makes it local; the reads its replicas serve are counted under
//! `south` in `/api/state` and `meridian_reads_total`, none under `unknown`.

mod common;

use std::time::Duration;

use common::gateway::render_config;
use common::http;
use common::prom::{sample, samples};
use common::reload::{WEST, east_west_cluster, gets, read_counts, reads, rewrite, state, version};
use common::{Gateway, GatewayOptions, signal, wait_until};
use serde_json::Value as Json;

/// Bound on a reload (or the new placement) showing in `/api/state`.
const SEEN: Duration = Duration::from_secs(20);

const START: &str = "local_dc: west
datacenters:
  east: { cidrs: [127.0.1.0/24] }
  west: { cidrs: [127.0.2.0/24] }
latency_ms:
  east: { east: 0.3, west: 40 }
  west: { east: 40, west: 0.3 }
read_policy:
  latency_source: map
";

/// Replicas 127.0.2.2 and .3 move to `south`, which is local; .1 stays in west.
const WITH_SOUTH: &str = "local_dc: south
datacenters:
  east: { cidrs: [127.0.1.0/24] }
  west: { cidrs: [127.0.2.0/31] }
  south: { cidrs: [127.0.2.2/31] }
latency_ms:
  east: { east: 0.3, west: 40, south: 40 }
  west: { east: 40, west: 0.3, south: 40 }
  south: { east: 40, west: 40, south: 0.3 }
read_policy:
  latency_source: map
";

#[test]
fn a_dc_added_by_a_reload_counts_its_own_reads() {
    let cluster = east_west_cluster();
    let opts = GatewayOptions {
        workers: 2,
        extra_yaml: START.to_string(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts.clone());
    let admin = gw.admin_addr();
    let dcs = ["east", "west", "south", "unknown"];
    // Two connections, kept across the reload (the workers count their own reads).
    let mut conns = [gw.client(), gw.client()];

    let before = read_counts(&admin, &dcs);
    for conn in conns.iter_mut() {
        gets(conn, "dcreads:a", 60);
    }
    let after = read_counts(&admin, &dcs);
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(
        delta,
        [0, 120, 0, 0],
        "every read in west before the reload"
    );

    let mut opts = opts;
    opts.extra_yaml = WITH_SOUTH.to_string();
    rewrite(gw.config_path(), &render_config(&cluster.seeds(), &opts));
    signal(gw.pid(), libc::SIGHUP);
    // In force, and the two replicas placed in south by the map refresh the reload asks for.
    wait_until("south in force with two replicas", SEEN, || {
        let s = state(&admin, &[]);
        let south: Vec<&str> = s["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["dc"] == "south")
            .filter_map(|n| n["addr"].as_str())
            .collect();
        let moved = WEST[1..]
            .iter()
            .all(|ip| south.iter().any(|a| a.starts_with(&format!("{ip}:"))));
        if version(&s) == 2 && moved && south.len() == 2 {
            Ok(())
        } else {
            Err(format!(
                "version {}, south {south:?}, {}",
                version(&s),
                s["config"]["last_error"]
            ))
        }
    });

    let before = read_counts(&admin, &dcs);
    for conn in conns.iter_mut() {
        gets(conn, "dcreads:b", 90);
    }
    let after = read_counts(&admin, &dcs);
    let delta: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    // Two of the three shards have their replica in south, the local DC: their reads go
    // there; the third shard's reads go to its master or its west replica (both 40 ms away).
    assert!(delta[2] > 0, "reads served in south: {delta:?}");
    assert_eq!(delta[3], 0, "nothing counted as unknown: {delta:?}");
    assert_eq!(
        delta.iter().sum::<u64>(),
        180,
        "every read counted once: {delta:?}"
    );

    // The same counters in the Prometheus exposition.
    let metrics = http::get(&admin, "/metrics").body;
    let s: Json = state(&admin, &[]);
    let scraped = samples(&metrics);
    for dc in dcs {
        let key = format!("meridian_reads_total{{dc=\"{dc}\"}}");
        assert_eq!(sample(&scraped, &key), reads(&s, dc) as f64, "{key}");
    }
    assert!(sample(&scraped, "meridian_reads_total{dc=\"south\"}") >= delta[2] as f64);
}
