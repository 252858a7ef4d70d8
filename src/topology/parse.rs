//! Turns a `CLUSTER SLOTS` reply into shard specs.

use crate::resp::Value;

use super::{NodeSpec, ShardSpec};

/// Why a `CLUSTER SLOTS` reply could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotsError {
    #[error("CLUSTER SLOTS reply is not an array")]
    NotArray,
    #[error("CLUSTER SLOTS entry {0} is malformed")]
    BadEntry(usize),
    #[error("node answered with an error: {0}")]
    ErrorReply(String),
}

/// Parses a `CLUSTER SLOTS` reply. `queried_host` replaces an empty announced IP (a node that
/// does not know its own address reports `""`, meaning "the address you reached me on").
pub fn parse_cluster_slots(
    reply: &Value,
    queried_host: &str,
) -> Result<Vec<ShardSpec>, SlotsError> {
    let entries = match reply {
        Value::Error(e) => return Err(SlotsError::ErrorReply(e.clone())),
        other => other.as_array().ok_or(SlotsError::NotArray)?,
    };
    let mut shards: Vec<ShardSpec> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let fields = entry.as_array().ok_or(SlotsError::BadEntry(i))?;
        if fields.len() < 3 {
            return Err(SlotsError::BadEntry(i));
        }
        let lo = slot_number(&fields[0]).ok_or(SlotsError::BadEntry(i))?;
        let hi = slot_number(&fields[1]).ok_or(SlotsError::BadEntry(i))?;
        if lo > hi {
            return Err(SlotsError::BadEntry(i));
        }
        let master = node_spec(&fields[2], queried_host).ok_or(SlotsError::BadEntry(i))?;
        let replicas: Vec<NodeSpec> = fields[3..]
            .iter()
            .filter_map(|f| node_spec(f, queried_host))
            .collect();
        match shards.iter_mut().find(|s| s.master.addr == master.addr) {
            Some(shard) => {
                shard.slots.push((lo, hi));
                for r in replicas {
                    if !shard.replicas.contains(&r) {
                        shard.replicas.push(r);
                    }
                }
            }
            None => shards.push(ShardSpec {
                master,
                replicas,
                slots: vec![(lo, hi)],
            }),
        }
    }
    shards.sort_by(|a, b| a.slots.first().cmp(&b.slots.first()));
    Ok(shards)
}

fn slot_number(v: &Value) -> Option<u16> {
    let n = v.as_int()?;
    (0..16384).contains(&n).then_some(n as u16)
}

fn node_spec(v: &Value, queried_host: &str) -> Option<NodeSpec> {
    let f = v.as_array()?;
    let ip = f.first()?.as_str()?;
    let port = f.get(1)?.as_int()?;
    if !(1..=65535).contains(&port) || ip == "?" {
        return None;
    }
    let id = f.get(2).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let host = if ip.is_empty() { queried_host } else { ip };
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Some(NodeSpec { addr, id })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn node(ip: &str, port: i64, id: &str) -> Value {
        Value::Array(vec![
            bulk(ip),
            Value::Integer(port),
            bulk(id),
            Value::Array(vec![]),
        ])
    }

    #[test]
    fn parses_ranges_and_merges_by_master() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Integer(0),
                Value::Integer(99),
                node("127.0.0.1", 7001, "a"),
                node("127.0.0.1", 7004, "d"),
            ]),
            Value::Array(vec![
                Value::Integer(100),
                Value::Integer(16383),
                node("", 7002, "b"),
            ]),
            Value::Array(vec![
                Value::Integer(200),
                Value::Integer(200),
                node("127.0.0.1", 7001, "a"),
            ]),
        ]);
        let shards = parse_cluster_slots(&reply, "10.0.0.9").unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].master.addr, "127.0.0.1:7001");
        assert_eq!(shards[0].slots, vec![(0, 99), (200, 200)]);
        assert_eq!(shards[0].replicas[0].addr, "127.0.0.1:7004");
        assert_eq!(shards[1].master.addr, "10.0.0.9:7002");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(
            parse_cluster_slots(&Value::Integer(1), "h"),
            Err(SlotsError::NotArray)
        );
        let bad = Value::Array(vec![Value::Array(vec![
            Value::Integer(5),
            Value::Integer(1),
        ])]);
        assert_eq!(parse_cluster_slots(&bad, "h"), Err(SlotsError::BadEntry(0)));
        assert!(matches!(
            parse_cluster_slots(
                &Value::Error("ERR This instance has cluster support disabled".into()),
                "h"
            ),
            Err(SlotsError::ErrorReply(_))
        ));
    }
}
