//! Commands meridian answers itself (PING … HELLO, CLIENT, COMMAND, INFO) and RESP3 clients.
//! (Shutdown and `meridian check` are in core_cli.rs.)

mod common;
mod fakes;

use std::collections::HashMap;

use common::raw::{Raw, encode, show};
use common::{Cluster, Gateway, key_in_slot, key_slot};
use fakes::probe::{info, info_section, info_servers, info_text, info_u64};

/// Collects differences between meridian and redis-server, so one run reports all of them.
#[derive(Default)]
struct Diffs(Vec<String>);

impl Diffs {
    /// Sends `req` to both and records a difference in the replies.
    fn same<A: AsRef<[u8]> + std::fmt::Debug>(
        &mut self,
        via: &mut Raw,
        direct: &mut Raw,
        req: &[A],
    ) -> Vec<u8> {
        let got = via.call(req);
        let want = direct.call(req);
        if got != want {
            self.0.push(format!(
                "{req:?}: meridian {} vs redis-server {}",
                show(&got),
                show(&want)
            ));
        }
        got
    }

    fn check(&mut self, ok: bool, what: String) {
        if !ok {
            self.0.push(what);
        }
    }

    fn assert_none(self) {
        assert!(
            self.0.is_empty(),
            "{} difference(s):\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

#[test]
fn local_connection_commands_answer_like_redis() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();
    let mut via = Raw::connect(&addr);
    let mut direct = Raw::connect(&cluster.nodes()[0].addr);
    let mut d = Diffs::default();

    assert_eq!(via.call(&["PING"]), b"+PONG\r\n");
    d.same(&mut via, &mut direct, &["PING", "hello world"]);
    d.same(&mut via, &mut direct, &["PING", "a", "b"]);
    d.same(&mut via, &mut direct, &["ECHO", "x\r\ny"]);
    d.same(&mut via, &mut direct, &["ECHO"]);
    d.same(&mut via, &mut direct, &["ECHO", "a", "b"]);
    d.same(&mut via, &mut direct, &["SELECT", "0"]);
    d.same(&mut via, &mut direct, &["SELECT", "1"]);
    d.same(&mut via, &mut direct, &["SELECT"]);
    d.same(&mut via, &mut direct, &["HELLO", "4"]);
    d.same(&mut via, &mut direct, &["HELLO", "abc"]);
    d.same(&mut via, &mut direct, &["CLIENT", "SETNAME", "a b"]);
    d.same(&mut via, &mut direct, &["CLIENT", "GETNAME"]);
    d.same(
        &mut via,
        &mut direct,
        &["CLIENT", "SETNAME", "meridian-test"],
    );
    d.same(&mut via, &mut direct, &["CLIENT", "GETNAME"]);
    d.same(&mut via, &mut direct, &["CLIENT", "SETNAME", ""]);
    d.same(&mut via, &mut direct, &["CLIENT", "GETNAME"]);
    let noproto = via.call(&["HELLO", "4"]);
    assert!(
        noproto.starts_with(b"-NOPROTO "),
        "HELLO 4: {}",
        show(&noproto)
    );
    // Redis checks SELECT's argument is an integer before refusing other databases.
    d.same(&mut via, &mut direct, &["SELECT", "abc"]);
    d.same(&mut via, &mut direct, &["CLIENT"]);
    d.same(&mut via, &mut direct, &["CLIENT", "ID", "x"]);
    d.same(&mut via, &mut direct, &["CLIENT", "NOSUCH"]);
    // No password configured: AUTH behaves like a Redis whose default user has none.
    d.same(&mut via, &mut direct, &["AUTH", "secret"]);
    d.same(&mut via, &mut direct, &["AUTH", "default", "anything"]);
    d.same(&mut via, &mut direct, &["AUTH", "someone", "secret"]);

    // CLIENT ID: an integer, different for every connection; SETINFO accepted.
    let id = |raw: &mut Raw| {
        let reply = raw.call(&["CLIENT", "ID"]);
        assert!(reply.starts_with(b":"), "CLIENT ID: {}", show(&reply));
        String::from_utf8_lossy(&reply)
            .trim_start_matches(':')
            .trim_end()
            .parse::<i64>()
            .unwrap()
    };
    let mut second = Raw::connect(&addr);
    let (id1, id2) = (id(&mut via), id(&mut second));
    assert_ne!(id1, id2, "two clients with the same CLIENT ID");
    assert_eq!(id(&mut via), id1, "CLIENT ID is stable");
    assert_eq!(
        via.call(&["CLIENT", "SETINFO", "lib-name", "core-tests"]),
        b"+OK\r\n"
    );
    assert_eq!(
        via.call(&["CLIENT", "SETINFO", "lib-ver", "1.0.0"]),
        b"+OK\r\n"
    );
    assert!(
        via.call(&["CLIENT", "SETINFO", "nonsense", "x"])
            .starts_with(b"-ERR")
    );

    // HELLO 2: the RESP2 form of the HELLO map; HELLO without version keeps the protocol.
    let hello2 = via.call(&["HELLO", "2"]);
    assert!(
        hello2.starts_with(b"*14\r\n$6\r\nserver\r\n"),
        "HELLO 2: {}",
        show(&hello2)
    );
    assert!(
        show(&hello2).contains("$5\\r\\nproto\\r\\n:2\\r\\n"),
        "{}",
        show(&hello2)
    );
    assert!(
        show(&hello2).contains(&format!("$2\\r\\nid\\r\\n:{id1}\\r\\n")),
        "HELLO's id is CLIENT ID: {}",
        show(&hello2)
    );

    // HELLO 3: a RESP3 map, and from then on RESP3 replies from the backends as well.
    let mut r3 = Raw::connect(&addr);
    let mut d3 = Raw::connect(&cluster.nodes()[0].addr);
    let hello3 = r3.call(&["HELLO", "3", "SETNAME", "resp3-client"]);
    assert!(
        hello3.starts_with(b"%7\r\n$6\r\nserver\r\n"),
        "HELLO 3: {}",
        show(&hello3)
    );
    assert!(
        show(&hello3).contains("$5\\r\\nproto\\r\\n:3\\r\\n"),
        "{}",
        show(&hello3)
    );
    assert!(d3.call(&["HELLO", "3"]).starts_with(b"%"));
    assert_eq!(r3.call(&["CLIENT", "GETNAME"]), b"$12\r\nresp3-client\r\n");
    let slot = 100u16;
    assert_eq!(cluster.master_of_slot(slot), cluster.nodes()[0].addr);
    let (h_via, h_direct) = (key_in_slot(slot, "h:via"), key_in_slot(slot, "h:direct"));
    for (raw, key) in [(&mut r3, &h_via), (&mut d3, &h_direct)] {
        assert_eq!(
            raw.call(&["HSET", key.as_str(), "f", "v", "g", "w"]),
            b":2\r\n"
        );
    }
    let got = r3.call(&["HGETALL", h_via.as_str()]);
    let want = d3.call(&["HGETALL", h_direct.as_str()]);
    assert!(
        got.starts_with(b"%2\r\n"),
        "HGETALL over RESP3: {}",
        show(&got)
    );
    assert_eq!(show(&got), show(&want));
    let missing = key_in_slot(slot, "nothing");
    d.same(&mut r3, &mut d3, &["GET", missing.as_str()]);
    d.same(&mut r3, &mut d3, &["ZADD", h_via.as_str(), "1", "a"]);
    d.same(&mut r3, &mut d3, &["ZSCORE", missing.as_str(), "a"]);
    // Other RESP3 types are forwarded byte for byte: double, set, nested arrays, null. Each
    // side works on keys of its own (both live on the same node).
    for template in [
        &["ZADD", "Z", "1.5", "a", "2", "b"][..],
        &["ZSCORE", "Z", "a"],
        &["ZRANGE", "Z", "0", "-1", "WITHSCORES"],
        &["ZPOPMIN", "Z"],
        &["SADD", "S", "m"],
        &["SMEMBERS", "S"],
        &["HRANDFIELD", "S"],
        &["EXISTS", "S", "Z"],
        &["DEL", "Z", "S"],
    ] {
        let side = |name: &str| -> Vec<String> {
            template
                .iter()
                .map(|a| match *a {
                    "Z" | "S" => key_in_slot(slot, &format!("{name}:{a}")),
                    other => other.to_string(),
                })
                .collect()
        };
        let (got, want) = (r3.call(&side("via")), d3.call(&side("direct")));
        d.check(
            got == want,
            format!(
                "RESP3 {template:?}: meridian {} vs redis-server {}",
                show(&got),
                show(&want)
            ),
        );
    }
    let s_via = key_in_slot(slot, "s:via");
    assert_eq!(r3.call(&["SET", s_via.as_str(), "v"]), b"+OK\r\n");
    let mget = r3.call(&["MGET", s_via.as_str(), "elsewhere:1", missing.as_str()]);
    assert_eq!(
        show(&mget),
        show(b"*3\r\n$1\r\nv\r\n_\r\n_\r\n"),
        "RESP3 nils in a merged MGET"
    );
    let info3 = r3.call(&["INFO", "proxy"]);
    assert!(
        info3.starts_with(b"="),
        "INFO over RESP3 is a verbatim string: {}",
        show(&info3)
    );
    assert!(info_text(&info3).contains("# Proxy"));
    // RESET: back to RESP2, name forgotten.
    assert_eq!(r3.call(&["RESET"]), b"+RESET\r\n");
    d.same(&mut r3, &mut direct, &["CLIENT", "GETNAME"]);
    let after = r3.call(&["HGETALL", h_via.as_str()]);
    assert!(
        after.starts_with(b"*4\r\n"),
        "HGETALL after RESET is RESP2: {}",
        show(&after)
    );
    assert_eq!(r3.call(&["GET", missing.as_str()]), b"$-1\r\n");

    // QUIT: +OK, then the connection closes and later pipelined commands are not run.
    let mut quitter = Raw::connect(&addr);
    let mut wire = encode(&["PING"]);
    wire.extend(encode(&["QUIT"]));
    wire.extend(encode(&["SET", "after-quit", "1"]));
    quitter.write(&wire);
    assert_eq!(quitter.read(), b"+PONG\r\n");
    assert_eq!(quitter.read(), b"+OK\r\n");
    let rest = quitter.expect_closed();
    assert!(rest.is_empty(), "after QUIT: {}", show(&rest));
    assert_eq!(via.call(&["GET", "after-quit"]), b"$-1\r\n");

    // COMMAND: the table has Redis 7.0's commands, and keys are found the way Redis finds them.
    let count = via.call(&["COMMAND", "COUNT"]);
    assert_eq!(show(&count), show(&direct.call(&["COMMAND", "COUNT"])));
    assert_eq!(count, b":240\r\n", "COMMAND COUNT of Redis 7.0");
    for req in [
        vec!["COMMAND", "GETKEYS", "GET", "k"],
        vec!["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"],
        vec![
            "COMMAND", "GETKEYS", "EVAL", "return 1", "2", "k1", "k2", "arg",
        ],
        vec![
            "COMMAND",
            "GETKEYS",
            "ZUNIONSTORE",
            "d",
            "2",
            "s1",
            "s2",
            "WEIGHTS",
            "1",
            "2",
        ],
        vec![
            "COMMAND", "GETKEYS", "XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0",
        ],
        vec!["COMMAND", "GETKEYS", "LMPOP", "2", "l1", "l2", "LEFT"],
        vec!["COMMAND", "GETKEYS", "SORT", "k", "STORE", "dst"],
        vec![
            "COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "5", "KEYS", "a", "b",
        ],
        vec!["COMMAND", "GETKEYS", "PING"],
        vec!["COMMAND", "GETKEYS", "PING", "x"],
        vec!["COMMAND", "GETKEYS", "GET", "a", "b"],
        vec!["COMMAND", "GETKEYS", "SET", "k"],
        vec!["COMMAND", "GETKEYS", "NOSUCHCOMMAND", "k"],
        vec!["COMMAND", "GETKEYS", "GET"],
        vec!["COMMAND", "INFO", "get", "mset"],
    ] {
        d.same(&mut via, &mut direct, &req);
    }
    let table = via.call(&["COMMAND"]);
    d.check(
        table.starts_with(b"*240\r\n"),
        format!(
            "COMMAND lists 240 commands: {}",
            show(&table[..table.len().min(40)])
        ),
    );
    d.assert_none();
}

#[test]
fn info_has_proxy_stats_servers_and_a_summed_keyspace() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let mut via = Raw::connect(&gw.addr());

    // Keys on every master, a known number of them with a TTL.
    let mut wire = Vec::new();
    for i in 0..300 {
        let key = format!("ks:{i}");
        wire.extend(encode(&["SET", key.as_str(), "v"]));
        if i % 4 == 0 {
            wire.extend(encode(&["EXPIRE", key.as_str(), "100000"]));
        }
    }
    via.write(&wire);
    for i in 0..300 {
        assert_eq!(via.read(), b"+OK\r\n");
        if i % 4 == 0 {
            assert_eq!(via.read(), b":1\r\n");
        }
    }

    let all = info_text(&via.call(&["INFO"]));
    for section in ["# Proxy", "# Stats", "# Servers", "# Keyspace"] {
        assert!(
            all.lines().any(|l| l.trim_end() == section),
            "INFO lacks {section}:\n{all}"
        );
    }

    let proxy = info(&mut via, "proxy");
    assert_eq!(info_u64(&proxy, "Clients"), 1, "{proxy:?}");
    assert!(
        proxy.contains_key("Version") && proxy.contains_key("Uptime"),
        "{proxy:?}"
    );

    let stats = info(&mut via, "stats");
    assert!(info_u64(&stats, "TotalRequests") >= 375, "{stats:?}");
    assert!(info_u64(&stats, "Accept") >= 1, "{stats:?}");
    assert_eq!(info_u64(&stats, "ProtocolErrors"), 0, "{stats:?}");

    let text = info_text(&via.call(&["INFO", "servers"]));
    let list = info_servers(&text);
    assert_eq!(list.len(), 6, "one entry per node:\n{text}");
    let masters = cluster.masters();
    for fields in &list {
        for name in [
            "Server",
            "Role",
            "Group",
            "DC",
            "CurrentIsFail",
            "Connections",
            "Connect",
            "Requests",
            "Responses",
            "SendBytes",
            "RecvBytes",
        ] {
            assert!(
                fields.contains_key(name),
                "a server has no {name}: {fields:?}"
            );
        }
        let server = &fields["Server"];
        assert_eq!(fields["CurrentIsFail"], "0", "{fields:?}");
        if masters.contains(server) {
            assert_eq!(fields["Role"], "master", "{fields:?}");
            assert_eq!(&fields["Group"], server, "a master heads its own group");
            assert_eq!(fields["Connections"], "1", "{fields:?}");
            let num = |n: &str| fields[n].parse::<u64>().unwrap();
            assert!(num("Requests") >= 75, "writes reached {server}: {fields:?}");
            assert_eq!(num("Requests"), num("Responses"), "{fields:?}");
            assert!(num("SendBytes") > 0 && num("RecvBytes") > 0, "{fields:?}");
        } else {
            assert_eq!(fields["Role"], "slave", "{fields:?}");
            let group = &fields["Group"];
            assert!(
                cluster.replicas_of(group).contains(server),
                "replica {server} is in group {group}"
            );
        }
    }

    // Keyspace: summed over the masters, equal to DBSIZE through meridian and on the nodes.
    assert_eq!(cluster.dbsize(), 300);
    assert_eq!(via.call(&["DBSIZE"]), b":300\r\n");
    let keyspace_reply = via.call(&["INFO", "keyspace"]);
    let keyspace = info_text(&keyspace_reply);
    let lines = info_section(&keyspace, "Keyspace").expect("# Keyspace");
    let db0 = lines
        .iter()
        .find_map(|l| l.strip_prefix("db0:"))
        .unwrap_or_else(|| panic!("no db0 line: {keyspace}"));
    let fields: HashMap<&str, &str> = db0.split(',').filter_map(|kv| kv.split_once('=')).collect();
    assert_eq!(fields.get("keys"), Some(&"300"), "{db0}");
    assert_eq!(fields.get("expires"), Some(&"75"), "{db0}");
    assert!(
        !keyspace.contains("# Proxy"),
        "INFO keyspace returns only that section: {keyspace}"
    );
    // A key on one master only shows up once.
    let one = key_in_slot(key_slot(b"ks:0"), "extra");
    assert_eq!(via.call(&["SET", one.as_str(), "v"]), b"+OK\r\n");
    let keyspace = info_text(&via.call(&["INFO", "keyspace"]));
    assert!(keyspace.contains("db0:keys=301,"), "{keyspace}");
}
