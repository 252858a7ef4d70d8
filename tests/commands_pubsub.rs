//! Pub/sub through meridian against a real 3-master cluster: SUBSCRIBE/PSUBSCRIBE and the RESP2
//! subscribed-mode rules (byte-exact), sharded SSUBSCRIBE/SPUBLISH, PUBSUB fan-out counts, RESP3
//! push frames mixed with normal replies, a subscriber that does not read (killed at
//! `client.output_buffer_limit`, memory bounded), a subscriber that disconnects (backend
//! subscription connections released), and subscriptions that follow failovers and slot moves.
//! Comparisons with a standalone redis-server are in commands_pubsub_compat.rs.

mod common;

use common::{
    Cluster, ClusterBuilder, Gateway, int, key_in_slot, rss_kib, run, strings, text, wait_until,
};
use redis::{Connection, Value};
use std::collections::BTreeSet;
use std::io::{ErrorKind, Read};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(15);
/// Bound on a failover (detection, election, meridian's map refresh).
const FAILOVER: Duration = Duration::from_secs(60);

/// `[name, n, name, n …]` (or a RESP3 map) as pairs.
fn pairs(v: &Value) -> Vec<(String, i64)> {
    match v {
        Value::Array(items) => items.chunks(2).map(|p| (text(&p[0]), int(&p[1]))).collect(),
        Value::Map(items) => items.iter().map(|(k, n)| (text(k), int(n))).collect(),
        other => panic!("expected an array/map reply, got {other:?}"),
    }
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn confirm(kind: &str, name: &str, n: i64) -> String {
    format!("*3\r\n{}{}:{n}\r\n", bulk(kind), bulk(name))
}

fn message(channel: &str, payload: &str) -> String {
    format!(
        "*3\r\n{}{}{}",
        bulk("message"),
        bulk(channel),
        bulk(payload)
    )
}

/// PUBSUB NUMSUB for one channel, summed by meridian.
fn numsub(conn: &mut Connection, sub: &str, channel: &str) -> i64 {
    let v = run(conn, &["PUBSUB", sub, channel]);
    let p = pairs(&v);
    assert_eq!(p.len(), 1, "{v:?}");
    p[0].1
}

/// Two shard channels, in the first and the last slot, which two different masters own.
fn shard_channels_on_two_masters(cluster: &Cluster) -> (String, String) {
    assert_ne!(cluster.master_of_slot(0), cluster.master_of_slot(16383));
    (key_in_slot(0, "s1"), key_in_slot(16383, "s2"))
}

#[test]
fn resp2_subscribe_messages_and_subscribed_mode_rules() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut publisher = gw.client();
    let mut sub = gw.raw();

    sub.send(&["SUBSCRIBE", "a", "b"]);
    sub.expect(confirm("subscribe", "a", 1));
    sub.expect(confirm("subscribe", "b", 2));
    sub.send(&["PSUBSCRIBE", "p*"]);
    sub.expect(confirm("psubscribe", "p*", 3));

    run(&mut publisher, &["PUBLISH", "a", "hello"]);
    sub.expect(message("a", "hello"));
    run(&mut publisher, &["PUBLISH", "pq", "x"]);
    sub.expect(format!(
        "*4\r\n{}{}{}{}",
        bulk("pmessage"),
        bulk("p*"),
        bulk("pq"),
        bulk("x")
    ));

    sub.send(&["GET", "k"]);
    sub.expect("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    sub.send(&["PING"]);
    sub.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    sub.send(&["PING", "hi"]);
    sub.expect("*2\r\n$4\r\npong\r\n$2\r\nhi\r\n");

    // Pipelined: error, message, ping stay in order with the subscription frames.
    sub.send(&["SUBSCRIBE", "c"]);
    sub.send(&["SET", "k", "v"]);
    sub.send(&["PING", "after"]);
    sub.expect(confirm("subscribe", "c", 4));
    sub.expect("-ERR Can't execute 'set': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    sub.expect("*2\r\n$4\r\npong\r\n$5\r\nafter\r\n");

    // UNSUBSCRIBE without channels: one confirmation per channel, counts going down.
    sub.send(&["UNSUBSCRIBE"]);
    let mut seen = BTreeSet::new();
    for n in [3, 2, 1] {
        let f = sub.read_text();
        let ch = ["a", "b", "c"]
            .into_iter()
            .find(|ch| f == confirm("unsubscribe", ch, n))
            .unwrap_or_else(|| {
                panic!("expected an unsubscribe confirmation with count {n}, got {f:?}")
            });
        seen.insert(ch);
    }
    assert_eq!(seen.len(), 3);
    sub.send(&["PUNSUBSCRIBE", "p*"]);
    sub.expect(confirm("punsubscribe", "p*", 0));

    // Out of subscribed mode: normal commands work again.
    sub.send(&["GET", "k"]);
    sub.expect("$-1\r\n");
    run(&mut publisher, &["PUBLISH", "a", "not for you"]);

    // RESET leaves subscribed mode.
    sub.send(&["SUBSCRIBE", "d"]);
    sub.expect(confirm("subscribe", "d", 1));
    sub.send(&["RESET"]);
    sub.expect("+RESET\r\n");
    sub.send(&["SET", "k", "v2"]);
    sub.expect("+OK\r\n");
    run(&mut publisher, &["PUBLISH", "d", "after reset"]);
    sub.send(&["GET", "k"]);
    sub.expect("$2\r\nv2\r\n");
    wait_until("d has no subscribers after RESET", SETTLE, || match numsub(
        &mut publisher,
        "NUMSUB",
        "d",
    ) {
        0 => Ok(()),
        n => Err(format!("NUMSUB d = {n}")),
    });
}

#[test]
fn sharded_subscribe_on_two_masters() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut publisher = gw.client();
    let (c1, c2) = shard_channels_on_two_masters(&cluster);

    let mut sub = gw.raw();
    sub.send(&["SSUBSCRIBE", &c1]);
    sub.expect(confirm("ssubscribe", &c1, 1));
    sub.send(&["SSUBSCRIBE", &c2]);
    let f = sub.read_text();
    assert!(
        f.starts_with(&format!("*3\r\n{}{}:", bulk("ssubscribe"), bulk(&c2))),
        "{f:?}"
    );

    assert_eq!(int(&run(&mut publisher, &["SPUBLISH", &c1, "one"])), 1);
    sub.expect(format!(
        "*3\r\n{}{}{}",
        bulk("smessage"),
        bulk(&c1),
        bulk("one")
    ));
    assert_eq!(int(&run(&mut publisher, &["SPUBLISH", &c2, "two"])), 1);
    sub.expect(format!(
        "*3\r\n{}{}{}",
        bulk("smessage"),
        bulk(&c2),
        bulk("two")
    ));

    // Shard channels in two slots in one command: split by slot and confirmed per channel,
    // as one Redis would (issue 12 item 5; it used to be CROSSSLOT).
    let mut other = gw.raw();
    other.send(&["SSUBSCRIBE", &c1, &c2]);
    other.expect(confirm("ssubscribe", &c1, 1));
    other.expect(confirm("ssubscribe", &c2, 2));
    // Subscribed by that: the RESP2 subscribed-mode PING.
    other.send(&["PING"]);
    other.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    sub.send(&["SSUBSCRIBE", &c1, &c2]);
    sub.expect(confirm("ssubscribe", &c1, 2));
    sub.expect(confirm("ssubscribe", &c2, 2));
    assert_eq!(int(&run(&mut publisher, &["SPUBLISH", &c2, "both"])), 2);
    other.expect(format!(
        "*3\r\n{}{}{}",
        bulk("smessage"),
        bulk(&c2),
        bulk("both")
    ));
    sub.expect(format!(
        "*3\r\n{}{}{}",
        bulk("smessage"),
        bulk(&c2),
        bulk("both")
    ));

    sub.send(&["SUNSUBSCRIBE", &c1]);
    let f = sub.read_text();
    assert!(
        f.starts_with(&format!("*3\r\n{}{}:", bulk("sunsubscribe"), bulk(&c1))),
        "{f:?}"
    );
    // Still subscribed to c2: RESP2 subscribed-mode rules still apply.
    sub.send(&["GET", "x"]);
    sub.expect("-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n");
    sub.send(&["SUNSUBSCRIBE", &c2]);
    sub.expect(confirm("sunsubscribe", &c2, 0));
    sub.send(&["GET", "x"]);
    sub.expect("$-1\r\n");
}

/// The subscription counts in (un)subscribe confirmations are those of the whole client
/// connection, as one Redis node reports them (clients such as redis-py leave subscribed mode
/// when a confirmation says 0).
#[test]
fn sharded_subscription_counts_cover_every_shard() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let (c1, c2) = shard_channels_on_two_masters(&cluster);
    let mut sub = gw.raw();
    sub.send(&["SSUBSCRIBE", &c1]);
    sub.expect(confirm("ssubscribe", &c1, 1));
    sub.send(&["SSUBSCRIBE", &c2]);
    sub.expect(confirm("ssubscribe", &c2, 2));
    sub.send(&["SUNSUBSCRIBE", &c1]);
    sub.expect(confirm("sunsubscribe", &c1, 1));
    sub.send(&["SUNSUBSCRIBE", &c2]);
    sub.expect(confirm("sunsubscribe", &c2, 0));
}

#[test]
fn pubsub_introspection_sums_over_masters() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut q = gw.client();
    let sc = key_in_slot(5000, "sc");

    let mut a = gw.raw();
    a.send(&["SUBSCRIBE", "ch1", "ch2"]);
    a.expect(confirm("subscribe", "ch1", 1));
    a.expect(confirm("subscribe", "ch2", 2));
    a.send(&["PSUBSCRIBE", "p*"]);
    a.expect(confirm("psubscribe", "p*", 3));
    a.send(&["SSUBSCRIBE", &sc]);
    a.expect(confirm("ssubscribe", &sc, 1));

    let mut b = gw.raw();
    b.send(&["SUBSCRIBE", "ch1"]);
    b.expect(confirm("subscribe", "ch1", 1));
    b.send(&["PSUBSCRIBE", "q*"]);
    b.expect(confirm("psubscribe", "q*", 2));
    b.send(&["SSUBSCRIBE", &sc]);
    b.expect(confirm("ssubscribe", &sc, 1));

    let mut chans = strings(&run(&mut q, &["PUBSUB", "CHANNELS"]));
    chans.sort();
    assert_eq!(chans, ["ch1", "ch2"]);
    let mut chans = strings(&run(&mut q, &["PUBSUB", "CHANNELS", "ch1*"]));
    chans.sort();
    assert_eq!(chans, ["ch1"]);
    assert_eq!(
        pairs(&run(&mut q, &["PUBSUB", "NUMSUB", "ch1", "ch2", "none"])),
        [
            ("ch1".to_string(), 2),
            ("ch2".to_string(), 1),
            ("none".to_string(), 0)
        ]
    );
    assert_eq!(int(&run(&mut q, &["PUBSUB", "NUMPAT"])), 2);
    assert_eq!(
        strings(&run(&mut q, &["PUBSUB", "SHARDCHANNELS"])),
        std::slice::from_ref(&sc)
    );
    assert_eq!(
        pairs(&run(&mut q, &["PUBSUB", "SHARDNUMSUB", &sc, "nope"])),
        [(sc.clone(), 2), ("nope".to_string(), 0)]
    );
    assert_eq!(
        pairs(&run(&mut q, &["PUBSUB", "NUMSUB"])),
        Vec::<(String, i64)>::new()
    );
}

#[test]
fn resp3_push_frames_and_normal_commands_on_one_connection() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut publisher = gw.client();
    let mut sub = gw.raw();
    sub.send(&["HELLO", "3"]);
    let hello = sub.read_text();
    assert!(hello.starts_with('%'), "HELLO 3 reply is a map: {hello:?}");

    sub.send(&["SUBSCRIBE", "r3"]);
    sub.expect(format!(">3\r\n{}{}:1\r\n", bulk("subscribe"), bulk("r3")));
    sub.send(&["PSUBSCRIBE", "r*"]);
    sub.expect(format!(">3\r\n{}{}:2\r\n", bulk("psubscribe"), bulk("r*")));

    // Normal commands in subscribed mode (RESP3 allows them).
    sub.send(&["SET", "k3", "v"]);
    sub.expect("+OK\r\n");
    sub.send(&["GET", "k3"]);
    sub.expect("$1\r\nv\r\n");
    sub.send(&["GET", "missing"]);
    sub.expect("_\r\n");
    sub.send(&["PING"]);
    sub.expect("+PONG\r\n");

    run(&mut publisher, &["PUBLISH", "r3", "hi"]);
    sub.expect(format!(
        ">3\r\n{}{}{}",
        bulk("message"),
        bulk("r3"),
        bulk("hi")
    ));
    sub.expect(format!(
        ">4\r\n{}{}{}{}",
        bulk("pmessage"),
        bulk("r*"),
        bulk("r3"),
        bulk("hi")
    ));
    // A reply after the messages is still a plain reply.
    sub.send(&["GET", "k3"]);
    sub.expect("$1\r\nv\r\n");

    sub.send(&["UNSUBSCRIBE", "r3"]);
    sub.expect(format!(">3\r\n{}{}:1\r\n", bulk("unsubscribe"), bulk("r3")));
    sub.send(&["PUNSUBSCRIBE"]);
    sub.expect(format!(
        ">3\r\n{}{}:0\r\n",
        bulk("punsubscribe"),
        bulk("r*")
    ));

    // RESP3 sharded.
    let sc = key_in_slot(9000, "r3s");
    sub.send(&["SSUBSCRIBE", &sc]);
    sub.expect(format!(">3\r\n{}{}:1\r\n", bulk("ssubscribe"), bulk(&sc)));
    run(&mut publisher, &["SPUBLISH", &sc, "s"]);
    sub.expect(format!(
        ">3\r\n{}{}{}",
        bulk("smessage"),
        bulk(&sc),
        bulk("s")
    ));
    sub.send(&["GET", "missing"]);
    sub.expect("_\r\n");
}

#[test]
fn a_subscriber_that_does_not_read_is_disconnected() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "client: { output_buffer_limit: 256kb }\n");
    let mut publisher = gw.client();
    let mut bystander = gw.client();
    run(&mut bystander, &["SET", "b", "1"]);

    let mut slow = gw.raw();
    slow.send(&["SUBSCRIBE", "flood"]);
    slow.expect(confirm("subscribe", "flood", 1));
    let rss_before = rss_kib(gw.pid());

    // Up to ~10 MB in 64 KB messages; stop once meridian dropped the subscriber (the
    // subscription disappears from the cluster).
    let payload = "x".repeat(64 * 1024);
    let mut published = 0usize;
    let mut dropped = false;
    let mut peak = rss_before;
    for i in 0..160 {
        run(&mut publisher, &["PUBLISH", "flood", &payload]);
        published += payload.len();
        if i % 8 == 7 {
            peak = peak.max(rss_kib(gw.pid()));
            if numsub(&mut publisher, "NUMSUB", "flood") == 0 {
                dropped = true;
                break;
            }
        }
    }
    assert!(
        published >= 256 * 1024,
        "dropped after only {published} bytes"
    );

    // Draining the socket ends in EOF (or a reset), after a bounded amount of data.
    let mut drained = slow.buffered();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut closed = false;
    for _ in 0..100_000 {
        match slow.stream.read(&mut chunk) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => drained += n,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(e) => panic!("reading the slow subscriber after {drained} bytes: {e}"),
        }
    }
    if !dropped {
        let master_lists: Vec<String> = cluster
            .masters()
            .iter()
            .map(|m| text(&cluster.query(m, &["CLIENT", "LIST"])))
            .flat_map(|l| {
                l.lines()
                    .filter(|x| x.contains("sub=1"))
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .collect();
        panic!(
            "the subscriber (which got EOF only after it drained {drained} bytes: {closed}) was still subscribed after {published} bytes were published \
             (meridian RSS {rss_before} kB -> peak {peak} kB; subscribed backend clients: {master_lists:?})"
        );
    }
    assert!(
        closed,
        "the slow subscriber was not closed ({drained} bytes drained)"
    );
    assert!(
        drained < published,
        "the slow subscriber got everything ({drained} of {published} bytes)"
    );

    // Others are unaffected.
    assert_eq!(text(&run(&mut bystander, &["PING"])), "PONG");
    assert_eq!(text(&run(&mut bystander, &["GET", "b"])), "1");
    assert_eq!(text(&run(&mut publisher, &["PING"])), "PONG");
    let rss_after = rss_kib(gw.pid());
    peak = peak.max(rss_after);
    assert!(
        peak < rss_before + 64 * 1024,
        "meridian's RSS grew from {rss_before} kB to {peak} kB"
    );
}

/// Clients with pub/sub subscriptions on every master, by `CLIENT LIST` (sub/psub/ssub fields).
fn subscribed_backend_clients(cluster: &Cluster) -> usize {
    cluster
        .masters()
        .iter()
        .map(|m| {
            let list = text(&cluster.query(m, &["CLIENT", "LIST"]));
            list.lines()
                .filter(|line| {
                    line.split(' ').any(|f| {
                        ["sub=", "psub=", "ssub="]
                            .iter()
                            .any(|p| f.strip_prefix(p).is_some_and(|n| n != "0"))
                    })
                })
                .count()
        })
        .sum()
}

/// `connected_clients` of every master, summed.
fn connected_clients(cluster: &Cluster) -> i64 {
    let masters = cluster.masters();
    masters
        .iter()
        .map(|m| cluster.node(m).info_i64("clients", "connected_clients"))
        .sum()
}

#[test]
fn a_subscriber_that_disconnects_releases_its_backend_connections() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut q = gw.client();
    let sc1 = key_in_slot(100, "g1");
    let sc2 = key_in_slot(16000, "g2");
    let clients_before = connected_clients(&cluster);

    for round in 0..20 {
        let mut s = gw.raw();
        s.send(&["SUBSCRIBE", "gone"]);
        s.expect(confirm("subscribe", "gone", 1));
        s.send(&["PSUBSCRIBE", "gone*"]);
        s.expect(confirm("psubscribe", "gone*", 2));
        s.send(&["SSUBSCRIBE", &sc1]);
        s.expect(confirm("ssubscribe", &sc1, 1));
        s.send(&["SSUBSCRIBE", &sc2]);
        let f = s.read_text();
        assert!(
            f.starts_with(&format!("*3\r\n{}{}", bulk("ssubscribe"), bulk(&sc2))),
            "round {round}: {f:?}"
        );
        if round == 0 {
            assert_eq!(numsub(&mut q, "NUMSUB", "gone"), 1);
            assert_eq!(numsub(&mut q, "SHARDNUMSUB", &sc1), 1);
            assert_eq!(numsub(&mut q, "SHARDNUMSUB", &sc2), 1);
            assert_eq!(subscribed_backend_clients(&cluster), 3);
        }
        drop(s);
    }

    wait_until("every subscription connection is released", SETTLE, || {
        let n = subscribed_backend_clients(&cluster);
        let numsub = numsub(&mut q, "NUMSUB", "gone");
        let numpat = int(&run(&mut q, &["PUBSUB", "NUMPAT"]));
        let s1 = numsub_shard(&mut q, &sc1);
        let s2 = numsub_shard(&mut q, &sc2);
        if n == 0 && numsub == 0 && numpat == 0 && s1 == 0 && s2 == 0 {
            Ok(())
        } else {
            Err(format!(
                "subscribed clients {n}, NUMSUB {numsub}, NUMPAT {numpat}, SHARDNUMSUB {s1}/{s2}"
            ))
        }
    });
    // The total connection count on the masters is back near where it was (meridian's own
    // shared connections may have grown a little, but not by one per subscriber).
    let clients_after = connected_clients(&cluster);
    assert!(
        clients_after < clients_before + 10,
        "masters had {clients_before} clients before, {clients_after} after 20 subscribers left"
    );
}

fn numsub_shard(q: &mut Connection, channel: &str) -> i64 {
    numsub(q, "SHARDNUMSUB", channel)
}

/// `PUBSUB NUMPAT` asked of one node directly.
fn numpat_on(cluster: &Cluster, addr: &str) -> i64 {
    int(&cluster.query(addr, &["PUBSUB", "NUMPAT"]))
}

/// Sets keys with a 100 ms expiry through `writer`, one per slot in `slots`, and reads their
/// expirations from `sub` (bounded by the raw client's timeout per event).
fn expirations_arrive(
    writer: &mut Connection,
    sub: &mut common::raw::Raw,
    slots: &[u16],
    tag: &str,
) {
    let keys: BTreeSet<String> = slots
        .iter()
        .map(|&slot| key_in_slot(slot, &format!("{tag}:{slot}")))
        .collect();
    for key in &keys {
        assert_eq!(run(writer, &["SET", key, "v", "PX", "100"]), Value::Okay);
    }
    let mut seen = BTreeSet::new();
    while seen.len() < keys.len() {
        let frame = sub.read_text();
        let key = frame
            .strip_suffix("\r\n")
            .and_then(|f| f.rsplit("\r\n").next())
            .unwrap_or_default()
            .to_string();
        assert!(
            frame.contains("__keyevent@0__:expired") && keys.contains(&key),
            "unexpected frame {frame:?} (seen {} of {})",
            seen.len(),
            keys.len()
        );
        assert!(seen.insert(key.clone()), "{key} expired twice");
    }
}

/// Issue 12 item 4: keyspace subscriptions live on every master and follow the map. After a
/// manual failover the promoted master gets the subscription and the demoted one (now a
/// replica) loses it; after the promoted master is killed (its connection lost) the client
/// stays connected and the master elected next gets it. Expirations on every master arrive
/// each time.
#[test]
fn keyspace_subscriptions_follow_failovers() {
    let mut builder = ClusterBuilder::new();
    for _ in 0..3 {
        builder = builder.master("127.0.0.1");
    }
    for m in 0..3 {
        builder = builder.replica("127.0.0.1", m);
    }
    let cluster = builder
        .redis_args(&["--notify-keyspace-events", "Ex"])
        .start();
    let gw = Gateway::start(&cluster, "");
    let mut writer = gw.client();
    let mut sub = gw.raw();
    sub.send(&["PSUBSCRIBE", "__keyevent@0__:expired"]);
    sub.expect(confirm("psubscribe", "__keyevent@0__:expired", 1));
    let slots: Vec<u16> = (0..30).map(|i| i * 546).collect();
    expirations_arrive(&mut writer, &mut sub, &slots, "before");

    let old = cluster.master_of_slot(0);
    let replica = cluster.replicas_of(&old)[0].clone();
    cluster.node(&replica).ok(&["CLUSTER", "FAILOVER"]);
    let new = cluster.wait_for_master_of_slot_change(0, &old, FAILOVER);
    assert_eq!(new, replica);
    wait_until(
        "the subscription to move to the promoted master",
        FAILOVER,
        || match (numpat_on(&cluster, &new), numpat_on(&cluster, &old)) {
            (1, 0) => Ok(()),
            (n, o) => Err(format!("NUMPAT on {new}: {n}, on {old}: {o}")),
        },
    );
    expirations_arrive(&mut writer, &mut sub, &slots, "promoted");

    // The promoted master dies: its subscription connection is lost, the client is not.
    cluster.node(&new).kill();
    let next = cluster.wait_for_master_of_slot_change(0, &new, FAILOVER);
    wait_until(
        "the subscription to reach the next master",
        FAILOVER,
        || match numpat_on(&cluster, &next) {
            1 => Ok(()),
            n => Err(format!("NUMPAT on {next}: {n}")),
        },
    );
    wait_until("writes to reach the next master", FAILOVER, || {
        common::try_run(&mut writer, &["SET", &key_in_slot(0, "probe"), "v"])
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    sub.send(&["PING", "still here"]);
    let pong = sub.read_text();
    assert_eq!(pong, "*2\r\n$4\r\npong\r\n$10\r\nstill here\r\n");
    expirations_arrive(&mut writer, &mut sub, &slots, "after");
}

/// `PUBSUB <sub> <channel>` asked of one node directly: the channel's count there.
fn count_on(cluster: &Cluster, addr: &str, sub: &str, channel: &str) -> i64 {
    match cluster.query(addr, &["PUBSUB", sub, channel]) {
        Value::Array(items) if items.len() == 2 => int(&items[1]),
        other => panic!("PUBSUB {sub} on {addr}: {other:?}"),
    }
}

/// Issue 12 items 3-4: when a slot moves to another master, the channel and shard channel of
/// that slot move with it (the old master ends the shard subscription itself; the client never
/// sees that), so PUBLISH and SPUBLISH still count and deliver to the subscriber.
#[test]
fn subscriptions_follow_a_slot_move() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut publisher = gw.client();
    let slot = 100;
    let (ch, sc) = (key_in_slot(slot, "moving"), key_in_slot(slot, "smoving"));
    let mut sub = gw.raw();
    sub.send(&["SUBSCRIBE", &ch]);
    sub.expect(confirm("subscribe", &ch, 1));
    sub.send(&["SSUBSCRIBE", &sc]);
    sub.expect(confirm("ssubscribe", &sc, 1));
    assert_eq!(int(&run(&mut publisher, &["PUBLISH", &ch, "before"])), 1);
    sub.expect(message(&ch, "before"));

    let from = cluster.master_of_slot(slot);
    let to = cluster
        .masters()
        .into_iter()
        .find(|m| *m != from)
        .expect("another master");
    cluster.migrate_slot(slot, &from, &to);
    wait_until("the subscriptions to move with the slot", SETTLE, || {
        let counts = [
            count_on(&cluster, &to, "NUMSUB", &ch),
            count_on(&cluster, &from, "NUMSUB", &ch),
            count_on(&cluster, &to, "SHARDNUMSUB", &sc),
            count_on(&cluster, &from, "SHARDNUMSUB", &sc),
        ];
        match counts {
            [1, 0, 1, 0] => Ok(()),
            c => Err(format!(
                "NUMSUB to/from {:?}, SHARDNUMSUB to/from {:?}",
                &c[..2],
                &c[2..]
            )),
        }
    });
    // A PUBLISH that meridian still sends to the old owner counts 0 there, but the message
    // reaches the subscriber over the cluster bus all the same: one message per attempt.
    let mut attempts = 0;
    wait_until("PUBLISH to reach the new owner", SETTLE, || {
        attempts += 1;
        match int(&run(&mut publisher, &["PUBLISH", &ch, "after"])) {
            1 => Ok(()),
            n => Err(format!("PUBLISH counted {n}")),
        }
    });
    // Nothing else reached the client (no SUNSUBSCRIBE from the old master).
    for _ in 0..attempts {
        sub.expect(message(&ch, "after"));
    }
    assert_eq!(int(&run(&mut publisher, &["SPUBLISH", &sc, "s"])), 1);
    sub.expect(format!(
        "*3\r\n{}{}{}",
        bulk("smessage"),
        bulk(&sc),
        bulk("s")
    ));
    sub.send(&["PING"]);
    sub.expect("*2\r\n$4\r\npong\r\n$0\r\n\r\n");
}
