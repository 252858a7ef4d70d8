//! Unit tests of one subscription connection's frame handling: filters, gates, errors, loss, limit.

use super::*;
use crate::backend::env::Env;
use crate::config::Config;
use crate::reply::queue::ReplyQueue;
use crate::shared::Shared;
use crate::topology::{NodeSpec, ShardSpec, Topology};

const HERE: &str = "127.0.0.1:7000";

/// A connection to `HERE` (never opened: nothing is sent) whose outlet's map gives slots
/// 0-8191 to `HERE` and the rest to another master.
fn open_sub(limit_kib: usize) -> (Rc<Sub>, Rc<ReplyQueue>) {
    let mut config = Config::default();
    config.client.output_buffer_limit = limit_kib * 1024;
    let shared = Shared::new(config);
    let env = Env::new(shared.clone(), shared.stats.add_worker());
    let queue = Rc::new(ReplyQueue::new());
    let out = Rc::new(Outlet::new(&env, &queue));
    let shard = |addr: &str, slots| ShardSpec {
        master: NodeSpec {
            addr: addr.to_string(),
            id: addr.to_string(),
        },
        replicas: Vec::new(),
        slots: vec![slots],
    };
    *out.topo.borrow_mut() = Arc::new(Topology::from_shards(vec![
        shard(HERE, (0, 8191)),
        shard("127.0.0.1:7001", (8192, 16383)),
    ]));
    (Sub::open(&out, &Arc::from(HERE), 2), queue)
}

fn place(sub: &Sub, kind: Kind, name: &str) {
    let name = Bytes::copy_from_slice(name.as_bytes());
    sub.placed.borrow_mut().set_mut(kind).insert(name);
}

fn gate(sub: &Sub, token: &str, join: Option<&Rc<Join>>, carries: Option<(Kind, Vec<Bytes>)>) {
    if let Some(join) = join {
        join.add_part();
    }
    sub.gates.borrow_mut().push_back(Gate {
        token: format!("{token}\r\n").into_bytes(),
        join: join.cloned(),
        carries,
        before: BytesMut::new(),
        error: None,
    });
}

fn frame(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn drain(queue: &ReplyQueue) -> String {
    let mut out = BytesMut::new();
    queue.drain_ready(&mut out, usize::MAX);
    String::from_utf8_lossy(&out).into_owned()
}

// "b" is in slot 3300 (served here), "a" in 15495 (served by the other master).
const MSG_B: &str = "*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$1\r\nx\r\n";
const PMSG_A: &str = "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\na\r\n$1\r\nx\r\n";
const PMSG_B: &str = "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$1\r\nb\r\n$1\r\nx\r\n";
const PMSG_KEYSPACE: &str =
    "*4\r\n$8\r\npmessage\r\n$1\r\n*\r\n$22\r\n__keyevent@0__:expired\r\n$1\r\nk\r\n";

#[test]
fn messages_are_delivered_once() {
    let (sub, queue) = open_sub(1024);
    // Not held here: dropped.
    sub.on_frame(frame(MSG_B));
    assert_eq!(drain(&queue), "");
    place(&sub, Kind::Channel, "b");
    place(&sub, Kind::Pattern, "*");
    sub.on_frame(frame(MSG_B));
    // A published message matched by a pattern: only from the master of its slot.
    sub.on_frame(frame(PMSG_A));
    sub.on_frame(frame(PMSG_B));
    // Keyspace notifications: from every master.
    sub.on_frame(frame(PMSG_KEYSPACE));
    assert_eq!(drain(&queue), [MSG_B, PMSG_B, PMSG_KEYSPACE].concat());
}

#[test]
fn a_command_is_answered_after_the_messages_sent_before_it() {
    let (sub, queue) = open_sub(1024);
    place(&sub, Kind::Channel, "b");
    let join = Join::new(queue.clone(), queue.reserve());
    gate(&sub, "meridian:sync:1:0", Some(&join), None);
    join.seal(frame("+answer\r\n"), None);
    sub.on_frame(frame(MSG_B));
    // The node's own confirmation is not the client's: meridian answers.
    sub.on_frame(frame("*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:1\r\n"));
    assert_eq!(drain(&queue), "");
    sub.on_frame(frame("*2\r\n$4\r\npong\r\n$17\r\nmeridian:sync:1:0\r\n"));
    sub.on_frame(frame(MSG_B));
    assert_eq!(drain(&queue), [MSG_B, "+answer\r\n", MSG_B].concat());
    assert!(sub.gates.borrow().is_empty());
}

#[test]
fn a_refused_subscribe_is_the_clients_error_and_unplaced() {
    let (sub, queue) = open_sub(1024);
    place(&sub, Kind::Channel, "b");
    let join = Join::new(queue.clone(), queue.reserve());
    let names = vec![Bytes::from_static(b"b")];
    gate(&sub, "t0", Some(&join), Some((Kind::Channel, names)));
    join.seal(frame("+answer\r\n"), None);
    sub.on_frame(frame("-NOPERM no\r\n"));
    sub.on_frame(frame("$2\r\nt0\r\n"));
    assert_eq!(drain(&queue), "-NOPERM no\r\n");
    assert!(sub.placed.borrow().is_empty());
    assert!(!sub.out.dirty.get(), "the client's undo decides");
}

#[test]
fn a_moved_subscribe_is_placed_again_later() {
    let (sub, queue) = open_sub(1024);
    place(&sub, Kind::Shard, "b");
    let join = Join::new(queue.clone(), queue.reserve());
    let names = vec![Bytes::from_static(b"b")];
    gate(&sub, "t0", Some(&join), Some((Kind::Shard, names)));
    join.seal(frame("+answer\r\n"), None);
    sub.on_frame(frame("-MOVED 3300 127.0.0.1:7001\r\n"));
    sub.on_frame(frame("$2\r\nt0\r\n"));
    assert_eq!(drain(&queue), "+answer\r\n");
    assert!(sub.placed.borrow().is_empty());
    assert!(sub.out.dirty.get());
    assert!(!sub.out.backoff().is_zero());
}

#[test]
fn a_shard_channel_the_node_drops_is_placed_again() {
    let (sub, queue) = open_sub(1024);
    place(&sub, Kind::Shard, "b");
    sub.on_frame(frame("*3\r\n$12\r\nsunsubscribe\r\n$1\r\nb\r\n:0\r\n"));
    assert!(sub.placed.borrow().is_empty());
    assert!(sub.out.dirty.get());
    assert_eq!(drain(&queue), "", "the client keeps its subscription");
}

#[test]
fn a_lost_connection_answers_waiting_commands_and_asks_for_placement() {
    let (sub, queue) = open_sub(1024);
    place(&sub, Kind::Channel, "b");
    let join = Join::new(queue.clone(), queue.reserve());
    gate(&sub, "t0", Some(&join), None);
    join.seal(frame("+answer\r\n"), None);
    sub.on_lost();
    assert_eq!(drain(&queue), "+answer\r\n");
    assert!(sub.is_gone() && sub.is_idle());
    assert!(sub.out.dirty.get());
}

#[test]
fn a_subscriber_past_its_limit_is_disconnected() {
    let (sub, queue) = open_sub(1);
    place(&sub, Kind::Channel, "b");
    for _ in 0..100 {
        sub.on_frame(frame(MSG_B));
    }
    assert!(queue.killed().is_some());
    // Also while the messages wait in front of a command's answer.
    let (sub, queue) = open_sub(1);
    place(&sub, Kind::Channel, "b");
    let join = Join::new(queue.clone(), queue.reserve());
    gate(&sub, "t0", Some(&join), None);
    for _ in 0..100 {
        sub.on_frame(frame(MSG_B));
    }
    assert!(queue.killed().is_some());
}

#[test]
fn a_closed_connection_passes_nothing_on() {
    let (sub, queue) = open_sub(1024);
    place(&sub, Kind::Channel, "b");
    gate(&sub, "t0", None, None);
    // Stray replies are never the client's, even on a live connection.
    sub.on_frame(frame("+OK\r\n"));
    sub.close();
    sub.on_frame(frame("*2\r\n$4\r\npong\r\n$2\r\nt0\r\n"));
    sub.on_frame(frame(MSG_B));
    sub.on_frame(frame(">2\r\n$7\r\nunknown\r\n$1\r\nx\r\n"));
    assert_eq!(drain(&queue), "");
}

#[test]
fn transient_errors() {
    assert!(is_transient(b"-MOVED 1 127.0.0.1:1\r\n"));
    assert!(is_transient(b"-CLUSTERDOWN The cluster is down\r\n"));
    assert!(!is_transient(b"-NOPERM no\r\n"));
}
