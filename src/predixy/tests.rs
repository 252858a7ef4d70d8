//! Conversion of predixy configurations written for these tests, modelled on the examples
//! predixy ships (a plain cluster pool, a three-DC setup, a main file with includes for
//! authority and latency monitors, and the awkward corners).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::config::{Config, LatencySource};
use crate::health::breaker::BreakerState;
use crate::policy::{Candidate, Choice, PolicyParams, ReplicaKind, choose_read};

fn no_files(_: &str) -> Option<String> {
    None
}

/// Converts and parses the result as meridian would, printing the YAML when it fails.
fn convert_ok(conf: &str, files: &dyn Fn(&str) -> Option<String>) -> (String, Config) {
    let yaml = convert(conf, files).unwrap_or_else(|e| panic!("convert: {e}"));
    match Config::parse(&yaml, "converted.yaml") {
        Ok(cfg) => (yaml, cfg),
        Err(errs) => panic!("{errs}\n----\n{yaml}"),
    }
}

/// The YAML with comment markers and line breaks folded away, so checks of comment text do
/// not depend on where a comment wraps.
fn flat(yaml: &str) -> String {
    let words: Vec<&str> = yaml
        .lines()
        .map(|l| l.trim_start().trim_start_matches('#'))
        .flat_map(str::split_whitespace)
        .collect();
    words.join(" ")
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A single cluster pool with every setting spelled out.
const ORDERS: &str = "\
## gateway in front of the orders cluster
Name OrdersGateway
Bind 10.0.0.5:7617
WorkerThreads 4
ClientTimeout 120

ClusterServerPool {
    Password s3cret          # backend AUTH
    MasterReadPriority 100
    StaticSlaveReadPriority 40
    DynamicSlaveReadPriority 40
    RefreshInterval 2
    ServerTimeout 500ms
    ServerFailureLimit 8
    ServerRetryTimeout 3s
    KeepAlive 60
    Servers {
        + 10.0.1.11:6379
        + 10.0.1.12:6379
        + redis-c.internal:6379
    }
}
";

#[test]
fn plain_cluster_pool() {
    let (yaml, c) = convert_ok(ORDERS, &no_files);
    assert_eq!(c.listen, "10.0.0.5:7617");
    assert_eq!(c.workers, 4);
    assert_eq!(c.client.timeout, secs(120));
    assert_eq!(
        c.cluster.seeds,
        ["10.0.1.11:6379", "10.0.1.12:6379", "redis-c.internal:6379"]
    );
    assert_eq!(c.cluster.password.as_deref(), Some("s3cret"));
    assert_eq!(c.cluster.refresh_interval, secs(2));
    let p = &c.read_policy;
    assert_eq!(
        (
            p.master_priority,
            p.static_replica_priority,
            p.dynamic_replica_priority
        ),
        (100, 40, 40)
    );
    assert_eq!(
        p.latency_source,
        LatencySource::Hybrid,
        "no DC section, no map"
    );
    let b = &c.breaker;
    assert_eq!((b.failure_limit, b.retry_timeout), (8, secs(3)));
    assert_eq!(b.server_timeout, Duration::from_millis(500));
    assert_eq!(b.keepalive, secs(60));
    assert!(c.datacenters.is_empty() && c.local_dc.is_none());
    assert!(
        flat(&yaml).contains("Name OrdersGateway (predixy.conf:2): meridian has no service name")
    );
    assert!(flat(&yaml).contains("counts consecutive failures"));
}

#[test]
fn predixy_defaults_are_kept_where_meridian_differs() {
    let conf = "ClusterServerPool {\n  Servers {\n    + 127.0.0.1:7001\n  }\n}\n";
    let (yaml, c) = convert_ok(conf, &no_files);
    assert_eq!(c.listen, "0.0.0.0:7617");
    assert_eq!(c.workers, 1);
    assert_eq!(c.client.timeout, Duration::ZERO);
    let p = &c.read_policy;
    assert_eq!(
        (
            p.master_priority,
            p.static_replica_priority,
            p.dynamic_replica_priority
        ),
        (50, 0, 0)
    );
    assert_eq!(c.breaker.failure_limit, 10);
    assert_eq!(c.breaker.keepalive, Duration::ZERO);
    assert_eq!(c.breaker.server_timeout, secs(1));
    assert!(
        flat(&yaml).contains("predixy had no ServerTimeout"),
        "{yaml}"
    );
}

/// Three DCs as in predixy's dc example, in our own names and networks.
const THREE_DCS: &str = "\
WorkerThreads 2
LocalDC east
ClusterServerPool {
    MasterReadPriority 60
    StaticSlaveReadPriority 50
    DynamicSlaveReadPriority 50
    Servers {
        + 10.1.0.10:7001
        + 10.2.0.10:7001
        + 10.3.0.10:7001
    }
}
DataCenter {
    DC east {
        AddrPrefix {
            + 10.1
            + 192.168.10
        }
        ReadPolicy {
            east 50
            west 20 3
            south 20
        }
    }
    DC west {
        AddrPrefix {
            + 10.2
        }
        ReadPolicy {
            west 50
            east 20
            south 10
        }
    }
    DC south {
        AddrPrefix {
            + 10.3.
        }
        ReadPolicy {
            south 50
            west 20 2
            east 20 1
        }
    }
}
";

fn row(c: &Config, from: &str) -> Vec<(String, f64)> {
    c.latency_ms[from]
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn pairs(list: &[(&str, f64)]) -> Vec<(String, f64)> {
    list.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn datacenters_become_cidrs_latency_and_weights() {
    let (yaml, c) = convert_ok(THREE_DCS, &no_files);
    assert_eq!(c.local_dc.as_deref(), Some("east"));
    let cidrs = |dc: &str| -> Vec<String> {
        c.datacenters[dc]
            .cidrs
            .iter()
            .map(|n| n.to_string())
            .collect()
    };
    assert_eq!(cidrs("east"), ["10.1.0.0/16", "192.168.10.0/24"]);
    assert_eq!(cidrs("west"), ["10.2.0.0/16"]);
    assert_eq!(cidrs("south"), ["10.3.0.0/16"]);
    assert_eq!(c.dc_of("10.10.0.1".parse().unwrap()), None);
    assert_eq!(c.dc_of("192.168.10.7".parse().unwrap()), Some("east"));
    assert_eq!(
        row(&c, "east"),
        pairs(&[("east", 0.0), ("south", 10.0), ("west", 10.0)])
    );
    assert_eq!(
        row(&c, "west"),
        pairs(&[("east", 10.0), ("south", 20.0), ("west", 0.0)])
    );
    let weights: Vec<_> = c
        .read_policy
        .weights
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(weights, [("east", 1), ("south", 1), ("west", 3)]);
    assert_eq!(c.read_policy.latency_source, LatencySource::Map);
    assert_eq!(
        c.read_policy.max_latency_ms, 0.0,
        "every DC is listed somewhere"
    );
    assert!(
        flat(&yaml).contains("no longer matches 10.10.x.x"),
        "{yaml}"
    );
    assert!(flat(&yaml).contains("synthetic latency map"), "{yaml}");
    assert!(flat(&yaml).contains("DC south's ReadPolicy weights (south 1, west 2, east 1)"));
    // Every region can start from the same file.
    for dc in ["east", "west", "south"] {
        c.clone().with_local_dc(Some(dc.into())).unwrap();
    }
}

#[test]
fn converted_policy_reads_locally_then_by_weight() {
    let (_, c) = convert_ok(THREE_DCS, &no_files);
    let params = PolicyParams::from_config(&c);
    let now = Instant::now();
    let replica = |node, dc: &str| Candidate {
        node,
        kind: ReplicaKind::DynamicReplica,
        dc: Some(Arc::from(dc)),
        breaker: BreakerState::Closed,
        retry_at: None,
        loading: false,
        link_up: true,
        lag_bytes: 0,
        outstanding: 0,
        rtt_ms: None,
        rtt_fresh: false,
    };
    let mut cands = vec![replica(1, "east"), replica(2, "west"), replica(3, "south")];
    let mut rng = StdRng::seed_from_u64(4);
    for _ in 0..100 {
        assert_eq!(choose_read(&params, &cands, now, &mut rng), Choice::Node(1));
    }
    cands[0].loading = true;
    let mut counts = BTreeMap::new();
    for _ in 0..8_000 {
        let node = choose_read(&params, &cands, now, &mut rng).node().unwrap();
        *counts.entry(node).or_insert(0) += 1;
    }
    let ratio = f64::from(counts[&2]) / f64::from(counts[&3]);
    assert!(
        (2.7..=3.3).contains(&ratio),
        "west:south should be 3:1, {counts:?}"
    );
}

/// A main file that includes its pool, authority and monitors, with directives meridian lacks.
const MAIN_WITH_INCLUDES: &str = "\
Name ShopProxy
Bind 127.0.0.1:7617
WorkerThreads 8
MaxMemory 2G
BufSize 8192
Log /var/log/predixy.log
LogRotate 1d 1G
AllowMissLog false
LogInfoSample 100
LogErrorSample 1
FancyFeature on

Include auth.conf
Include pool.conf
Include monitors.conf

CustomCommand {
    bf.add {
        minArgs 3
        mode write
    }
}
";

const AUTH: &str = "\
Authority {
    Auth {
        Mode read
    }
    Auth \"#hash in it#\" {
        Mode admin
    }
    Auth cart {
        Mode write
        ReadKeyPrefix cart: stock:
        WriteKeyPrefix cart:
    }
}
";

const POOL: &str = "\
ClusterServerPool {
    RefreshInterval 1s
    Databases 1
    Servers {
        Include servers.conf
    }
}
";

const SERVERS: &str = "+ 127.0.0.1:7001\n+ 127.0.0.1:7002\n";

const MONITORS: &str = "\
LatencyMonitor all {
    Commands {
        + all
        - blpop
    }
    TimeSpan {
        + 500
        + 1000
    }
}
LatencyMonitor writes {
    Commands {
        + set
    }
}
";

fn shop_files(name: &str) -> Option<String> {
    let text = match name {
        "auth.conf" => AUTH,
        "pool.conf" => POOL,
        "servers.conf" => SERVERS,
        "monitors.conf" => MONITORS,
        _ => return None,
    };
    Some(text.to_string())
}

#[test]
fn includes_authority_and_unconverted_directives() {
    let (yaml, c) = convert_ok(MAIN_WITH_INCLUDES, &shop_files);
    assert_eq!(c.cluster.seeds, ["127.0.0.1:7001", "127.0.0.1:7002"]);
    assert_eq!(c.workers, 8);
    for named in [
        "Name ShopProxy (predixy.conf:1)",
        "MaxMemory 2G (predixy.conf:4)",
        "BufSize 8192",
        "Log /var/log/predixy.log",
        "LogRotate 1d 1G",
        "AllowMissLog false",
        "LogInfoSample 100",
        "LogErrorSample 1",
        "FancyFeature on (predixy.conf:11): unknown predixy directive",
        "CustomCommand { … } (predixy.conf:17)",
        "Databases 1 (pool.conf:3)",
    ] {
        assert!(
            flat(&yaml).contains(named),
            "`{named}` missing from:\n{yaml}"
        );
    }
    // The monitors became latency_monitors (src/predixy/latency.rs has the golden test).
    assert!(!flat(&yaml).contains("LatencyMonitor all {"), "{yaml}");
    let monitors = c.latency_monitors();
    let names: Vec<&str> = monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["all", "writes"]);
    assert_eq!(monitors[0].exclude, ["blpop"]);
    // The Authority became users (src/predixy/auth.rs has the golden test).
    let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["default", "admin1", "write2"]);
    assert!(!yaml.contains("#hash in it#") && !yaml.contains("cart \""));
}

/// The awkward corners: a Unix socket, per-server passwords, predixy's `m`, nested and
/// textual prefixes, a DC never read from, no LocalDC, a DC without ReadPolicy.
const CORNERS: &str = "\
Bind /tmp/predixy.sock
ClusterServerPool {
    RefreshInterval 500m
    ServerTimeout 0
    Servers {
        + hunter2@10.1.0.5:7001
        + hunter2@10.1.2.5:7001 master
        + hunter2@10.10.0.7:7001
        + hunter2@cache-b1.corp:7001
    }
}
DataCenter {
    DC a {
        AddrPrefix {
            + 10.1
        }
        ReadPolicy {
            a 30
            b 30 0
            c 0
        }
    }
    DC b {
        AddrPrefix {
            + 10.1.2
            + cache-b
        }
        ReadPolicy {
            b 10
            a 5
        }
    }
    DC c {
        AddrPrefix {
            + 10.9
        }
    }
}
";

#[test]
fn awkward_corners() {
    let (yaml, c) = convert_ok(CORNERS, &no_files);
    assert_eq!(c.listen, "0.0.0.0:7617");
    assert!(
        flat(&yaml)
            .contains("Bind /tmp/predixy.sock (predixy.conf:1): meridian listens on TCP only")
    );
    assert_eq!(c.cluster.password.as_deref(), Some("hunter2"));
    assert!(
        !yaml.contains("hunter2@"),
        "passwords stay out of the seeds"
    );
    assert_eq!(c.cluster.refresh_interval, Duration::from_millis(500));
    assert!(flat(&yaml).contains("predixy's `m` means milliseconds"));
    assert_eq!(c.breaker.server_timeout, secs(1));
    assert!(flat(&yaml).contains("left at meridian's default 1s"));
    // 10.1/16 in a contains b's 10.1.2/24: a's network is carved around it.
    assert_eq!(c.dc_of("10.1.2.5".parse().unwrap()), Some("b"));
    assert_eq!(c.dc_of("10.1.3.5".parse().unwrap()), Some("a"));
    assert_eq!(c.dc_of("10.1.0.5".parse().unwrap()), Some("a"));
    assert_eq!(c.datacenters["a"].cidrs.len(), 8);
    assert!(flat(&yaml).contains("written as 8 networks"));
    // A text prefix that is no address prefix places the servers it matched explicitly.
    assert_eq!(c.datacenters["b"].nodes, ["cache-b1.corp:7001"]);
    assert!(
        flat(&yaml)
            .contains("AddrPrefix `cache-b` of DC b (predixy.conf:26) is not an IPv4 prefix")
    );
    // predixy put 10.10.0.7 in a by text; by CIDR it is in no DC.
    assert!(flat(&yaml).contains(
        "server 10.10.0.7:7001 was in DC a by predixy's text prefix and is in DC unknown by CIDR"
    ));
    // Priority 0, weight 0, unlisted and missing ReadPolicy.
    assert_eq!(
        row(&c, "a"),
        pairs(&[("a", 0.0), ("b", 0.0), ("c", 1000.0)])
    );
    assert_eq!(
        row(&c, "b"),
        pairs(&[("a", 10.0), ("b", 0.0), ("c", 1000.0)])
    );
    assert_eq!(
        row(&c, "c"),
        pairs(&[("a", 1000.0), ("b", 1000.0), ("c", 0.0)])
    );
    assert_eq!(c.read_policy.max_latency_ms, 999.0);
    assert!(c.local_dc.is_none() && c.read_policy.weights.is_empty());
    assert!(flat(&yaml).contains("--local-dc"));
    assert!(flat(&yaml).contains("DC c has no ReadPolicy"));
    assert!(flat(&yaml).contains("DC a's ReadPolicy weights (a 1, b 0) are not carried over"));
    for dc in ["a", "b", "c"] {
        c.clone().with_local_dc(Some(dc.into())).unwrap();
    }
}

#[test]
fn values_meridian_cannot_take_are_replaced_with_a_comment() {
    let pool = "ClusterServerPool {\n Servers {\n  + 127.0.0.1:7001\n }\n}\n";
    let conf = format!("WorkerThreads 1000\nLocalDC x\nDataCenter {{\n}}\n{pool}");
    let (yaml, c) = convert_ok(&conf, &no_files);
    assert_eq!(c.workers, 0);
    assert!(flat(&yaml).contains("WorkerThreads 1000 (predixy.conf:1): more workers than"));
    assert!(flat(&yaml).contains("DataCenter { … } (predixy.conf:3): it defines no DC"));
    assert!(flat(&yaml).contains("LocalDC x (predixy.conf:2): there is no DataCenter section"));
    assert!(c.datacenters.is_empty() && c.local_dc.is_none());
    let conf = pool.replace(
        "Servers {",
        "RefreshInterval 0\n ServerRetryTimeout 0\n Servers {",
    );
    let (yaml, c) = convert_ok(&conf, &no_files);
    assert_eq!(c.cluster.refresh_interval, secs(1));
    assert_eq!(c.breaker.retry_timeout, secs(1));
    assert!(flat(&yaml).contains("RefreshInterval 0 is not allowed"));
    assert!(flat(&yaml).contains("ServerRetryTimeout 0 is not allowed"));
}

#[test]
fn differing_server_passwords_warn() {
    let conf = "ClusterServerPool {\n  Password top\n  Servers {\n    + x@127.0.0.1:7001\n    + 127.0.0.1:7002\n  }\n}\n";
    let (yaml, c) = convert_ok(conf, &no_files);
    assert_eq!(c.cluster.password.as_deref(), Some("top"));
    assert!(flat(&yaml).contains("WARNINGS"));
    assert!(flat(&yaml).contains("Servers carry their own passwords"));
    assert!(!yaml.contains("x@"));
}

#[test]
fn quoting_survives_yaml() {
    let conf = "ClusterServerPool {\n  Password \"a \\\"q\\\" # b: c\"\n  Servers {\n    + 127.0.0.1:7001\n  }\n}\n";
    let (_, c) = convert_ok(conf, &no_files);
    assert_eq!(c.cluster.password.as_deref(), Some("a \"q\" # b: c"));
}

#[test]
fn refusals() {
    let pool = "ClusterServerPool {\n Servers {\n  + 127.0.0.1:7001\n }\n}\n";
    let table: Vec<(String, &str)> = vec![
        (
            "SentinelServerPool {\n}\n".into(),
            "predixy.conf:1: SentinelServerPool cannot be converted: meridian fronts a Redis Cluster only",
        ),
        (
            "WorkerThreads 2\n".into(),
            "no ClusterServerPool with Servers",
        ),
        (
            format!("WorkerThreads lots\n{pool}"),
            "predixy.conf:1: WorkerThreads `lots`: expected a whole number >= 1",
        ),
        (
            pool.replace("Servers {", "MasterReadPriority 101\n Servers {"),
            "predixy.conf:2: MasterReadPriority `101`: expected a whole number in 0..100",
        ),
        (
            pool.replace("Servers {", "RefreshInterval 1h\n Servers {"),
            "RefreshInterval `1h`: expected a duration",
        ),
        (
            pool.replace("Servers {", "Databases 4\n Servers {"),
            "exactly one database",
        ),
        (
            format!("{pool}DataCenter {{\n DC us.east {{\n }}\n}}\n"),
            "predixy.conf:7: DC name `us.east` cannot be used",
        ),
        (
            format!("{pool}DataCenter {{\n DC unknown {{\n }}\n}}\n"),
            "`unknown` is reserved",
        ),
        (
            format!("{pool}LocalDC x\nDataCenter {{\n DC y {{\n }}\n}}\n"),
            "predixy.conf:6: LocalDC `x` is not a DC of DataCenter",
        ),
        (
            format!("{pool}DataCenter {{\n DC y {{\n  ReadPolicy {{\n   z 1\n  }}\n }}\n}}\n"),
            "DC `y` ReadPolicy names `z`, which is not a DC",
        ),
        (
            format!("{pool}DataCenter {{\n DC y {{\n  ReadPolicy {{\n   y high\n  }}\n }}\n}}\n"),
            "predixy.conf:9: y `high`: expected `dcname priority [weight]`",
        ),
        (
            format!(
                "{pool}DataCenter {{\n DC y {{\n  AddrPrefix {{\n   + 10.1\n  }}\n }}\n \
                 DC z {{\n  AddrPrefix {{\n   + 10.1.\n  }}\n }}\n}}\n"
            ),
            "AddrPrefix `10.1.` of DC z and `10.1` of DC y are the same network 10.1.0.0/16",
        ),
        (
            format!("{pool}DataCenter {{\n Zone y {{\n }}\n}}\n"),
            "DataCenter holds only `DC name { … }` blocks",
        ),
        (
            format!("{pool}Include nowhere.conf\n"),
            "predixy.conf:6: Include nowhere.conf: the file could not be read",
        ),
        (
            "ClusterServerPool {\n Servers {\n  + nope\n }\n}\n".into(),
            "no server of ClusterServerPool is a host:port",
        ),
        (
            "ClusterServerPool {\n Servers {\n  - 127.0.0.1:7001\n }\n}\n".into(),
            "expected `+ host:port` server lines",
        ),
    ];
    for (conf, words) in table {
        let err = convert(&conf, &no_files).expect_err(&conf).to_string();
        assert!(err.contains(words), "`{err}` lacks `{words}`");
    }
}
