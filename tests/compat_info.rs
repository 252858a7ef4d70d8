//! INFO gives the sections of one Redis (issue 12, item 6): `# Server`, `# Clients`, `# Memory`,
//! `# Persistence`, `# Stats`, `# Replication`, `# CPU`, `# Keyspace` and `INFO commandstats`
//! for the one master meridian presents, with field names as a standalone redis-server writes
//! them, beside meridian's own `# Proxy`, `# Stats` and `# Servers` fields.

mod common;
mod fakes;

use std::collections::HashMap;

use common::raw::{Raw, encode, show};
use common::{Cluster, Gateway, Standalone, info_fields};
use fakes::probe::{info_section, info_text};

/// The `# Name` headers of an INFO text, in order.
fn headers(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# "))
        .map(|h| h.trim_end().to_string())
        .collect()
}

/// `field:value` of one section of an INFO text.
fn section(text: &str, name: &str) -> HashMap<String, String> {
    let lines = info_section(text, name).unwrap_or_else(|| panic!("no # {name} in:\n{text}"));
    info_fields(&lines.join("\n"))
}

fn num(fields: &HashMap<String, String>, name: &str) -> i64 {
    fields
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no integer {name} in {fields:?}"))
}

/// A summed INFO field over the cluster's masters, asked directly.
fn masters_sum(cluster: &Cluster, section_name: &str, field: &str) -> i64 {
    cluster
        .masters()
        .iter()
        .map(|m| cluster.node(m).info_i64(section_name, field))
        .sum()
}

#[test]
fn info_presents_one_redis_beside_meridians_own_sections() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let reference = Standalone::start(&[]);
    let mut direct = Raw::connect(&reference.node().addr);
    let mut via = Raw::connect(&gw.addr());
    let _second = Raw::connect(&gw.addr());

    // Keys on every master, reads that hit and miss.
    let mut wire = Vec::new();
    for i in 0..200 {
        wire.extend(encode(&["SET", &format!("info:{i}"), "v"]));
        wire.extend(encode(&["GET", &format!("info:{i}")]));
        wire.extend(encode(&["GET", &format!("none:{i}")]));
    }
    via.write(&wire);
    for _ in 0..200 {
        assert_eq!(via.read(), b"+OK\r\n");
        assert_eq!(via.read(), b"$1\r\nv\r\n");
        assert_eq!(via.read(), b"$-1\r\n");
    }

    // INFO without arguments: Redis' default sections in Redis' order, meridian's between.
    let all = info_text(&via.call(&["INFO"]));
    let want = [
        "Server",
        "Proxy",
        "Clients",
        "Memory",
        "Persistence",
        "Stats",
        "Replication",
        "CPU",
        "Modules",
        "Errorstats",
        "Cluster",
        "Servers",
        "Keyspace",
    ];
    assert_eq!(headers(&all), want, "{all}");
    // What ioredis' ready check reads.
    let fields = info_fields(&all);
    assert_eq!(fields["loading"], "0", "{all}");
    assert_eq!(fields["role"], "master", "{all}");

    // Every Redis field meridian writes in these sections is a field Redis writes there too.
    let redis_all = info_text(&direct.call(&["INFO", "everything"]));
    for name in [
        "Server",
        "Clients",
        "Memory",
        "Persistence",
        "Replication",
        "CPU",
        "Cluster",
    ] {
        let ours = section(&all, name);
        let theirs = section(&redis_all, name);
        for field in ours.keys() {
            if field == "meridian_version" {
                continue;
            }
            assert!(
                theirs.contains_key(field),
                "# {name} {field} is not a Redis 7.0 field"
            );
        }
    }

    // # Server: the gateway process, as one standalone server.
    let server = section(&all, "Server");
    for field in [
        "redis_version",
        "redis_mode",
        "os",
        "arch_bits",
        "process_id",
        "run_id",
        "tcp_port",
        "uptime_in_seconds",
        "uptime_in_days",
        "executable",
        "config_file",
    ] {
        assert!(server.contains_key(field), "no {field}: {server:?}");
    }
    assert_eq!(server["redis_version"], "7.0.15");
    assert_eq!(server["redis_mode"], "standalone");
    assert_eq!(num(&server, "process_id"), i64::from(gw.pid()));
    let port = gw.addr().rsplit_once(':').unwrap().1.to_string();
    assert_eq!(server["tcp_port"], port);
    assert_eq!(server["arch_bits"], "64");
    let run_id = &server["run_id"];
    assert!(
        run_id.len() == 40 && run_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{run_id}"
    );
    for m in cluster.masters() {
        let theirs = cluster.node(&m).info("server");
        assert_ne!(
            &theirs["run_id"], run_id,
            "the gateway has a run id of its own"
        );
    }
    let again = info_fields(&info_text(&via.call(&["INFO", "server"])));
    assert_eq!(&again["run_id"], run_id, "one run id per gateway start");
    assert!(server["executable"].ends_with("meridian"), "{server:?}");
    let config = std::fs::canonicalize(gw.config_path()).unwrap();
    assert_eq!(server["config_file"], config.display().to_string());
    assert!(server["os"].starts_with("Linux "), "{server:?}");

    // # Clients: the gateway's own clients.
    let clients = section(&all, "Clients");
    assert_eq!(num(&clients, "connected_clients"), 2, "{clients:?}");
    assert_eq!(num(&clients, "maxclients"), 10000, "{clients:?}");
    assert_eq!(num(&clients, "blocked_clients"), 0, "{clients:?}");

    // # Memory: summed over the masters, the eviction policy from one of them.
    let memory = section(&all, "Memory");
    let used = num(&memory, "used_memory");
    let sum = masters_sum(&cluster, "memory", "used_memory");
    assert!(
        (used - sum).abs() * 10 < sum,
        "used_memory {used} is not the masters' sum {sum}"
    );
    assert!(
        used > cluster
            .node(&cluster.masters()[0])
            .info_i64("memory", "used_memory"),
        "{memory:?}"
    );
    let human = &memory["used_memory_human"];
    assert!(
        human.ends_with('M') || human.ends_with('K'),
        "used_memory_human {human}"
    );
    assert_eq!(memory["maxmemory_policy"], "noeviction");
    assert_eq!(memory["maxmemory"], "0");

    // # Persistence: not loading, the masters' RDB/AOF state.
    let persistence = section(&all, "Persistence");
    assert_eq!(persistence["loading"], "0");
    assert_eq!(persistence["aof_enabled"], "0");
    assert_eq!(persistence["rdb_last_bgsave_status"], "ok");
    assert!(persistence.contains_key("rdb_changes_since_last_save"));

    // # Stats: the gateway's counters, the masters' keyspace counters, meridian's fields.
    let stats = section(&all, "Stats");
    assert!(num(&stats, "total_connections_received") >= 2, "{stats:?}");
    assert!(num(&stats, "total_commands_processed") >= 600, "{stats:?}");
    assert!(stats.contains_key("instantaneous_ops_per_sec"), "{stats:?}");
    assert_eq!(
        num(&stats, "keyspace_hits"),
        masters_sum(&cluster, "stats", "keyspace_hits")
    );
    assert_eq!(
        num(&stats, "keyspace_misses"),
        masters_sum(&cluster, "stats", "keyspace_misses")
    );
    assert!(num(&stats, "keyspace_hits") >= 200, "{stats:?}");
    assert!(num(&stats, "keyspace_misses") >= 200, "{stats:?}");
    for field in ["Accept", "TotalRequests", "TotalResponses", "Redirects"] {
        assert!(stats.contains_key(field), "meridian's {field}: {stats:?}");
    }

    // # Replication: one master, no replicas.
    let replication = section(&all, "Replication");
    assert_eq!(replication["role"], "master");
    assert_eq!(replication["connected_slaves"], "0");
    assert_eq!(replication["master_replid"].len(), 40);
    assert_ne!(&replication["master_replid"], run_id);

    // # CPU: the gateway's own times.
    let cpu = section(&all, "CPU");
    for field in ["used_cpu_sys", "used_cpu_user"] {
        let v: f64 = cpu[field].parse().unwrap_or(-1.0);
        assert!(v >= 0.0, "{field}: {cpu:?}");
    }

    // # Keyspace: summed.
    let keyspace = section(&all, "Keyspace");
    assert!(keyspace["db0"].starts_with("keys=200,"), "{keyspace:?}");

    // INFO commandstats: summed over the masters, in Redis' format.
    let commandstats = info_text(&via.call(&["INFO", "commandstats"]));
    assert_eq!(headers(&commandstats), ["Commandstats"], "{commandstats}");
    let set = section(&commandstats, "Commandstats")
        .remove("cmdstat_set")
        .unwrap_or_else(|| panic!("no cmdstat_set:\n{commandstats}"));
    let counters: HashMap<&str, &str> =
        set.split(',').filter_map(|kv| kv.split_once('=')).collect();
    let keys: Vec<&str> = set
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        [
            "calls",
            "usec",
            "usec_per_call",
            "rejected_calls",
            "failed_calls"
        ],
        "{set}"
    );
    let calls: i64 = cluster
        .masters()
        .iter()
        .map(|m| {
            let stats = cluster.node(m).info("commandstats");
            let line = stats.get("cmdstat_set").cloned().unwrap_or_default();
            line.split(',')
                .find_map(|kv| kv.strip_prefix("calls="))
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(counters["calls"], calls.to_string(), "{set}");
    assert_eq!(calls, 200);

    // Section selection: all/everything add commandstats; names pick sections, in Redis'
    // order, case-insensitively; unknown names pick nothing.
    for arg in ["all", "everything"] {
        let text = info_text(&via.call(&["INFO", arg]));
        let h = headers(&text);
        assert!(
            h.contains(&"Commandstats".to_string()) && h.contains(&"Keyspace".to_string()),
            "INFO {arg}: {h:?}"
        );
    }
    let server_only = info_text(&via.call(&["INFO", "server"]));
    assert_eq!(headers(&server_only), ["Server"], "{server_only}");
    let two = info_text(&via.call(&["INFO", "MEMORY", "clients"]));
    assert_eq!(headers(&two), ["Clients", "Memory"], "{two}");
    assert_eq!(info_text(&via.call(&["INFO", "nosuch"])), "");
    assert_eq!(
        direct.call(&["INFO", "nosuch"]),
        via.call(&["INFO", "nosuch"])
    );

    // RESP3: a verbatim string, with or without a fan-out.
    let mut r3 = Raw::connect(&gw.addr());
    assert!(r3.call(&["HELLO", "3"]).starts_with(b"%"));
    for req in [
        &["INFO"][..],
        &["INFO", "server"],
        &["INFO", "clients", "memory"],
    ] {
        let reply = r3.call(req);
        assert!(reply.starts_with(b"="), "{req:?}: {}", show(&reply));
        assert!(info_text(&reply).contains("# "), "{req:?}");
    }
    let reply = r3.call(&["INFO", "replication"]);
    assert!(
        info_text(&reply).contains("role:master\r\n"),
        "{}",
        show(&reply)
    );
}
