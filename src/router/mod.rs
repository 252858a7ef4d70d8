//! The router: a parsed request → its class → keys → slot(s) → backend(s). Multi-key commands
//! are split by slot here and merged in [`merge`].

pub mod class;
pub mod fanout;
pub mod merge;
pub mod pubsub;
pub mod scan;
pub mod tx;

use std::ops::Range;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::backend::pending::{Pending, Sink};
use crate::command::{CommandError, CommandSpec, CommandTable};
use crate::local;
use crate::policy::Access;
use crate::resp::{ReqArgs, encode};
use crate::session::ClientState;
use crate::session::queue::Seq;
use crate::slot::{Slot, key_slot};
use crate::worker::Worker;

use class::{Class, Split};
use merge::{Merge, MergeKind};

/// The error Redis Cluster gives for keys in different slots.
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// One request as the router sees it.
pub struct Request<'a> {
    /// The bytes the request arrived in.
    pub frame: &'a Bytes,
    pub args: ReqArgs<'a>,
    /// Arrived as an inline command: must be re-encoded before forwarding.
    pub inline: bool,
}

impl Request<'_> {
    /// The request in multibulk form, as sent to a backend.
    pub fn wire(&self) -> Bytes {
        if !self.inline {
            return self.frame.clone();
        }
        let args: Vec<&[u8]> = self.args.iter().collect();
        let mut out = BytesMut::new();
        encode::command(&mut out, &args);
        out.freeze()
    }
}

/// Lowercases a command name into `buf`; None when it is too long to be a known command.
fn lower_name<'b>(name: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let dst = buf.get_mut(..name.len())?;
    for (d, s) in dst.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    std::str::from_utf8(dst).ok()
}

/// Handles one request: answers it locally or sends it to its backend(s). Its reply slot in
/// the client's queue is reserved here, so replies keep request order.
pub fn dispatch(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    req: &Request,
) -> Flow {
    let mut buf = [0u8; 32];
    let name = req.args.get(0).and_then(|n| lower_name(n, &mut buf));
    let class = name.map(class::of).unwrap_or(Class::Keyed);
    // Resolved once here: the exclusivity check and the dispatch both use it.
    let spec = match class {
        Class::Local(_) => None,
        _ => Some(table.resolve(&req.args)),
    };
    let exclusive = match class {
        Class::Tx(_) | Class::PubSub(_) => true,
        Class::Keyed if !client.tx.in_multi => matches!(
            &spec,
            Some(Ok(s)) if s.is_blocking() && !is_nonblocking_stream_read(s, &req.args)
        ),
        _ => false,
    };
    if exclusive && client.queue.unanswered() > 0 {
        return Flow::Defer;
    }
    dispatch_class(worker, table, client, req, name, class, spec);
    if exclusive {
        Flow::Exclusive
    } else {
        Flow::Next
    }
}

/// What the session does after handing a request to [`dispatch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on with the next request.
    Next,
    /// Dispatched on a connection of the client's own: dispatch nothing else until every
    /// reply is in, so no later request overtakes it.
    Exclusive,
    /// Not dispatched: call again once every earlier reply is in.
    Defer,
}

/// Handles a request of a known class. Requests that run on a connection of the client's own
/// (blocking commands, transactions, subscriptions) were already held back by [`dispatch`] so
/// that they neither overtake nor are overtaken by the client's other requests.
fn dispatch_class(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    req: &Request,
    name: Option<&str>,
    class: Class,
    spec: Option<Result<&CommandSpec, CommandError>>,
) {
    let seq = client.queue.reserve();
    worker.stats.requests.add(1);
    if client.proto == 2
        && client.pubsub.is_subscribed()
        && !pubsub::allowed_in_resp2_subscribed(name.unwrap_or_default())
    {
        let shown = String::from_utf8_lossy(req.args.get(0).unwrap_or_default()).to_lowercase();
        return client.reply_error(
            seq,
            &format!(
                "ERR Can't execute '{shown}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            ),
        );
    }
    if class == Class::Local(class::Local::Ping)
        && client.proto == 2
        && client.pubsub.is_subscribed()
        && pubsub::ping(worker, client, seq, req)
    {
        return;
    }
    if let Class::Local(cmd) = class {
        if client.tx.in_multi && matches!(cmd, class::Local::Ping | class::Local::Echo) {
            return tx::queue(worker, table, client, seq, req, class);
        }
        local::handle(cmd, worker, table, client, seq, req);
        return;
    }
    // Every class but Local was resolved by `dispatch`.
    let Some(spec) = spec else {
        return;
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(e) => {
            if client.tx.in_multi {
                client.tx.mark_failed();
            }
            return client.reply_error(seq, &e.to_string());
        }
    };
    if let Class::Tx(cmd) = class {
        return tx::control(cmd, worker, table, client, seq, req);
    }
    if client.tx.in_multi {
        return tx::queue(worker, table, client, seq, req, class);
    }
    match class {
        Class::Tx(_) => {}
        Class::PubSub(cmd) => pubsub::handle(cmd, worker, table, client, seq, req),
        Class::Wait => fanout::wait(worker, client, seq, req),
        Class::Cluster => cluster(worker, spec, client, seq, req),
        Class::Keyed => keyed(worker, spec, client, seq, req),
        Class::Split(kind) => split(worker, spec, client, seq, req, kind),
        Class::MsetNx => msetnx(worker, spec, client, seq, req),
        Class::Script => script(worker, spec, client, seq, req),
        Class::AnyMaster => {
            let access = access_of(spec);
            send_to_slot(worker, client, seq, random_slot(), access, req.wire());
        }
        Class::Fanout => match fanout::rule(name.unwrap_or_default(), req.args.get(1)) {
            Some(rule) => fanout::fan_out(worker, client, seq, req, rule),
            None => client.reply_error(
                seq,
                &format!("ERR '{}' is not supported through meridian", spec.name),
            ),
        },
        Class::Scan => fanout::scan(worker, client, seq, req),
        Class::Unsupported(why) => client.reply_error(
            seq,
            &format!(
                "ERR '{}' is not supported through meridian: {why}",
                spec.name
            ),
        ),
        Class::NotYet(group) => client.reply_error(
            seq,
            &format!(
                "ERR '{}' is not supported through meridian yet ({group})",
                spec.name
            ),
        ),
        Class::Local(_) => {}
    }
}

/// CLUSTER KEYSLOT is computed here, COUNTKEYSINSLOT goes to the slot's master, INFO to any
/// master; the other subcommands describe single nodes and are refused.
fn cluster(
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
            let slot = std::str::from_utf8(req.args.get(2).unwrap_or_default())
                .ok()
                .and_then(|s| s.parse::<u16>().ok())
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

fn access_of(spec: &CommandSpec) -> Access {
    if spec.is_write() {
        Access::Write
    } else {
        Access::Read
    }
}

pub(crate) fn random_slot() -> Slot {
    Slot::from_bits(rand::random::<u16>())
}

/// The one slot all `keys` hash to, or the CROSSSLOT error.
pub(crate) fn common_slot(args: &ReqArgs, keys: &[usize]) -> Result<Option<Slot>, &'static str> {
    let mut slot = None;
    for &k in keys {
        let s = key_slot(args.get(k).unwrap_or_default());
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => return Err(CROSSSLOT),
            Some(_) => {}
        }
    }
    Ok(slot)
}

fn keyed(
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

/// XREAD/XREADGROUP block only with a BLOCK option.
fn is_nonblocking_stream_read(spec: &CommandSpec, args: &ReqArgs) -> bool {
    (spec.name.as_ref() == "xread" || spec.name.as_ref() == "xreadgroup")
        && !args.iter().any(|a| a.eq_ignore_ascii_case(b"block"))
}

/// Sends a single-slot request to its backend, its reply going straight to the client.
pub fn send_to_slot(
    worker: &Rc<Worker>,
    client: &mut ClientState,
    seq: Seq,
    slot: Slot,
    access: Access,
    wire: Bytes,
) {
    match worker.backend_for_slot(slot, access, client.proto) {
        Ok(be) => {
            if access == Access::Write {
                client.touch(&be.addr);
            }
            be.send(
                worker,
                &wire,
                Pending::to_client(client.queue.clone(), seq, Some(wire.clone())),
            )
        }
        Err(e) => client.reply_error(seq, &e.to_string()),
    }
}

/// Sends a blocking request on a connection of the client's own, so that nobody else waits
/// behind it; the connection closes when the client leaves.
pub fn send_dedicated(
    worker: &Rc<Worker>,
    client: &mut ClientState,
    seq: Seq,
    slot: Slot,
    access: Access,
    wire: Bytes,
) {
    let addr = match worker.addr_for_slot(slot, access) {
        Ok(addr) => addr,
        Err(e) => return client.reply_error(seq, &e.to_string()),
    };
    let pool = client.pool();
    let be = pool.get(worker, &addr, client.proto);
    if access == Access::Write {
        client.touch(&addr);
    }
    be.send(
        worker,
        &wire,
        Pending {
            pool: Some(pool),
            ..Pending::to_client(client.queue.clone(), seq, Some(wire.clone()))
        },
    );
}

fn script(
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

fn msetnx(
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

fn split(
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
            Ok(be) => be.send(
                worker,
                &wire,
                Pending::to_part(merge.clone(), part, Some(wire.clone())),
            ),
            Err(e) => Sink::Part {
                merge: merge.clone(),
                part,
            }
            .fail(&e.to_string()),
        }
    }
}

/// Spans of a request, for tests and tools that build requests by hand.
pub fn spans_of(args: &[&[u8]]) -> (Bytes, Vec<Range<usize>>) {
    let mut out = BytesMut::new();
    encode::command(&mut out, args);
    let frame = out.freeze();
    let mut spans = Vec::new();
    let _ = crate::resp::parse_request(&frame, &crate::resp::Limits::default(), &mut spans);
    (frame, spans)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn crossslot_detection() {
        let (frame, spans) = spans_of(&[b"RENAME", b"{a}x", b"{a}y"]);
        assert!(common_slot(&ReqArgs::new(&frame, &spans), &[1, 2]).is_ok());
        let (frame, spans) = spans_of(&[b"RENAME", b"a", b"b"]);
        assert_eq!(
            common_slot(&ReqArgs::new(&frame, &spans), &[1, 2]),
            Err(CROSSSLOT)
        );
    }

    #[test]
    fn lowercases_names() {
        let mut buf = [0u8; 32];
        assert_eq!(lower_name(b"GeT", &mut buf), Some("get"));
        assert_eq!(lower_name(&[b'a'; 40], &mut buf), None);
    }
}
