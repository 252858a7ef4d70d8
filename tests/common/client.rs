//! Small helpers for tests that drive meridian through the `redis` crate.

use redis::{Connection, ConnectionLike, Value};

use super::{error_text, value_text};

/// A `redis::Cmd` from string arguments.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let (name, rest) = args.split_first().expect("a command needs a name");
    let mut c = redis::cmd(name);
    for a in rest {
        c.arg(*a);
    }
    c
}

/// Runs one command; the reply may be an error value, an I/O error is returned.
pub fn try_run(conn: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    conn.req_command(&cmd(args))
}

/// Runs one command; the reply may be an error value. Panics on I/O errors.
pub fn run(conn: &mut Connection, args: &[&str]) -> Value {
    try_run(conn, args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The text of a string reply; panics on anything else.
pub fn text(v: &Value) -> String {
    value_text(v).unwrap_or_else(|| panic!("expected a string reply, got {v:?}"))
}

/// The number of an integer reply; panics on anything else.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        other => panic!("expected an integer reply, got {other:?}"),
    }
}

/// The texts of an array (or RESP3 set) reply of strings; panics on anything else.
pub fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
        other => panic!("expected an array reply, got {other:?}"),
    }
}

/// The text of an error reply; panics on anything else.
pub fn err(v: &Value) -> String {
    error_text(v).unwrap_or_else(|| panic!("expected an error reply, got {v:?}"))
}
