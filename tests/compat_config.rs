//! CONFIG through meridian (issue 9 item 2) against a real cluster with replicas: GET of a
//! Redis parameter equals what a node says (RESP2 and RESP3 bytes), `meridian.*` equals the
//! config file; SET reaches every node, masters and replicas (each checked directly), and a
//! refusal names the nodes; `SET meridian.*` is refused; RESETSTAT zeroes INFO (meridian's and
//! the nodes'); REWRITE reaches every node. A user without the admin role gets Redis 7's
//! NOPERM text, compared with a standalone redis-server whose user lacks `+@admin`.

mod common;

use std::time::Duration;

use common::client::{err, run, strings, text};
use common::raw::Raw;
use common::{Cluster, Gateway, Standalone, wait_until};
use redis::Value;

const DC_YAML: &str = "\
local_dc: dc1
datacenters:
  dc1: { cidrs: [127.0.0.0/8] }
  dc2: { cidrs: [10.9.0.0/16] }
latency_ms:
  dc1: { dc1: 0.5, dc2: 40 }
  dc2: { dc1: 40, dc2: 0.5 }
breaker: { failure_limit: 7 }
read_policy: { tolerance_ms: 3 }
";

/// `[name, value, …]` as pairs.
fn pairs(v: &Value) -> Vec<(String, String)> {
    let flat = strings(v);
    flat.chunks(2)
        .map(|c| (c[0].clone(), c.get(1).cloned().unwrap_or_default()))
        .collect()
}

fn waits_for_map(gw: &Gateway) {
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let r = gw.raw().call_text(&["GET", "config:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });
}

#[test]
fn config_get_set_resetstat_rewrite_on_every_node() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, DC_YAML);
    waits_for_map(&gw);
    let mut c = gw.client();
    let master = cluster.masters()[0].clone();

    // A Redis parameter: what a node says, in RESP2 and in RESP3 (a map, as Redis answers).
    let got = run(&mut c, &["CONFIG", "GET", "maxmemory-policy"]);
    assert_eq!(
        got,
        cluster.query(&master, &["CONFIG", "GET", "maxmemory-policy"])
    );
    let (mut g3, mut n3) = (gw.raw(), Raw::connect(&master));
    g3.call(&["HELLO", "3"]);
    n3.call(&["HELLO", "3"]);
    for args in [
        &["CONFIG", "GET", "maxmemory"][..],
        &["CONFIG", "GET", "maxmemory*", "hz"][..],
    ] {
        assert_eq!(g3.call_text(args), n3.call_text(args), "{args:?}");
    }

    // meridian's own settings: the config file's values, with Redis glob patterns.
    let own = pairs(&run(&mut c, &["CONFIG", "GET", "meridian.*"]));
    let value = |name: &str| {
        own.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} not in {own:?}"))
    };
    assert_eq!(value("meridian.latency_ms.dc1.dc2"), "40");
    assert_eq!(value("meridian.latency_ms.dc2.dc2"), "0.5");
    assert_eq!(value("meridian.local_dc"), "dc1");
    assert_eq!(value("meridian.breaker.failure_limit"), "7");
    assert_eq!(value("meridian.read_policy.tolerance_ms"), "3");
    assert_eq!(value("meridian.workers"), "1");
    assert_eq!(value("meridian.breaker.server_timeout"), "1s");
    assert!(own.iter().all(|(n, _)| n.starts_with("meridian.")));
    let some = pairs(&run(
        &mut c,
        &["CONFIG", "GET", "MERIDIAN.LATENCY_MS.DC1.*", "maxmemory"],
    ));
    let names: Vec<&str> = some.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "maxmemory",
            "meridian.latency_ms.dc1.dc1",
            "meridian.latency_ms.dc1.dc2"
        ]
    );
    assert_eq!(
        g3.call_text(&["CONFIG", "GET", "meridian.workers"]),
        "%1\r\n$16\r\nmeridian.workers\r\n$1\r\n1\r\n"
    );

    // SET: every node, masters and replicas, checked directly.
    assert_eq!(
        run(
            &mut c,
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]
        ),
        Value::Okay
    );
    assert_eq!(cluster.nodes().len(), 6);
    for node in cluster.nodes() {
        let v = node.query(&["CONFIG", "GET", "maxmemory-policy"]);
        assert_eq!(pairs(&v)[0].1, "allkeys-lru", "{}", node.addr);
    }
    // A value every node refuses: the error names each of them.
    let e = err(&run(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "bogus"],
    ));
    assert!(
        e.starts_with("ERR CONFIG SET failed on 6 of 6 nodes"),
        "{e}"
    );
    assert!(e.ends_with("succeeded on: none"), "{e}");
    for node in cluster.nodes() {
        assert!(e.contains(&format!("{} (ERR", node.addr)), "{e}");
    }
    // One replica that does not answer: named as refusing, the others as having taken it.
    let replica = cluster.replicas_of(&master)[0].clone();
    cluster.node(&replica).stop();
    let e = err(&run(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"],
    ));
    cluster.node(&replica).cont();
    assert!(
        e.starts_with("ERR CONFIG SET failed on 1 of 6 nodes"),
        "{e}"
    );
    let (refused, took) = e.split_once("succeeded on: ").expect("two parts");
    assert!(refused.contains(&replica), "{e}");
    for node in cluster.nodes().iter().filter(|n| n.addr != replica) {
        assert!(
            took.contains(&node.addr) && !refused.contains(&node.addr),
            "{e}"
        );
        let v = node.query(&["CONFIG", "GET", "maxmemory-policy"]);
        assert_eq!(pairs(&v)[0].1, "volatile-lru", "{}", node.addr);
    }
    // meridian's own settings change by editing the file and reloading.
    let e = err(&run(
        &mut c,
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "0",
            "meridian.breaker.failure_limit",
            "3",
        ],
    ));
    assert!(
        e.contains("'meridian.breaker.failure_limit' is one of meridian's own settings")
            && e.contains("config file"),
        "{e}"
    );
    let e = err(&run(&mut c, &["CONFIG", "SET", "maxmemory"]));
    assert_eq!(e, "ERR wrong number of arguments for 'config|set' command");

    // RESETSTAT: meridian's counters and every node's commandstats start again.
    for i in 0..20 {
        run(&mut c, &["SET", &format!("config:{i}"), "v"]);
        run(&mut c, &["GET", &format!("config:{i}")]);
    }
    let before = text(&run(&mut c, &["INFO", "commandstats"]));
    assert!(before.contains("cmdstat_set:"), "{before}");
    assert_eq!(run(&mut c, &["CONFIG", "RESETSTAT"]), Value::Okay);
    let after = text(&run(&mut c, &["INFO", "commandstats"]));
    assert!(
        !after.contains("cmdstat_set:") && !after.contains("cmdstat_get:"),
        "{after}"
    );
    for node in cluster.nodes() {
        let stats = node.info("commandstats");
        assert!(
            !stats.contains_key("cmdstat_set"),
            "{}: {stats:?}",
            node.addr
        );
    }
    let stats = text(&run(&mut c, &["INFO", "stats"]));
    let field = |name: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stats}"))
    };
    // Only what came after the reset: the INFO commandstats and this INFO.
    assert!(field("TotalRequests:") <= 3, "{stats}");
    assert!(field("total_commands_processed:") <= 3, "{stats}");

    // REWRITE reaches every node; these run without a config file, and each says so.
    let e = err(&run(&mut c, &["CONFIG", "REWRITE"]));
    assert!(
        e.starts_with("ERR CONFIG REWRITE failed on 6 of 6 nodes"),
        "{e}"
    );
    assert!(e.contains("without a config file"), "{e}");
    // Not inside a transaction (it runs on one node): refused, and EXEC aborts.
    let mut t = gw.raw();
    assert_eq!(t.call_text(&["MULTI"]), "+OK\r\n");
    let e = t.call_text(&["CONFIG", "GET", "maxmemory"]);
    assert!(e.starts_with("-ERR CONFIG inside MULTI"), "{e}");
    assert!(t.call_text(&["EXEC"]).starts_with("-EXECABORT"));
    // HELP is one master's.
    assert!(strings(&run(&mut c, &["CONFIG", "HELP"]))[0].contains("CONFIG"));
}

/// `echo -n TEXT | sha256sum`, as the README tells operators to compute a digest.
fn sha256_hex(text: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(text.as_bytes())
        .expect("write to sha256sum");
    let out = child.wait_with_output().expect("sha256sum ends");
    let hex = String::from_utf8_lossy(&out.stdout);
    hex.split_whitespace().next().expect("a digest").to_string()
}

#[test]
fn config_is_for_admin_users_with_redis_noperm_text() {
    let cluster = Cluster::start(3, 0);
    let users = format!(
        "users:
  - name: default
    role: admin
    keys: ['*']
    channels: ['*']
  - name: writer
    passwords: [{}]
    role: write
    keys: ['*']
    channels: ['*']
",
        sha256_hex("wpw")
    );
    let gw = Gateway::start(&cluster, &users);
    waits_for_map(&gw);
    let sa = Standalone::start(&[]);
    // meridian's `write` role is Redis' `+@all -@admin` (CONFIG is an admin command).
    #[rustfmt::skip]
    sa.node().ok(&["ACL", "SETUSER", "writer", "on", ">wpw", "~*", "&*", "+@all", "-@admin"]);
    let (mut g, mut s) = (gw.raw(), sa.raw());
    assert_eq!(g.call_text(&["AUTH", "writer", "wpw"]), "+OK\r\n");
    assert_eq!(s.call_text(&["AUTH", "writer", "wpw"]), "+OK\r\n");
    for args in [
        &["CONFIG", "GET", "maxmemory"][..],
        &["CONFIG", "GET", "meridian.*"][..],
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"][..],
        &["CONFIG", "RESETSTAT"][..],
        &["CONFIG", "REWRITE"][..],
    ] {
        let got = g.call_text(args);
        assert_eq!(got, s.call_text(args), "{args:?}");
        assert!(
            got.starts_with("-NOPERM this user has no permissions to run the 'config|"),
            "{got}"
        );
    }
    // Nothing reached a node.
    for m in cluster.masters() {
        let v = cluster.query(&m, &["CONFIG", "GET", "maxmemory-policy"]);
        assert_eq!(pairs(&v)[0].1, "noeviction", "{m}");
    }
    // The admin (here `default`) runs it.
    let mut admin = gw.client();
    assert_eq!(
        pairs(&run(&mut admin, &["CONFIG", "GET", "meridian.workers"])),
        [("meridian.workers".to_string(), "1".to_string())]
    );
}
