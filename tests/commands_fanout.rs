//! Whole-keyspace commands through meridian against a real 3-master cluster: FLUSHALL/FLUSHDB,
//! DBSIZE, KEYS, RANDOMKEY, LASTSAVE, WAIT, SCAN (also across a failover), scripts and functions.

mod common;

use common::{
    Cluster, Gateway, err, int, key_in_slot, key_slot, run, strings, text, try_run, wait_until,
};
use redis::{Connection, ConnectionLike, Value};
use std::collections::{BTreeSet, HashSet};
use std::thread;
use std::time::{Duration, Instant};

const FAILOVER: Duration = Duration::from_secs(60);
/// Bound on SCAN calls in one full scan.
const MAX_SCAN_CALLS: usize = 20_000;

/// Writes `n` string keys `k:i` (and every third one a hash `h:i`) through `conn`, pipelined.
fn write_keys(conn: &mut Connection, n: usize) -> BTreeSet<String> {
    let mut written = BTreeSet::new();
    let mut pipe = redis::pipe();
    for i in 0..n {
        let key = if i % 3 == 0 {
            let k = format!("h:{i}");
            pipe.cmd("HSET").arg(&k).arg("f").arg(i).ignore();
            k
        } else {
            let k = format!("k:{i}");
            pipe.cmd("SET").arg(&k).arg(i).ignore();
            k
        };
        written.insert(key);
    }
    pipe.exec(conn).expect("pipelined writes through meridian");
    written
}

/// One SCAN page: (next cursor, keys).
fn scan_page(
    conn: &mut Connection,
    cursor: &str,
    extra: &[&str],
) -> Result<(String, Vec<String>), String> {
    let mut args = vec!["SCAN", cursor];
    args.extend_from_slice(extra);
    let reply = try_run(conn, &args).map_err(|e| e.to_string())?;
    match &reply {
        Value::Array(items) if items.len() == 2 => Ok((text(&items[0]), strings(&items[1]))),
        other => Err(format!("SCAN {cursor} replied {other:?}")),
    }
}

/// A full SCAN from cursor 0; every returned cursor must be a decimal u64.
fn full_scan(conn: &mut Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for _ in 0..MAX_SCAN_CALLS {
        let (next, keys) = scan_page(conn, &cursor, extra).unwrap_or_else(|e| panic!("{e}"));
        next.parse::<u64>()
            .unwrap_or_else(|_| panic!("cursor {next:?} is not a u64"));
        seen.extend(keys);
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
    panic!("SCAN {extra:?} did not finish in {MAX_SCAN_CALLS} calls");
}

#[test]
fn keyspace_fanout_flush_dbsize_keys_randomkey() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);

    // Empty cluster: the merged answers of an empty Redis.
    assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(0));
    assert_eq!(run(&mut c, &["KEYS", "*"]), Value::Array(vec![]));
    assert_eq!(run(&mut c, &["RANDOMKEY"]), Value::Nil);

    let written = write_keys(&mut c, 600);
    // Every master got some of them, so the sums below are real fan-outs.
    for m in &masters {
        assert!(int(&cluster.query(m, &["DBSIZE"])) > 0, "{m} holds no key");
    }
    assert_eq!(int(&run(&mut c, &["DBSIZE"])), 600);
    assert_eq!(cluster.dbsize(), 600);

    let keys: Vec<String> = strings(&run(&mut c, &["KEYS", "*"]));
    assert_eq!(keys.len(), 600, "KEYS * returned duplicates or missed keys");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), written);
    let some: BTreeSet<String> = strings(&run(&mut c, &["KEYS", "k:1?"]))
        .into_iter()
        .collect();
    let want: BTreeSet<String> = written
        .iter()
        .filter(|k| k.starts_with("k:1") && k.len() == 4)
        .cloned()
        .collect();
    assert_eq!(some, want);
    assert_eq!(run(&mut c, &["KEYS", "nomatch*"]), Value::Array(vec![]));

    // RANDOMKEY: always an existing key, and over bounded tries keys of several masters.
    let mut owners = HashSet::new();
    for _ in 0..300 {
        let key = text(&run(&mut c, &["RANDOMKEY"]));
        assert!(written.contains(&key), "RANDOMKEY gave unknown key {key:?}");
        owners.insert(cluster.master_of_slot(key_slot(key.as_bytes())));
        if owners.len() == masters.len() {
            break;
        }
    }
    assert!(
        owners.len() >= 2,
        "RANDOMKEY only ever answered from {owners:?}"
    );

    let lastsave = int(&run(&mut c, &["LASTSAVE"]));
    assert!(lastsave > 1_600_000_000, "LASTSAVE {lastsave}");
    match run(&mut c, &["TIME"]) {
        Value::Array(parts) => assert_eq!(parts.len(), 2),
        other => panic!("TIME replied {other:?}"),
    }

    // Every flush form empties every master.
    let flushes: [&[&str]; 6] = [
        &["FLUSHDB", "ASYNC"],
        &["FLUSHALL", "SYNC"],
        &["FLUSHALL"],
        &["FLUSHDB"],
        &["FLUSHALL", "ASYNC"],
        &["FLUSHDB", "SYNC"],
    ];
    for flush in flushes {
        write_keys(&mut c, 60);
        let before = cluster.dbsize();
        assert!(before >= 60);
        assert_eq!(int(&run(&mut c, &["DBSIZE"])), before);
        assert_eq!(run(&mut c, flush), Value::Okay, "{flush:?}");
        wait_until(
            &format!("{flush:?} to empty every master"),
            Duration::from_secs(10),
            || match cluster.dbsize() {
                0 => Ok(()),
                n => Err(format!("{n} keys left")),
            },
        );
        assert_eq!(run(&mut c, &["DBSIZE"]), Value::Int(0), "{flush:?}");
        assert_eq!(run(&mut c, &["RANDOMKEY"]), Value::Nil, "{flush:?}");
        assert_eq!(
            run(&mut c, &["KEYS", "*"]),
            Value::Array(vec![]),
            "{flush:?}"
        );
    }
    // A bad flag is refused as Redis refuses it, and nothing is flushed.
    write_keys(&mut c, 3);
    let bad = run(&mut c, &["FLUSHALL", "NOW"]);
    assert!(err(&bad).starts_with("ERR"), "{bad:?}");
    assert_eq!(int(&run(&mut c, &["DBSIZE"])), 3);

    // WAIT with no replicas: 0 replicas acknowledged, within the timeout.
    assert_eq!(run(&mut c, &["WAIT", "0", "100"]), Value::Int(0));
}

#[test]
fn scan_visits_every_key_with_match_count_type() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    let written = write_keys(&mut c, 1500);

    for count in [["COUNT", "7"], ["COUNT", "1000"]] {
        let count = &count[..];
        let seen = full_scan(&mut c, count);
        let set: BTreeSet<String> = seen.iter().cloned().collect();
        assert_eq!(set, written, "SCAN {count:?} missed or invented keys");
    }
    // No extra arguments at all.
    let set: BTreeSet<String> = full_scan(&mut c, &[]).into_iter().collect();
    assert_eq!(set, written);

    let written_with = |prefix: &str| -> BTreeSet<String> {
        let keys = written.iter().filter(|k| k.starts_with(prefix));
        keys.cloned().collect()
    };
    // MATCH: only matching keys, and all of them.
    let seen = full_scan(&mut c, &["MATCH", "k:1*", "COUNT", "50"]);
    assert_eq!(BTreeSet::from_iter(seen), written_with("k:1"));

    // TYPE: hashes only.
    let seen = full_scan(&mut c, &["TYPE", "hash", "COUNT", "40"]);
    assert_eq!(BTreeSet::from_iter(seen), written_with("h:"));
    let seen = full_scan(&mut c, &["MATCH", "h:2*", "TYPE", "string"]);
    assert!(seen.is_empty(), "TYPE string MATCH h:* gave {seen:?}");

    // Errors as Redis gives them.
    assert_eq!(
        err(&run(&mut c, &["SCAN", "notanumber"])),
        "ERR invalid cursor"
    );
    let e = err(&run(&mut c, &["SCAN"]));
    assert_eq!(e, "ERR wrong number of arguments for 'scan' command");
    let e = err(&run(&mut c, &["SCAN", "0", "COUNT", "0"]));
    assert!(e.starts_with("ERR"), "{e}");
}

/// Scripts, functions and the scan cursor keep working when a master fails over: the script
/// cache reached the replicas, functions replicate, and the scan finishes with every key.
#[test]
fn scan_and_evalsha_survive_a_failover() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    let written = write_keys(&mut c, 3000);
    let sha = text(&run(
        &mut c,
        &["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"],
    ));
    let lib = "#!lua name=mylib\nredis.register_function('f', function(keys, args) return 1 end)";
    assert_eq!(text(&run(&mut c, &["FUNCTION", "LOAD", lib])), "mylib");

    // Scan into the middle of the second shard (slots from 5461).
    let mut cursor = "0".to_string();
    let mut seen: HashSet<String> = HashSet::new();
    let mut mid_shard = false;
    for _ in 0..MAX_SCAN_CALLS {
        let (next, keys) = scan_page(&mut c, &cursor, &["COUNT", "20"]).unwrap();
        seen.extend(keys);
        assert_ne!(next, "0", "the scan ended before reaching the second shard");
        cursor = next;
        let n: u64 = cursor.parse().unwrap();
        if n % 16384 == 5461 && n / 16384 != 0 {
            mid_shard = true;
            break;
        }
    }
    assert!(
        mid_shard,
        "never got a cursor in the middle of the second shard"
    );

    let old = cluster.master_of_slot(5461);
    cluster.node(&old).kill();
    let new = cluster.wait_for_master_of_slot_change(5461, &old, FAILOVER);
    eprintln!("failover {old} -> {new}, resuming scan at cursor {cursor}");

    // Finish the scan; while meridian learns the new map a call may fail: retry it (bounded).
    let deadline = Instant::now() + FAILOVER;
    let mut errors = Vec::new();
    let mut finished = false;
    for _ in 0..MAX_SCAN_CALLS {
        assert!(
            Instant::now() < deadline,
            "scan did not finish; errors {errors:?}"
        );
        match scan_page(&mut c, &cursor, &["COUNT", "20"]) {
            Ok((next, keys)) => {
                seen.extend(keys);
                if next == "0" {
                    finished = true;
                    break;
                }
                cursor = next;
            }
            Err(e) => {
                errors.push(e);
                thread::sleep(Duration::from_millis(200));
                c = gw.client();
            }
        }
    }
    assert!(finished, "scan did not finish; errors {errors:?}");
    // EVALSHA and FCALL on the promoted master (bounded retries while the map refreshes).
    let key = key_in_slot(5461, "x");
    assert_eq!(cluster.master_of_slot(5461), new);
    wait_until(
        "SET through meridian after the failover",
        FAILOVER,
        || match run(&mut c, &["SET", &key, "after"]) {
            Value::Okay => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    let got = run(&mut c, &["EVALSHA", &sha, "1", &key]);
    assert_eq!(
        got,
        Value::BulkString(b"after".to_vec()),
        "EVALSHA after failover"
    );
    assert_eq!(run(&mut c, &["FCALL", "f", "1", &key]), Value::Int(1));

    let missing: Vec<&String> = written.iter().filter(|k| !seen.contains(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} keys never returned by a scan resumed across a failover (retried errors: {errors:?}); e.g. {:?}",
        missing.len(),
        written.len(),
        &missing[..missing.len().min(5)]
    );
}

#[test]
fn scripts_route_by_keys_and_script_cache_reaches_every_node() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    let (a1, a2) = (key_in_slot(100, "a1"), key_in_slot(100, "a2"));
    let b1 = key_in_slot(9000, "b1");

    // EVAL with keys of one slot.
    let set2 = "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[2]); return redis.call('MGET', KEYS[1], KEYS[2])";
    let got = run(&mut c, &["EVAL", set2, "2", &a1, &a2, "x", "y"]);
    assert_eq!(strings(&got), ["x", "y"]);
    assert_eq!(
        text(&cluster.query(&cluster.master_of_slot(100), &["GET", &a2])),
        "y"
    );
    // Keys in two slots: refused before anything runs.
    let got = run(&mut c, &["EVAL", set2, "2", &a1, &b1, "p", "q"]);
    assert_eq!(
        err(&got),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(
        text(&run(&mut c, &["GET", &a1])),
        "x",
        "a refused script must not run"
    );
    // Keyless scripts.
    assert_eq!(run(&mut c, &["EVAL", "return 42", "0"]), Value::Int(42));
    let got = run(
        &mut c,
        &["EVAL", "return ARGV[1]..ARGV[2]", "0", "ab", "cd"],
    );
    assert_eq!(text(&got), "abcd");
    // A keyless script goes to the master of its first argument's slot (README's rule), so a
    // script may use that argument as an (undeclared) key of that master.
    for slot in [5u16, 8000, 16000] {
        let key = key_in_slot(slot, "argv");
        let got = run(
            &mut c,
            &[
                "EVAL",
                "return redis.call('SET', ARGV[1], 'byargv')",
                "0",
                &key,
            ],
        );
        assert_eq!(got, Value::Okay, "keyless EVAL with ARGV[1] in slot {slot}");
        assert_eq!(text(&run(&mut c, &["GET", &key])), "byargv");
    }
    assert_eq!(
        run(
            &mut c,
            &["EVAL_RO", "return redis.call('GET', KEYS[1])", "1", &a1]
        ),
        Value::BulkString(b"x".to_vec())
    );
    let got = run(
        &mut c,
        &[
            "EVAL_RO",
            "return redis.call('SET', KEYS[1], 'z')",
            "1",
            &a1,
        ],
    );
    assert!(
        err(&got).contains("Write commands are not allowed"),
        "{got:?}"
    );
    // Script errors come back as the node gives them.
    let got = run(
        &mut c,
        &["EVAL", "return redis.call('INCR', KEYS[1])", "1", &a1],
    );
    assert!(err(&got).contains("not an integer"), "{got:?}");

    // SCRIPT LOAD reaches every node (replicas too); EVALSHA works on every master.
    let body = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    let sha = text(&run(&mut c, &["SCRIPT", "LOAD", body]));
    assert_eq!(sha.len(), 40);
    let read_sha = text(&run(
        &mut c,
        &["SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])"],
    ));
    for node in cluster.nodes() {
        let exists = node.query(&["SCRIPT", "EXISTS", &sha]);
        assert_eq!(
            exists,
            Value::Array(vec![Value::Int(1)]),
            "SCRIPT EXISTS on {}",
            node.addr
        );
    }
    for slot in [0u16, 6000, 16000] {
        let key = key_in_slot(slot, "ctr");
        assert_eq!(
            run(&mut c, &["EVALSHA", &sha, "1", &key, "5"]),
            Value::Int(5),
            "slot {slot}"
        );
        assert_eq!(
            text(&run(&mut c, &["EVALSHA_RO", &read_sha, "1", &key])),
            "5"
        );
    }
    let unknown = "ffffffffffffffffffffffffffffffffffffffff";
    let got = run(&mut c, &["SCRIPT", "EXISTS", &sha, unknown]);
    assert_eq!(got, Value::Array(vec![Value::Int(1), Value::Int(0)]));
    let got = run(&mut c, &["EVALSHA", unknown, "0"]);
    assert!(err(&got).starts_with("NOSCRIPT"), "{got:?}");

    // SCRIPT FLUSH empties every node's cache.
    assert_eq!(run(&mut c, &["SCRIPT", "FLUSH"]), Value::Okay);
    assert_eq!(
        run(&mut c, &["SCRIPT", "EXISTS", &sha]),
        Value::Array(vec![Value::Int(0)])
    );
    for node in cluster.nodes() {
        let exists = node.query(&["SCRIPT", "EXISTS", &sha]);
        assert_eq!(
            exists,
            Value::Array(vec![Value::Int(0)]),
            "after FLUSH on {}",
            node.addr
        );
    }
    let got = run(&mut c, &["EVALSHA", &sha, "1", &a1, "1"]);
    assert!(err(&got).starts_with("NOSCRIPT"), "{got:?}");
    assert_eq!(run(&mut c, &["SCRIPT", "FLUSH", "ASYNC"]), Value::Okay);
}

#[test]
fn functions_load_list_call_delete_flush_dump_restore() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    let masters = cluster.masters();
    let lib = "#!lua name=mylib\nredis.register_function('f', function(keys, args) return 1 end)\nredis.register_function{function_name='g', callback=function(keys, args) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";

    assert_eq!(run(&mut c, &["FUNCTION", "LIST"]), Value::Array(vec![]));
    assert_eq!(text(&run(&mut c, &["FUNCTION", "LOAD", lib])), "mylib");
    // One master answers; the order of functions in a library is each node's own dict order.
    let listed: Vec<Value> = masters
        .iter()
        .map(|m| cluster.query(m, &["FUNCTION", "LIST"]))
        .collect();
    let got = run(&mut c, &["FUNCTION", "LIST"]);
    assert!(
        listed.contains(&got),
        "FUNCTION LIST {got:?} is no master's {listed:?}"
    );
    let got = run(&mut c, &["FUNCTION", "LIST", "LIBRARYNAME", "nope"]);
    assert_eq!(got, Value::Array(vec![]));
    let got = run(&mut c, &["FUNCTION", "LOAD", lib]);
    assert_eq!(err(&got), "ERR Library 'mylib' already exists");
    assert_eq!(
        text(&run(&mut c, &["FUNCTION", "LOAD", "REPLACE", lib])),
        "mylib"
    );

    for slot in [1u16, 7000, 15000] {
        let key = key_in_slot(slot, "fk");
        assert_eq!(run(&mut c, &["SET", &key, "v"]), Value::Okay);
        assert_eq!(
            run(&mut c, &["FCALL", "f", "1", &key]),
            Value::Int(1),
            "slot {slot}"
        );
        assert_eq!(
            text(&run(&mut c, &["FCALL_RO", "g", "1", &key])),
            "v",
            "slot {slot}"
        );
    }
    let got = run(&mut c, &["FCALL_RO", "f", "1", "somekey"]);
    assert!(
        err(&got).starts_with("ERR"),
        "FCALL_RO of a writing function: {got:?}"
    );
    let (k1, k2) = (key_in_slot(1, "a"), key_in_slot(2, "b"));
    let got = run(&mut c, &["FCALL", "f", "2", &k1, &k2]);
    assert_eq!(
        err(&got),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(
        run(&mut c, &["FCALL", "f", "0"]),
        Value::Int(1),
        "keyless FCALL"
    );

    // DUMP from meridian, FLUSH, RESTORE: back on every master.
    let dump = match run(&mut c, &["FUNCTION", "DUMP"]) {
        Value::BulkString(b) => b,
        other => panic!("FUNCTION DUMP replied {other:?}"),
    };
    assert_eq!(run(&mut c, &["FUNCTION", "DELETE", "mylib"]), Value::Okay);
    for m in &masters {
        assert_eq!(
            cluster.query(m, &["FUNCTION", "LIST"]),
            Value::Array(vec![]),
            "{m}"
        );
    }
    let got = run(&mut c, &["FCALL", "f", "0"]);
    assert_eq!(err(&got), "ERR Function not found");
    let got = run(&mut c, &["FUNCTION", "DELETE", "mylib"]);
    assert_eq!(err(&got), "ERR Library not found");
    let restore = c.req_command(redis::cmd("FUNCTION").arg("RESTORE").arg(&dump[..]));
    assert_eq!(restore.unwrap(), Value::Okay);
    for m in &masters {
        let listed = cluster.query(m, &["FUNCTION", "LIST"]);
        assert_ne!(listed, Value::Array(vec![]), "RESTORE did not reach {m}");
    }
    assert_eq!(run(&mut c, &["FCALL", "f", "1", &k2]), Value::Int(1));

    assert_eq!(run(&mut c, &["FUNCTION", "FLUSH"]), Value::Okay);
    for m in &masters {
        assert_eq!(
            cluster.query(m, &["FUNCTION", "LIST"]),
            Value::Array(vec![]),
            "{m}"
        );
    }
    assert_eq!(run(&mut c, &["FUNCTION", "LIST"]), Value::Array(vec![]));
    assert_eq!(run(&mut c, &["FUNCTION", "FLUSH", "SYNC"]), Value::Okay);
}
