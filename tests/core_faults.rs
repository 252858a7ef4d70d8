//! Faults against a real cluster: bad requests, clients that vanish mid-pipeline, and a master
//! killed under load. Each is answered or closed cleanly, and other clients do not notice.
//! (Backend faults staged with fake nodes are in core_backend_faults.rs.)

mod common;
mod fakes;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{Raw, encode, show};
use common::{Cluster, ClusterBuilder, Gateway, key_in_slot, key_slot, wait_until};
use fakes::probe::{Bystander, info, info_u64};

/// Bound on a failover being visible in every node's CLUSTER SLOTS.
const FAILOVER: Duration = Duration::from_secs(60);

/// Sends `bytes` on a fresh connection, returns the one reply and asserts the peer then closes
/// the connection without sending anything else.
fn reply_then_close(addr: &str, bytes: &[u8]) -> Vec<u8> {
    let mut raw = Raw::connect(addr);
    raw.write(bytes);
    let reply = raw.read();
    let rest = raw.expect_closed();
    assert!(
        rest.is_empty(),
        "{addr}: after {} → {} it also sent {}",
        show(bytes),
        show(&reply),
        show(&rest)
    );
    reply
}

#[test]
fn bad_requests_are_answered_like_redis_and_close_only_their_client() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "limits: { max_bulk: 1kb, max_args: 16 }\n");
    let addr = gw.addr();
    let direct = cluster.nodes()[0].addr.clone();
    let mut admin = Raw::connect(&addr);
    assert_eq!(admin.call(&["SET", "bystander", "steady"]), b"+OK\r\n");
    let bystander = Bystander::start(&addr, "bystander", "steady");
    bystander.wait_rounds(3);
    let errors_before = info_u64(&info(&mut admin, "stats"), "ProtocolErrors");

    // Malformed RESP: the same error line as Redis itself, then the connection closes.
    let malformed: [&[u8]; 5] = [
        b"*abc\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n+x\r\n",
        b"*1\r\n$abc\r\n",
        b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n:1\r\n",
    ];
    for bad in malformed {
        let want = {
            let mut raw = Raw::connect(&direct);
            raw.write(bad);
            let mut all = Vec::new();
            while let Ok(reply) = raw.try_read() {
                all.extend(reply);
            }
            all
        };
        assert!(
            want.ends_with(b"\r\n") && show(&want).contains("-ERR Protocol error: "),
            "redis-server answered {} with {}",
            show(bad),
            show(&want)
        );
        let mut raw = Raw::connect(&addr);
        raw.write(bad);
        let mut got = raw.read();
        if bad.starts_with(b"*1\r\n$4\r\nPING") {
            got.extend(raw.read());
        }
        let rest = raw.expect_closed();
        assert_eq!(
            show(&got),
            show(&want),
            "meridian vs redis-server for {}",
            show(bad)
        );
        assert!(
            rest.is_empty(),
            "extra bytes after the error: {}",
            show(&rest)
        );
    }
    let errors_after = info_u64(&info(&mut admin, "stats"), "ProtocolErrors");
    assert_eq!(
        errors_after - errors_before,
        malformed.len() as u64,
        "INFO ProtocolErrors counts each malformed request"
    );

    // Oversized bulk (max_bulk 1kb): refused as soon as its length is seen, payload or not.
    let big = "x".repeat(2048);
    let reply = reply_then_close(&addr, &encode(&["SET", "big", big.as_str()]));
    assert!(
        reply.starts_with(b"-ERR Protocol error: "),
        "2 KB bulk with max_bulk 1kb: {}",
        show(&reply)
    );
    let reply = reply_then_close(&addr, b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$1000000\r\n");
    assert!(
        reply.starts_with(b"-ERR Protocol error: "),
        "announced 1 MB bulk: {}",
        show(&reply)
    );
    // More arguments than limits.max_args (16).
    let many: Vec<String> = std::iter::once("MGET".to_string())
        .chain((0..16).map(|i| format!("k{i}")))
        .collect();
    let reply = reply_then_close(&addr, &encode(&many));
    assert!(
        reply.starts_with(b"-ERR Protocol error: "),
        "17 arguments: {}",
        show(&reply)
    );
    let mut within = Raw::connect(&addr);
    assert!(
        within.call(&many[..16]).starts_with(b"*15\r\n"),
        "16 arguments pass"
    );
    let fits = "y".repeat(1000);
    assert_eq!(admin.call(&["SET", "big", fits.as_str()]), b"+OK\r\n");
    assert_eq!(
        admin.call(&["GET", "big"]),
        format!("$1000\r\n{fits}\r\n").into_bytes()
    );

    // Unknown commands, wrong arity, unknown subcommands: byte for byte what Redis 7 says, and
    // the connection stays usable.
    let mut gw_raw = Raw::connect(&addr);
    let mut redis_raw = Raw::connect(&direct);
    let requests: &[&[&str]] = &[
        &["FOOBAR", "a", "b"],
        &["foobar"],
        &["GET"],
        &["get", "a", "b"],
        &["SET", "k"],
        &["HSET", "k", "f"],
        &["EXPIRE", "k"],
        &["ZADD", "k", "1"],
        &["MGET"],
        &["DEL"],
        &["EXISTS"],
        &["MSET", "a"],
        &["OBJECT", "ENCODING"],
        &["OBJECT", "FOO"],
        &["XINFO"],
    ];
    for req in requests {
        let want = redis_raw.call(req);
        let got = gw_raw.call(req);
        assert_eq!(show(&got), show(&want), "{req:?}");
        assert!(got.starts_with(b"-ERR "), "{req:?}: {}", show(&got));
    }
    for inline in [&b"FOOBAR x y\r\n"[..], b"GET\r\n"] {
        redis_raw.write(inline);
        gw_raw.write(inline);
        assert_eq!(
            show(&gw_raw.read()),
            show(&redis_raw.read()),
            "inline {}",
            show(inline)
        );
    }
    assert_eq!(gw_raw.call(&["PING"]), b"+PONG\r\n");

    // A client that writes 10,000 commands and leaves at once, one that leaves mid-command.
    let clients_before = info_u64(&info(&mut admin, "proxy"), "Clients");
    let mut burst = Vec::new();
    for i in 0..10_000 {
        let key = format!("vanish:{}", i % 500);
        burst.extend(match i % 3 {
            0 => encode(&["SET", key.as_str(), "v"]),
            1 => encode(&["GET", key.as_str()]),
            _ => encode(&["INCR", format!("vanish:n:{}", i % 7).as_str()]),
        });
    }
    let mut gone = Raw::connect(&addr);
    gone.write(&burst);
    gone.close();
    let mut half = Raw::connect(&addr);
    half.write(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc");
    half.close();
    wait_until(
        "INFO Clients to drop back after the vanished clients",
        Duration::from_secs(20),
        || {
            let now = info_u64(&info(&mut admin, "proxy"), "Clients");
            if now == clients_before {
                Ok(())
            } else {
                Err(format!("Clients:{now}, before:{clients_before}"))
            }
        },
    );
    // The shared backend connections are still in step: fresh writes read back right.
    for i in 0..50 {
        let key = format!("after:{i}");
        assert_eq!(
            admin.call(&["SET", key.as_str(), &i.to_string()]),
            b"+OK\r\n"
        );
        assert_eq!(
            admin.call_text(&["GET", key.as_str()]),
            format!("${}\r\n{i}\r\n", i.to_string().len())
        );
    }
    assert_eq!(
        admin.call(&["GET", "half"]),
        b"$-1\r\n",
        "a half-sent SET never runs"
    );

    bystander.wait_rounds(3);
    let (rounds, errors) = bystander.finish();
    assert!(rounds > 0, "the bystander never completed a round");
    assert!(errors.is_empty(), "the bystander saw errors: {errors:#?}");
    assert!(
        gw.stderr().lines().all(|l| !l.contains("panicked")),
        "meridian panicked:\n{}",
        gw.stderr()
    );
}

/// Per slot group: (successful operations, failed operations, first failures).
type Tally = HashMap<usize, (u64, u64, Vec<String>)>;

#[test]
fn master_killed_mid_run_fails_over_and_other_slots_keep_working() {
    // With full coverage required (the default) Redis itself answers CLUSTERDOWN for every
    // slot while one master is down; the gateway's isolation shows only without it.
    let mut plan = ClusterBuilder::new().redis_args(&["--cluster-require-full-coverage", "no"]);
    for _ in 0..3 {
        plan = plan.master("127.0.0.1");
    }
    for m in 0..3 {
        plan = plan.replica("127.0.0.1", m);
    }
    let cluster = plan.start();
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();
    // Three keys in different slots of each master's range.
    let groups: Vec<Vec<String>> = (0..3u16)
        .map(|g| {
            [10u16, 900, 4000]
                .iter()
                .map(|off| key_in_slot(g * 5461 + off, &format!("load{g}")))
                .collect()
        })
        .collect();
    for (g, keys) in groups.iter().enumerate() {
        for key in keys {
            let slot = key_slot(key.as_bytes());
            assert_eq!(cluster.master_of_slot(slot), cluster.nodes()[g].addr);
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let tally: Arc<Mutex<Tally>> = Arc::new(Mutex::new(HashMap::new()));
    let loader = {
        let (stop, tally, groups, addr) =
            (stop.clone(), tally.clone(), groups.clone(), addr.clone());
        thread::spawn(move || {
            let mut raw = Raw::connect(&addr);
            let deadline = Instant::now() + Duration::from_secs(180);
            for i in 0..2_000_000u64 {
                if stop.load(Ordering::SeqCst) || Instant::now() >= deadline {
                    break;
                }
                for (g, keys) in groups.iter().enumerate() {
                    let key = &keys[(i % 3) as usize];
                    let value = format!("v{i}");
                    let set = raw.try_request(&encode(&["SET", key.as_str(), value.as_str()]));
                    let get = raw.try_request(&encode(&["GET", key.as_str()]));
                    let want_get = format!("${}\r\n{value}\r\n", value.len()).into_bytes();
                    let outcome = match (set, get) {
                        (Ok(s), Ok(r)) if s == b"+OK\r\n" && r == want_get => Ok(()),
                        (Ok(s), Ok(r)) => Err(format!("SET → {}, GET → {}", show(&s), show(&r))),
                        (Err(e), _) | (_, Err(e)) => {
                            // The connection is out of step after an I/O error: start over.
                            match Raw::try_connect(&addr) {
                                Ok(fresh) => raw = fresh,
                                Err(_) => thread::sleep(Duration::from_millis(100)),
                            }
                            Err(format!("I/O: {e}"))
                        }
                    };
                    let mut t = tally.lock().unwrap();
                    let entry = t.entry(g).or_default();
                    match outcome {
                        Ok(()) => entry.0 += 1,
                        Err(e) => {
                            entry.1 += 1;
                            if entry.2.len() < 5 {
                                entry.2.push(e);
                            }
                        }
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let successes = |g: usize| tally.lock().unwrap().get(&g).map_or(0, |t| t.0);
    wait_until(
        "load to run on every master",
        Duration::from_secs(30),
        || match (0..3).all(|g| successes(g) >= 50) {
            true => Ok(()),
            false => Err(format!("{:?}", tally.lock().unwrap())),
        },
    );
    let before: Vec<(u64, u64)> = {
        let t = tally.lock().unwrap();
        (0..3)
            .map(|g| t.get(&g).map_or((0, 0), |e| (e.0, e.1)))
            .collect()
    };
    assert!(
        before.iter().all(|b| b.1 == 0),
        "errors before the kill: {:?}",
        tally.lock().unwrap()
    );

    let victim = cluster.nodes()[0].addr.clone();
    let slot0 = key_slot(groups[0][0].as_bytes());
    cluster.nodes()[0].kill();

    // During the outage (a failover cannot complete before cluster-node-timeout), a split
    // write or read touching the dead master is an error, never +OK or nils.
    let mut probe = Raw::connect(&addr);
    // Keys of their own (the load rewrites its keys all the time).
    let probe_keys: Vec<String> = groups
        .iter()
        .enumerate()
        .map(|(g, keys)| key_in_slot(key_slot(keys[0].as_bytes()), &format!("probe{g}")))
        .collect();
    let mut mset = vec!["MSET"];
    let mut mget = vec!["MGET"];
    for key in &probe_keys {
        mset.extend([key.as_str(), "during"]);
        mget.push(key.as_str());
    }
    let reply = probe.call(&mset);
    assert!(
        reply.starts_with(b"-"),
        "MSET across a dead master: {}",
        show(&reply)
    );
    let reply = probe.call(&mget);
    assert!(
        reply.starts_with(b"-"),
        "MGET across a dead master: {}",
        show(&reply)
    );

    // Single-slot requests to the dead master fail with errors clients can act on: TRYAGAIN
    // when the request never reached the node (connection refused, breaker open), and for a
    // write that was on the wire when the node died, an error saying its outcome is unknown.
    // Never the old `-ERR meridian: cannot connect …` that no client library retries.
    for i in 0..20 {
        let value = format!("during{i}");
        for request in [
            vec!["SET", probe_keys[0].as_str(), value.as_str()],
            vec!["GET", probe_keys[0].as_str()],
        ] {
            let reply = probe.call(&request);
            let text = show(&reply);
            assert!(
                reply.starts_with(b"-TRYAGAIN ")
                    || (request[0] == "SET" && text.contains("outcome is unknown")),
                "{request:?} to a dead master: {text}"
            );
        }
    }

    let new_master = cluster.wait_for_master_of_slot_change(slot0, &victim, FAILOVER);
    assert_eq!(new_master, cluster.nodes()[3].addr, "the replica took over");
    wait_until(
        "writes to the failed-over slots through meridian",
        Duration::from_secs(30),
        || match probe.call(&["SET", probe_keys[0].as_str(), "after"]) {
            r if r == b"+OK\r\n" => Ok(()),
            r => Err(show(&r)),
        },
    );
    assert_eq!(
        common::value_text(&cluster.query(&new_master, &["GET", probe_keys[0].as_str()]))
            .as_deref(),
        Some("after")
    );
    let after_failover = successes(0);
    wait_until(
        "the load to succeed on the new master",
        Duration::from_secs(30),
        || match successes(0) >= after_failover + 30 {
            true => Ok(()),
            false => Err(format!("{:?}", tally.lock().unwrap())),
        },
    );
    // The dead node left CLUSTER SLOTS, so it leaves INFO's server list too.
    wait_until(
        "the dead master to leave INFO # Servers",
        Duration::from_secs(30),
        || {
            let text = fakes::probe::info_text(&probe.call(&["INFO", "servers"]));
            match text
                .lines()
                .any(|l| l.trim_end() == format!("Server:{victim}"))
            {
                false => Ok(()),
                true => Err(text),
            }
        },
    );
    // Split commands across all masters work again.
    assert_eq!(probe.call(&mset), b"+OK\r\n");
    let reply = probe.call(&mget);
    assert_eq!(
        show(&reply),
        show(b"*3\r\n$6\r\nduring\r\n$6\r\nduring\r\n$6\r\nduring\r\n")
    );

    stop.store(true, Ordering::SeqCst);
    loader.join().expect("load thread");
    let t = tally.lock().unwrap();
    for g in [1, 2] {
        let (ok, failed, first) = t.get(&g).cloned().unwrap_or_default();
        assert!(ok > before[g].0, "master {g} served nothing after the kill");
        assert_eq!(
            failed, 0,
            "master {g} was not killed but its slots failed: {first:?}"
        );
    }
    eprintln!("per group (ok, failed, first failures): {t:?}");
}
