//! Commands meridian answers itself: connection commands (PING, ECHO, QUIT, RESET, SELECT,
//! HELLO, AUTH, CLIENT), COMMAND from the table, ROLE, INFO and CONFIG.

pub mod answer;
pub mod client;
pub mod config;
pub mod info;
pub mod info_latency;
pub mod info_own;

use std::rc::Rc;

use bytes::{Bytes, BytesMut};

use crate::client::ClientState;
use crate::command::CommandTable;
use crate::policy::Access;
use crate::reply::queue::Seq;
use crate::resp::encode;
use crate::resp::int::string2ll;
use crate::slot::Slot;

use super::acl as acl_gate;
use super::class::Local;
use super::request::Request;
use super::send::send_to_slot;
use super::worker::Worker;
use crate::acl::AuthError;

use answer::{REDIS_COMPAT_VERSION, eq, ok, valid_name, wrong_arity};

/// Answers a local command.
pub fn handle(
    cmd: Local,
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let args = &req.args;
    let argc = args.len();
    let arg = |i: usize| args.get(i).unwrap_or_default();
    let mut out = BytesMut::new();
    match cmd {
        Local::Ping => match argc {
            1 => {
                client.reply(seq, Bytes::from_static(b"+PONG\r\n"));
                return;
            }
            2 => encode::bulk(&mut out, arg(1)),
            _ => return wrong_arity(client, seq, "ping"),
        },
        Local::Echo => {
            if argc != 2 {
                return wrong_arity(client, seq, "echo");
            }
            encode::bulk(&mut out, arg(1));
        }
        Local::Quit => {
            client.quit = true;
            return ok(client, seq);
        }
        Local::Reset => {
            client.proto = 2;
            client.name = None;
            client.no_evict = false;
            // RESET turns replies back on before answering, as Redis does.
            client.reply_mode = crate::client::ReplyMode::On;
            client.queue.set_silent(seq, false);
            client.release();
            // Back to the default user, authenticated only if it needs no password.
            client.set_user(worker.shared.users().as_ref().and_then(|u| u.initial()));
            client.reply(seq, Bytes::from_static(b"+RESET\r\n"));
            return;
        }
        Local::Select => {
            if argc != 2 {
                return wrong_arity(client, seq, "select");
            }
            if arg(1) == b"0" {
                return ok(client, seq);
            }
            if string2ll(arg(1)).is_none() {
                return client.reply_error(seq, "ERR value is not an integer or out of range");
            }
            return client.reply_error(seq, "ERR SELECT is not allowed in cluster mode");
        }
        Local::ReadMode => {
            if argc != 1 {
                return wrong_arity(client, seq, &String::from_utf8_lossy(arg(0)).to_lowercase());
            }
            return ok(client, seq);
        }
        Local::Role => {
            if argc != 1 {
                return wrong_arity(client, seq, "role");
            }
            // The one master meridian presents: no replication offset, no replicas.
            encode::array_header(&mut out, 3);
            encode::bulk(&mut out, b"master");
            encode::integer(&mut out, 0);
            encode::array_header(&mut out, 0);
        }
        Local::Auth => return auth(worker, client, seq, req),
        Local::Hello => return hello(worker, client, seq, req),
        Local::Acl => return acl(worker, table, client, seq, req),
        Local::Client => return client::handle(worker, client, seq, req),
        Local::Info => return info::handle(worker, client, seq, req),
        Local::Command => return command(worker, table, client, seq, req),
        Local::Config => return config::handle(worker, table, client, seq, req),
    }
    client.reply(seq, out.freeze());
}

/// AUTH [user] password: against the gateway users, or like a Redis whose default user has no
/// password when there are none.
fn auth(worker: &Rc<Worker>, client: &mut ClientState, seq: Seq, req: &Request) {
    let args = &req.args;
    if let Some(users) = &worker.shared.users() {
        let result = match args.len() {
            2 => users.authenticate(None, args.get(1).unwrap_or_default()),
            3 => users.authenticate(args.get(1), args.get(2).unwrap_or_default()),
            _ => return client.reply_error(seq, "ERR syntax error"),
        };
        return match result {
            Ok(user) => {
                client.set_user(Some(user));
                ok(client, seq)
            }
            Err(e) => {
                if e == AuthError::WrongPass {
                    acl_gate::auth_failed(worker, client);
                }
                client.reply_error(seq, &e.to_string())
            }
        };
    }
    match req.args.len() {
        2 => client.reply_error(
            seq,
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ),
        3 if eq(req.args.get(1).unwrap_or_default(), "default") => ok(client, seq),
        3 => client.reply_error(
            seq,
            "WRONGPASS invalid username-password pair or user is disabled.",
        ),
        _ => client.reply_error(seq, "ERR syntax error"),
    }
}

fn hello(worker: &Rc<Worker>, client: &mut ClientState, seq: Seq, req: &Request) {
    let args = &req.args;
    let mut proto = client.proto;
    let mut name = None;
    let mut credentials = None;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        match string2ll(v) {
            Some(2) => proto = 2,
            Some(3) => proto = 3,
            Some(_) => {
                return client.reply_error(seq, "NOPROTO unsupported protocol version");
            }
            None => {
                return client.reply_error(
                    seq,
                    "ERR Protocol version is not an integer or out of range",
                );
            }
        }
        i = 2;
    }
    while i < args.len() {
        let opt = args.get(i).unwrap_or_default();
        if eq(opt, "auth") && i + 2 < args.len() && worker.shared.has_users() {
            credentials = Some((i + 1, i + 2));
            i += 3;
        } else if eq(opt, "auth") && i + 2 < args.len() {
            if !eq(args.get(i + 1).unwrap_or_default(), "default") {
                return client.reply_error(
                    seq,
                    "WRONGPASS invalid username-password pair or user is disabled.",
                );
            }
            i += 3;
        } else if eq(opt, "setname") && i + 1 < args.len() {
            let n = args.get(i + 1).unwrap_or_default();
            if let Err(e) = valid_name(n) {
                return client.reply_error(seq, e);
            }
            name = Some(Bytes::copy_from_slice(n));
            i += 2;
        } else {
            return client.reply_error(
                seq,
                &format!(
                    "ERR Syntax error in HELLO option '{}'",
                    String::from_utf8_lossy(opt)
                ),
            );
        }
    }
    if let Some(users) = &worker.shared.users() {
        if let Some((u, p)) = credentials {
            let pass = args.get(p).unwrap_or_default();
            match users.authenticate(args.get(u), pass) {
                Ok(user) => client.set_user(Some(user)),
                // HELLO's AUTH names its user: only WRONGPASS applies.
                Err(_) => {
                    acl_gate::auth_failed(worker, client);
                    return client.reply_error(seq, &AuthError::WrongPass.to_string());
                }
            }
        }
        if client.user.is_none() {
            return client.reply_error(seq, HELLO_NOAUTH);
        }
    }
    client.proto = proto;
    if name.is_some() {
        client.name = name;
    }
    let mut out = BytesMut::new();
    encode::map_header(&mut out, 7, proto);
    encode::bulk(&mut out, b"server");
    encode::bulk(&mut out, b"redis");
    encode::bulk(&mut out, b"version");
    encode::bulk(&mut out, REDIS_COMPAT_VERSION.as_bytes());
    encode::bulk(&mut out, b"proto");
    encode::integer(&mut out, proto as i64);
    encode::bulk(&mut out, b"id");
    encode::integer(&mut out, client.id as i64);
    encode::bulk(&mut out, b"mode");
    encode::bulk(&mut out, b"standalone");
    encode::bulk(&mut out, b"role");
    encode::bulk(&mut out, b"master");
    encode::bulk(&mut out, b"modules");
    encode::array_header(&mut out, 0);
    client.reply(seq, out.freeze());
}

/// HELLO without AUTH from a client that is not authenticated (Redis 7.0's text).
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

/// ACL WHOAMI; the other subcommands act on one node and are refused.
fn acl(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let spec = match table.resolve(&req.args) {
        Ok(spec) => spec,
        Err(e) => return client.reply_error(seq, &e.to_string()),
    };
    if spec.name.as_ref() != "acl|whoami" {
        return client.reply_error(
            seq,
            &format!(
                "ERR '{}' is not supported through meridian: it acts on one node, not on the cluster a gateway presents",
                spec.name
            ),
        );
    }
    let name = match (&worker.shared.users(), &client.user) {
        (Some(_), Some(user)) => user.name.as_bytes().to_vec(),
        (Some(_), None) => return client.reply_error(seq, "NOAUTH Authentication required."),
        (None, _) => b"default".to_vec(),
    };
    let mut out = BytesMut::new();
    encode::bulk(&mut out, &name);
    client.reply(seq, out.freeze());
}

fn command(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    seq: Seq,
    req: &Request,
) {
    let args = &req.args;
    let sub = args
        .get(1)
        .map(|s| String::from_utf8_lossy(s).to_lowercase());
    let mut out = BytesMut::new();
    match sub.as_deref() {
        Some("count") => encode::integer(&mut out, table.len() as i64),
        Some("getkeys") => {
            if args.len() < 4 {
                return wrong_arity(client, seq, "command|getkeys");
            }
            let spans = &args.spans[2..];
            let inner = crate::resp::ReqArgs::new(args.buf, spans);
            let spec = match table.resolve(&inner) {
                Ok(s) => s,
                Err(crate::command::CommandError::WrongArity { .. }) => {
                    return client
                        .reply_error(seq, "ERR Invalid number of arguments specified for command");
                }
                Err(_) => return client.reply_error(seq, "ERR Invalid command specified"),
            };
            let mut keys = Vec::new();
            if let Err(e) = spec.key_positions(&inner, &mut keys) {
                return client.reply_error(seq, &e.to_string());
            }
            if keys.is_empty() {
                return client.reply_error(seq, "ERR The command has no key arguments");
            }
            encode::array_header(&mut out, keys.len());
            for k in keys {
                encode::bulk(&mut out, inner.get(k).unwrap_or_default());
            }
        }
        // The table's source of truth is the backend: let a master describe its commands.
        _ => {
            let slot = Slot::from_bits(rand::random::<u16>());
            return send_to_slot(worker, client, seq, slot, Access::Read, req.wire());
        }
    }
    client.reply(seq, out.freeze());
}
