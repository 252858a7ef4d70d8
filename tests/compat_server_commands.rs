//! Commands a gateway can serve as one Redis would (issue 12, item 7): ROLE, MEMORY (by key or
//! any master), OBJECT HELP, SCRIPT KILL and FUNCTION KILL (on fresh connections, past a busy
//! node's shared one), CLIENT UNBLOCK / REPLY / NO-EVICT, and CLIENT INFO / LIST with every
//! field Redis 7.0 prints. Texts are compared with a standalone redis-server.

mod common;

use std::collections::HashMap;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::raw::{Raw, show};
use common::{Cluster, ClusterBuilder, Gateway, Standalone, key_in_slot, key_slot, wait_until};

/// Bound on waits for a state meridian reaches at once (a guard against hangs, not a speed
/// limit).
const GUARD: Duration = Duration::from_secs(20);

/// Sends `req` to both and asserts the replies are the same bytes.
fn same(via: &mut Raw, direct: &mut Raw, req: &[&str]) -> Vec<u8> {
    let got = via.call(req);
    let want = direct.call(req);
    assert_eq!(show(&got), show(&want), "{req:?}: meridian vs redis-server");
    got
}

/// Writes every request, then a PING marker, and returns every byte answered before the
/// marker's reply: what a client sees of the requests, silenced replies included.
fn transcript(raw: &mut Raw, reqs: &[&[&str]]) -> String {
    let mut wire = Vec::new();
    for r in reqs {
        wire.extend(common::raw::encode(r));
    }
    wire.extend(common::raw::encode(&["PING", "end-of-transcript"]));
    raw.write(&wire);
    let mut seen = Vec::new();
    loop {
        let frame = raw.read();
        if frame == b"$17\r\nend-of-transcript\r\n" {
            return show(&seen);
        }
        seen.extend(frame);
    }
}

/// `key=value` fields of a CLIENT INFO / LIST line, in order.
fn client_fields(line: &str) -> Vec<(String, String)> {
    line.split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// The text of a bulk or verbatim string reply.
fn bulk_text(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    let body = text.split_once("\r\n").map_or("", |(_, b)| b);
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    if reply.first() == Some(&b'=') {
        body.get(4..).unwrap_or_default().to_string()
    } else {
        body.to_string()
    }
}

#[test]
fn role_memory_and_object_answer_as_one_redis() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let reference = Standalone::start(&[]);
    let mut via = Raw::connect(&gw.addr());
    let mut direct = Raw::connect(&reference.node().addr);

    // ROLE: the one master meridian presents, like a standalone master without replicas.
    let role = same(&mut via, &mut direct, &["ROLE"]);
    assert_eq!(role, b"*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    same(&mut via, &mut direct, &["ROLE", "x"]);

    // MEMORY USAGE and OBJECT ENCODING still route by key: the key's master answers (a
    // cluster node counts a key's slot bookkeeping, so the standalone figure differs).
    for key in ["mem:a", "mem:b", "mem:c"] {
        assert_eq!(via.call(&["RPUSH", key, "1", "2", "3"]), b":3\r\n");
        let mut owner = Raw::connect(&cluster.master_of_slot(key_slot(key.as_bytes())));
        same(&mut via, &mut owner, &["MEMORY", "USAGE", key]);
        same(
            &mut via,
            &mut owner,
            &["MEMORY", "USAGE", key, "SAMPLES", "0"],
        );
        same(&mut via, &mut owner, &["OBJECT", "ENCODING", key]);
        same(&mut via, &mut owner, &["OBJECT", "FREQ", key]);
    }
    same(&mut via, &mut direct, &["MEMORY", "USAGE", "mem:none"]);

    // Keyless subcommands: any master answers.
    same(&mut via, &mut direct, &["OBJECT", "HELP"]);
    same(&mut via, &mut direct, &["MEMORY", "HELP"]);
    same(&mut via, &mut direct, &["MEMORY", "NOSUCH"]);
    same(&mut via, &mut direct, &["MEMORY", "PURGE"]);
    let doctor = via.call(&["MEMORY", "DOCTOR"]);
    assert!(
        doctor.starts_with(b"$") && !bulk_text(&doctor).is_empty(),
        "MEMORY DOCTOR: {}",
        show(&doctor)
    );
    // MEMORY STATS: one master's report, with the keys a standalone server reports.
    let stats_keys = |raw: &mut Raw| -> Vec<String> {
        raw.send(&["MEMORY", "STATS"]);
        let reply = String::from_utf8_lossy(&raw.read()).into_owned();
        let lines: Vec<&str> = reply.split("\r\n").collect();
        // Top-level keys are the bulk strings at even positions of the flat array; collecting
        // every `$` string that names a stat is enough to compare the two.
        lines
            .windows(2)
            .filter(|w| w[0].starts_with('$') && w[1].contains('.'))
            .map(|w| w[1].to_string())
            .collect()
    };
    let ours = stats_keys(&mut via);
    let theirs = stats_keys(&mut direct);
    assert!(ours.contains(&"peak.allocated".to_string()), "{ours:?}");
    assert!(ours.contains(&"dataset.bytes".to_string()), "{ours:?}");
    assert!(theirs.contains(&"peak.allocated".to_string()), "{theirs:?}");
}

#[test]
fn script_kill_and_function_kill_reach_a_busy_node() {
    // A script counts as busy after 100 ms (5 s by default); meridian waits up to 10 s for a
    // reply on its shared connection, so the long script does not fail that connection.
    let cluster = ClusterBuilder::new()
        .master("127.0.0.1")
        .master("127.0.0.1")
        .master("127.0.0.1")
        .redis_args(&["--busy-reply-threshold", "100"])
        .start();
    let gw = Gateway::start(&cluster, "breaker: { server_timeout: 10s }");
    let reference = Standalone::start(&[]);
    let mut via = Raw::connect(&gw.addr());
    let mut direct = Raw::connect(&reference.node().addr);

    // Nothing runs: the NOTBUSY error Redis gives.
    let notbusy = same(&mut via, &mut direct, &["SCRIPT", "KILL"]);
    assert!(notbusy.starts_with(b"-NOTBUSY "), "{}", show(&notbusy));
    same(&mut via, &mut direct, &["FUNCTION", "KILL"]);

    // A read-only script that never ends, on one master; SCRIPT KILL through meridian stops it.
    let key = key_in_slot(100, "spin");
    let (tx, rx) = mpsc::channel();
    let addr = gw.addr();
    let spinner = thread::spawn(move || {
        let mut raw = Raw::connect(&addr);
        let reply = raw.call(&["EVAL", "while true do end", "1", key.as_str()]);
        let _ = tx.send(reply);
    });
    wait_until("SCRIPT KILL to find the busy script", GUARD, || {
        let reply = via.call(&["SCRIPT", "KILL"]);
        if reply == b"+OK\r\n" {
            Ok(())
        } else {
            Err(show(&reply))
        }
    });
    let evaled = rx
        .recv_timeout(GUARD)
        .expect("the killed script's client gets its reply");
    assert!(
        evaled.starts_with(b"-ERR Script killed by user with SCRIPT KILL"),
        "{}",
        show(&evaled)
    );
    spinner.join().expect("spinner thread");
    assert_eq!(via.call(&["PING"]), b"+PONG\r\n");
    // The node serves again (its breaker may have seen the busy replies to probes).
    let after = key_in_slot(100, "after");
    wait_until(
        "the node that ran the script to serve again",
        GUARD,
        || match via.call(&["SET", after.as_str(), "1"]).as_slice() {
            b"+OK\r\n" => Ok(()),
            other => Err(show(other)),
        },
    );

    // The same for a function, with FUNCTION KILL.
    let library = "#!lua name=spinlib\nredis.register_function{function_name='spin', callback=function() while true do end end, flags={'no-writes'}}";
    assert_eq!(
        bulk_text(&via.call(&["FUNCTION", "LOAD", library])),
        "spinlib"
    );
    let (tx, rx) = mpsc::channel();
    let addr = gw.addr();
    let key = key_in_slot(9000, "spin");
    let spinner = thread::spawn(move || {
        let mut raw = Raw::connect(&addr);
        let reply = raw.call(&["FCALL_RO", "spin", "1", key.as_str()]);
        let _ = tx.send(reply);
    });
    wait_until("FUNCTION KILL to find the busy function", GUARD, || {
        let reply = via.call(&["FUNCTION", "KILL"]);
        if reply == b"+OK\r\n" {
            Ok(())
        } else {
            Err(show(&reply))
        }
    });
    let called = rx
        .recv_timeout(GUARD)
        .expect("the killed function's client gets its reply");
    assert!(called.starts_with(b"-ERR "), "{}", show(&called));
    spinner.join().expect("spinner thread");
    same(&mut via, &mut direct, &["FUNCTION", "KILL"]);
    assert_eq!(via.call(&["PING"]), b"+PONG\r\n");
}

#[test]
fn client_unblock_reply_no_evict_info_and_list() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let reference = Standalone::start(&[]);
    let mut via = Raw::connect(&gw.addr());
    let mut direct = Raw::connect(&reference.node().addr);

    // Argument errors, as Redis words them.
    for req in [
        &["CLIENT", "UNBLOCK"][..],
        &["CLIENT", "UNBLOCK", "abc"],
        &["CLIENT", "UNBLOCK", "abc", "foo"],
        &["CLIENT", "UNBLOCK", "1", "foo"],
        &["CLIENT", "UNBLOCK", "1", "2", "3"],
        &["CLIENT", "UNBLOCK", "987654"],
        &["CLIENT", "UNBLOCK", "-3"],
        &["CLIENT", "REPLY"],
        &["CLIENT", "NO-EVICT"],
        &["CLIENT", "NO-EVICT", "maybe"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "NO-EVICT", "off"],
    ] {
        same(&mut via, &mut direct, req);
    }

    // CLIENT UNBLOCK: a client waiting in BLPOP on a connection of its own is unblocked as
    // Redis would (nil for TIMEOUT, the UNBLOCKED error for ERROR); 1, then 0 once it is not
    // blocked any more.
    for (reason, want) in [
        (None, b"*-1\r\n".to_vec()),
        (Some("TIMEOUT"), b"*-1\r\n".to_vec()),
        (
            Some("ERROR"),
            b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n".to_vec(),
        ),
    ] {
        let mut blocked = Raw::connect(&gw.addr());
        let id = blocked.client_id();
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let reply = blocked.call(&["BLPOP", "unblock:list", "0"]);
            let _ = tx.send(reply);
        });
        let id_text = id.to_string();
        let mut req = vec!["CLIENT", "UNBLOCK", id_text.as_str()];
        req.extend(reason);
        wait_until("CLIENT UNBLOCK to find the blocked client", GUARD, || {
            let reply = via.call(&req);
            match reply.as_slice() {
                b":1\r\n" => Ok(()),
                b":0\r\n" => Err("0".to_string()),
                other => panic!("CLIENT UNBLOCK: {}", show(other)),
            }
        });
        let got = rx
            .recv_timeout(GUARD)
            .expect("the blocked client is answered");
        assert_eq!(show(&got), show(&want), "BLPOP unblocked with {reason:?}");
        waiter.join().expect("waiter thread");
        assert_eq!(via.call(&req), b":0\r\n", "not blocked any more");
    }
    // The same error text from a standalone server.
    {
        let mut blocked = Raw::connect(&reference.node().addr);
        let id = blocked.client_id().to_string();
        let waiter = thread::spawn(move || blocked.call(&["BLPOP", "unblock:list", "0"]));
        wait_until("the reference client to block", GUARD, || {
            match direct
                .call(&["CLIENT", "UNBLOCK", id.as_str(), "ERROR"])
                .as_slice()
            {
                b":1\r\n" => Ok(()),
                other => Err(show(other)),
            }
        });
        let got = waiter.join().expect("reference waiter");
        assert_eq!(got, b"-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    }

    // While blocked: flag b, cmd=blpop, counted in INFO's blocked_clients.
    let mut blocked = Raw::connect(&gw.addr());
    let id = blocked.client_id();
    let waiter = thread::spawn(move || blocked.call(&["BLPOP", "unblock:other", "0"]));
    let line = wait_until("CLIENT LIST to show the blocked client", GUARD, || {
        let list = bulk_text(&via.call(&["CLIENT", "LIST", "ID", &id.to_string()]));
        if list.contains(" flags=b ") {
            Ok(list)
        } else {
            Err(list)
        }
    });
    assert!(line.contains(" cmd=blpop "), "{line}");
    let info = bulk_text(&via.call(&["INFO", "clients"]));
    assert!(info.contains("blocked_clients:1\r\n"), "{info}");
    assert_eq!(via.call(&["CLIENT", "UNBLOCK", &id.to_string()]), b":1\r\n");
    assert_eq!(waiter.join().expect("waiter"), b"*-1\r\n");

    // CLIENT REPLY OFF/SKIP/ON: the same bytes reach the client as from Redis.
    let script: &[&[&str]] = &[
        &["CLIENT", "REPLY", "OFF"],
        &["PING", "a"],
        &["SET", "reply:k", "1"],
        &["CLIENT", "REPLY", "SKIP"],
        &["PING", "b"],
        &["CLIENT", "REPLY", "ON"],
        &["CLIENT", "REPLY", "SKIP"],
        &["PING", "c"],
        &["GET", "reply:k"],
        &["CLIENT", "REPLY", "FOO"],
        &["CLIENT", "REPLY", "SKIP"],
        &["NOSUCH"],
        &["MGET", "reply:k", "reply:x"],
    ];
    let ours = transcript(&mut Raw::connect(&gw.addr()), script);
    let theirs = transcript(&mut Raw::connect(&reference.node().addr), script);
    assert_eq!(ours, theirs, "CLIENT REPLY transcript");

    // CLIENT INFO: every Redis 7.0 field, in Redis' order, then meridian's.
    let mut me = Raw::connect(&gw.addr());
    let mut ref_me = Raw::connect(&reference.node().addr);
    for raw in [&mut me, &mut ref_me] {
        assert_eq!(raw.call(&["CLIENT", "SETNAME", "info-test"]), b"+OK\r\n");
    }
    let ours = client_fields(&bulk_text(&me.call(&["CLIENT", "INFO"])));
    let theirs = client_fields(&bulk_text(&ref_me.call(&["CLIENT", "INFO"])));
    let our_keys: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
    let their_keys: Vec<&str> = theirs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        &our_keys[..their_keys.len()],
        &their_keys[..],
        "CLIENT INFO fields"
    );
    let ours: HashMap<String, String> = ours.into_iter().collect();
    let theirs: HashMap<String, String> = theirs.into_iter().collect();
    let my_id = me.client_id();
    assert_eq!(ours["id"], my_id.to_string());
    assert_eq!(ours["addr"], me.stream.local_addr().unwrap().to_string());
    assert_eq!(ours["laddr"], gw.addr());
    assert!(ours["fd"].parse::<i64>().unwrap() > 0, "{ours:?}");
    for same_value in [
        "name",
        "flags",
        "db",
        "sub",
        "psub",
        "ssub",
        "multi",
        "argv-mem",
        "multi-mem",
        "obl",
        "oll",
        "omem",
        "events",
        "cmd",
        "user",
        "redir",
        "resp",
    ] {
        assert_eq!(
            ours[same_value], theirs[same_value],
            "CLIENT INFO {same_value}: {ours:?} vs {theirs:?}"
        );
    }
    assert!(ours["rbs"].parse::<u64>().unwrap() > 0, "{ours:?}");
    assert!(ours["tot-mem"].parse::<u64>().unwrap() > 0, "{ours:?}");

    // NO-EVICT shows as e; HELLO 3 as resp=3.
    for raw in [&mut me, &mut ref_me] {
        assert_eq!(raw.call(&["CLIENT", "NO-EVICT", "on"]), b"+OK\r\n");
        assert!(raw.call(&["HELLO", "3"]).starts_with(b"%"));
    }
    let ours = client_fields(&bulk_text(&me.call(&["CLIENT", "INFO"])));
    let theirs = client_fields(&bulk_text(&ref_me.call(&["CLIENT", "INFO"])));
    let get = |f: &[(String, String)], k: &str| {
        f.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    for k in ["flags", "resp", "cmd"] {
        assert_eq!(get(&ours, k), get(&theirs, k), "CLIENT INFO {k}");
    }

    // Another client in MULTI (x, multi=N), a subscriber (P, sub=2, psub=1) and a sharded
    // subscriber (P, ssub=1), as CLIENT LIST on any client shows them.
    let mut tx = Raw::connect(&gw.addr());
    let tx_id = tx.client_id();
    assert_eq!(tx.call(&["MULTI"]), b"+OK\r\n");
    assert_eq!(tx.call(&["SET", "{t}a", "1"]), b"+QUEUED\r\n");
    assert_eq!(tx.call(&["SET", "{t}b", "2"]), b"+QUEUED\r\n");
    let mut sub = Raw::connect(&gw.addr());
    let sub_id = sub.client_id();
    sub.send(&["SSUBSCRIBE", "chan"]);
    assert!(show(&sub.read()).contains("ssubscribe"));
    let mut chans = Raw::connect(&gw.addr());
    let chans_id = chans.client_id();
    chans.send(&["SUBSCRIBE", "a", "b", "a"]);
    for _ in 0..3 {
        assert!(show(&chans.read()).contains("subscribe"));
    }
    chans.send(&["PSUBSCRIBE", "p*"]);
    assert!(show(&chans.read()).contains("psubscribe"));
    wait_until("CLIENT LIST to show the subscriber", GUARD, || {
        let list = bulk_text(&via.call(&["CLIENT", "LIST", "ID", &chans_id.to_string()]));
        if list.contains(" flags=P ") && list.contains(" sub=2 psub=1 ssub=0 ") {
            Ok(())
        } else {
            Err(list)
        }
    });
    let list = wait_until("CLIENT LIST to show both", GUARD, || {
        let list = bulk_text(&via.call(&["CLIENT", "LIST"]));
        let line = |id: u64| {
            list.lines()
                .find(|l| l.starts_with(&format!("id={id} ")))
                .unwrap_or_default()
                .to_string()
        };
        let (t, s) = (line(tx_id), line(sub_id));
        if t.contains(" flags=x ") && t.contains(" multi=2 ") && s.contains(" flags=P ") {
            Ok((t, s))
        } else {
            Err(list.clone())
        }
    });
    assert!(list.0.contains(" cmd=set "), "{}", list.0);
    assert!(list.1.contains(" ssub=1 "), "{}", list.1);
    assert_eq!(tx.call(&["EXEC"]), b"*2\r\n+OK\r\n+OK\r\n");
    assert_eq!(list.0.split_whitespace().count(), ours.len(), "{}", list.0);
}
