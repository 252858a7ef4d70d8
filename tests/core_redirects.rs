//! MOVED and ASK through meridian: a slot migrated by hand (CLUSTER SETSLOT + MIGRATE) while a
//! client reads it, and keys read and written in the middle of a migration.

mod common;
mod fakes;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::raw::{Raw, encode, show};
use common::{Cluster, Gateway, key_in_slot, value_text};
use fakes::probe::{info, info_u64};

/// Runs GETs of `keys` (each holding its own name) through meridian until stopped; returns
/// (rounds, unexpected replies).
fn hammer(
    addr: String,
    keys: Vec<String>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<(u64, Vec<String>)> {
    thread::spawn(move || {
        let mut raw = Raw::connect(&addr);
        let mut errors = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut rounds = 0;
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline && rounds < 1_000_000 {
            for key in &keys {
                let got = match raw.try_request(&encode(&["GET", key.as_str()])) {
                    Ok(got) => got,
                    Err(e) => {
                        errors.push(format!("GET {key}: {e}"));
                        return (rounds, errors);
                    }
                };
                let want = format!("${}\r\n{key}\r\n", key.len()).into_bytes();
                if got != want && errors.len() < 10 {
                    errors.push(format!("GET {key} → {}", show(&got)));
                }
            }
            rounds += 1;
        }
        (rounds, errors)
    })
}

#[test]
fn moved_after_a_slot_migration_and_ask_during_one() {
    let cluster = Cluster::start(3, 1);
    let gw = Gateway::start(&cluster, "");
    let addr = gw.addr();
    let mut raw = Raw::connect(&addr);
    let nodes: Vec<String> = cluster.nodes()[..3]
        .iter()
        .map(|n| n.addr.clone())
        .collect();

    // MOVED: a slot migrated by hand while a client keeps reading it. The refresher may win
    // the race to the new owner; a few slots make at least one redirect certain in practice.
    let mut moved_seen = false;
    for slot in [1000u16, 1001, 1002, 1003] {
        let keys: Vec<String> = (0..20)
            .map(|i| key_in_slot(slot, &format!("mv{i}")))
            .collect();
        for key in &keys {
            assert_eq!(raw.call(&["SET", key.as_str(), key.as_str()]), b"+OK\r\n");
        }
        assert_eq!(cluster.master_of_slot(slot), nodes[0]);
        let before = info_u64(&info(&mut raw, "stats"), "Redirects");
        let stop = Arc::new(AtomicBool::new(false));
        let reader = hammer(addr.clone(), keys.clone(), stop.clone());
        thread::sleep(Duration::from_millis(50));
        cluster.migrate_slot(slot, &nodes[0], &nodes[1]);
        // Straight after the move, before the next periodic refresh.
        for key in &keys {
            let want = format!("${}\r\n{key}\r\n", key.len());
            assert_eq!(
                raw.call_text(&["GET", key.as_str()]),
                want,
                "after the move"
            );
        }
        stop.store(true, Ordering::SeqCst);
        let (rounds, errors) = reader.join().unwrap();
        assert!(rounds > 0);
        assert!(
            errors.is_empty(),
            "reads during the migration of slot {slot}: {errors:#?}"
        );
        // Writes land on the new owner.
        assert_eq!(raw.call(&["SET", keys[0].as_str(), "new"]), b"+OK\r\n");
        assert_eq!(
            value_text(&cluster.query(&nodes[1], &["GET", &keys[0]])).as_deref(),
            Some("new")
        );
        let after = info_u64(&info(&mut raw, "stats"), "Redirects");
        if after > before {
            moved_seen = true;
            break;
        }
    }
    assert!(
        moved_seen,
        "no MOVED was ever followed (INFO Redirects did not grow)"
    );

    // ASK: slot 2000 migrating from master 0 to master 2, one key moved so far.
    let slot = 2000u16;
    assert_eq!(cluster.master_of_slot(slot), nodes[0]);
    let (moved, stays, fresh) = (
        key_in_slot(slot, "ask:moved"),
        key_in_slot(slot, "ask:stays"),
        key_in_slot(slot, "ask:fresh"),
    );
    assert_eq!(raw.call(&["SET", moved.as_str(), "m1"]), b"+OK\r\n");
    assert_eq!(raw.call(&["SET", stays.as_str(), "s1"]), b"+OK\r\n");
    let other = key_in_slot(9000, "ask:other");
    assert_eq!(raw.call(&["SET", other.as_str(), "o1"]), b"+OK\r\n");
    cluster.begin_migration(slot, &nodes[0], &nodes[2]);
    cluster.migrate_key(slot, &moved, &nodes[0], &nodes[2]);
    let before = info_u64(&info(&mut raw, "stats"), "Redirects");
    let on_target = |key: &str| {
        let replies = cluster.query_many(&nodes[2], &[&["ASKING"], &["GET", key]]);
        value_text(&replies[1])
    };

    assert_eq!(
        raw.call(&["GET", moved.as_str()]),
        b"$2\r\nm1\r\n",
        "migrated key readable"
    );
    assert_eq!(
        raw.call(&["SET", moved.as_str(), "m2"]),
        b"+OK\r\n",
        "migrated key writable"
    );
    assert_eq!(on_target(&moved).as_deref(), Some("m2"));
    assert_eq!(
        raw.call(&["GET", stays.as_str()]),
        b"$2\r\ns1\r\n",
        "unmigrated key"
    );
    assert_eq!(raw.call(&["SET", stays.as_str(), "s2"]), b"+OK\r\n");
    assert_eq!(
        value_text(&cluster.query(&nodes[0], &["GET", &stays])).as_deref(),
        Some("s2"),
        "an unmigrated key is still written on the source"
    );
    assert_eq!(
        raw.call(&["SET", fresh.as_str(), "f1"]),
        b"+OK\r\n",
        "new key in the slot"
    );
    assert_eq!(
        on_target(&fresh).as_deref(),
        Some("f1"),
        "new keys go to the target"
    );
    let after = info_u64(&info(&mut raw, "stats"), "Redirects");
    assert!(
        after >= before + 3,
        "ASKs followed: Redirects {before} → {after}"
    );

    // Multi-key during the migration: the source's TRYAGAIN passes through unchanged, and in
    // a split command that part's error is the reply, never a nil.
    let mut source = Raw::connect(&nodes[0]);
    let want = source.call(&["MGET", moved.as_str(), stays.as_str()]);
    assert!(
        want.starts_with(b"-TRYAGAIN"),
        "redis-server: {}",
        show(&want)
    );
    let got = raw.call(&["MGET", moved.as_str(), stays.as_str()]);
    assert_eq!(show(&got), show(&want));
    let got = raw.call(&["MGET", other.as_str(), moved.as_str(), stays.as_str()]);
    assert!(
        got.starts_with(b"-TRYAGAIN"),
        "split MGET with a TRYAGAIN part: {}",
        show(&got)
    );
    assert_eq!(raw.call(&["GET", other.as_str()]), b"$2\r\no1\r\n");
    // (Not atomic across slots, like any cluster client: the other slot's part did run.)
    let scratch = key_in_slot(9000, "ask:scratch");
    assert_eq!(raw.call(&["SET", scratch.as_str(), "x"]), b"+OK\r\n");
    let got = raw.call(&["DEL", scratch.as_str(), moved.as_str(), stays.as_str()]);
    assert!(
        got.starts_with(b"-TRYAGAIN"),
        "split DEL with a TRYAGAIN part: {}",
        show(&got)
    );

    cluster.finish_migration(slot, &nodes[0], &nodes[2]);
    assert_eq!(
        raw.call(&[
            "MGET",
            moved.as_str(),
            stays.as_str(),
            fresh.as_str(),
            other.as_str()
        ]),
        b"*4\r\n$2\r\nm2\r\n$2\r\ns2\r\n$2\r\nf1\r\n$2\r\no1\r\n"
    );
    assert_eq!(
        value_text(&cluster.query(&nodes[2], &["GET", &stays])).as_deref(),
        Some("s2")
    );
}
