//! Commands routed by their keys: single-slot ones forwarded as they arrived, multi-key ones
//! (MGET, MSET, DEL, …) split by slot and merged, MSETNX kept atomic, scripts by their keys,
//! and the CLUSTER subcommands a gateway can answer.

use std::rc::Rc;

use bytes::BytesMut;

use crate::client::ClientState;
use crate::command::CommandSpec;
use crate::policy::Access;
use crate::reply::merge::{Merge, MergeKind};
use crate::reply::queue::Seq;
use crate::reply::sink::Sink;
use crate::resp::int::string2ll;
use crate::resp::{ReqArgs, encode};
use crate::slot::{Slot, key_slot};

use super::class::Split;
use super::request::Request;
use super::send::{
    CROSSSLOT, access_of, common_slot, random_slot, retry_if_read, send_dedicated, send_to_slot,
};
use super::worker::Worker;
use crate::backend::Pending;

/// CLUSTER KEYSLOT is computed here, COUNTKEYSINSLOT goes to the slot's master, INFO to any
/// master; the other subcommands describe single nodes and are refused.
pub fn cluster(
    worker: &Rc<Worker>,
    spec: &CommandSpec,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    match spec.name.as_ref() {
        "cluster|keyslot" => {
            let mut out = BytesMut::new();
            encode::integer(&mut out, key_slot(req.args.get(2).unwrap_or_default()).get() as i64);
            client.reply(seq, out.freeze());
        }
        "cluster|countkeysinslot" => {
            let slot = string2ll(req.args.get(2).unwrap_or_default())
                .and_then(|n| u16::try_from(n).ok())
                .and_then(Slot::new);
            match slot {
                Some(slot) => send_to_slot(worker, client, seq, slot, Access::Read, req.wire()),
                None => client.reply_error(seq, "ERR Invalid slot"),
            }
        }
        "cluster|info" => send_to_slot(worker, client, seq, random_slot(), Access::Read, req.wire()),
        other => client.reply_error(
            seq,
            &format!(
                "ERR '{other}' is not supported through meridian: meridian presents the cluster as one server"
            ),
        ),
    }
}

pub fn keyed(
    worker: &Rc<Worker>,
    spec: &CommandSpec,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let mut keys = std::mem::take(&mut client.key_buf);
    keys.clear();
    let result = spec.routing_positions(&req.args, &mut keys);
    let slot = match result {
        Err(e) => Err(e.to_string()),
        Ok(()) => common_slot(&req.args, &keys).map_err(str::to_string),
    };
    client.key_buf = keys;
    match slot {
        Err(e) => client.reply_error(seq, &e),
        Ok(Some(slot)) if spec.is_blocking() && !is_nonblocking_stream_read(spec, &req.args) => {
            send_dedicated(worker, client, seq, slot, access_of(spec), req.wire())
        }
        Ok(Some(slot)) => send_to_slot(worker, client, seq, slot, access_of(spec), req.wire()),
        Ok(None) => client.reply_error(
            seq,
            &format!(
                "ERR '{}' has no key to route by and is not supported through meridian",
                spec.name
            ),
        ),
    }
}

/// MEMORY, OBJECT: by key when the subcommand has one (MEMORY USAGE, OBJECT ENCODING);
/// keyless ones are the same on every master (MEMORY STATS, DOCTOR, OBJECT HELP) and go to
/// any master, except those that act on each node (MEMORY PURGE), which go to all of them.
pub fn keyed_or_any(
    worker: &Rc<Worker>,
    spec: &CommandSpec,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
    name: &str,
) {
    let mut keys = Vec::new();
    if let Err(e) = spec.routing_positions(&req.args, &mut keys) {
        return client.reply_error(seq, &e.to_string());
    }
    if !keys.is_empty() {
        return keyed(worker, spec, client, seq, req);
    }
    match super::fanout::rule(name, req.args.get(1)) {
        Some(rule) => super::fanout::fan_out(worker, client, seq, req, rule),
        None => send_to_slot(
            worker,
            client,
            seq,
            random_slot(),
            access_of(spec),
            req.wire(),
        ),
    }
}

/// XREAD/XREADGROUP block only with a BLOCK option.
pub fn is_nonblocking_stream_read(spec: &CommandSpec, args: &ReqArgs) -> bool {
    (spec.name.as_ref() == "xread" || spec.name.as_ref() == "xreadgroup")
        && !args.iter().any(|a| a.eq_ignore_ascii_case(b"block"))
}

pub fn script(
    worker: &Rc<Worker>,
    spec: &CommandSpec,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let mut keys = Vec::new();
    if let Err(e) = spec.key_positions(&req.args, &mut keys) {
        return client.reply_error(seq, &e.to_string());
    }
    let slot = match common_slot(&req.args, &keys) {
        Err(e) => return client.reply_error(seq, e),
        Ok(Some(slot)) => slot,
        // Keyless: the slot of the first argument after numkeys, else any master.
        Ok(None) => req.args.get(3).map(key_slot).unwrap_or_else(random_slot),
    };
    send_to_slot(worker, client, seq, slot, access_of(spec), req.wire());
}

pub fn msetnx(
    worker: &Rc<Worker>,
    spec: &CommandSpec,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    if req.args.len().is_multiple_of(2) {
        return client.reply_error(seq, "ERR wrong number of arguments for 'msetnx' command");
    }
    let keys: Vec<usize> = (1..req.args.len()).step_by(2).collect();
    match common_slot(&req.args, &keys) {
        Ok(Some(slot)) => send_to_slot(worker, client, seq, slot, access_of(spec), req.wire()),
        Ok(None) => {}
        Err(_) => client.reply_error(seq, CROSSSLOT),
    }
}

/// Groups argument indexes by the slot of the key they start with.
fn group_by_slot(args: &ReqArgs, step: usize) -> Vec<(Slot, Vec<u32>)> {
    let mut groups: Vec<(Slot, Vec<u32>)> = Vec::new();
    let mut index: std::collections::HashMap<Slot, usize> = Default::default();
    for i in (1..args.len()).step_by(step) {
        let slot = key_slot(args.get(i).unwrap_or_default());
        let g = if groups.len() < 16 {
            groups.iter().position(|(s, _)| *s == slot)
        } else {
            if index.is_empty() {
                index = groups
                    .iter()
                    .enumerate()
                    .map(|(gi, (s, _))| (*s, gi))
                    .collect();
            }
            index.get(&slot).copied()
        };
        match g {
            Some(g) => groups[g].1.push(i as u32),
            None => {
                if !index.is_empty() {
                    index.insert(slot, groups.len());
                }
                groups.push((slot, vec![i as u32]));
            }
        }
    }
    groups
}

pub fn split(
    worker: &Rc<Worker>,
    spec: &CommandSpec,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
    kind: Split,
) {
    let step = if kind == Split::Mset { 2 } else { 1 };
    if step == 2 && req.args.len().is_multiple_of(2) {
        return client.reply_error(
            seq,
            &format!("ERR wrong number of arguments for '{}' command", spec.name),
        );
    }
    let groups = group_by_slot(&req.args, step);
    let access = access_of(spec);
    if groups.len() == 1 {
        return send_to_slot(worker, client, seq, groups[0].0, access, req.wire());
    }
    let merge_kind = match kind {
        Split::Mget => {
            let mut positions = vec![(0u32, 0u32); req.args.len() - 1];
            for (part, (_, idxs)) in groups.iter().enumerate() {
                for (n, &i) in idxs.iter().enumerate() {
                    positions[i as usize - 1] = (part as u32, n as u32);
                }
            }
            MergeKind::Gather { positions }
        }
        Split::Mset => MergeKind::AllOk,
        Split::Count => MergeKind::SumInts,
    };
    let merge = Merge::new(client.queue.clone(), seq, merge_kind, groups.len());
    let name = req.args.get(0).unwrap_or_default();
    for (part, (slot, idxs)) in groups.iter().enumerate() {
        let mut out = BytesMut::new();
        encode::array_header(&mut out, 1 + idxs.len() * step);
        encode::bulk(&mut out, name);
        for &i in idxs {
            for j in 0..step {
                encode::bulk(&mut out, req.args.get(i as usize + j).unwrap_or_default());
            }
        }
        let wire = out.freeze();
        match worker.backend_for_slot(*slot, access, client.proto) {
            Ok(be) => {
                let pending = Pending::to_part(merge.clone(), part, Some(wire.clone()));
                be.send(&wire, retry_if_read(pending, access, *slot))
            }
            Err(e) => Sink::Part {
                merge: merge.clone(),
                part,
            }
            .fail(&e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::request::spans_of;

    #[test]
    fn groups_keys_by_slot_not_by_key() {
        let (frame, spans) = spans_of(&[b"MGET", b"{a}1", b"{b}1", b"{a}2", b"{b}2", b"c"]);
        let args = ReqArgs::new(&frame, &spans);
        let groups = group_by_slot(&args, 1);
        assert_eq!(groups.len(), 3);
        assert_eq!(groups[0].1, vec![1, 3]);
        assert_eq!(groups[1].1, vec![2, 4]);
        assert_eq!(groups[2].1, vec![5]);
    }

    #[test]
    fn groups_many_slots_with_index() {
        let keys: Vec<Vec<u8>> = (0..200).map(|i| format!("key{i}").into_bytes()).collect();
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(keys.iter().map(|k| k.as_slice()));
        args.push(b"key0");
        let (frame, spans) = spans_of(&args);
        let groups = group_by_slot(&ReqArgs::new(&frame, &spans), 1);
        let total: usize = groups.iter().map(|g| g.1.len()).sum();
        assert_eq!(total, 201);
        let g0 = groups.iter().find(|g| g.1.contains(&1)).unwrap();
        assert!(g0.1.contains(&201), "repeated key joins its slot's group");
    }

    #[test]
    fn mset_pairs_group_by_key_slot() {
        let (frame, spans) = spans_of(&[b"MSET", b"{a}1", b"v", b"{b}1", b"w", b"{a}2", b"x"]);
        let groups = group_by_slot(&ReqArgs::new(&frame, &spans), 2);
        assert_eq!(groups[0].1, vec![1, 5]);
        assert_eq!(groups[1].1, vec![3]);
    }
}
