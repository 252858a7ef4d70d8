//! Routing through meridian against a real 3-master/3-replica cluster: replies identical to the
//! slot master's, deep and concurrent pipelines in order, multi-key split and merge, and two
//! workers sharing the port. (MOVED and ASK are in core_redirects.rs.)

mod common;
mod fakes;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{Raw, encode, show};
use common::{Cluster, Gateway, GatewayOptions, key_in_slot, key_slot, value_text, wait_until};
use fakes::probe::{info, info_u64};

/// A command template: `K`, `H`, `L`, `Z`, `C`, `N` stand for keys of one slot, filled in per
/// side so that meridian and the master run the same commands on different keys.
const SCRIPT: &[&[&str]] = &[
    &["SET", "K", "hello"],
    &["GET", "K"],
    &["GET", "N"],
    &["SET", "K", "world", "GET"],
    &["SET", "K", "x", "NX"],
    &["STRLEN", "K"],
    &["APPEND", "K", "!!"],
    &["GETRANGE", "K", "1", "3"],
    &["INCR", "C"],
    &["INCR", "C"],
    &["INCRBY", "C", "40"],
    &["INCRBYFLOAT", "C", "0.5"],
    &["INCR", "K"],
    &["HSET", "H", "f1", "v1", "f2", "v2"],
    &["HSET", "H", "f1", "v9"],
    &["HGETALL", "H"],
    &["HGET", "H", "f1"],
    &["HMGET", "H", "f2", "nope", "f1"],
    &["INCR", "H"],
    &["GET", "H"],
    &["LPUSH", "L", "a", "b", "c"],
    &["RPUSH", "L", "z"],
    &["LRANGE", "L", "0", "-1"],
    &["LRANGE", "L", "1", "2"],
    &["LPOP", "L"],
    &["ZADD", "Z", "1", "one", "2", "two", "3.5", "three"],
    &["ZADD", "Z", "INCR", "1", "one"],
    &["ZRANGE", "Z", "0", "-1", "WITHSCORES"],
    &["ZRANGE", "Z", "0", "-1"],
    &["ZSCORE", "Z", "three"],
    &["ZRANK", "Z", "two"],
    &["TYPE", "H"],
    &["TYPE", "N"],
    &["EXPIRE", "K", "100000"],
    &["EXPIRE", "Z", "100000"],
    &["EXPIRE", "N", "100"],
    &["TTL", "L"],
    &["TTL", "N"],
    &["PERSIST", "L"],
    &["EXISTS", "K", "N", "H", "K"],
    &["MGET", "K", "N", "C"],
    &["MSET", "K", "a", "N", "b"],
    &["MGET", "K", "N"],
    &["DEL", "N"],
    &["EXISTS", "N"],
    &["DEL", "H", "L", "N"],
    &["EXISTS", "H", "L"],
];

/// The script's keys for one side (`side` is `m` for meridian, `d` for direct) under `tag`
/// (a hash tag prefix such as `key_in_slot(slot, "")` gives).
fn fill(template: &[&str], tag: &str, side: &str) -> Vec<String> {
    let mut out = vec![template[0].to_string()];
    for arg in &template[1..] {
        out.push(match *arg {
            "K" | "H" | "L" | "Z" | "C" | "N" => format!("{tag}{side}:{arg}"),
            other => other.to_string(),
        });
    }
    out
}

/// Runs every request in one write and returns the replies in order.
fn pipeline(raw: &mut Raw, requests: &[Vec<String>]) -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    for req in requests {
        wire.extend(encode(req));
    }
    raw.write(&wire);
    requests.iter().map(|_| raw.read()).collect()
}

fn int_reply(reply: &[u8]) -> i64 {
    let text = String::from_utf8_lossy(reply);
    text.trim_start_matches(':')
        .trim_end()
        .parse()
        .unwrap_or_else(|_| panic!("not an integer reply: {}", show(reply)))
}

#[test]
fn replies_match_the_slot_master_byte_for_byte() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let mut via = Raw::connect(&gw.addr());
    let mut masters: HashMap<String, Raw> = HashMap::new();
    // 48 slots over the whole range, so every master and both range edges are hit.
    let mut slots: Vec<u16> = (0..46u16).map(|i| i * 356 + i % 7).collect();
    slots.extend([0, 16383, 5460, 5461, 10922, 10923]);
    let mut owners = HashSet::new();
    for &slot in &slots {
        let owner = cluster.master_of_slot(slot);
        owners.insert(owner.clone());
        let direct = masters
            .entry(owner.clone())
            .or_insert_with(|| Raw::connect(&owner));
        // key_in_slot searches for a tag: once per slot, not per key.
        let tag = key_in_slot(slot, "");
        let ours: Vec<Vec<String>> = SCRIPT.iter().map(|t| fill(t, &tag, "m")).collect();
        let theirs: Vec<Vec<String>> = SCRIPT.iter().map(|t| fill(t, &tag, "d")).collect();
        let got = pipeline(&mut via, &ours);
        let want = pipeline(direct, &theirs);
        for (i, template) in SCRIPT.iter().enumerate() {
            assert_eq!(
                show(&got[i]),
                show(&want[i]),
                "slot {slot}, {template:?} through meridian vs on {owner}"
            );
        }
        // TTL counts down: equal up to the second boundary it may straddle.
        let (ttl_m, ttl_d) = (
            int_reply(&via.call(&fill(&["TTL", "Z"], &tag, "m"))),
            int_reply(&direct.call(&fill(&["TTL", "Z"], &tag, "d"))),
        );
        assert!(
            (99_990..=100_000).contains(&ttl_m) && (ttl_m - ttl_d).abs() <= 1,
            "TTL through meridian {ttl_m}, direct {ttl_d}"
        );
        // The data landed on the slot's own master.
        let key = format!("{tag}m:K");
        assert_eq!(key_slot(key.as_bytes()), slot);
        let stored = cluster.query(&owner, &["GET", &key]);
        assert_eq!(value_text(&stored).as_deref(), Some("a"), "slot {slot}");
    }
    assert_eq!(owners.len(), 3, "the slots cover every master");

    // Inline commands are re-encoded and routed like multibulk ones.
    for slot in [7u16, 8000, 16000] {
        let owner = cluster.master_of_slot(slot);
        let key = key_in_slot(slot, "inline");
        let direct = masters.get_mut(&owner).unwrap();
        for line in [
            format!("SET {key} v1\r\n"),
            format!("GET {key}\r\n"),
            format!("STRLEN {key}\r\n"),
        ] {
            via.write(line.as_bytes());
            direct.write(line.as_bytes());
            assert_eq!(show(&via.read()), show(&direct.read()), "inline {line:?}");
        }
    }

    // Hash tags follow Redis' rules exactly: a wrong slot would show up as a redirect.
    let odd_keys = [
        "{user1}.a",
        "{user1}.b",
        "{}x",
        "x{}y",
        "{a}{b}",
        "x{}{z}",
        "{{a}}",
        "a{",
        "}{a}",
        "{a",
        "a}",
        "{}",
        "",
        "tagless",
        "ünïcode{é}",
        "\u{0}nul",
    ];
    for (i, key) in odd_keys.iter().enumerate() {
        let value = format!("odd{i}");
        assert_eq!(
            via.call(&["SET", key, value.as_str()]),
            b"+OK\r\n",
            "SET {key:?}"
        );
        let owner = cluster.master_of_slot(key_slot(key.as_bytes()));
        let stored = cluster.query(&owner, &["GET", key]);
        assert_eq!(
            value_text(&stored),
            Some(value),
            "{key:?} on its slot's master {owner}"
        );
    }
    let redirects = info_u64(&info(&mut via, "stats"), "Redirects");
    assert_eq!(
        redirects, 0,
        "meridian computed a wrong slot somewhere and was redirected"
    );

    // A gateway whose first seed is dead and whose other seed is a replica finds the map.
    let seeds = vec!["127.0.0.1:1".to_string(), cluster.nodes()[4].addr.clone()];
    let second = Gateway::start_with_seeds(&seeds, GatewayOptions::default());
    let mut via2 = Raw::connect(&second.addr());
    for slot in [0u16, 5461, 16383] {
        let key = format!("{}m:K", key_in_slot(slot, ""));
        assert_eq!(
            via2.call(&["GET", key.as_str()]),
            b"$1\r\na\r\n",
            "slot {slot}"
        );
    }
    let text = fakes::probe::info_text(&via2.call(&["INFO", "servers"]));
    assert_eq!(
        text.matches("Server:").count(),
        6,
        "all nodes known from one seed:\n{text}"
    );
    drop(second);

    // The sync redis crate, as a plain (non-cluster) client, sees one big Redis.
    let mut client = gw.client();
    for i in 0..200 {
        let key = format!("crate:{i}");
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(i)
            .query(&mut client)
            .unwrap();
        let got: i64 = redis::cmd("INCR").arg(&key).query(&mut client).unwrap();
        assert_eq!(got, i + 1);
        let owner = cluster.master_of_slot(key_slot(key.as_bytes()));
        assert_eq!(
            value_text(&cluster.query(&owner, &["GET", &key])),
            Some((i + 1).to_string())
        );
    }
}

/// What a 1000-command mixed pipeline should answer, from a model of the data.
struct Model {
    values: HashMap<String, String>,
    counters: HashMap<String, i64>,
}

impl Model {
    fn new() -> Model {
        Model {
            values: HashMap::new(),
            counters: HashMap::new(),
        }
    }

    /// Request `i` of client `prefix` and the exact reply it must get.
    fn step(&mut self, prefix: &str, i: usize) -> (Vec<u8>, Vec<u8>) {
        let key = format!("{prefix}:k{}", i % 211);
        let counter = format!("{prefix}:c{}", i % 37);
        match i % 4 {
            0 => {
                let value = format!("v{i}");
                let req = encode(&["SET", key.as_str(), value.as_str()]);
                self.values.insert(key, value);
                (req, b"+OK\r\n".to_vec())
            }
            1 | 3 => {
                let req = encode(&["GET", key.as_str()]);
                let want = match self.values.get(&key) {
                    Some(v) => format!("${}\r\n{v}\r\n", v.len()).into_bytes(),
                    None => b"$-1\r\n".to_vec(),
                };
                (req, want)
            }
            _ => {
                let n = self.counters.entry(counter.clone()).or_default();
                *n += 1;
                (
                    encode(&["INCR", counter.as_str()]),
                    format!(":{n}\r\n").into_bytes(),
                )
            }
        }
    }
}

/// Sends `count` model steps in one write (from a writer thread, so a deep pipeline cannot
/// deadlock on full socket buffers) and checks every reply in order.
fn run_pipeline(addr: &str, prefix: &str, model: &mut Model, start: usize, count: usize) {
    let mut raw = Raw::connect(addr);
    let mut wire = Vec::new();
    let mut wants = Vec::with_capacity(count);
    for i in start..start + count {
        let (req, want) = model.step(prefix, i);
        wire.extend(req);
        wants.push(want);
    }
    let mut writer = Raw::from_stream(raw.stream.try_clone().unwrap());
    let sender = thread::spawn(move || writer.write(&wire));
    for (n, want) in wants.iter().enumerate() {
        let got = raw
            .try_read()
            .unwrap_or_else(|e| panic!("{prefix}: reply {n} of {count}: {e}"));
        assert_eq!(show(&got), show(want), "{prefix}: reply {n} of {count}");
    }
    sender.join().unwrap();
    assert_eq!(raw.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn pipelines_of_mixed_slots_keep_their_order() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();

    let mut model = Model::new();
    let slots: HashSet<String> = (0..211)
        .map(|i| cluster.master_of_slot(key_slot(format!("p:k{i}").as_bytes())))
        .collect();
    assert_eq!(slots.len(), 3, "the pipeline's keys live on every master");
    run_pipeline(&addr, "p", &mut model, 0, 1000);
    // Deeper than limits.max_pipeline (4096): the gateway pauses reading, never reorders.
    run_pipeline(&addr, "p", &mut model, 1000, 10_000);
    // The final state is what the model says, read directly from the masters.
    for (key, value) in model.values.iter().take(50) {
        let owner = cluster.master_of_slot(key_slot(key.as_bytes()));
        assert_eq!(
            value_text(&cluster.query(&owner, &["GET", key])).as_ref(),
            Some(value)
        );
    }

    // Five clients pipelining at once, each checking every reply.
    let workers: Vec<_> = (0..5)
        .map(|t| {
            let addr = addr.clone();
            thread::spawn(move || {
                let prefix = format!("c{t}");
                let mut model = Model::new();
                for round in 0..3 {
                    run_pipeline(&addr, &prefix, &mut model, round * 1000, 1000);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a concurrent pipelining client failed");
    }
}

#[test]
fn multi_key_commands_split_by_slot_and_merge_in_key_order() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let mut raw = Raw::connect(&gw.addr());
    let (a, a2, b, c) = (
        key_in_slot(100, "a"),
        key_in_slot(100, "a2"),
        key_in_slot(6000, "b"),
        key_in_slot(12000, "c"),
    );
    let missing = key_in_slot(7000, "missing");
    let owners: HashSet<String> = [100, 6000, 12000]
        .iter()
        .map(|&s| cluster.master_of_slot(s))
        .collect();
    assert_eq!(owners.len(), 3, "a, b and c live on three masters");
    let get_direct = |key: &str| {
        let owner = cluster.master_of_slot(key_slot(key.as_bytes()));
        value_text(&cluster.query(&owner, &["GET", key]))
    };

    let reply = raw.call(&["MSET", &a, "1", &b, "2", &c, "3", &a2, "4"]);
    assert_eq!(show(&reply), "+OK\\r\\n");
    for (key, value) in [(&a, "1"), (&b, "2"), (&c, "3"), (&a2, "4")] {
        assert_eq!(get_direct(key).as_deref(), Some(value), "{key}");
    }
    let reply = raw.call(&["MGET", &a, &missing, &b, &c, &a, &a2]);
    assert_eq!(
        show(&reply),
        show(b"*6\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n1\r\n$1\r\n4\r\n")
    );
    // The last value of a repeated key wins, as in one Redis.
    assert_eq!(raw.call(&["MSET", &a, "x", &b, "y", &a, "z"]), b"+OK\r\n");
    assert_eq!(get_direct(&a).as_deref(), Some("z"));
    assert_eq!(raw.call(&["EXISTS", &a, &b, &missing, &a]), b":3\r\n");
    assert_eq!(raw.call(&["TOUCH", &a, &b, &c, &missing]), b":3\r\n");
    assert_eq!(raw.call(&["DEL", &a, &b, &missing]), b":2\r\n");
    assert_eq!(raw.call(&["UNLINK", &c, &a2, &a]), b":2\r\n");
    assert_eq!(raw.call(&["EXISTS", &a, &b, &c, &a2]), b":0\r\n");

    // Many keys over many slots, every third one never written.
    let keys: Vec<String> = (0..300).map(|i| format!("mk:{i}")).collect();
    let mut mset: Vec<&str> = vec!["MSET"];
    for (i, key) in keys.iter().enumerate() {
        if i % 3 != 0 {
            mset.extend([key.as_str(), key.as_str()]);
        }
    }
    assert_eq!(raw.call(&mset), b"+OK\r\n");
    let mut mget = vec!["MGET"];
    mget.extend(keys.iter().map(String::as_str));
    let mut want = format!("*{}\r\n", keys.len()).into_bytes();
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(get_direct(key).is_some(), i % 3 != 0, "{key} on its master");
        if i % 3 == 0 {
            want.extend(b"$-1\r\n");
        } else {
            want.extend(format!("${}\r\n{key}\r\n", key.len()).into_bytes());
        }
    }
    assert_eq!(show(&raw.call(&mget)), show(&want));
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(String::as_str));
    assert_eq!(raw.call(&exists), b":200\r\n");
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    assert_eq!(raw.call(&del), b":200\r\n");
    assert_eq!(raw.call(&exists), b":0\r\n");

    // MSETNX: refused across slots (nothing written), passed through within one.
    let reply = raw.call(&["MSETNX", &a, "1", &b, "2"]);
    assert!(reply.starts_with(b"-CROSSSLOT "), "{}", show(&reply));
    assert_eq!(raw.call(&["EXISTS", &a, &b]), b":0\r\n");
    let (t1, t2) = ("{user1}.a", "{user1}.b");
    assert_eq!(raw.call(&["MSETNX", t1, "1", t2, "2"]), b":1\r\n");
    assert_eq!(raw.call(&["MSETNX", t1, "3", "{user1}.c", "4"]), b":0\r\n");
    assert_eq!(
        raw.call(&["MGET", t1, t2, "{user1}.c"]),
        b"*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
    );

    // Commands whose keys must share a slot: the same CROSSSLOT as the cluster itself.
    assert_eq!(raw.call(&["SET", &a, "v"]), b"+OK\r\n");
    let owner_a = cluster.master_of_slot(100);
    let mut direct = Raw::connect(&owner_a);
    for req in [
        vec!["RENAME", a.as_str(), b.as_str()],
        vec!["SMOVE", a.as_str(), b.as_str(), "m"],
        vec!["SUNIONSTORE", a.as_str(), b.as_str(), c.as_str()],
        vec!["LMOVE", a.as_str(), b.as_str(), "LEFT", "RIGHT"],
    ] {
        let want = direct.call(&req);
        let got = raw.call(&req);
        assert_eq!(show(&got), show(&want), "{req:?}");
        assert!(got.starts_with(b"-CROSSSLOT "), "{req:?}: {}", show(&got));
    }
    assert_eq!(raw.call(&["RENAME", &a, &a2]), b"+OK\r\n");
    assert_eq!(get_direct(&a2).as_deref(), Some("v"));
}

#[test]
fn two_workers_share_the_port_and_serve_many_clients() {
    const CLIENTS: usize = 50;
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start_with(&cluster, GatewayOptions::with_workers(2));
    let addr = gw.addr();
    let mut admin = Raw::connect(&addr);
    let proxy = info(&mut admin, "proxy");
    assert_eq!(
        proxy.get("WorkerThreads").map(String::as_str),
        Some("2"),
        "{proxy:?}"
    );

    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicU64::new(0));
    let release = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (addr, failures, done, release) = (
                addr.clone(),
                failures.clone(),
                done.clone(),
                release.clone(),
            );
            thread::spawn(move || {
                let mut raw = Raw::connect(&addr);
                for i in 0..100 {
                    let (k1, k2) = (format!("w{t}:a{i}"), format!("w{t}:b{i}"));
                    let checks: [(Vec<&str>, Vec<u8>); 3] = [
                        (vec!["SET", k1.as_str(), k1.as_str()], b"+OK\r\n".to_vec()),
                        (
                            vec!["MSET", k2.as_str(), "2", "w:shared", "x"],
                            b"+OK\r\n".to_vec(),
                        ),
                        (
                            vec!["MGET", k1.as_str(), k2.as_str()],
                            format!("*2\r\n${}\r\n{k1}\r\n$1\r\n2\r\n", k1.len()).into_bytes(),
                        ),
                    ];
                    for (req, want) in checks {
                        let got = raw.call(&req);
                        if got != want {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{req:?} → {}", show(&got)));
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
                // Keep the connection until the test read the workers' shares, so they overlap.
                let deadline = Instant::now() + Duration::from_secs(60);
                while release.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    thread::sleep(Duration::from_millis(10));
                }
            })
        })
        .collect();
    wait_until(
        "every client to finish its requests",
        Duration::from_secs(60),
        || match done.load(Ordering::SeqCst) {
            n if n == CLIENTS as u64 => Ok(()),
            n => Err(format!("{n} of {CLIENTS} done")),
        },
    );
    // SO_REUSEPORT alone hashes connections unevenly; meridian hands clients over so each
    // worker serves half of them (the admin connection is the odd one), and so half the load.
    let workers = info(&mut admin, "workers");
    release.store(1, Ordering::SeqCst);
    let field = |line: &str, name: &str| -> u64 {
        line.split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {line:?}"))
    };
    let lines: Vec<&String> = ["worker0", "worker1"]
        .iter()
        .map(|w| {
            workers
                .get(*w)
                .unwrap_or_else(|| panic!("{w} in {workers:?}"))
        })
        .collect();
    let clients_per: Vec<u64> = lines.iter().map(|l| field(l, "clients")).collect();
    let requests_per: Vec<u64> = lines.iter().map(|l| field(l, "requests")).collect();
    assert_eq!(
        clients_per.iter().sum::<u64>(),
        CLIENTS as u64 + 1,
        "{workers:?}"
    );
    assert!(
        clients_per[0].abs_diff(clients_per[1]) <= 1,
        "clients per worker {clients_per:?}"
    );
    let total: u64 = requests_per.iter().sum();
    for (id, n) in requests_per.iter().enumerate() {
        assert!(
            (total * 40..=total * 60).contains(&(n * 100)),
            "worker{id} served {n} of {total} requests: {workers:?}"
        );
    }
    for c in clients {
        c.join().expect("client thread");
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    // Both workers served clients: each opened its own connection to every master.
    let reply = admin.call(&["INFO", "servers"]);
    let text = fakes::probe::info_text(&reply);
    let mut connections: HashMap<String, u64> = HashMap::new();
    for server in fakes::probe::info_servers(&text) {
        if let Some(n) = server.get("Connections") {
            connections.insert(server["Server"].clone(), n.parse().unwrap());
        }
    }
    for master in cluster.masters() {
        assert_eq!(
            connections.get(&master),
            Some(&2),
            "one connection per worker to {master}: {connections:?}"
        );
    }
    wait_until(
        "the clients to be gone",
        Duration::from_secs(10),
        || match info_u64(&info(&mut admin, "proxy"), "Clients") {
            1 => Ok(()),
            n => Err(format!("Clients:{n}")),
        },
    );
}
