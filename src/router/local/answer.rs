//! Small pieces every locally answered command uses: the version meridian reports, the
//! standard error and OK replies, name checks.

use bytes::Bytes;

use crate::client::ClientState;
use crate::reply::queue::Seq;

/// The Redis version meridian reports in HELLO (the command set it routes).
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

pub fn wrong_arity(client: &ClientState, seq: Seq, name: &str) {
    client.reply_error(
        seq,
        &format!("ERR wrong number of arguments for '{name}' command"),
    );
}

pub fn ok(client: &ClientState, seq: Seq) {
    client.reply(seq, Bytes::from_static(b"+OK\r\n"));
}

pub fn eq(a: &[u8], b: &str) -> bool {
    a.eq_ignore_ascii_case(b.as_bytes())
}

pub fn valid_name(n: &[u8]) -> Result<(), &'static str> {
    if n.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err("ERR Client names cannot contain spaces, newlines or special characters.");
    }
    Ok(())
}
