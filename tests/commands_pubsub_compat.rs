//! Pub/sub through meridian against a real 3-master cluster, compared with one standalone
//! redis-server running the same script: PUBLISH counts and PUBSUB NUMSUB/NUMPAT, keyspace
//! notifications from every master, SSUBSCRIBE/SUNSUBSCRIBE across slots, refused
//! subscriptions (ACL) that leave no subscription behind; RESP2 and RESP3.

mod common;

use common::raw::{RAW_TIMEOUT, Raw, show};
use common::{Cluster, ClusterBuilder, Gateway, Standalone, int, key_in_slot, key_slot, run};
use std::collections::{BTreeSet, VecDeque};
use std::io::ErrorKind;
use std::time::Duration;

/// How long a frame that should not come (a duplicate, a stray) is waited for.
const QUIET: Duration = Duration::from_millis(400);
/// Bound on frames read in one quiet wait (a guard against a flood).
const MAX_FRAMES: usize = 10_000;
const SETTLE: Duration = Duration::from_secs(15);

/// The frames that arrive until none has for `quiet`.
fn until_quiet(raw: &mut Raw, quiet: Duration) -> Vec<String> {
    raw.stream
        .set_read_timeout(Some(quiet))
        .expect("set a read timeout");
    let mut frames = Vec::new();
    while frames.len() < MAX_FRAMES {
        match raw.try_read() {
            Ok(frame) => frames.push(show(&frame)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("reading frames: {e}"),
        }
    }
    raw.stream
        .set_read_timeout(Some(RAW_TIMEOUT))
        .expect("restore the read timeout");
    frames
}

/// What a script saw, one line per observation. The reference run (standalone redis-server)
/// records how many frames each multi-frame step produced; the meridian run then reads as
/// many (each within [`RAW_TIMEOUT`]) and checks that nothing more comes.
struct Transcript {
    lines: Vec<String>,
    counts: VecDeque<usize>,
    reference: bool,
}

impl Transcript {
    fn reference() -> Transcript {
        Transcript {
            lines: Vec::new(),
            counts: VecDeque::new(),
            reference: true,
        }
    }

    /// A run that expects the frame counts `reference` recorded.
    fn following(reference: &Transcript) -> Transcript {
        Transcript {
            lines: Vec::new(),
            counts: reference.counts.clone(),
            reference: false,
        }
    }

    fn frames(&mut self, raw: &mut Raw) -> Vec<String> {
        if self.reference {
            let frames = until_quiet(raw, QUIET);
            self.counts.push_back(frames.len());
            return frames;
        }
        let n = self.counts.pop_front().unwrap_or(0);
        let mut frames: Vec<String> = (0..n).map(|_| show(&raw.read())).collect();
        frames.extend(until_quiet(raw, QUIET));
        frames
    }

    /// One command with one reply.
    fn call(&mut self, raw: &mut Raw, args: &[&str]) {
        let reply = raw.call(args);
        self.lines.push(format!("{args:?} -> {}", show(&reply)));
    }

    /// A command answered with several frames (a confirmation per name), in order.
    fn multi(&mut self, raw: &mut Raw, args: &[&str]) {
        raw.send(args);
        let frames = self.frames(raw);
        self.lines.push(format!("{args:?} -> {frames:?}"));
    }

    /// An unsubscribe-all: the order of the names is the server's own, so the names are
    /// compared as a set and the counts in sequence.
    fn unordered(&mut self, raw: &mut Raw, args: &[&str]) {
        raw.send(args);
        let frames = self.frames(raw);
        let mut names = Vec::new();
        let mut counts = Vec::new();
        for f in &frames {
            let (body, count) = f.rsplit_once(':').unwrap_or((f, ""));
            names.push(body.to_string());
            counts.push(count.to_string());
        }
        names.sort();
        self.lines
            .push(format!("{args:?} -> names {names:?} counts {counts:?}"));
    }

    /// Messages nobody asked for, as a sorted list (several masters send them).
    fn messages(&mut self, raw: &mut Raw, who: &str) {
        let mut frames = self.frames(raw);
        frames.sort();
        self.lines.push(format!("{who} got {frames:?}"));
    }

    /// Exactly `n` messages (each within [`RAW_TIMEOUT`]) and nothing more, sorted.
    fn expect_messages(&mut self, raw: &mut Raw, who: &str, n: usize) {
        let mut frames: Vec<String> = (0..n)
            .map(|i| {
                let frame = raw.try_read().unwrap_or_else(|e| {
                    panic!("{who}: message {} of {n} did not come: {e}", i + 1)
                });
                show(&frame)
            })
            .collect();
        frames.extend(until_quiet(raw, QUIET));
        frames.sort();
        self.lines.push(format!("{who} got {frames:?}"));
    }

    /// Not a line the other run must repeat.
    fn note(&mut self, raw: &mut Raw, args: &[&str]) -> Vec<u8> {
        raw.call(args)
    }
}

/// Asserts that meridian's run saw what the reference saw, line by line.
fn assert_same(meridian: &Transcript, reference: &Transcript) {
    // SHOW_TRANSCRIPT=1 prints what meridian's run saw, to read a passing run too.
    if std::env::var_os("SHOW_TRANSCRIPT").is_some() {
        for line in &meridian.lines {
            eprintln!("{line}");
        }
    }
    let diffs: Vec<String> = meridian
        .lines
        .iter()
        .zip(&reference.lines)
        .filter(|(m, r)| m != r)
        .map(|(m, r)| format!("meridian:     {m}\nredis-server: {r}"))
        .collect();
    assert!(
        diffs.is_empty() && meridian.lines.len() == reference.lines.len(),
        "{} difference(s) ({} lines vs {}):\n{}",
        diffs.len(),
        meridian.lines.len(),
        reference.lines.len(),
        diffs.join("\n")
    );
}

/// Raw clients on `addr`, switched to `proto`.
fn clients(addr: &str, n: usize, proto: u8, t: &mut Transcript) -> Vec<Raw> {
    (0..n)
        .map(|_| {
            let mut raw = Raw::connect(addr);
            if proto == 3 {
                let hello = t.note(&mut raw, &["HELLO", "3"]);
                assert!(hello.starts_with(b"%"), "HELLO 3: {}", show(&hello));
            }
            raw
        })
        .collect()
}

/// Six channels named for `run`, two in each third of the slots (one per master of a
/// 3-master cluster).
fn six_channels(run: u8) -> Vec<String> {
    [0u16, 3000, 6000, 9000, 12000, 15000]
        .iter()
        .enumerate()
        .map(|(i, &slot)| key_in_slot(slot, &format!("ch{run}:{i}")))
        .collect()
}

/// Waits (bounded) until the clients of an earlier run are gone from `addr`'s view.
fn no_patterns_left(raw: &mut Raw) {
    common::wait_until("the patterns of an earlier run to go", SETTLE, || match raw
        .call(&["PUBSUB", "NUMPAT"])
    {
        r if r == b":0\r\n" => Ok(()),
        r => Err(show(&r)),
    });
}

fn publish_script(addr: &str, proto: u8, t: &mut Transcript) {
    let channels = six_channels(proto);
    let ch: Vec<&str> = channels.iter().map(String::as_str).collect();
    let mut c = clients(addr, 4, proto, t);
    let [s1, s2, s3, publisher] = &mut c[..] else {
        unreachable!("four clients")
    };
    no_patterns_left(publisher);
    let mut subscribe = vec!["SUBSCRIBE"];
    subscribe.extend(&ch);
    t.multi(s1, &subscribe);
    let (every, ones) = (format!("*ch{proto}:*"), format!("*ch{proto}:1"));
    t.multi(s2, &["PSUBSCRIBE", &every]);
    t.multi(s3, &["SUBSCRIBE", ch[0]]);
    t.multi(s3, &["PSUBSCRIBE", &ones]);
    for (i, channel) in ch.iter().enumerate() {
        t.call(publisher, &["PUBLISH", channel, &format!("m{i}")]);
    }
    t.messages(s1, "s1");
    t.messages(s2, "s2");
    t.messages(s3, "s3");
    let mut numsub = vec!["PUBSUB", "NUMSUB"];
    numsub.extend(&ch);
    numsub.push("none");
    t.call(publisher, &numsub);
    t.call(publisher, &["PUBSUB", "NUMPAT"]);

    t.multi(s1, &["UNSUBSCRIBE", ch[0], ch[1], "never"]);
    t.multi(s2, &["PUNSUBSCRIBE"]);
    t.multi(s3, &["SUBSCRIBE", ch[0], ch[5]]);
    for (i, channel) in ch.iter().enumerate() {
        t.call(publisher, &["PUBLISH", channel, &format!("n{i}")]);
    }
    t.messages(s1, "s1");
    t.messages(s2, "s2");
    t.messages(s3, "s3");
    t.call(publisher, &numsub);
    t.call(publisher, &["PUBSUB", "NUMPAT"]);
    t.unordered(s3, &["UNSUBSCRIBE"]);
    t.multi(s3, &["PUNSUBSCRIBE", &ones]);
    t.call(publisher, &numsub);
}

/// Issue 12 item 3: a PUBLISH through meridian counts every subscriber that got the message
/// (channel subscribers on their slot's master, pattern subscribers on every master), the
/// subscribers get each message once, and NUMSUB/NUMPAT agree with those counts.
#[test]
fn publish_counts_and_subscriptions_match_one_redis() {
    let reference_server = Standalone::start(&[]);
    let cluster = Cluster::start(3, 0);
    let masters: BTreeSet<String> = six_channels(2)
        .iter()
        .map(|c| cluster.master_of_slot(key_slot(c.as_bytes())))
        .collect();
    assert_eq!(masters.len(), 3, "the channels must live on every master");
    let gw = Gateway::start(&cluster, "");
    for proto in [2, 3] {
        let mut reference = Transcript::reference();
        publish_script(&reference_server.addr(), proto, &mut reference);
        let mut meridian = Transcript::following(&reference);
        publish_script(&gw.addr(), proto, &mut meridian);
        assert_same(&meridian, &reference);
    }
}

/// Sixty keys, spread over every master.
fn sixty_keys() -> Vec<String> {
    (0..60).map(|i| format!("exp:{i}")).collect()
}

fn keyspace_script(addr: &str, t: &mut Transcript) {
    let mut c = clients(addr, 4, 2, t);
    let [by_pattern, by_channel, everything, writer] = &mut c[..] else {
        unreachable!("four clients")
    };
    t.multi(by_pattern, &["PSUBSCRIBE", "__keyevent@0__:expired"]);
    t.multi(by_channel, &["SUBSCRIBE", "__keyevent@0__:expired"]);
    t.multi(everything, &["PSUBSCRIBE", "*"]);
    t.call(
        writer,
        &["PUBSUB", "NUMSUB", "__keyevent@0__:expired", "none"],
    );
    t.call(writer, &["PUBSUB", "NUMPAT"]);
    for key in sixty_keys() {
        t.call(writer, &["SET", &key, "v"]);
        t.call(writer, &["PEXPIRE", &key, "100"]);
    }
    t.call(writer, &["PUBLISH", "plain", "hello"]);
    t.expect_messages(by_pattern, "by pattern", 60);
    t.expect_messages(by_channel, "by channel", 60);
    t.expect_messages(everything, "everything", 61);
    t.call(writer, &["DBSIZE"]);
}

/// Issue 12 item 4: keyspace notifications are node-local, so meridian subscribes their
/// channels and patterns on every master: all 60 expirations arrive, each once, with the
/// published message matched by the same pattern also once.
#[test]
fn keyspace_notifications_arrive_from_every_master() {
    let notify = ["--notify-keyspace-events", "Ex"];
    let reference_server = Standalone::start(&notify);
    let mut builder = ClusterBuilder::new();
    for _ in 0..3 {
        builder = builder.master("127.0.0.1");
    }
    let cluster = builder.redis_args(&notify).start();
    let masters: BTreeSet<String> = sixty_keys()
        .iter()
        .map(|k| cluster.master_of_slot(key_slot(k.as_bytes())))
        .collect();
    assert_eq!(masters.len(), 3, "the keys must live on every master");
    let gw = Gateway::start(&cluster, "");
    let mut reference = Transcript::reference();
    keyspace_script(&reference_server.addr(), &mut reference);
    let mut meridian = Transcript::following(&reference);
    keyspace_script(&gw.addr(), &mut meridian);
    assert_same(&meridian, &reference);
}

fn sharded_script(addr: &str, proto: u8, t: &mut Transcript) {
    let c1 = key_in_slot(0, "s1");
    let c2 = key_in_slot(16383, "s2");
    let c3 = key_in_slot(8000, "s3");
    let c4 = key_in_slot(100, "s4");
    let (c1, c2, c3, c4) = (c1.as_str(), c2.as_str(), c3.as_str(), c4.as_str());
    let mut c = clients(addr, 2, proto, t);
    let [sub, publisher] = &mut c[..] else {
        unreachable!("two clients")
    };
    t.multi(sub, &["SSUBSCRIBE", c1, c2, c3]);
    t.multi(sub, &["SSUBSCRIBE", c3, c4, c1]);
    t.multi(sub, &["SUBSCRIBE", "plain"]);
    for (i, channel) in [c1, c2, c3, c4].iter().enumerate() {
        t.call(publisher, &["SPUBLISH", channel, &format!("m{i}")]);
    }
    t.messages(sub, "sub");
    t.call(publisher, &["PUBSUB", "SHARDNUMSUB", c1, c2, c3, c4]);
    t.multi(sub, &["SUNSUBSCRIBE", c2, c1, "never"]);
    t.multi(sub, &["UNSUBSCRIBE", "plain"]);
    // Still subscribed to shard channels: RESP2 refuses GET, RESP3 answers it.
    t.call(sub, &["GET", "k"]);
    t.call(publisher, &["SPUBLISH", c1, "gone"]);
    t.call(publisher, &["SPUBLISH", c3, "still"]);
    t.messages(sub, "sub");
    t.unordered(sub, &["SUNSUBSCRIBE"]);
    t.multi(sub, &["SUNSUBSCRIBE"]);
    t.call(sub, &["GET", "k"]);
}

/// Issue 12 item 5: SSUBSCRIBE and SUNSUBSCRIBE with channels in several slots are split by
/// slot and answered in Redis' order, one confirmation per channel with running counts.
#[test]
fn sharded_subscribe_across_slots_matches_one_redis() {
    let reference_server = Standalone::start(&[]);
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    for proto in [2, 3] {
        let mut reference = Transcript::reference();
        sharded_script(&reference_server.addr(), proto, &mut reference);
        let mut meridian = Transcript::following(&reference);
        sharded_script(&gw.addr(), proto, &mut meridian);
        assert_same(&meridian, &reference);
    }
}

/// Channels the ACL of the test allows (`&*ok*`), on two masters, and one it refuses.
fn acl_channels() -> (String, String, String) {
    (
        key_in_slot(0, "ok:a"),
        key_in_slot(16383, "ok:b"),
        key_in_slot(8000, "bad"),
    )
}

fn refused_script(addr: &str, t: &mut Transcript) {
    let (a, b, bad) = acl_channels();
    let (a, b, bad) = (a.as_str(), b.as_str(), bad.as_str());
    let mut c = clients(addr, 1, 2, t);
    let sub = &mut c[0];
    t.multi(sub, &["SUBSCRIBE", bad]);
    t.call(sub, &["GET", "k"]);
    t.multi(sub, &["SSUBSCRIBE", a, bad]);
    t.call(sub, &["GET", "k"]);
    t.multi(sub, &["PSUBSCRIBE", "bad*"]);
    t.call(sub, &["GET", "k"]);
    t.multi(sub, &["SUBSCRIBE", a, b]);
    t.call(sub, &["GET", "k"]);
    t.multi(sub, &["SUBSCRIBE", b, bad, a]);
    t.multi(sub, &["UNSUBSCRIBE", a, b]);
    t.call(sub, &["GET", "k"]);
}

/// Issue 12 item 5: a subscribe a node refuses (here by ACL) answers the node's error, leaves
/// no subscription behind on any master and does not leave a RESP2 client in subscribed mode.
#[test]
fn a_refused_subscribe_leaves_no_subscription() {
    let acl = ["ACL", "SETUSER", "default", "resetchannels", "&*ok*"];
    let reference_server = Standalone::start(&[]);
    let mut direct = reference_server.raw();
    assert_eq!(direct.call(&acl), b"+OK\r\n");
    let cluster = Cluster::start(3, 0);
    for node in cluster.nodes() {
        node.ok(&acl);
    }
    let gw = Gateway::start(&cluster, "");
    let mut reference = Transcript::reference();
    refused_script(&reference_server.addr(), &mut reference);
    let mut meridian = Transcript::following(&reference);
    refused_script(&gw.addr(), &mut meridian);
    assert_same(&meridian, &reference);

    // What a master accepted before another refused was taken back.
    let (a, b, _) = acl_channels();
    let mut q = gw.client();
    common::wait_until("no subscription is left on any master", SETTLE, || {
        let through = pair_counts(&run(&mut q, &["PUBSUB", "SHARDNUMSUB", &a]));
        let direct: Vec<i64> = cluster
            .masters()
            .iter()
            .flat_map(|m| pair_counts(&cluster.query(m, &["PUBSUB", "NUMSUB", &a, &b])))
            .collect();
        if through.iter().chain(&direct).all(|&n| n == 0) {
            Ok(())
        } else {
            Err(format!(
                "SHARDNUMSUB {through:?}, NUMSUB on the masters {direct:?}"
            ))
        }
    });
}

/// The counts of a `[name, count, ...]` reply.
fn pair_counts(v: &redis::Value) -> Vec<i64> {
    match v {
        redis::Value::Array(items) => items.iter().skip(1).step_by(2).map(int).collect(),
        other => panic!("expected pairs, got {other:?}"),
    }
}
