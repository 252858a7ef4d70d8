//! Transactions: MULTI/EXEC/DISCARD/WATCH/UNWATCH on a connection of the client's own, on the
//! master of the transaction's slot. Keys of another slot abort the transaction, as a cluster
//! node would (CROSSSLOT now, EXECABORT at EXEC). The first keyed command picks the node:
//! keyless commands queued before it (PING, TIME, `EVAL … 0`) are answered `+QUEUED` here and
//! sent once the node is known.

use std::rc::Rc;

use bytes::Bytes;

use crate::backend::{Backend, Pending};
use crate::client::ClientState;
use crate::command::CommandTable;
use crate::policy::Access;
use crate::reply::queue::Seq;
use crate::slot::Slot;

use super::class::{Class, Local, TxCmd};
use super::request::Request;
use super::send::{CROSSSLOT, common_slot, random_slot};
use super::worker::Worker;

const MULTI: &[u8] = b"*1\r\n$5\r\nMULTI\r\n";
const DISCARD: &[u8] = b"*1\r\n$7\r\nDISCARD\r\n";
const UNWATCH: &[u8] = b"*1\r\n$7\r\nUNWATCH\r\n";
const QUEUED: &[u8] = b"+QUEUED\r\n";

fn forward(client: &ClientState, conn: &Rc<Backend>, seq: Seq, wire: &[u8]) {
    conn.send(wire, Pending::to_client(client.queue.clone(), seq, None));
}

/// Sends MULTI (once) and the keyless commands held until the node was known; their
/// `+QUEUED` replies were already given by meridian.
fn open_multi(client: &mut ClientState, conn: &Rc<Backend>) {
    if !client.tx.multi_sent {
        conn.send(MULTI, Pending::ignored());
        client.tx.multi_sent = true;
    }
    for wire in client.tx.held.drain(..) {
        conn.send(&wire, Pending::ignored());
    }
}

/// The transaction's connection, checking that `slot` agrees with the transaction's slot.
fn ensure_conn(
    worker: &Rc<Worker>,
    client: &mut ClientState,
    slot: Option<Slot>,
) -> Result<Rc<Backend>, String> {
    if let Some(conn) = client.tx.conn.clone() {
        match (slot, client.tx.slot) {
            (Some(s), Some(t)) if s != t => return Err(CROSSSLOT.to_string()),
            (Some(s), None) => {
                let addr = worker
                    .addr_for_slot(s, Access::Write)
                    .map_err(|e| e.to_string())?;
                if addr != conn.addr {
                    return Err(CROSSSLOT.to_string());
                }
                client.tx.slot = Some(s);
            }
            _ => {}
        }
        return Ok(conn);
    }
    let addr = worker
        .addr_for_slot(slot.unwrap_or_else(random_slot), Access::Write)
        .map_err(|e| e.to_string())?;
    let conn = client.pool().get(&worker.env, &addr, client.proto);
    client.tx.conn = Some(conn.clone());
    client.tx.slot = slot;
    Ok(conn)
}

/// The slot of a request's keys (None for keyless), or the error that refuses it.
fn request_slot(table: &CommandTable, req: &Request) -> Result<Option<Slot>, String> {
    let spec = table.resolve(&req.args).map_err(|e| e.to_string())?;
    let mut keys = Vec::new();
    spec.key_positions(&req.args, &mut keys)
        .map_err(|e| e.to_string())?;
    common_slot(&req.args, &keys).map_err(str::to_string)
}

/// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
pub fn control(
    cmd: TxCmd,
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let ok = Bytes::from_static(b"+OK\r\n");
    match cmd {
        TxCmd::Multi => {
            if client.tx.in_multi {
                return client.reply_error(seq, "ERR MULTI calls can not be nested");
            }
            client.tx.in_multi = true;
            client.reply(seq, ok);
        }
        TxCmd::Watch => {
            if client.tx.in_multi {
                return client.reply_error(seq, "ERR WATCH inside MULTI is not allowed");
            }
            let conn = request_slot(table, req).and_then(|slot| ensure_conn(worker, client, slot));
            match conn {
                Ok(conn) => {
                    client.tx.watching = true;
                    forward(client, &conn, seq, &req.wire());
                }
                Err(e) => client.reply_error(seq, &e),
            }
        }
        TxCmd::Unwatch => match client.tx.conn.clone() {
            Some(conn) if !client.tx.in_multi => {
                forward(client, &conn, seq, &req.wire());
                client.tx.reset();
            }
            Some(conn) => forward(client, &conn, seq, &req.wire()),
            None => client.reply(seq, ok),
        },
        TxCmd::Exec => {
            if !client.tx.in_multi {
                return client.reply_error(seq, "ERR EXEC without MULTI");
            }
            let conn = client.tx.conn.clone();
            match conn {
                _ if client.tx.failed => {
                    if let Some(conn) = &conn {
                        let undo = if client.tx.multi_sent {
                            DISCARD
                        } else {
                            UNWATCH
                        };
                        conn.send(undo, Pending::ignored());
                    }
                    client.reply_error(
                        seq,
                        "EXECABORT Transaction discarded because of previous errors.",
                    );
                }
                Some(conn) => {
                    // WATCH then an empty MULTI/EXEC: the node still checks the watched keys.
                    open_multi(client, &conn);
                    forward(client, &conn, seq, &req.wire());
                }
                // Only keyless commands: any master runs them.
                None if !client.tx.held.is_empty() => match ensure_conn(worker, client, None) {
                    Ok(conn) => {
                        open_multi(client, &conn);
                        forward(client, &conn, seq, &req.wire());
                    }
                    Err(e) => client.reply_error(seq, &e),
                },
                None => client.reply(seq, Bytes::from_static(b"*0\r\n")),
            }
            client.tx.reset();
        }
        TxCmd::Discard => {
            if !client.tx.in_multi {
                return client.reply_error(seq, "ERR DISCARD without MULTI");
            }
            match client.tx.conn.clone() {
                Some(conn) if client.tx.multi_sent => forward(client, &conn, seq, &req.wire()),
                Some(conn) => {
                    conn.send(UNWATCH, Pending::ignored());
                    client.reply(seq, ok);
                }
                None => client.reply(seq, ok),
            }
            client.tx.reset();
        }
    }
}

/// A command between MULTI and EXEC: queued on the transaction's connection.
pub fn queue(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
    class: Class,
) {
    let allowed = matches!(
        class,
        Class::Keyed
            | Class::KeyedOrAny
            | Class::Script
            | Class::AnyMaster
            | Class::Local(Local::Ping | Local::Echo)
    ) || matches!(class, Class::Split(_) | Class::MsetNx | Class::Publish);
    if !allowed {
        client.tx.failed = true;
        let name = String::from_utf8_lossy(req.args.get(0).unwrap_or_default()).to_lowercase();
        return client.reply_error(
            seq,
            &format!("ERR '{name}' inside MULTI is not supported through meridian"),
        );
    }
    let slot = if matches!(class, Class::Local(_) | Class::AnyMaster | Class::Publish) {
        Ok(None)
    } else {
        request_slot(table, req)
    };
    if matches!(slot, Ok(None)) && client.tx.conn.is_none() {
        // A keyless command must not choose the node: the next keyed one does.
        client.tx.count_queued(req.frame.len());
        client.tx.held.push(req.wire());
        return client.reply(seq, Bytes::from_static(QUEUED));
    }
    match slot.and_then(|slot| ensure_conn(worker, client, slot)) {
        Ok(conn) => {
            open_multi(client, &conn);
            client.tx.count_queued(req.frame.len());
            forward(client, &conn, seq, &req.wire());
        }
        Err(e) => {
            client.tx.failed = true;
            client.reply_error(seq, &e);
        }
    }
}
