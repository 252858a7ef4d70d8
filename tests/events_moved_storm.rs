//! A MOVED storm through the real binary in front of a real three-master cluster: many empty
//! slots are reassigned by hand (`CLUSTER SETSLOT … NODE`) while meridian's map is stale (a
//! one-hour `cluster.refresh_interval`), then one pipeline reads a key of every moved slot.
//! Every reply is the value the new owner holds, and `/api/state` records one `moved_storm`
//! event naming the new owner.

mod common;

use std::time::Duration;

use common::gateway::render_config;
use common::raw::encode;
use common::reload::{events_of, state};
use common::{
    Cluster, Gateway, GatewayOptions, Node, error_text, key_slot, value_text, wait_until,
};

/// Slots moved: twice the storm threshold (200 MOVED replies within a second on one worker),
/// so the storm is certain even if the refresh the first MOVED asks for lands mid-pipeline.
const SLOTS: u16 = 400;

/// A hash tag per slot `0..SLOTS` (found in one pass, bounded).
fn tags() -> Vec<String> {
    let mut tags = vec![String::new(); usize::from(SLOTS)];
    let mut missing = usize::from(SLOTS);
    for n in 0..2_000_000u32 {
        let tag = n.to_string();
        let slot = usize::from(key_slot(tag.as_bytes()));
        if slot < tags.len() && tags[slot].is_empty() {
            tags[slot] = tag;
            missing -= 1;
            if missing == 0 {
                return tags;
            }
        }
    }
    panic!("{missing} slots without a numeric hash tag");
}

/// `CLUSTER SETSLOT <slot> <tail…>` for every slot of `0..SLOTS` on `node`, each answered OK.
fn setslot_all(node: &Node, tail: &[&str]) {
    let slots: Vec<String> = (0..SLOTS).map(|s| s.to_string()).collect();
    let commands: Vec<Vec<&str>> = slots
        .iter()
        .map(|s| [&["CLUSTER", "SETSLOT", s.as_str()][..], tail].concat())
        .collect();
    let refs: Vec<&[&str]> = commands.iter().map(Vec::as_slice).collect();
    for (args, reply) in refs.iter().zip(node.query_many(&refs)) {
        assert_eq!(
            value_text(&reply).as_deref(),
            Some("OK"),
            "{args:?} on {}: {reply:?}",
            node.addr
        );
    }
}

#[test]
fn many_moved_slots_behind_a_stale_map_make_a_moved_storm_and_every_reply_is_right() {
    let cluster = Cluster::start(3, 0);
    // One worker (the threshold counts per worker); the map is not refreshed on a timer.
    let yaml = render_config(&cluster.seeds(), &GatewayOptions::default())
        .replace("refresh_interval: 1s", "refresh_interval: 1h");
    assert!(yaml.contains("refresh_interval: 1h"), "{yaml}");
    let gw = Gateway::start_config(&yaml, &[]);
    let admin = gw.admin_addr();
    let mut raw = gw.raw();
    wait_until("the gateway serves", Duration::from_secs(15), || {
        let r = raw.call_text(&["GET", "storm:warmup"]);
        if r == "$-1\r\n" { Ok(()) } else { Err(r) }
    });
    assert!(events_of(&state(&admin, &[]), "moved_storm").is_empty());

    // Slots 0..SLOTS (empty) move from their master to another one, on every master.
    let from = cluster.master_of_slot(0);
    assert_eq!(cluster.master_of_slot(SLOTS - 1), from);
    let to = cluster
        .masters()
        .into_iter()
        .find(|m| *m != from)
        .expect("another master");
    let (source, target) = (cluster.node(&from), cluster.node(&to));
    setslot_all(target, &["IMPORTING", source.id()]);
    setslot_all(source, &["MIGRATING", target.id()]);
    for node in [target, source] {
        setslot_all(node, &["NODE", target.id()]);
    }
    for m in cluster
        .masters()
        .iter()
        .filter(|m| **m != from && **m != to)
    {
        setslot_all(cluster.node(m), &["NODE", target.id()]);
    }
    // The new owner holds a value in each moved slot, written to it directly.
    let tags = tags();
    let keys: Vec<String> = tags.iter().map(|t| format!("{{{t}}}storm")).collect();
    let sets: Vec<Vec<&str>> = keys
        .iter()
        .map(|k| vec!["SET", k.as_str(), k.as_str()])
        .collect();
    let refs: Vec<&[&str]> = sets.iter().map(Vec::as_slice).collect();
    for reply in target.query_many(&refs) {
        assert_eq!(value_text(&reply).as_deref(), Some("OK"), "{reply:?}");
    }
    // Every master sends the old owner's clients on: the old owner answers MOVED.
    let moved = error_text(&source.query(&["GET", &keys[0]])).unwrap_or_default();
    assert_eq!(moved, format!("MOVED 0 {to}"));

    // One pipeline, a key of every moved slot: meridian sends them all to the old owner.
    let pipeline: Vec<u8> = keys
        .iter()
        .flat_map(|k| encode(&["GET", k.as_str()]))
        .collect();
    raw.write(&pipeline);
    for key in &keys {
        let want = format!("${}\r\n{key}\r\n", key.len());
        assert_eq!(raw.read_text(), want, "GET {key} after its slot moved");
    }

    let s = wait_until("a moved_storm event", Duration::from_secs(10), || {
        let s = state(&admin, &[]);
        if events_of(&s, "moved_storm").is_empty() {
            Err(s["events"].to_string())
        } else {
            Ok(s)
        }
    });
    let storms = events_of(&s, "moved_storm");
    assert_eq!(
        storms.len(),
        1,
        "one per window and worker: {}",
        s["events"]
    );
    let e = storms[0];
    assert_eq!(e["node"], to.as_str(), "{e}");
    assert!(
        e["slot"].as_u64().is_some_and(|s| s < u64::from(SLOTS)),
        "{e}"
    );
    assert!(e["message"].as_str().unwrap_or("").contains("MOVED"), "{e}");
    let metrics = common::http::get(&admin, "/metrics").body;
    let redirects = metrics
        .lines()
        .find_map(|l| l.strip_prefix("meridian_redirects_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("meridian_redirects_total in {metrics}"));
    assert!(redirects >= 200.0, "{redirects} redirects followed");

    // The map followed: the same keys again, one at a time, all right and no new storm.
    for key in keys.iter().step_by(40) {
        let want = format!("${}\r\n{key}\r\n", key.len());
        assert_eq!(raw.call_text(&["GET", key]), want);
    }
    let s = state(&admin, &[]);
    assert_eq!(events_of(&s, "moved_storm").len(), 1, "{}", s["events"]);
}
