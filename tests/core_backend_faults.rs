//! Backend-side faults staged with scripted fake nodes (a reply cut in half, a node that never
//! answers, a redirect storm) and clients that do not read their replies: each is answered or
//! closed cleanly and other clients do not notice.

mod common;
mod fakes;

use std::thread;
use std::time::Duration;

use common::raw::{Raw, encode, show};
use common::{Gateway, GatewayOptions, key_slot, rss_kib, wait_until};
use fakes::probe::{Bystander, info, info_u64};
use fakes::{Action, FakeNode};

/// A fake node for retries: `GET once` and `SET once` reply half then close the first time and
/// answer normally afterwards; everything else answers `ok`.
fn flaky_once_fake() -> FakeNode {
    let cut_get = std::sync::atomic::AtomicBool::new(false);
    let cut_set = std::sync::atomic::AtomicBool::new(false);
    FakeNode::start(move |args, _me| {
        let name = upper(&args[0]);
        let key = args.get(1).map(Vec::as_slice).unwrap_or_default();
        let first = |flag: &std::sync::atomic::AtomicBool| {
            !flag.swap(true, std::sync::atomic::Ordering::SeqCst)
        };
        match (name.as_str(), key) {
            ("GET", b"once") if first(&cut_get) => {
                Some(Action::ReplyThenClose(b"$10\r\nhel".to_vec()))
            }
            ("SET", b"once") if first(&cut_set) => Some(Action::ReplyThenClose(b"+O".to_vec())),
            ("SET", _) => Some(Action::Reply(b"+OK\r\n".to_vec())),
            ("GET", _) => Some(Action::Reply(b"$2\r\nok\r\n".to_vec())),
            _ => None,
        }
    })
}

#[test]
fn a_read_whose_connection_dies_is_retried_once_a_write_never() {
    let fake = flaky_once_fake();
    let gw = Gateway::start_with_seeds(&[fake.addr()], GatewayOptions::default());
    let mut client = Raw::connect(&gw.addr());
    assert_eq!(client.call(&["GET", "warm"]), b"$2\r\nok\r\n");
    // The node dies mid-reply to the GET: meridian resends it once, the client sees the value.
    assert_eq!(client.call(&["GET", "once"]), b"$2\r\nok\r\n");
    assert_eq!(fake.count(&["GET", "once"]), 2, "{:?}", fake.seen());
    // The same for a SET: it may have run, so it is not resent and the client is told.
    let reply = client.call(&["SET", "once", "v"]);
    let text = show(&reply);
    assert!(
        reply.starts_with(b"-ERR meridian: ") && text.contains("outcome is unknown (not retried)"),
        "{text}"
    );
    assert_eq!(fake.count(&["SET", "once", "v"]), 1, "{:?}", fake.seen());
    assert_eq!(client.call(&["SET", "again", "v"]), b"+OK\r\n");
    let stats = info(&mut client, "stats");
    assert_eq!(info_u64(&stats, "ReadRetries"), 1, "{stats:?}");
}

#[test]
fn a_request_that_never_reached_its_node_answers_tryagain() {
    // A node that answers the gateway's first map, then is gone: the next requests cannot be
    // sent anywhere, and clients get TRYAGAIN, which cluster-aware libraries retry.
    let fake = scripted_fake();
    let gw = Gateway::start_with_seeds(&[fake.addr()], GatewayOptions::default());
    let mut client = Raw::connect(&gw.addr());
    assert_eq!(client.call(&["GET", "a"]), b"$2\r\nok\r\n");
    drop(fake);
    for key in ["x", "y", "z"] {
        for request in [vec!["GET", key], vec!["SET", key, "1"]] {
            let reply = client.call(&request);
            let text = show(&reply);
            assert!(
                reply.starts_with(b"-TRYAGAIN ")
                    || (request[0] == "SET" && text.contains("outcome is unknown")),
                "{request:?} with the node gone: {text}"
            );
        }
    }
    let reply = client.call(&["GET", "last"]);
    assert!(reply.starts_with(b"-TRYAGAIN "), "{}", show(&reply));
}

fn upper(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).to_uppercase()
}

/// A fake node whose GET and MGET behaviour depends on the key: `cut` (reply cut in half then
/// close), `hang` (never answers), `moved` / `ask` (redirect to itself forever), anything else
/// answers `ok`.
fn scripted_fake() -> FakeNode {
    FakeNode::start(|args, me| {
        let name = upper(&args[0]);
        let key = args.get(1).map(Vec::as_slice).unwrap_or_default();
        let slot = key_slot(key);
        match name.as_str() {
            "GET" => Some(match key {
                b"cut" => Action::ReplyThenClose(b"$10\r\nhel".to_vec()),
                b"hang" => Action::Hang,
                b"moved" => Action::Reply(format!("-MOVED {slot} {me}\r\n").into_bytes()),
                b"ask" => Action::Reply(format!("-ASK {slot} {me}\r\n").into_bytes()),
                _ => Action::Reply(b"$2\r\nok\r\n".to_vec()),
            }),
            "MGET" if args[1..].iter().any(|k| k == b"cut") => Some(Action::ReplyThenClose(
                b"*2\r\n$2\r\nok\r\n$5\r\nhe".to_vec(),
            )),
            "MGET" => {
                let mut out = format!("*{}\r\n", args.len() - 1).into_bytes();
                for _ in 1..args.len() {
                    out.extend_from_slice(b"$2\r\nok\r\n");
                }
                Some(Action::Reply(out))
            }
            _ => None,
        }
    })
}

#[test]
fn backend_dying_mid_reply_is_an_error_for_its_requests_only() {
    let fake = scripted_fake();
    let gw = Gateway::start_with_seeds(&[fake.addr()], GatewayOptions::default());
    let addr = gw.addr();
    let mut other = Raw::connect(&addr);
    assert_eq!(other.call(&["GET", "a"]), b"$2\r\nok\r\n");

    let mut client = Raw::connect(&addr);
    let reply = client.call(&["GET", "cut"]);
    assert!(
        reply.starts_with(b"-ERR "),
        "GET answered half then closed by its node: {}",
        show(&reply)
    );
    // The same client and the others carry on: meridian reconnects.
    assert_eq!(client.call(&["GET", "a"]), b"$2\r\nok\r\n");
    assert_eq!(other.call(&["GET", "b"]), b"$2\r\nok\r\n");
    assert_eq!(other.call(&["PING"]), b"+PONG\r\n");

    // A split MGET whose part dies mid-reply is an error, never nils.
    let keys = ["cut", "x1", "x2", "x3"];
    assert!(
        keys.iter()
            .map(|k| key_slot(k.as_bytes()))
            .collect::<std::collections::HashSet<_>>()
            .len()
            > 1,
        "the MGET must span slots"
    );
    let mut args = vec!["MGET"];
    args.extend(keys);
    let reply = client.call(&args);
    assert!(
        reply.starts_with(b"-"),
        "MGET with a dead part: {}",
        show(&reply)
    );
    assert_eq!(
        client.call(&["MGET", "x1", "x2"]),
        b"*2\r\n$2\r\nok\r\n$2\r\nok\r\n"
    );
    // A pipeline around the failure keeps its order: the reply before the cut arrives, the cut
    // request fails; the one after it was on the dying connection too, so it may fail as well.
    let mut pipeline = encode(&["GET", "p1"]);
    pipeline.extend(encode(&["GET", "cut"]));
    pipeline.extend(encode(&["GET", "p2"]));
    client.write(&pipeline);
    assert_eq!(show(&client.read()), show(b"$2\r\nok\r\n"));
    let failed = client.read();
    assert!(failed.starts_with(b"-ERR "), "{}", show(&failed));
    let last = client.read();
    assert!(
        last == b"$2\r\nok\r\n" || last.starts_with(b"-ERR "),
        "{}",
        show(&last)
    );
    assert_eq!(client.call(&["GET", "p3"]), b"$2\r\nok\r\n");
}

#[test]
fn backend_that_never_answers_gives_an_error_not_a_hang() {
    let fake = scripted_fake();
    let gw = Gateway::start_with_seeds(&[fake.addr()], GatewayOptions::default());
    let addr = gw.addr();
    let mut client = Raw::connect(&addr);
    assert_eq!(client.call(&["GET", "a"]), b"$2\r\nok\r\n");

    client.send(&["GET", "hang"]);
    // Local commands of other clients are answered while the node is silent.
    let mut other = Raw::connect(&addr);
    assert_eq!(other.call(&["PING"]), b"+PONG\r\n");
    // The guard timeout (10 s) only turns a hang into a failure; breaker.server_timeout is 1 s.
    let reply = client.try_read();
    let reply = reply.unwrap_or_else(|e| {
        panic!("GET on a node that never answers: no reply (breaker.server_timeout is 1s): {e}")
    });
    assert!(reply.starts_with(b"-ERR "), "{}", show(&reply));
    // Once the silent connection is given up, the node is used again.
    let mut fresh = Raw::connect(&addr);
    wait_until(
        "GET to work again after the silent connection",
        Duration::from_secs(20),
        || match fresh.call(&["GET", "b"]) {
            r if r == b"$2\r\nok\r\n" => Ok(()),
            r => Err(show(&r)),
        },
    );
}

#[test]
fn redirect_storm_ends_after_five_redirects_with_the_last_redirect_error() {
    let fake = scripted_fake();
    let gw = Gateway::start_with_seeds(&[fake.addr()], GatewayOptions::default());
    let mut client = Raw::connect(&gw.addr());

    let slot = key_slot(b"moved");
    let reply = client.call(&["GET", "moved"]);
    assert_eq!(
        show(&reply),
        show(format!("-MOVED {slot} {}\r\n", fake.addr()).as_bytes())
    );
    assert_eq!(
        fake.count(&["GET", "moved"]),
        6,
        "the first try and 5 redirects: {:?}",
        fake.seen()
    );

    let slot = key_slot(b"ask");
    let reply = client.call(&["GET", "ask"]);
    assert_eq!(
        show(&reply),
        show(format!("-ASK {slot} {}\r\n", fake.addr()).as_bytes())
    );
    assert_eq!(fake.count(&["GET", "ask"]), 6, "{:?}", fake.seen());
    // Every ASK retry was preceded by ASKING.
    let seen = fake.seen();
    let asks: Vec<usize> = (0..seen.len())
        .filter(|&i| seen[i] == ["GET", "ask"])
        .collect();
    for &i in &asks[1..] {
        assert!(
            i > 0 && seen[i - 1][0].eq_ignore_ascii_case("ASKING"),
            "request before retry {i}: {:?}",
            seen[i - 1]
        );
    }
    // The client is still served normally.
    assert_eq!(client.call(&["GET", "plain"]), b"$2\r\nok\r\n");
    let stats = info(&mut client, "stats");
    assert!(
        info_u64(&stats, "Redirects") >= 10,
        "INFO Redirects counts the storm: {stats:?}"
    );
}

/// Size of the value the slow-reader fake returns for `GET big`.
const BIG: usize = 256 * 1024;
/// GETs a slow reader sends: 100 MB of replies if all were buffered.
const SLOW_GETS: usize = 400;

fn big_value_fake() -> FakeNode {
    FakeNode::start(|args, _| {
        (upper(&args[0]) == "GET").then(|| {
            if args.get(1).is_some_and(|k| k == b"big") {
                let mut out = format!("${BIG}\r\n").into_bytes();
                out.resize(out.len() + BIG, b'b');
                out.extend_from_slice(b"\r\n");
                Action::Reply(out)
            } else {
                Action::Reply(b"$2\r\nok\r\n".to_vec())
            }
        })
    })
}

/// Starts a gateway with a 4 MB output buffer limit in front of `fake`.
fn slow_reader_gateway(fake: &FakeNode) -> Gateway {
    let opts = GatewayOptions {
        extra_yaml: "client: { output_buffer_limit: 4mb }\n".to_string(),
        ..GatewayOptions::default()
    };
    Gateway::start_with_seeds(&[fake.addr()], opts)
}

/// Reads `n` replies of `GET big` and checks each one.
fn drain_big_replies(raw: &mut Raw, n: usize) {
    for i in 0..n {
        let reply = raw
            .try_read()
            .unwrap_or_else(|e| panic!("reply {i} of {n}: {e}"));
        assert_eq!(
            reply.len(),
            BIG + format!("${BIG}\r\n").len() + 2,
            "reply {i}"
        );
        assert!(reply[reply.len() - 3] == b'b', "reply {i}");
    }
}

/// Samples meridian's RSS a few times while the slow client is not reading; the largest.
fn peak_rss_kib(pid: u32) -> u64 {
    (0..20)
        .map(|_| {
            thread::sleep(Duration::from_millis(50));
            rss_kib(pid)
        })
        .max()
        .unwrap()
}

#[test]
fn a_client_that_does_not_read_stops_being_read() {
    let fake = big_value_fake();
    let gw = slow_reader_gateway(&fake);
    let addr = gw.addr();
    let bystander = Bystander::start(&addr, "x", "ok");
    bystander.wait_rounds(3);
    let baseline = rss_kib(gw.pid());

    // Requests trickle in while no reply is read.
    let mut slow = Raw::connect(&addr);
    let get = encode(&["GET", "big"]);
    for _ in 0..SLOW_GETS {
        slow.write(&get);
        thread::sleep(Duration::from_millis(2));
    }
    let peak = peak_rss_kib(gw.pid());
    let served = fake.count(&["GET", "big"]);
    bystander.wait_rounds(3);
    // 100 MB of replies were asked for; the gateway holds about its 4 MB limit.
    assert!(
        peak.saturating_sub(baseline) < 40 * 1024,
        "meridian grew from {baseline} KiB to {peak} KiB for a client that reads nothing"
    );
    assert!(
        served < SLOW_GETS,
        "every GET was forwarded although the client read nothing"
    );
    drain_big_replies(&mut slow, SLOW_GETS);
    assert_eq!(slow.call(&["GET", "x"]), b"$2\r\nok\r\n");
    let (rounds, errors) = bystander.finish();
    assert!(rounds > 0 && errors.is_empty(), "bystander: {errors:?}");
}

#[test]
fn a_burst_from_a_client_that_does_not_read_is_bounded_too() {
    let fake = big_value_fake();
    let gw = slow_reader_gateway(&fake);
    let addr = gw.addr();
    let baseline = rss_kib(gw.pid());
    // All requests in one write: read by the gateway before any reply exists.
    let mut slow = Raw::connect(&addr);
    let burst: Vec<u8> = (0..SLOW_GETS)
        .flat_map(|_| encode(&["GET", "big"]))
        .collect();
    slow.write(&burst);
    let peak = peak_rss_kib(gw.pid());
    assert!(
        peak.saturating_sub(baseline) < 40 * 1024,
        "meridian grew from {baseline} KiB to {peak} KiB holding replies for a client that reads nothing \
         (forwarded {} of {SLOW_GETS} GETs)",
        fake.count(&["GET", "big"])
    );
    drain_big_replies(&mut slow, SLOW_GETS);
}
