//! Replies written from where they arrive (the session sleeps with one request in flight, and
//! the backend's task writes the reply to the client's socket): a reply too big for the socket
//! at once is finished by the session, whole and before anything after it; every byte is
//! counted once in `meridian_client_sent_bytes`; and clients that switch between one request
//! at a time and pipelines get every reply in order.

mod common;

use std::thread;
use std::time::Duration;

use common::raw::{Raw, encode, show};
use common::{Cluster, Gateway, http, run};
use redis::Value;

/// `meridian_client_sent_bytes` from the gateway's `/metrics`.
fn sent_bytes(admin: &str) -> u64 {
    let body = http::get(admin, "/metrics").body;
    body.lines()
        .find_map(|l| l.strip_prefix("meridian_client_sent_bytes_total "))
        .unwrap_or_else(|| panic!("no meridian_client_sent_bytes_total in {body}"))
        .trim()
        .parse::<f64>()
        .expect("a number") as u64
}

fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

#[test]
fn a_reply_the_socket_cannot_take_at_once_arrives_whole_and_first() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let admin = gw.admin_addr();
    // 24 MB: far more than a loopback socket's buffers take while the client does not read.
    let big: Vec<u8> = (0..24 << 20).map(|i: u32| b'a' + (i % 26) as u8).collect();
    let mut setter = gw.client();
    let set: Value = redis::cmd("SET")
        .arg("wb:big")
        .arg(&big)
        .query(&mut setter)
        .expect("SET");
    assert_eq!(set, Value::Okay);
    assert_eq!(run(&mut setter, &["SET", "wb:small", "s"]), Value::Okay);

    let mut raw = Raw::connect(&gw.addr());
    let before = sent_bytes(&admin);
    let mut want_bytes = 0;
    for round in 0..3 {
        // One request in flight, and the client does not read for a while: the socket takes
        // part of the reply, the rest waits for the session.
        raw.send(&["GET", "wb:big"]);
        thread::sleep(Duration::from_millis(300));
        // Sent while that reply is still on its way: it must come after it.
        raw.send(&["GET", "wb:small"]);
        let got = raw.read();
        let want = bulk(&big);
        assert!(
            got == want,
            "round {round}: {} bytes {}…, want {} bytes",
            got.len(),
            show(&got[..got.len().min(40)]),
            want.len()
        );
        raw.expect(bulk(b"s"));
        raw.send(&["GET", "wb:small"]);
        raw.expect(bulk(b"s"));
        assert_eq!(raw.call_text(&["PING"]), "+PONG\r\n");
        want_bytes += want.len() + 2 * bulk(b"s").len() + "+PONG\r\n".len();
    }
    // Every byte counted once, whichever task wrote it (only this client talked meanwhile).
    // The count follows each write, so the last one may land just after the client read it.
    let counted = common::wait_until(
        "the bytes sent to be counted",
        Duration::from_secs(10),
        || match sent_bytes(&admin) - before {
            n if n >= want_bytes as u64 => Ok(n),
            n => Err(format!("{n} of {want_bytes} counted")),
        },
    );
    assert_eq!(counted, want_bytes as u64, "bytes counted twice");
}

#[test]
fn clients_switching_between_single_requests_and_pipelines_get_every_reply_in_order() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();
    let workers: Vec<_> = (0..4)
        .map(|c| {
            let addr = addr.clone();
            thread::spawn(move || {
                let mut raw = Raw::connect(&addr);
                for round in 0..150usize {
                    // Sizes from a byte to 512 KB, so some replies go out in one write and
                    // some do not.
                    let size = 1usize << ((round * 7 + c) % 20);
                    let key = format!("wb:{c}:{round}");
                    let value = vec![b'0' + (round % 10) as u8; size];
                    let mut set = encode(&[b"SET".as_slice(), key.as_bytes(), &value]);
                    if round % 3 == 0 {
                        // A pipeline: SET, GET, GET of another key, PING.
                        set.extend(encode(&["GET", &key]));
                        set.extend(encode(&["GET", &format!("wb:{c}:{}", round / 2)]));
                        set.extend(encode(&["PING"]));
                        raw.write(&set);
                        raw.expect(b"+OK\r\n");
                        raw.expect(bulk(&value));
                        let earlier = raw.read();
                        assert!(earlier.starts_with(b"$"), "{}", show(&earlier));
                        raw.expect(b"+PONG\r\n");
                    } else {
                        raw.write(&set);
                        raw.expect(b"+OK\r\n");
                        raw.send(&["GET", &key]);
                        raw.expect(bulk(&value));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a client thread failed");
    }
}

/// Descriptors meridian has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("meridian's /proc fd directory")
        .count()
}

#[test]
fn clients_that_leave_before_their_reply_is_written_leave_nothing_behind() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();
    let mut other = Raw::connect(&addr);
    // 4 MB: more than the socket takes at once, so the write from where it arrives fails or
    // stops part-way for a client that is gone.
    let big = vec![b'z'; 4 << 20];
    other.send(&[b"SET".as_slice(), b"wb:gone", &big]);
    other.expect(b"+OK\r\n");
    let fds_before = open_fds(gw.pid());
    for i in 0..40 {
        let mut c = Raw::connect(&addr);
        if i % 2 == 0 {
            // Asks for the big value and leaves at once.
            c.send(&["GET", "wb:gone"]);
        } else {
            // Asks, reads a little of the reply, and leaves.
            c.send(&["GET", "wb:gone"]);
            let mut head = [0u8; 16];
            std::io::Read::read_exact(&mut c.stream, &mut head).expect("the reply begins");
            assert_eq!(&head[..9], b"$4194304\r");
        }
        c.close();
    }
    // Every socket of theirs is closed again (the writeback holds none once its client left),
    // and the gateway still serves.
    common::wait_until(
        "meridian's descriptors to drop back",
        Duration::from_secs(30),
        || match open_fds(gw.pid()) {
            n if n <= fds_before => Ok(()),
            n => Err(format!("{n} open, {fds_before} before")),
        },
    );
    other.send(&["GET", "wb:gone"]);
    other.expect(bulk(&big));
    assert_eq!(other.call_text(&["PING"]), "+PONG\r\n");
    assert!(
        gw.stderr().lines().all(|l| !l.contains("panicked")),
        "meridian panicked:\n{}",
        gw.stderr()
    );
}
