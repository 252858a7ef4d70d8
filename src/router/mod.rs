//! The router: a parsed request → its class → the handler that answers it locally or sends it
//! to its node(s). Handlers live one concern per file: [`keyed`] (by key, split by slot),
//! [`fanout`] (whole keyspace), [`tx`], [`pubsub`], [`local`] (answered by meridian);
//! [`send`] puts requests on connections, [`worker`] is the per-thread routing context.

pub mod acl;
pub mod class;
pub mod fanout;
pub mod keyed;
pub mod local;
pub mod pubsub;
pub mod request;
pub mod send;
pub mod tx;
pub mod worker;

use std::rc::Rc;

use crate::client::ClientState;
use crate::command::{CommandError, CommandSpec, CommandTable};
use crate::policy::Access;
use crate::reply::queue::{Seq, Tag};
use crate::slot::key_slot;

use class::Class;
use keyed::is_nonblocking_stream_read;
use request::{Request, lower_name};
use send::{access_of, random_slot, send_to_slot};
use worker::Worker;

/// Handles one request: answers it locally or sends it to its backend(s). Its reply slot in
/// the client's queue is reserved here, so replies keep request order.
pub fn dispatch(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    req: &Request,
) -> Flow {
    // Resolved once here: the class, the exclusivity check and the dispatch all use it.
    let resolved = worker.last_command.resolve(table, &req.args);
    let mut buf = [0u8; 32];
    let (name, class) = match &resolved {
        // A known command: its lowercase top-level name from the spec, its class by id.
        Ok(s) => {
            let bar = s.name.bytes().position(|b| b == b'|');
            let top = bar.map_or(&*s.name, |i| &s.name[..i]);
            (Some(top), worker.classes.get(s.metric_id(), top))
        }
        Err(_) => {
            let name = req.args.get(0).and_then(|n| lower_name(n, &mut buf));
            (name, name.map(class::of).unwrap_or(Class::Keyed))
        }
    };
    let (spec, local) = match class {
        // A local command's spec (CLIENT LIST's `cmd=` and the permission check); local
        // commands answer their own argument errors.
        Class::Local(_) => (None, resolved.ok()),
        _ => (Some(resolved), None),
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
    // `cmd=` of CLIENT LIST: the spec's name (`client|list`), none for an unknown command.
    let shown = match &spec {
        Some(Ok(s)) => Some(s.name.as_ref()),
        Some(Err(_)) => None,
        None => local.map(|s| s.name.as_ref()),
    };
    client.note_command(shown.unwrap_or_default());
    dispatch_class(worker, table, client, req, (name, class), spec, local);
    if exclusive {
        Flow::Exclusive
    } else {
        Flow::Next
    }
}

/// Reserves the request's reply slot; with request metrics on, counts the request under its
/// command (one array index); with metrics or latency monitors, tags the slot so the reply's
/// latency is observed.
#[inline]
fn reserve(
    worker: &Worker,
    table: &CommandTable,
    client: &ClientState,
    req: &Request,
    spec: &Option<Result<&CommandSpec, CommandError>>,
) -> Seq {
    let metrics = &worker.stats.metrics;
    if metrics.is_none() && !worker.latency_monitored() {
        return client.queue.reserve();
    }
    let command = match spec {
        Some(Ok(spec)) => spec.metric_id(),
        // Answered locally, or an error: look the name up (unknown names count as `unknown`).
        _ => table.metric_id(req.args.get(0).unwrap_or_default()),
    };
    if let Some(metrics) = metrics {
        metrics.count(command);
    }
    client.queue.reserve_tagged(Tag {
        command,
        at: worker.env.clock.now_tick(),
    })
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
    (name, class): (Option<&str>, Class),
    spec: Option<Result<&CommandSpec, CommandError>>,
    local: Option<&CommandSpec>,
) {
    let seq = reserve(worker, table, client, req, &spec);
    if client.reply_mode.silences_next() {
        client.queue.set_silent(seq, true);
    }
    worker.stats.requests.add(1);
    if worker.shared.has_users() {
        // Unknown commands and wrong arities answer their own error first, as in Redis.
        let checked = match &spec {
            Some(Ok(s)) => Some(Some(*s)),
            Some(Err(_)) => None,
            None => Some(local),
        };
        if let Some(msg) = checked.and_then(|s| acl::refusal(client, req, class, s)) {
            if client.tx.in_multi {
                client.tx.mark_failed();
            }
            return client.reply_error(seq, &msg);
        }
    }
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
        && pubsub::ping(client, seq, req)
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
        Class::PubSub(cmd) => pubsub::handle(cmd, worker, client, seq, req),
        Class::Wait => fanout::wait(worker, client, seq, req),
        Class::Cluster => keyed::cluster(worker, spec, client, seq, req),
        Class::Keyed => keyed::keyed(worker, spec, client, seq, req),
        Class::KeyedOrAny => {
            keyed::keyed_or_any(worker, spec, client, seq, req, name.unwrap_or_default())
        }
        Class::Split(kind) => keyed::split(worker, spec, client, seq, req, kind),
        Class::MsetNx => keyed::msetnx(worker, spec, client, seq, req),
        Class::Script => keyed::script(worker, spec, client, seq, req),
        Class::AnyMaster => {
            let access = access_of(spec);
            send_to_slot(worker, client, seq, random_slot(), access, req.wire());
        }
        Class::Publish => {
            // The master of the channel's slot holds the channel's subscribers through
            // meridian, so the count it returns is theirs (see client::subs::hub).
            let slot = key_slot(req.args.get(1).unwrap_or_default());
            send_to_slot(worker, client, seq, slot, Access::Write, req.wire());
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
