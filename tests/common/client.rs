//! Small helpers for tests that drive meridian through the `redis` crate.

use redis::{Connection, ConnectionLike, Value};

use super::{error_text, value_text};

/// A `redis::Cmd` from string arguments.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Runs one command; the reply may be an error value. Panics on I/O errors.
pub fn run(conn: &mut Connection, args: &[&str]) -> Value {
    conn.req_command(&cmd(args))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The text of a string reply; panics on anything else.
pub fn text(v: &Value) -> String {
    value_text(v).unwrap_or_else(|| panic!("expected a string reply, got {v:?}"))
}

/// The text of an error reply; panics on anything else.
pub fn err(v: &Value) -> String {
    error_text(v).unwrap_or_else(|| panic!("expected an error reply, got {v:?}"))
}
