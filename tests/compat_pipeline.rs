//! Clients that write before they read never hang (issue 12, items 1 and 2): whole pipelines
//! written before the first reply is read, a client that never reads is cut off with a logged
//! reason instead of hanging, and transactions whose first command has no key.

mod common;

use common::{Cluster, Gateway, key_in_slot, run, text};
use redis::Value;
use std::io::{ErrorKind, Read, Write};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Hang guard for work that must finish (not a speed limit: it only turns a hang into a failure).
const HANG_GUARD: Duration = Duration::from_secs(300);

fn join_within<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(HANG_GUARD)
        .unwrap_or_else(|e| panic!("{what} did not finish: {e} (meridian hangs)"))
}

#[test]
fn a_pipeline_written_before_any_read_completes() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut conn = gw.client();
    conn.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    conn.set_write_timeout(Some(HANG_GUARD)).expect("timeout");
    // The redis crate writes the whole pipeline, then reads: 10,000 × (SET 1 KB + GET 1 KB),
    // well past `limits.max_pipeline` (4096).
    let value = vec![b'x'; 1024];
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        let key = format!("pipe:{i}");
        pipe.cmd("SET").arg(&key).arg(&value);
        pipe.cmd("GET").arg(&key);
    }
    let replies: Vec<Value> = pipe.query(&mut conn).expect("pipeline");
    assert_eq!(replies.len(), 20_000);
    for (i, pair) in replies.chunks(2).enumerate() {
        assert_eq!(pair[0], Value::Okay, "SET #{i}");
        assert_eq!(pair[1], Value::BulkString(value.clone()), "GET #{i}");
    }
}

#[test]
fn a_raw_client_writing_100_mb_before_reading_gets_every_reply() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut stream = gw.raw().stream;
    stream.set_write_timeout(Some(HANG_GUARD)).expect("timeout");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    // ~1 KB SETs over many slots, 100 MB in all, written by one thread before anything is read.
    let value = "v".repeat(1000);
    let mut batch = Vec::new();
    let per_batch = 1000;
    for i in 0..per_batch {
        batch.extend_from_slice(&common::raw::encode(&["SET", &format!("raw:{i}"), &value]));
    }
    let rounds = (100 << 20) / batch.len() + 1;
    let total = rounds * per_batch;
    let mut writer = stream.try_clone().expect("clone");
    let written = join_within("writing 100 MB of commands", move || {
        for _ in 0..rounds {
            writer.write_all(&batch).expect("meridian keeps reading");
        }
        writer
            .write_all(&common::raw::encode(&["PING"]))
            .expect("PING");
        rounds * batch.len()
    });
    assert!(written >= 100 << 20);
    let want = "+OK\r\n".repeat(total) + "+PONG\r\n";
    let got = join_within("reading the replies", move || {
        let mut got = vec![0u8; want.len()];
        stream.read_exact(&mut got).expect("every reply");
        (got, want)
    });
    assert!(
        got.0 == got.1.as_bytes(),
        "replies differ from {total} × +OK then +PONG"
    );
}

#[test]
fn a_client_that_never_reads_is_disconnected_with_a_reason() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(
        &cluster,
        "client:\n  output_buffer_limit: 1mb\n  output_stall: 500ms\n",
    );
    let mut other = gw.client();
    let big = "b".repeat(100 * 1024);
    assert_eq!(run(&mut other, &["SET", "big", &big]), Value::Okay);
    // 2,000 GETs of 100 KB: 200 MB of replies, far more than the limit and socket buffers.
    let mut stream = gw.raw().stream;
    stream.set_write_timeout(Some(HANG_GUARD)).expect("timeout");
    stream.set_read_timeout(Some(HANG_GUARD)).expect("timeout");
    let mut writer = stream.try_clone().expect("clone");
    let wrote = join_within("writing GETs", move || {
        let get = common::raw::encode(&["GET", "big"]);
        let mut n = 0;
        for _ in 0..2000 {
            if writer.write_all(&get).is_err() {
                break;
            }
            n += 1;
        }
        n
    });
    assert!(wrote > 0);
    // Other clients are served meanwhile.
    assert_eq!(text(&run(&mut other, &["PING"])), "PONG");
    let log = "disconnecting a client that reads none of its replies";
    common::wait_until("the stall to be logged", HANG_GUARD, || {
        if gw.stderr().contains(log) {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    // The stalled client sees the end of its stream after whatever was already sent.
    let received = join_within("reading until meridian closes", move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0usize;
        loop {
            match stream.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => total += n,
                Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(total),
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .expect("meridian closes the connection");
    assert!(
        received < 2000 * big.len(),
        "got every reply ({received} bytes), expected a cut"
    );
    assert_eq!(text(&run(&mut other, &["PING"])), "PONG");
}

#[test]
fn transactions_whose_first_command_has_no_key_run() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let mut c = gw.client();
    for i in 0..30u16 {
        // Keys all over the key space: the first keyed command picks the node.
        let key = key_in_slot(i * 541, "tx");
        for first in [&["PING"][..], &["TIME"], &["EVAL", "return 7", "0"]] {
            assert_eq!(run(&mut c, &["MULTI"]), Value::Okay);
            assert_eq!(text(&run(&mut c, first)), "QUEUED", "{first:?}");
            assert_eq!(text(&run(&mut c, &["INCR", &key])), "QUEUED");
            assert_eq!(text(&run(&mut c, &["EXPIRE", &key, "100"])), "QUEUED");
            let got = run(&mut c, &["EXEC"]);
            let Value::Array(items) = &got else {
                panic!("EXEC after {first:?}: {got:?}");
            };
            assert_eq!(items.len(), 3, "{got:?}");
            assert!(matches!(items[1], Value::Int(_)), "{got:?}");
            assert_eq!(items[2], Value::Int(1), "{got:?}");
            match first[0] {
                "PING" => assert_eq!(items[0], Value::SimpleString("PONG".into())),
                "EVAL" => assert_eq!(items[0], Value::Int(7)),
                _ => assert!(
                    matches!(&items[0], Value::Array(t) if t.len() == 2),
                    "{got:?}"
                ),
            }
        }
    }
    // Only keyless commands: any master runs them.
    assert_eq!(run(&mut c, &["MULTI"]), Value::Okay);
    assert_eq!(text(&run(&mut c, &["PING"])), "QUEUED");
    assert_eq!(text(&run(&mut c, &["ECHO", "x"])), "QUEUED");
    assert_eq!(
        run(&mut c, &["EXEC"]),
        Value::Array(vec![
            Value::SimpleString("PONG".into()),
            Value::BulkString(b"x".to_vec())
        ])
    );
    // Keyless then discarded: nothing left behind, the next transaction is clean.
    assert_eq!(run(&mut c, &["MULTI"]), Value::Okay);
    assert_eq!(text(&run(&mut c, &["TIME"])), "QUEUED");
    assert_eq!(run(&mut c, &["DISCARD"]), Value::Okay);
    assert_eq!(run(&mut c, &["EXEC"]), run(&mut c, &["EXEC"]));
    // A keyed command after keyless ones still refuses a second slot.
    let (a, b) = (key_in_slot(10, "a"), key_in_slot(9000, "b"));
    assert_eq!(run(&mut c, &["MULTI"]), Value::Okay);
    assert_eq!(text(&run(&mut c, &["PING"])), "QUEUED");
    assert_eq!(text(&run(&mut c, &["SET", &a, "1"])), "QUEUED");
    assert!(common::err(&run(&mut c, &["SET", &b, "1"])).starts_with("CROSSSLOT"));
    assert!(common::err(&run(&mut c, &["EXEC"])).starts_with("EXECABORT"));
}

#[test]
fn redis_py_pipelines_and_transactions() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/redispy_pipeline.py"
    );
    let (host, port) = (host.to_string(), port.to_string());
    let out = join_within("redis-py", move || {
        Command::new("python3")
            .arg(script)
            .arg(host)
            .arg(port)
            .output()
            .expect("run python3 (scripts/install-deps.sh installs redis-py)")
    });
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("done"),
        "redis-py failed: {}\n{stdout}\n{stderr}",
        out.status
    );
}
