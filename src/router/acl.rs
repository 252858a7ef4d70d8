//! Users' permissions applied before a request is answered or sent: NOAUTH, role, keys, channels.

use std::rc::Rc;
use std::time::Duration;

use crate::acl::check::{KeyNeed, channels_allowed, command_allowed, keys_allowed};
use crate::acl::{Denied, User};
use crate::client::ClientState;
use crate::command::keyspec::find_keys;
use crate::command::{CommandSpec, KeyAccess};
use crate::resp::ReqArgs;

use super::class::{Class, Local};
use super::request::Request;
use super::worker::Worker;

/// How often repeated AUTH failures of one client are logged.
const AUTH_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The refusal of a request (Redis' error text), or `None` when the client may run it.
/// Called only when users are configured, before any handler: every key of the request is
/// checked before a split sends any part, and a refused command inside MULTI is never queued.
/// `spec` is `None` for locally answered commands.
pub fn refusal(
    client: &mut ClientState,
    req: &Request,
    class: Class,
    spec: Option<&CommandSpec>,
) -> Option<String> {
    if let Class::Local(Local::Auth | Local::Hello | Local::Quit | Local::Reset) = class {
        return None;
    }
    let Some(user) = client.user.as_deref() else {
        return Some(Denied::NoAuth.message(""));
    };
    // A local command without a valid spec is left to its handler's own error; for local
    // commands only the role matters (CLIENT KILL is admin).
    let spec = spec?;
    if !command_allowed(user.role, spec.flags, &spec.name) {
        return Some(Denied::Command.message(&spec.name));
    }
    if user.unrestricted || matches!(class, Class::Local(_)) {
        return None;
    }
    let denied = check_keys(user, spec, req, &mut client.key_buf)
        .or_else(|| check_channels(user, spec, req));
    denied.map(|d| d.message(&spec.name))
}

/// `keys` is the client's scratch buffer for key positions.
fn check_keys(
    user: &User,
    spec: &CommandSpec,
    req: &Request,
    keys: &mut Vec<usize>,
) -> Option<Denied> {
    if user.readable.all && user.writable.all {
        return None;
    }
    keys.clear();
    // A request whose keys cannot be found is refused later by its handler.
    spec.key_positions(&req.args, keys).ok()?;
    if keys.is_empty() {
        return None;
    }
    let args = &req.args;
    let ok = match per_spec(user, spec, args) {
        Some(ok) => ok,
        None => keys_allowed(
            user,
            key_need(spec, args),
            keys.iter().map(|&i| args.get(i).unwrap_or_default()),
        ),
    };
    (!ok).then_some(Denied::Key)
}

/// Commands with several key specs (LMOVE, COPY, RENAME, …): each spec's keys need what that
/// spec's flags say, as in Redis (COPY reads its source and only writes its destination).
/// `None` when a spec cannot locate its keys alone: the caller then takes the union.
fn per_spec(user: &User, spec: &CommandSpec, args: &ReqArgs<'_>) -> Option<bool> {
    if spec.key_specs.len() < 2 {
        return None;
    }
    let mut found = Vec::new();
    for ks in spec.key_specs.iter().filter(|ks| !ks.not_key) {
        found.clear();
        find_keys(std::slice::from_ref(ks), args, false, false, &mut found).ok()?;
        let keys = found.iter().map(|&i| args.get(i).unwrap_or_default());
        if !keys_allowed(user, need_of(ks.access), keys) {
            return Some(false);
        }
    }
    Some(true)
}

fn need_of(access: KeyAccess) -> KeyNeed {
    KeyNeed {
        read: access.contains(KeyAccess::ACCESS),
        write: access.contains(KeyAccess::INSERT)
            || access.contains(KeyAccess::DELETE)
            || access.contains(KeyAccess::UPDATE),
    }
}

/// The union of the command's key specs' access flags: exact for one spec; for several whose
/// keys only a native rule finds (SORT … STORE), every key needs what any needs. SET without
/// GET only writes, as Redis' `setGetKeys` says.
fn key_need(spec: &CommandSpec, args: &ReqArgs<'_>) -> KeyNeed {
    if spec.name.as_ref() == "set" && !args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
        return KeyNeed {
            read: false,
            write: true,
        };
    }
    if spec.key_specs.is_empty() {
        let write = spec.is_write();
        return KeyNeed {
            read: !write,
            write,
        };
    }
    let mut need = KeyNeed {
        read: false,
        write: false,
    };
    for ks in &spec.key_specs {
        let one = need_of(ks.access);
        need.read |= one.read;
        need.write |= one.write;
    }
    need
}

fn check_channels(user: &User, spec: &CommandSpec, req: &Request) -> Option<Denied> {
    if user.channels.all || !spec.is_pubsub() {
        return None;
    }
    let args = &req.args;
    let ok = match spec.name.as_ref() {
        "publish" | "spublish" => channels_allowed(user, args.get(1)),
        "subscribe" | "ssubscribe" => {
            channels_allowed(user, (1..args.len()).filter_map(|i| args.get(i)))
        }
        // A pattern subscription must name one of the user's patterns literally, as in Redis.
        "psubscribe" => (1..args.len())
            .filter_map(|i| args.get(i))
            .all(|p| user.channels.list.iter().any(|u| **u == *p)),
        _ => true,
    };
    (!ok).then_some(Denied::Channel)
}

/// Counts a failed AUTH: in INFO at once, in the log at most once per interval per client
/// with the number of failures since the last line.
pub fn auth_failed(worker: &Rc<Worker>, client: &mut ClientState) {
    worker.stats.auth_failures.add(1);
    client.auth_failures += 1;
    let now = worker.now();
    let due = client
        .auth_logged
        .is_none_or(|at| now.duration_since(at) >= AUTH_LOG_INTERVAL);
    if due {
        tracing::warn!(
            client = client.id,
            peer = %client.peer,
            failures = client.auth_failures,
            "AUTH failed (wrong user or password, or disabled user)"
        );
        client.auth_failures = 0;
        client.auth_logged = Some(now);
    }
}
