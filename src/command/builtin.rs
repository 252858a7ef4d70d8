//! The Redis 7.0 command table compiled in, for when no backend answers `COMMAND`.
//!
//! The data is `builtin_7_0.txt`, one command per line, generated from a live Redis 7.0.15 by
//! the ignored test `regenerate_builtin_table` in this file:
//! `cargo test --lib command::builtin::tests::regenerate_builtin_table -- --ignored`.
//! Line format: `name arity flags first last step spec…`, flags comma-separated (`-` for
//! none), each spec `keyflags/begin/find` with begin `i<index>`, `k<startfrom>:<KEYWORD>` or
//! `u`, and find `r<lastkey>,<step>,<limit>`, `n<keynumidx>,<firstkey>,<step>` or `u`.
//! Subcommand lines are indented and follow their container.

use super::keyspec::{BeginSearch, FindKeys, KeyAccess, KeySpec};
use super::{CommandSpec, CommandTable, Flags};

const TABLE: &str = include_str!("builtin_7_0.txt");

/// The built-in table, parsed from the embedded text (well under a millisecond).
pub(super) fn table() -> CommandTable {
    // The text is a compile-time constant that the tests parse in full, so a failure here is
    // a build defect, not a runtime condition.
    let specs = parse_table(TABLE).unwrap_or_else(|e| panic!("built-in command table: {e}"));
    CommandTable::from_specs(specs).unwrap_or_else(|e| panic!("built-in command table: {e}"))
}

/// A defect in the table text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
struct TableError {
    line: usize,
    problem: &'static str,
}

fn parse_table(text: &str) -> Result<Vec<CommandSpec>, TableError> {
    let mut out: Vec<CommandSpec> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let err = |problem| TableError {
            line: i + 1,
            problem,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let spec = parse_line(line).ok_or_else(|| err("malformed command line"))?;
        if spec.name.contains('|') {
            let container = out
                .last_mut()
                .ok_or_else(|| err("subcommand before any command"))?;
            container.subcommands.push(spec);
        } else {
            out.push(spec);
        }
    }
    Ok(out)
}

fn parse_line(line: &str) -> Option<CommandSpec> {
    let mut words = line.split_ascii_whitespace();
    let name = words.next()?;
    let arity = words.next()?.parse().ok()?;
    let mut flags = Flags::empty();
    for f in list(words.next()?) {
        flags |= Flags::from_name(f.as_bytes())?;
    }
    let first = words.next()?.parse().ok()?;
    let last = words.next()?.parse().ok()?;
    let step = words.next()?.parse().ok()?;
    let key_specs = words.map(parse_spec).collect::<Option<Vec<_>>>()?;
    Some(CommandSpec::new(
        name,
        arity,
        flags,
        key_specs,
        (first, last, step),
        Vec::new(),
    ))
}

/// Items of a comma list, `-` being the empty list.
fn list(word: &str) -> impl Iterator<Item = &str> {
    word.split(',').filter(|w| !w.is_empty() && *w != "-")
}

fn ints<const N: usize>(s: &str) -> Option<[i32; N]> {
    let mut out = [0; N];
    let mut parts = s.split(',');
    for slot in &mut out {
        *slot = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn parse_spec(word: &str) -> Option<KeySpec> {
    let mut parts = word.splitn(3, '/');
    let (kflags, begin, find) = (parts.next()?, parts.next()?, parts.next()?);
    let mut spec = KeySpec {
        begin: BeginSearch::Unknown,
        find: FindKeys::Unknown,
        not_key: false,
        incomplete: false,
        variable_flags: false,
        access: KeyAccess::empty(),
    };
    for f in list(kflags) {
        match f {
            "not_key" => spec.not_key = true,
            "incomplete" => spec.incomplete = true,
            "variable_flags" => spec.variable_flags = true,
            other => {
                let (_, a) = KeyAccess::NAMES.iter().find(|(n, _)| *n == other)?;
                spec.access = spec.access.union(*a);
            }
        }
    }
    spec.begin = match begin.split_at_checked(1)? {
        ("i", n) => BeginSearch::Index(n.parse().ok()?),
        ("k", rest) => {
            let (from, keyword) = rest.split_once(':')?;
            BeginSearch::Keyword {
                keyword: keyword.as_bytes().into(),
                start_from: from.parse().ok()?,
            }
        }
        ("u", "") => BeginSearch::Unknown,
        _ => return None,
    };
    spec.find = match find.split_at_checked(1)? {
        ("r", n) => {
            let [last_key, step, limit] = ints(n)?;
            FindKeys::Range {
                last_key,
                step,
                limit,
            }
        }
        ("n", n) => {
            let [keynum_idx, first_key, step] = ints(n)?;
            FindKeys::Keynum {
                keynum_idx,
                first_key,
                step,
            }
        }
        ("u", "") => FindKeys::Unknown,
        _ => return None,
    };
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testsrv::TestServer;

    /// The table line of `spec` (the inverse of `parse_line`).
    fn to_line(spec: &CommandSpec) -> String {
        let flags: Vec<&str> = spec.flags.names().collect();
        let join = |v: Vec<&str>| {
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(",")
            }
        };
        let (first, last, step) = spec.legacy_keys;
        let mut line = format!(
            "{} {} {} {first} {last} {step}",
            spec.name,
            spec.arity,
            join(flags)
        );
        for ks in &spec.key_specs {
            let mut kf: Vec<&str> = KeyAccess::NAMES
                .iter()
                .filter(|(_, a)| ks.access.contains(*a))
                .map(|(n, _)| *n)
                .collect();
            for (on, name) in [
                (ks.not_key, "not_key"),
                (ks.incomplete, "incomplete"),
                (ks.variable_flags, "variable_flags"),
            ] {
                if on {
                    kf.push(name);
                }
            }
            let begin = match &ks.begin {
                BeginSearch::Index(i) => format!("i{i}"),
                BeginSearch::Keyword {
                    keyword,
                    start_from,
                } => {
                    let kw = std::str::from_utf8(keyword).unwrap();
                    assert!(
                        !kw.contains([' ', '/', '\t']),
                        "keyword {kw:?} cannot be written"
                    );
                    format!("k{start_from}:{kw}")
                }
                BeginSearch::Unknown => "u".into(),
            };
            let find = match ks.find {
                FindKeys::Range {
                    last_key,
                    step,
                    limit,
                } => format!("r{last_key},{step},{limit}"),
                FindKeys::Keynum {
                    keynum_idx,
                    first_key,
                    step,
                } => format!("n{keynum_idx},{first_key},{step}"),
                FindKeys::Unknown => "u".into(),
            };
            line.push_str(&format!(" {}/{begin}/{find}", join(kf)));
        }
        line
    }

    fn live_table(server: &TestServer, resp3: bool) -> CommandTable {
        let mut conn = server.connect();
        if resp3 {
            conn.call(&[b"HELLO", b"3"]);
        }
        let reply = conn.call(&[b"COMMAND"]);
        if resp3 {
            assert!(
                format!("{reply:?}").contains("Map("),
                "RESP3 COMMAND reply should hold maps"
            );
        }
        CommandTable::from_command_reply(&reply).unwrap()
    }

    #[test]
    fn builtin_agrees_with_live_command_reply() {
        let server = TestServer::start();
        let version = server.version();
        assert!(
            version.starts_with("7.0."),
            "the built-in table is Redis 7.0's; this server is {version}"
        );
        let builtin = CommandTable::builtin();
        for resp3 in [false, true] {
            let live = live_table(&server, resp3);
            assert_eq!(live.len(), builtin.len(), "resp3={resp3}");
            for cmd in live.iter() {
                assert_eq!(builtin.get(cmd.name.as_bytes()), Some(cmd), "resp3={resp3}");
                for sub in &cmd.subcommands {
                    assert_eq!(builtin.get(sub.name.as_bytes()), Some(sub), "resp3={resp3}");
                }
            }
        }
    }

    #[test]
    fn builtin_table_text_round_trips() {
        let specs = parse_table(TABLE).unwrap();
        assert_eq!(specs.len(), 240);
        assert_eq!(
            specs.iter().map(|c| c.subcommands.len()).sum::<usize>(),
            126
        );
        let lines: Vec<&str> = TABLE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        let written: Vec<String> = specs
            .iter()
            .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
            .map(to_line)
            .collect();
        assert_eq!(lines, written);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        assert_eq!(
            parse_table("get 2 readonly 1 1 1\n  x|y 2 - 0 0 0\nbad").unwrap_err(),
            TableError {
                line: 3,
                problem: "malformed command line"
            }
        );
        assert!(parse_table("  a|b 2 - 0 0 0").is_err());
        assert!(parse_table("get 2 nosuchflag 1 1 1").is_err());
        assert!(parse_table("get 2 - 1 1 1 RO/x1/r0,1,0").is_err());
        assert!(parse_table("get 2 - 1 1 1 RO/i1/r0,1").is_err());
        assert!(parse_table("get 2 - 1 1 1 RO/i1/r0,1,0,4").is_err());
    }

    /// Regenerates `builtin_7_0.txt` from a live Redis 7.0 `COMMAND` reply.
    #[test]
    #[ignore = "rewrites src/command/builtin_7_0.txt; run by hand after a Redis upgrade"]
    fn regenerate_builtin_table() {
        let server = TestServer::start();
        let live = live_table(&server, false);
        let mut cmds: Vec<&CommandSpec> = live.iter().collect();
        cmds.sort_by(|a, b| a.name.cmp(&b.name));
        let mut text = format!(
            "# Redis {} command table (COMMAND), generated by the ignored test\n\
             # command::builtin::tests::regenerate_builtin_table. Do not edit by hand.\n\
             # name arity flags first last step keyflags/begin/find...\n",
            server.version()
        );
        for cmd in cmds {
            text.push_str(&to_line(cmd));
            text.push('\n');
            for sub in &cmd.subcommands {
                text.push_str("  ");
                text.push_str(&to_line(sub));
                text.push('\n');
            }
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/command/builtin_7_0.txt");
        std::fs::write(path, text).unwrap();
        let reparsed = parse_table(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(reparsed.len(), live.len());
    }
}
