//! Parser of the `COMMAND` / `COMMAND INFO` reply into command specs, RESP2 or RESP3.

use super::keyspec::{BeginSearch, FindKeys, KeyAccess, KeySpec};
use super::{CommandSpec, CommandTable, Flags};
use crate::resp::Value;

/// Why a `COMMAND` reply could not be turned into a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandInfoError {
    /// The server answered with an error.
    #[error("COMMAND failed: {0}")]
    Server(String),
    /// The reply is not an array of entries.
    #[error("COMMAND reply is not an array")]
    NotAnArray,
    /// One entry is malformed.
    #[error("COMMAND entry '{command}': {problem}")]
    BadEntry {
        /// The command name, or `#<index>` when the name itself is unreadable.
        command: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// More commands than the index can address.
    #[error("too many commands ({0})")]
    TooMany(usize),
}

/// The specs of every entry of a `COMMAND` reply; nil entries (unknown names in
/// `COMMAND INFO`) are skipped.
pub(crate) fn parse_reply(reply: &Value) -> Result<Vec<CommandSpec>, CommandInfoError> {
    let entries = match reply {
        Value::Error(e) => return Err(CommandInfoError::Server(e.clone())),
        other => list(other).ok_or(CommandInfoError::NotAnArray)?,
    };
    // Redis 6 entries borrow the built-in specs; parsed only if such an entry shows up.
    let mut fallback: Option<CommandTable> = None;
    let mut specs = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        if *entry == Value::Nil {
            continue;
        }
        specs.push(parse_entry(entry, i, &mut fallback)?);
    }
    Ok(specs)
}

fn list(v: &Value) -> Option<&[Value]> {
    match v {
        Value::Array(items) | Value::Set(items) | Value::Push(items) => Some(items),
        _ => None,
    }
}

fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::Bulk(b) => Some(b),
        Value::Simple(s) => Some(s.as_bytes()),
        Value::Verbatim { text, .. } => Some(text),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i32> {
    match v {
        Value::Integer(n) => i32::try_from(*n).ok(),
        _ => None,
    }
}

/// The value of `key` in a RESP3 map or a RESP2 array of alternating names and values.
fn field<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(k, _)| text(k) == Some(key.as_bytes()))
            .map(|(_, v)| v),
        Value::Array(items) => items
            .chunks_exact(2)
            .find(|kv| text(&kv[0]) == Some(key.as_bytes()))
            .map(|kv| &kv[1]),
        _ => None,
    }
}

fn parse_entry(
    entry: &Value,
    index: usize,
    fallback: &mut Option<CommandTable>,
) -> Result<CommandSpec, CommandInfoError> {
    let unnamed = || format!("#{index}");
    let bad = |command: String, problem| CommandInfoError::BadEntry { command, problem };
    let items = list(entry).ok_or_else(|| bad(unnamed(), "entry is not an array"))?;
    let name = items
        .first()
        .and_then(text)
        .and_then(|n| std::str::from_utf8(n).ok())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad(unnamed(), "name is not a UTF-8 string"))?
        .to_ascii_lowercase();
    let num = |i: usize, what| {
        items
            .get(i)
            .and_then(int)
            .ok_or_else(|| bad(name.clone(), what))
    };
    let arity = num(1, "arity is not an integer")?;
    let legacy_keys = (
        num(3, "first key is not an integer")?,
        num(4, "last key is not an integer")?,
        num(5, "key step is not an integer")?,
    );
    let mut flags = Flags::empty();
    let flag_list = items
        .get(2)
        .and_then(list)
        .ok_or_else(|| bad(name.clone(), "flags are not a list"))?;
    for f in flag_list {
        // Flags a newer server invents are ignored, not fatal.
        flags |= text(f).and_then(Flags::from_name).unwrap_or_default();
    }
    let key_specs = match items.get(8) {
        Some(specs) => list(specs)
            .ok_or_else(|| bad(name.clone(), "key specs are not a list"))?
            .iter()
            .map(|s| parse_key_spec(s).ok_or_else(|| bad(name.clone(), "malformed key spec")))
            .collect::<Result<Vec<_>, _>>()?,
        None => legacy_specs(&name, flags, legacy_keys, fallback),
    };
    let mut subcommands = match items.get(9) {
        Some(subs) => list(subs)
            .ok_or_else(|| bad(name.clone(), "subcommands are not a list"))?
            .iter()
            .enumerate()
            .map(|(i, s)| parse_entry(s, i, fallback))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    subcommands.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(CommandSpec::new(
        &name,
        arity,
        flags,
        key_specs,
        legacy_keys,
        subcommands,
    ))
}

/// Key specs for a Redis 6 entry (no key specs reported): the built-in 7.0 specs when the
/// command has movable keys and is known there (EVAL, ZUNIONSTORE, XREAD…, whose first/last
/// are 0), else one range spec from first/last/step.
fn legacy_specs(
    name: &str,
    flags: Flags,
    (first, last, step): (i32, i32, i32),
    fallback: &mut Option<CommandTable>,
) -> Vec<KeySpec> {
    if flags.contains(Flags::MOVABLE_KEYS) {
        let builtin = fallback.get_or_insert_with(CommandTable::builtin);
        if let Some(known) = builtin.get(name.as_bytes()) {
            return known.key_specs.clone();
        }
    }
    if first <= 0 || step <= 0 {
        return Vec::new();
    }
    vec![KeySpec {
        begin: BeginSearch::Index(first),
        find: FindKeys::Range {
            last_key: if last >= 0 { last - first } else { last },
            step,
            limit: 0,
        },
        not_key: false,
        incomplete: false,
        variable_flags: false,
        access: KeyAccess::empty(),
    }]
}

fn parse_key_spec(spec: &Value) -> Option<KeySpec> {
    let mut out = KeySpec {
        begin: BeginSearch::Unknown,
        find: FindKeys::Unknown,
        not_key: false,
        incomplete: false,
        variable_flags: false,
        access: KeyAccess::empty(),
    };
    for flag in field(spec, "flags").and_then(list)? {
        match text(flag)? {
            b"not_key" => out.not_key = true,
            b"incomplete" => out.incomplete = true,
            b"variable_flags" => out.variable_flags = true,
            other => {
                if let Some((_, a)) = KeyAccess::NAMES.iter().find(|(n, _)| n.as_bytes() == other) {
                    out.access = out.access.union(*a);
                }
            }
        }
    }
    let begin = field(spec, "begin_search")?;
    let args = field(begin, "spec");
    let num = |key| args.and_then(|a| field(a, key)).and_then(int);
    out.begin = match text(field(begin, "type")?)? {
        b"index" => BeginSearch::Index(num("index")?),
        b"keyword" => BeginSearch::Keyword {
            keyword: args
                .and_then(|a| field(a, "keyword"))
                .and_then(text)?
                .into(),
            start_from: num("startfrom")?,
        },
        _ => BeginSearch::Unknown,
    };
    let find = field(spec, "find_keys")?;
    let args = field(find, "spec");
    let num = |key| args.and_then(|a| field(a, key)).and_then(int);
    out.find = match text(field(find, "type")?)? {
        b"range" => FindKeys::Range {
            last_key: num("lastkey")?,
            step: num("keystep")?,
            limit: num("limit")?,
        },
        b"keynum" => FindKeys::Keynum {
            keynum_idx: num("keynumidx")?,
            first_key: num("firstkey")?,
            step: num("keystep")?,
        },
        _ => FindKeys::Unknown,
    };
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn bulk(s: &str) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn simple(s: &str) -> Value {
        Value::Simple(s.to_string())
    }

    /// A RESP2-style map: an array of alternating names and values.
    fn pairs(kv: Vec<(&str, Value)>) -> Value {
        Value::Array(kv.into_iter().flat_map(|(k, v)| [bulk(k), v]).collect())
    }

    /// The same as RESP3 map.
    fn map(kv: Vec<(&str, Value)>) -> Value {
        Value::Map(kv.into_iter().map(|(k, v)| (bulk(k), v)).collect())
    }

    fn get_entry(resp3: bool) -> Value {
        let m = if resp3 { map } else { pairs };
        let flags = |names: &[&str]| {
            let items = names.iter().map(|n| simple(n)).collect();
            if resp3 {
                Value::Set(items)
            } else {
                Value::Array(items)
            }
        };
        let spec = m(vec![
            ("flags", flags(&["RO", "access"])),
            (
                "begin_search",
                m(vec![
                    ("type", bulk("index")),
                    ("spec", m(vec![("index", Value::Integer(1))])),
                ]),
            ),
            (
                "find_keys",
                m(vec![
                    ("type", bulk("range")),
                    (
                        "spec",
                        m(vec![
                            ("lastkey", Value::Integer(0)),
                            ("keystep", Value::Integer(1)),
                            ("limit", Value::Integer(0)),
                        ]),
                    ),
                ]),
            ),
        ]);
        Value::Array(vec![
            bulk("GET"),
            Value::Integer(2),
            flags(&["readonly", "fast", "some_future_flag"]),
            Value::Integer(1),
            Value::Integer(1),
            Value::Integer(1),
            Value::Array(vec![simple("@read")]),
            Value::Array(vec![]),
            Value::Array(vec![spec]),
            Value::Array(vec![]),
        ])
    }

    #[test]
    fn resp2_and_resp3_entries_parse_the_same() {
        for resp3 in [false, true] {
            let reply = Value::Array(vec![get_entry(resp3), Value::Nil]);
            let table = CommandTable::from_command_reply(&reply).unwrap();
            assert_eq!(table.len(), 1);
            let builtin = CommandTable::builtin();
            assert_eq!(table.get(b"get"), builtin.get(b"get"), "resp3={resp3}");
        }
    }

    #[test]
    fn redis6_entries_fall_back_to_builtin_specs_or_first_last_step() {
        let entry = |name: &str, arity, flags: &[&str], first, last, step| {
            Value::Array(vec![
                bulk(name),
                Value::Integer(arity),
                Value::Array(flags.iter().map(|f| simple(f)).collect()),
                Value::Integer(first),
                Value::Integer(last),
                Value::Integer(step),
                Value::Array(vec![]),
            ])
        };
        let reply = Value::Array(vec![
            entry("mset", -3, &["write", "denyoom"], 1, -1, 2),
            entry(
                "zunionstore",
                -4,
                &["write", "denyoom", "movablekeys"],
                0,
                0,
                0,
            ),
            entry("ping", -1, &["stale", "fast"], 0, 0, 0),
            entry("mod.cmd", 3, &["write", "module"], 2, 2, 1),
        ]);
        let table = CommandTable::from_command_reply(&reply).unwrap();
        let builtin = CommandTable::builtin();
        let zs = table.get(b"zunionstore").unwrap();
        assert_eq!(zs.key_specs, builtin.get(b"zunionstore").unwrap().key_specs);
        assert!(table.get(b"ping").unwrap().key_specs.is_empty());
        let keys = |name: &[u8], args: &[&[u8]]| {
            let (buf, spans) = crate::command::testsrv::req(args);
            let mut out = Vec::new();
            let a = crate::resp::ReqArgs {
                buf: &buf,
                spans: &spans,
            };
            table
                .get(name)
                .unwrap()
                .key_positions(&a, &mut out)
                .unwrap();
            out
        };
        assert_eq!(
            keys(b"mset", &[b"mset", b"a", b"1", b"b", b"2"]),
            vec![1, 3]
        );
        assert_eq!(
            keys(b"zunionstore", &[b"zunionstore", b"d", b"2", b"a", b"b"]),
            vec![1, 3, 4]
        );
        assert_eq!(keys(b"mod.cmd", &[b"mod.cmd", b"x", b"k"]), vec![2]);
    }

    #[test]
    fn unknown_spec_types_become_unknown() {
        let spec = pairs(vec![
            (
                "flags",
                Value::Array(vec![simple("RW"), simple("incomplete"), simple("new_flag")]),
            ),
            (
                "begin_search",
                pairs(vec![("type", bulk("future")), ("spec", pairs(vec![]))]),
            ),
            (
                "find_keys",
                pairs(vec![("type", bulk("unknown")), ("spec", pairs(vec![]))]),
            ),
        ]);
        let ks = parse_key_spec(&spec).unwrap();
        assert_eq!(ks.begin, BeginSearch::Unknown);
        assert_eq!(ks.find, FindKeys::Unknown);
        assert!(ks.incomplete && !ks.not_key && ks.access == KeyAccess::RW);
    }

    #[test]
    fn malformed_replies_are_errors() {
        let err = |v: Value| CommandTable::from_command_reply(&v).unwrap_err();
        assert_eq!(
            err(Value::Error("ERR nope".into())),
            CommandInfoError::Server("ERR nope".into())
        );
        assert_eq!(err(Value::Integer(3)), CommandInfoError::NotAnArray);
        assert!(matches!(
            err(Value::Array(vec![Value::Integer(1)])),
            CommandInfoError::BadEntry { .. }
        ));
        let mut entry = get_entry(false);
        if let Value::Array(items) = &mut entry {
            items[1] = bulk("two");
        }
        assert_eq!(
            err(Value::Array(vec![entry])),
            CommandInfoError::BadEntry {
                command: "get".into(),
                problem: "arity is not an integer"
            }
        );
        let mut entry = get_entry(false);
        if let Value::Array(items) = &mut entry {
            items[8] = Value::Array(vec![pairs(vec![("flags", Value::Array(vec![]))])]);
        }
        assert_eq!(
            err(Value::Array(vec![entry])).to_string(),
            "COMMAND entry 'get': malformed key spec"
        );
    }
}
