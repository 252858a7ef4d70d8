//! Per-key command groups through meridian, byte for byte as the slot's master answers them
//! (RESP2 and RESP3): streams, geo, HyperLogLog, bitmaps, SORT, OBJECT/MEMORY, DUMP/RESTORE,
//! two-key commands (same slot, else CROSSSLOT), GETEX/GETDEL; refused commands; RESP3 types.

mod common;

use common::raw::{Raw, show};
use common::{Cluster, Gateway, err, key_in_slot, key_slot, run, text, value_text};
use redis::{ConnectionLike, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// A raw session to `addr` (no client library in between, for byte-exact comparisons); with
/// `resp3`, switched to RESP3 with `HELLO 3` first.
fn session(addr: &str, resp3: bool) -> Raw {
    let mut raw = Raw::connect(addr);
    if resp3 {
        let hello = raw.call(&["HELLO", "3"]);
        assert_eq!(
            hello.first(),
            Some(&b'%'),
            "HELLO 3 on {addr}: {}",
            show(&hello)
        );
    }
    raw
}

/// Runs `script` through meridian and then (after deleting `keys`) straight on the master, on
/// raw connections of protocol 2 or 3, and asserts that every reply is byte-identical.
/// A command whose name starts with `!` must fail (the `!` is not sent); others must not.
fn same_as_master(gw: &Gateway, master: &str, resp3: bool, keys: &[&str], script: &[Vec<&str>]) {
    let mut del = vec!["DEL"];
    del.extend_from_slice(keys);
    let mut m = session(master, resp3);
    let mut g = session(&gw.addr(), resp3);
    m.call(&del);
    let strip = |args: &Vec<&str>| -> (bool, Vec<String>) {
        let fails = args[0].starts_with('!');
        let mut owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        owned[0] = owned[0].trim_start_matches('!').to_string();
        (fails, owned)
    };
    let via_gw: Vec<Vec<u8>> = script
        .iter()
        .map(|a| {
            let (_, owned) = strip(a);
            g.call(&owned.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .collect();
    m.call(&del);
    for (args, got) in script.iter().zip(&via_gw) {
        let (fails, owned) = strip(args);
        let want = m.call(&owned.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            *got == want,
            "{owned:?} (resp{}): meridian {} vs the master itself {}",
            if resp3 { 3 } else { 2 },
            show(got),
            show(&want)
        );
        let failed = want.first() == Some(&b'-') || want.first() == Some(&b'!');
        assert_eq!(failed, fails, "{owned:?} on the master: {}", show(&want));
    }
}

/// Splits a space-separated script line into arguments.
fn line(s: &str) -> Vec<&str> {
    s.split(' ').collect()
}

#[test]
fn per_key_groups_answer_as_the_master_does_in_resp2_and_resp3() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let slot = 12000;
    let master = cluster.master_of_slot(slot);
    let tag = key_in_slot(slot, "");
    let k = |name: &str| format!("{tag}{name}");
    let names = [
        "s", "g", "g2", "h", "h2", "h3", "b", "b2", "b3", "l", "l2", "l3", "l4", "o", "o2", "o3",
        "set", "set2", "z", "hash",
    ];
    let keys: Vec<String> = names.iter().map(|n| k(n)).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    // `$x` in a script line is the key named x.
    let script_of = |lines: &[&str]| -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| {
                line(l)
                    .into_iter()
                    .map(|a| match a.strip_prefix('$') {
                        Some(name) => k(name),
                        None => a.to_string(),
                    })
                    .collect()
            })
            .collect()
    };
    let streams = script_of(&[
        "XADD $s 1-1 f v",
        "XADD $s 2-1 f v2 a b",
        "XADD $s MAXLEN 10 3-0 x y",
        "!XADD $s 1-0 too old",
        "XLEN $s",
        "XRANGE $s - +",
        "XREVRANGE $s + - COUNT 2",
        "XGROUP CREATE $s grp 0",
        "!XGROUP CREATE $s grp 0",
        "XGROUP CREATECONSUMER $s grp c2",
        "XREADGROUP GROUP grp c1 COUNT 2 STREAMS $s >",
        "XREAD COUNT 5 STREAMS $s 0",
        "XPENDING $s grp",
        "XACK $s grp 1-1",
        "XPENDING $s grp",
        "XCLAIM $s grp c2 0 2-1",
        "XCLAIM $s grp c2 0 2-1 JUSTID",
        "XAUTOCLAIM $s grp c3 0 0-0 COUNT 10",
        "XINFO STREAM $s",
        "XINFO GROUPS $s",
        "XDEL $s 3-0",
        "XTRIM $s MAXLEN 1",
        "XSETID $s 5-0",
        "XLEN $s",
        "XGROUP DESTROY $s grp",
    ]);
    let geo = script_of(&[
        "GEOADD $g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
        "GEODIST $g Palermo Catania km",
        "GEOPOS $g Palermo Nowhere",
        "GEOHASH $g Palermo Catania",
        "GEOSEARCH $g FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHCOORD WITHDIST",
        "GEOSEARCH $g FROMMEMBER Palermo BYBOX 400 400 km ASC COUNT 1 WITHHASH",
        "GEOSEARCHSTORE $g2 $g FROMLONLAT 15 37 BYRADIUS 200 km STOREDIST",
        "ZRANGE $g2 0 -1 WITHSCORES",
        "GEORADIUS_RO $g 15 37 200 km ASC",
    ]);
    let hll = script_of(&[
        "PFADD $h a b c",
        "PFADD $h a",
        "PFADD $h2 c d",
        "PFCOUNT $h",
        "PFCOUNT $h $h2",
        "PFMERGE $h3 $h $h2",
        "PFCOUNT $h3",
        "GET $h3",
    ]);
    let bitmaps = script_of(&[
        "SETBIT $b 7 1",
        "SETBIT $b 100 1",
        "GETBIT $b 7",
        "BITCOUNT $b",
        "BITCOUNT $b 0 0",
        "BITCOUNT $b 0 7 BIT",
        "BITPOS $b 1",
        "BITFIELD $b SET u8 16 255 GET u4 16 INCRBY u8 16 10 OVERFLOW SAT INCRBY u8 16 250",
        "BITFIELD_RO $b GET u8 16 GET i4 0",
        "SET $b2 abc",
        "BITOP AND $b3 $b $b2",
        "GET $b3",
        "!SETBIT $b -1 1",
    ]);
    let sort_object = script_of(&[
        "RPUSH $l 3 1 2",
        "SORT $l",
        "SORT $l DESC LIMIT 0 2",
        "SORT_RO $l DESC",
        "RPUSH $l2 b a c",
        "SORT $l2 ALPHA",
        "!SORT $l2",
        "SORT $l STORE $l3",
        "LRANGE $l3 0 -1",
        "SET $o 12345",
        "SET $o2 hello",
        "OBJECT ENCODING $o",
        "OBJECT ENCODING $o2",
        "OBJECT ENCODING $l",
        "OBJECT REFCOUNT $o2",
        "MEMORY USAGE $o2",
        "MEMORY USAGE $l SAMPLES 0",
        "HSET $hash a 1 b 2",
        "HGETALL $hash",
        "HRANDFIELD $hash 5 WITHVALUES",
        "SADD $set x",
        "SMEMBERS $set",
        "ZADD $z 1.5 m 2 n",
        "ZSCORE $z m",
        "ZRANGE $z 0 -1 WITHSCORES",
        "ZINCRBY $z 0.25 m",
    ]);
    let two_keys = script_of(&[
        "SET $o2 hello",
        "COPY $o2 $o3",
        "COPY $o2 $o3",
        "COPY $o2 $o3 REPLACE",
        "RENAME $o3 $o",
        "RENAMENX $o $o2",
        "RENAMENX $o $o3",
        "!RENAME $nosuch $o",
        "SADD $set a b",
        "SMOVE $set $set2 a",
        "SMOVE $set $set2 zzz",
        "RPUSH $l4 1 2 3",
        "LMOVE $l4 $l3 LEFT RIGHT",
        "RPOPLPUSH $l4 $l3",
        "LRANGE $l3 0 -1",
        "GETEX $o2 PERSIST",
        "GETEX $o2 EX 1000",
        "GETEX $o2",
        "GETDEL $o2",
        "GETDEL $o2",
        "EXISTS $o2",
    ]);
    let groups = [
        ("streams", streams),
        ("geo", geo),
        ("hyperloglog", hll),
        ("bitmaps", bitmaps),
        ("sort/object/memory", sort_object),
        ("two-key", two_keys),
    ];
    for resp3 in [false, true] {
        for (group, script) in &groups {
            eprintln!("group {group}, resp{}", if resp3 { 3 } else { 2 });
            let script: Vec<Vec<&str>> = script
                .iter()
                .map(|l| l.iter().map(String::as_str).collect())
                .collect();
            same_as_master(&gw, &master, resp3, &key_refs, &script);
        }
    }
}

#[test]
fn dump_restore_and_crossslot_errors_as_a_cluster_node_gives_them() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    // Two slots of the same master: that master answers CROSSSLOT itself, to compare with.
    let (s1, s2) = (100u16, 101u16);
    let master = cluster.master_of_slot(s1);
    assert_eq!(cluster.master_of_slot(s2), master);
    let (a, b) = (key_in_slot(s1, "a"), key_in_slot(s2, "b"));

    // DUMP through meridian = DUMP on the node; RESTORE through meridian brings it back.
    assert_eq!(run(&mut c, &["RPUSH", &a, "x", "y", "z"]), Value::Int(3));
    let dumped = run(&mut c, &["DUMP", &a]);
    assert_eq!(dumped, cluster.query(&master, &["DUMP", &a]));
    let Value::BulkString(payload) = dumped else {
        panic!("DUMP replied {dumped:?}")
    };
    let a2 = key_in_slot(s1, "a2");
    let restore = |extra: &[&str]| {
        let mut r = redis::cmd("RESTORE");
        r.arg(&a2).arg(0).arg(&payload[..]);
        for e in extra {
            r.arg(*e);
        }
        c_req(&gw, &r)
    };
    assert_eq!(restore(&[]), Value::Okay);
    assert_eq!(
        err(&restore(&[])),
        "BUSYKEY Target key name already exists."
    );
    assert_eq!(restore(&["REPLACE"]), Value::Okay);
    let got = run(&mut c, &["LRANGE", &a2, "0", "-1"]);
    assert_eq!(
        got,
        Value::Array(
            ["x", "y", "z"]
                .iter()
                .map(|s| Value::BulkString(s.as_bytes().to_vec()))
                .collect()
        )
    );
    let bad = run(&mut c, &["RESTORE", &a2, "0", "garbage", "REPLACE"]);
    assert_eq!(err(&bad), "ERR DUMP payload version or checksum are wrong");

    // Multi-key commands over two slots: byte-identical to the node's own answer.
    let cross: Vec<Vec<&str>> = vec![
        vec!["RENAME", &a, &b],
        vec!["RENAMENX", &a, &b],
        vec!["COPY", &a, &b],
        vec!["SMOVE", &a, &b, "m"],
        vec!["LMOVE", &a, &b, "LEFT", "RIGHT"],
        vec!["RPOPLPUSH", &a, &b],
        vec!["BLMOVE", &a, &b, "LEFT", "RIGHT", "1"],
        vec!["BLPOP", &a, &b, "1"],
        vec!["PFMERGE", &a, &b],
        vec!["PFCOUNT", &a, &b],
        vec!["BITOP", "OR", &a, &b],
        vec!["SORT", &a, "STORE", &b],
        vec![
            "GEOSEARCHSTORE",
            &b,
            &a,
            "FROMLONLAT",
            "0",
            "0",
            "BYRADIUS",
            "1",
            "km",
        ],
        vec!["SINTERSTORE", &a, &b],
        vec!["SUNION", &a, &b],
        vec!["ZUNIONSTORE", &a, "1", &b],
        vec!["LMPOP", "2", &a, &b, "LEFT"],
        vec!["LCS", &a, &b],
        vec!["XREAD", "STREAMS", &a, &b, "0", "0"],
        vec!["EVAL", "return 1", "2", &a, &b],
    ];
    let mut g = session(&gw.addr(), false);
    let mut m = session(&master, false);
    let want_bytes = format!("-{CROSSSLOT}\r\n").into_bytes();
    for args in &cross {
        let got = g.call(args);
        let want = m.call(args);
        assert!(
            got == want,
            "{args:?}: meridian {} vs the node {}",
            show(&got),
            show(&want)
        );
        assert!(got == want_bytes, "{args:?}: {}", show(&got));
    }
    // MSETNX across slots: a cluster node answers plain CROSSSLOT.
    let got = g.call(&["MSETNX", &a, "1", &b, "2"]);
    let want = m.call(&["MSETNX", &a, "1", &b, "2"]);
    assert!(
        got.starts_with(format!("-{CROSSSLOT}").as_bytes()),
        "{}",
        show(&got)
    );
    eprintln!(
        "MSETNX over two slots: meridian {} / node {}",
        show(&got),
        show(&want)
    );
}

/// One request on a fresh meridian client.
fn c_req(gw: &Gateway, r: &redis::Cmd) -> Value {
    gw.client()
        .req_command(r)
        .expect("request through meridian")
}

#[test]
fn gateway_hostile_commands_are_refused_clearly() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    // CONFIG is answered now (tests/compat_config.rs); the rest still acts on one node.
    let refused: [&[&str]; 15] = [
        &["CLUSTER", "NODES"],
        &["CLUSTER", "SLOTS"],
        &["CLUSTER", "FAILOVER"],
        &["MONITOR"],
        &["SYNC"],
        &["PSYNC", "?", "-1"],
        &["DEBUG", "SLEEP", "0"],
        &["MIGRATE", "127.0.0.1", "1", "k", "0", "1000"],
        &["REPLICAOF", "NO", "ONE"],
        &["SLAVEOF", "127.0.0.1", "1"],
        &["BGSAVE"],
        &["ACL", "SETUSER", "x", "on"],
        &["SWAPDB", "0", "1"],
        &["MOVE", "k", "1"],
        &["SHUTDOWN", "NOSAVE"],
    ];
    for args in refused {
        let got = run(&mut c, args);
        let e = err(&got);
        assert!(
            e.starts_with("ERR") && e.contains("not supported through meridian"),
            "{args:?}: {e}"
        );
        assert_eq!(text(&run(&mut c, &["PING"])), "PONG", "after {args:?}");
    }
    let got = run(&mut c, &["CLIENT", "TRACKING", "ON"]);
    assert!(
        err(&got).contains("not supported through meridian"),
        "{got:?}"
    );
    assert_eq!(
        err(&run(&mut c, &["SELECT", "1"])),
        "ERR SELECT is not allowed in cluster mode"
    );
    // Nothing reached a node: every master is still a master and up, with its config intact.
    for m in cluster.masters() {
        assert_eq!(cluster.node(&m).role(), common::Role::Master, "{m}");
        let maxmemory = cluster.query(&m, &["CONFIG", "GET", "maxmemory"]);
        assert_eq!(
            maxmemory,
            Value::Array(vec![
                Value::BulkString(b"maxmemory".to_vec()),
                Value::BulkString(b"0".to_vec())
            ])
        );
    }
    assert_eq!(cluster.masters().len(), 3);
    assert_eq!(run(&mut c, &["SET", "still", "here"]), Value::Okay);
}

/// Issue 3 wants these three CLUSTER subcommands answered (they are harmless and clients
/// such as redis-py's call them).
#[test]
fn cluster_info_keyslot_countkeysinslot_are_answered() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    let slot = 4242;
    for i in 0..5 {
        assert_eq!(
            run(&mut c, &["SET", &key_in_slot(slot, &format!("n{i}")), "v"]),
            Value::Okay
        );
    }
    let got = run(&mut c, &["CLUSTER", "KEYSLOT", "somekey"]);
    eprintln!("CLUSTER KEYSLOT: {got:?}");
    assert_eq!(got, Value::Int(i64::from(key_slot(b"somekey"))));
    let got = run(&mut c, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
    eprintln!("CLUSTER COUNTKEYSINSLOT: {got:?}");
    assert_eq!(got, Value::Int(5));
    let got = run(&mut c, &["CLUSTER", "INFO"]);
    eprintln!("CLUSTER INFO: {got:?}");
    let info = value_text(&got).unwrap_or_default();
    assert!(info.contains("cluster_state:ok"), "CLUSTER INFO: {got:?}");
}

#[test]
fn resp3_clients_get_resp3_types_fanout_and_transactions() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let client =
        redis::Client::open(format!("redis://{}/?protocol=resp3", gw.addr())).expect("URL");
    let mut c = client
        .get_connection_with_timeout(Duration::from_secs(10))
        .expect("RESP3 client through meridian");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");

    assert_eq!(
        run(&mut c, &["HSET", "h", "a", "1", "b", "2"]),
        Value::Int(2)
    );
    match run(&mut c, &["HGETALL", "h"]) {
        Value::Map(pairs) => assert_eq!(pairs.len(), 2),
        other => panic!("HGETALL in RESP3 is not a map: {other:?}"),
    }
    assert_eq!(run(&mut c, &["SADD", "s", "x", "y"]), Value::Int(2));
    match run(&mut c, &["SMEMBERS", "s"]) {
        Value::Set(items) => assert_eq!(items.len(), 2),
        other => panic!("SMEMBERS in RESP3 is not a set: {other:?}"),
    }
    assert_eq!(run(&mut c, &["ZADD", "z", "1.5", "m"]), Value::Int(1));
    assert_eq!(run(&mut c, &["ZSCORE", "z", "m"]), Value::Double(1.5));
    assert_eq!(run(&mut c, &["GET", "nothing"]), Value::Nil);
    assert_eq!(
        run(&mut c, &["EXISTS", "h", "s", "z", "nothing"]),
        Value::Int(3)
    );

    // Fan-out.
    let mut pipe = redis::pipe();
    for i in 0..300 {
        pipe.cmd("SET").arg(format!("k:{i}")).arg(i).ignore();
    }
    pipe.exec(&mut c).expect("pipelined SETs");
    assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(303));
    let keys = match run(&mut c, &["KEYS", "k:*"]) {
        Value::Array(items) => items.iter().map(text).collect::<BTreeSet<_>>(),
        other => panic!("KEYS replied {other:?}"),
    };
    assert_eq!(
        keys,
        (0..300).map(|i| format!("k:{i}")).collect::<BTreeSet<_>>()
    );
    let mut seen = BTreeSet::new();
    let mut cursor = "0".to_string();
    for _ in 0..10_000 {
        let Value::Array(page) = run(&mut c, &["SCAN", &cursor, "MATCH", "k:*", "COUNT", "25"])
        else {
            panic!("SCAN reply is not an array")
        };
        cursor = text(&page[0]);
        let Value::Array(found) = &page[1] else {
            panic!("SCAN keys: {:?}", page[1])
        };
        seen.extend(found.iter().map(text));
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0", "SCAN did not finish");
    assert_eq!(seen, keys);
    let random = text(&run(&mut c, &["RANDOMKEY"]));
    assert!(
        keys.contains(&random) || ["h", "s", "z"].contains(&random.as_str()),
        "RANDOMKEY {random}"
    );

    // Transactions, blocking timeouts and scripts.
    let (t1, t2) = (key_in_slot(555, "t1"), key_in_slot(555, "t2"));
    assert_eq!(run(&mut c, &["MULTI"]), Value::Okay);
    assert_eq!(text(&run(&mut c, &["SET", &t1, "1"])), "QUEUED");
    assert_eq!(text(&run(&mut c, &["INCR", &t2])), "QUEUED");
    assert_eq!(
        text(&run(&mut c, &["HGETALL", &key_in_slot(555, "none")])),
        "QUEUED"
    );
    assert_eq!(
        run(&mut c, &["EXEC"]),
        Value::Array(vec![Value::Okay, Value::Int(1), Value::Map(vec![])])
    );
    let mut other = gw.client();
    assert_eq!(run(&mut c, &["WATCH", &t1]), Value::Okay);
    assert_eq!(run(&mut other, &["SET", &t1, "2"]), Value::Okay);
    assert_eq!(run(&mut c, &["MULTI"]), Value::Okay);
    assert_eq!(text(&run(&mut c, &["SET", &t1, "3"])), "QUEUED");
    assert_eq!(run(&mut c, &["EXEC"]), Value::Nil);
    assert_eq!(
        run(&mut c, &["BLPOP", &key_in_slot(555, "list"), "0.05"]),
        Value::Nil
    );
    assert_eq!(
        run(
            &mut c,
            &["EVAL", "redis.setresp(3); return {double=2.5}", "0"]
        ),
        Value::Double(2.5)
    );
    assert_eq!(run(&mut c, &["FLUSHALL"]), Value::Okay);
    assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(0));
    assert_eq!(run(&mut c, &["RANDOMKEY"]), Value::Nil);
    // The connection went back to RESP2 only when asked.
    assert_eq!(run(&mut c, &["HSET", "h", "a", "1"]), Value::Int(1));
    assert!(matches!(run(&mut c, &["HGETALL", "h"]), Value::Map(_)));
}
