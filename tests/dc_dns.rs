//! DCs placed by DNS names follow the names: the real binary in front of a real cluster (three
//! masters on 127.0.1.x, a replica of each on 127.0.2.x) places nodes in `east` and `west`
//! only through `datacenters.<dc>.hosts` names, which a name server on loopback (given in
//! `dns.nameservers`) answers with a 1 s TTL. When a name moves to other addresses, the
//! node follows at the next resolution, a `dc_resolved` event says so, and reads are counted
//! (and routed) by the new placement; a name that stops resolving keeps its last addresses.
//! A name server that stops answering altogether does not hold up the map: a failover is
//! followed while its lookups hang.

mod common;

use std::time::Duration;

use common::dns::NameServer;
use common::http;
use common::prom::{promtool_check, sample, samples};
use common::reload::{EAST, WEST, east_west_cluster, events_of, gets, read_counts, state};
use common::{Gateway, GatewayOptions, wait_until};
use serde_json::Value as Json;

/// Bound on a DNS change showing in `/api/state` (a TTL of 1 s; a lookup the silent name server
/// left unanswered ends after the resolver's 15 s timeout, then waits 5 s to ask again).
const SEEN: Duration = Duration::from_secs(60);
/// Bound on a failover showing in the map while the name server is silent: 20 times what it
/// takes (a refresh a second, CLUSTER FAILOVER's own handshake), but less than one refresh
/// would take if it waited on the two silent names (hickory gives up after 15 s each).
const FOLLOW: Duration = Duration::from_secs(20);

const EAST_NAME: &str = "east.dc.meridian.test";
const WEST_NAME: &str = "west.dc.meridian.test";

fn config(nameserver: &str) -> String {
    format!(
        "local_dc: west
dns: {{ nameservers: ['{nameserver}'] }}
datacenters:
  east: {{ hosts: [{EAST_NAME}] }}
  west: {{ hosts: [{WEST_NAME}] }}
latency_ms:
  east: {{ east: 0.3, west: 40 }}
  west: {{ east: 40, west: 0.3 }}
read_policy:
  latency_source: map
"
    )
}

/// The field `field` of the node on `ip` in `/api/state`.
fn node_field<'a>(s: &'a Json, ip: &str, field: &str) -> &'a str {
    let prefix = format!("{ip}:");
    s["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["addr"].as_str().is_some_and(|a| a.starts_with(&prefix)))
        .and_then(|n| n[field].as_str())
        .unwrap_or("(no such node)")
}

/// The DC `/api/state` gives the node on `ip`.
fn dc_of<'a>(s: &'a Json, ip: &str) -> &'a str {
    node_field(s, ip, "dc")
}

/// Waits until every node on `ips` is placed in `dc`.
fn wait_placed(admin: &str, ips: &[&str], dc: &str) {
    wait_until(&format!("{ips:?} in {dc}"), SEEN, || {
        let s = state(admin, &[]);
        let placed: Vec<&str> = ips.iter().map(|ip| dc_of(&s, ip)).collect();
        match placed.iter().all(|d| *d == dc) {
            true => Ok(()),
            false => Err(format!("placed in {placed:?}")),
        }
    });
}

/// Reads counted in east, west and unknown while `n` GETs of distinct keys are served.
fn reads_of_gets(admin: &str, conn: &mut redis::Connection, round: &str, n: usize) -> [u64; 3] {
    let dcs = ["east", "west", "unknown"];
    let before = read_counts(admin, &dcs);
    gets(conn, &format!("dcdns:{round}"), n);
    let after = read_counts(admin, &dcs);
    std::array::from_fn(|i| after[i] - before[i])
}

/// A gateway on `seeds` whose DCs are placed by the names `dns` answers.
fn start(dns: &NameServer, seeds: &[String]) -> Gateway {
    let opts = GatewayOptions {
        extra_yaml: config(&dns.addr().to_string()),
        ..GatewayOptions::default()
    };
    Gateway::start_with_seeds(seeds, opts)
}

#[test]
fn nodes_follow_their_dc_host_names() {
    let dns = NameServer::start();
    dns.set(EAST_NAME, &EAST);
    dns.set(WEST_NAME, &WEST);
    let cluster = east_west_cluster();
    let gw = start(&dns, &cluster.seeds());
    let admin = gw.admin_addr();
    let mut conn = gw.client();

    // Placed by the names alone (no CIDR, no node list), so reads stay in west; already in
    // the first map (the gateway asks for the names before it reads the map).
    let s = state(&admin, &[]);
    for (ips, dc) in [(&EAST, "east"), (&WEST, "west")] {
        let placed: Vec<&str> = ips.iter().map(|ip| dc_of(&s, ip)).collect();
        assert_eq!(placed, [dc; 3], "the first map");
    }
    assert!(dns.asked(EAST_NAME) > 0 && dns.asked(WEST_NAME) > 0);
    assert_eq!(reads_of_gets(&admin, &mut conn, "a", 90), [0, 90, 0]);

    // The first replica's address moves from the west name to the east name.
    let east_now = [EAST[0], EAST[1], EAST[2], WEST[0]];
    dns.set(EAST_NAME, &east_now);
    dns.set(WEST_NAME, &WEST[1..]);
    wait_placed(&admin, &east_now, "east");
    wait_placed(&admin, &WEST[1..], "west");
    let s = state(&admin, &[]);
    let events = events_of(&s, "dc_resolved");
    for (dc, name) in [("east", EAST_NAME), ("west", WEST_NAME)] {
        assert!(
            events.iter().any(|e| e["dc"] == dc
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(name) && m.contains(WEST[0]))),
            "a dc_resolved event for {name} in {dc}: {events:?}"
        );
    }
    // Shard 0 has no copy in west any more: its reads are served (and counted) in east,
    // the other two shards' in west.
    let [east, west, unknown] = reads_of_gets(&admin, &mut conn, "b", 90);
    assert!(east > 0 && west > 0, "east {east}, west {west}");
    assert_eq!((east + west, unknown), (90, 0));

    // A name that stops resolving keeps the addresses it had: the nodes stay in west while
    // the gateway keeps asking.
    dns.remove(WEST_NAME);
    let shown = wait_until("a failed lookup of the removed name", SEEN, || {
        let s = state(&admin, &[]);
        let shown = s["dc_hosts"]
            .as_array()
            .expect("dc_hosts")
            .iter()
            .find(|h| h["name"] == WEST_NAME)
            .cloned()
            .expect("the west name in dc_hosts");
        match shown["failures"].as_u64() {
            Some(n) if n > 0 => Ok(shown),
            _ => Err(format!("{shown}")),
        }
    });
    assert_eq!(shown["dc"], "west");
    assert_eq!(shown["addresses"], serde_json::json!(WEST[1..]));
    assert!(shown["last_error"].as_str().is_some(), "{shown}");
    let s = state(&admin, &[]);
    let placed: Vec<&str> = WEST[1..].iter().map(|ip| dc_of(&s, ip)).collect();
    assert_eq!(placed, ["west", "west"]);
    assert_eq!(dc_of(&s, WEST[0]), "east");

    // The same in /metrics, which a real Prometheus parser accepts.
    let r = http::get(&admin, "/metrics");
    assert_eq!(r.status, 200, "{r:?}");
    promtool_check(&r.body);
    let all = samples(&r.body);
    let metric = |family: &str, name: &str, dc: &str| {
        sample(&all, &format!("{family}{{host=\"{name}\",dc=\"{dc}\"}}"))
    };
    let failures = metric("meridian_dc_host_lookup_failures", WEST_NAME, "west");
    assert!(failures >= 1.0, "{failures}");
    assert_eq!(metric("meridian_dc_host_addresses", WEST_NAME, "west"), 2.0);
    assert_eq!(
        metric("meridian_dc_host_lookup_failures", EAST_NAME, "east"),
        0.0
    );
    assert_eq!(metric("meridian_dc_host_addresses", EAST_NAME, "east"), 4.0);
}

/// A name server that stops answering (down, or a firewall dropping DNS) does not hold up the
/// cluster map: a failover is followed while the DC names' questions go unanswered, the nodes
/// keep their DCs, and once the server answers again a moved name is followed too.
#[test]
fn a_silent_name_server_does_not_hold_up_the_map() {
    let dns = NameServer::start();
    dns.set(EAST_NAME, &EAST);
    dns.set(WEST_NAME, &WEST);
    // A seed given by a name nobody answers for, first of the list: the first map is read
    // from the other seeds (each seed's lookup is bounded like its connection).
    let seed_name = "seed.dc.meridian.test";
    dns.silence(seed_name, true);
    let cluster = east_west_cluster();
    let mut seeds = cluster.seeds();
    let port = seeds[0].rsplit_once(':').expect("ip:port").1.to_string();
    seeds.insert(0, format!("{seed_name}:{port}"));
    let started = std::time::Instant::now();
    let gw = start(&dns, &seeds);
    eprintln!("gateway up after {:?}", started.elapsed());
    assert!(dns.asked(seed_name) > 0, "the seed name was asked for");
    let admin = gw.admin_addr();
    wait_placed(&admin, &EAST, "east");
    wait_placed(&admin, &WEST, "west");

    dns.silence(EAST_NAME, true);
    dns.silence(WEST_NAME, true);
    let asked = dns.asked(WEST_NAME);
    wait_until(
        "a question the name server leaves unanswered",
        SEEN,
        || match dns.asked(WEST_NAME) > asked {
            true => Ok(()),
            false => Err("not asked yet".into()),
        },
    );
    // The first west replica takes over its shard while names go unanswered.
    let replica = cluster
        .nodes()
        .iter()
        .find(|n| n.ip == WEST[0])
        .map(|n| n.addr.clone())
        .expect("the first west replica");
    let started = std::time::Instant::now();
    cluster.query(&replica, &["CLUSTER", "FAILOVER"]);
    wait_until(
        "the failover in the gateway's map",
        FOLLOW,
        || match node_field(&state(&admin, &[]), WEST[0], "role") {
            "master" => Ok(()),
            other => Err(format!("{} is {other}", WEST[0])),
        },
    );
    eprintln!(
        "failover in the map after {:?}, {} unanswered questions for {WEST_NAME}",
        started.elapsed(),
        dns.asked(WEST_NAME) - asked
    );
    let s = state(&admin, &[]);
    assert_eq!(dc_of(&s, WEST[0]), "west", "the new master keeps its DC");
    assert_eq!(dc_of(&s, EAST[0]), "east");

    // Answered again, with the new master's address moved to the east name.
    dns.set(EAST_NAME, &[EAST[0], EAST[1], EAST[2], WEST[0]]);
    dns.set(WEST_NAME, &WEST[1..]);
    dns.silence(EAST_NAME, false);
    dns.silence(WEST_NAME, false);
    wait_placed(&admin, &[WEST[0]], "east");
}
