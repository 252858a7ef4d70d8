//! The replies of CONFIG through meridian: `CONFIG GET` (meridian's own settings beside one
//! master's parameters) and the commands applied to every node (`CONFIG SET`, `RESETSTAT`,
//! `REWRITE`), whose failure names the nodes that refused and those that took it.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::resp::encode;
use crate::resp::reply::aggregate_elements;

use super::info::payload;

/// Nesting accepted when reading a node's CONFIG GET reply.
const MAX_DEPTH: usize = 8;

/// CONFIG GET: the node's `[name, value, …]` (RESP2, `None` without a map) followed by
/// meridian's own pairs, as a RESP2 flat array or a RESP3 map like Redis answers. A node's
/// error is the reply.
pub fn config_get(own: &[(String, String)], node: Option<&Bytes>, proto: u8) -> Bytes {
    let mut pairs: Vec<(&[u8], &[u8])> = Vec::new();
    if let Some(reply) = node {
        if reply.first() == Some(&b'-') {
            return reply.clone();
        }
        let Ok(Some(ranges)) = aggregate_elements(reply, MAX_DEPTH) else {
            return mismatch();
        };
        for pair in ranges.chunks(2) {
            let [name, value] = pair else {
                return mismatch();
            };
            pairs.push((
                payload(&reply[name.clone()]),
                payload(&reply[value.clone()]),
            ));
        }
    }
    pairs.extend(own.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())));
    let mut out = BytesMut::new();
    encode::map_header(&mut out, pairs.len(), proto);
    for (name, value) in pairs {
        encode::bulk(&mut out, name);
        encode::bulk(&mut out, value);
    }
    out.freeze()
}

/// A command applied to every node (`addrs[i]` answered `parts[i]`): `+OK` when every node
/// said `+OK`; otherwise one error naming each node that refused with its reason, then the
/// nodes where it took effect (a CONFIG SET is not undone on them).
pub fn every_node(command: &str, addrs: &[Arc<str>], parts: &[Bytes]) -> Bytes {
    let mut refused = Vec::new();
    let mut took = Vec::new();
    for (addr, reply) in addrs.iter().zip(parts) {
        if reply.first() == Some(&b'+') {
            took.push(addr.as_ref());
        } else {
            refused.push(format!("{addr} ({})", one_line(reply)));
        }
    }
    if refused.is_empty() && parts.len() == addrs.len() {
        return Bytes::from_static(b"+OK\r\n");
    }
    let took = if took.is_empty() {
        "none".to_string()
    } else {
        took.join(", ")
    };
    let msg = format!(
        "ERR {command} failed on {} of {} nodes: {}; succeeded on: {took}",
        refused.len(),
        addrs.len(),
        refused.join(", "),
    );
    let mut out = BytesMut::new();
    encode::error(&mut out, &msg);
    out.freeze()
}

/// A node's reply as one line of text: an error without its `-`, anything else described.
fn one_line(reply: &[u8]) -> String {
    let text = match reply.strip_prefix(b"-") {
        Some(err) => String::from_utf8_lossy(err).into_owned(),
        None => format!("unexpected reply {}", String::from_utf8_lossy(reply)),
    };
    text.replace(['\r', '\n'], " ").trim().to_string()
}

fn mismatch() -> Bytes {
    Bytes::from_static(b"-ERR meridian: unexpected CONFIG GET reply from a node\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> Vec<(String, String)> {
        vec![("meridian.workers".into(), "2".into())]
    }

    #[test]
    fn get_merges_the_node_and_meridian_in_both_protocols() {
        let node = Bytes::from_static(b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
        let two = config_get(&own(), Some(&node), 2);
        assert_eq!(
            &two[..],
            b"*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$16\r\nmeridian.workers\r\n$1\r\n2\r\n"
        );
        let three = config_get(&own(), Some(&node), 3);
        assert!(three.starts_with(b"%2\r\n"));
        assert_eq!(&config_get(&[], None, 2)[..], b"*0\r\n");
        let err = Bytes::from_static(b"-ERR boom\r\n");
        assert_eq!(config_get(&own(), Some(&err), 2), err);
        let odd = Bytes::from_static(b"*1\r\n$1\r\na\r\n");
        assert!(config_get(&own(), Some(&odd), 2).starts_with(b"-ERR meridian"));
    }

    #[test]
    fn every_node_names_who_refused_and_who_took_it() {
        let addrs: Vec<Arc<str>> = vec!["a:1".into(), "b:2".into(), "c:3".into()];
        let ok = Bytes::from_static(b"+OK\r\n");
        assert_eq!(
            &every_node("CONFIG SET", &addrs, &[ok.clone(), ok.clone(), ok.clone()])[..],
            b"+OK\r\n"
        );
        let no = Bytes::from_static(b"-ERR bad value\r\n");
        let got = every_node("CONFIG SET", &addrs, &[ok.clone(), no.clone(), ok]);
        assert_eq!(
            String::from_utf8_lossy(&got),
            "-ERR CONFIG SET failed on 1 of 3 nodes: b:2 (ERR bad value); succeeded on: a:1, c:3\r\n"
        );
        let all = every_node("CONFIG REWRITE", &addrs[..1], &[no]);
        assert!(String::from_utf8_lossy(&all).ends_with("succeeded on: none\r\n"));
    }
}
