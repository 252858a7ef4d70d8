//! Unit tests of the command table: lookup, resolution, arity and key positions.

use super::*;
use crate::command::testsrv::req;

fn with_args<T>(args: &[&[u8]], f: impl FnOnce(&ReqArgs<'_>) -> T) -> T {
    let (buf, spans) = req(args);
    f(&ReqArgs {
        buf: &buf,
        spans: &spans,
    })
}

fn positions(table: &CommandTable, args: &[&[u8]]) -> Result<Vec<usize>, CommandError> {
    with_args(args, |a| {
        let mut out = vec![99];
        table.resolve(a)?.key_positions(a, &mut out)?;
        assert_eq!(out.first(), Some(&99), "positions are appended");
        Ok(out[1..].to_vec())
    })
}

#[test]
fn get_is_case_insensitive_for_every_command_and_subcommand() {
    let table = CommandTable::builtin();
    assert_eq!(table.len(), 240);
    for cmd in table.iter() {
        let upper = cmd.name.to_ascii_uppercase();
        assert_eq!(
            table.get(upper.as_bytes()).map(|c| &c.name),
            Some(&cmd.name)
        );
        for sub in &cmd.subcommands {
            let mixed = sub.name.to_ascii_uppercase();
            assert_eq!(
                table.get(mixed.as_bytes()).map(|c| &c.name),
                Some(&sub.name)
            );
            assert_eq!(table.get(sub.name.as_bytes()), Some(sub));
        }
    }
    assert!(table.get(b"nosuchcommand").is_none());
    assert!(table.get(b"").is_none());
    assert!(table.get(b"ge").is_none());
    assert!(table.get(b"gett").is_none());
    assert!(table.get(b"get|x").is_none());
    assert!(table.get(b"object|").is_none());
    assert!(table.get(b"object|nosuch").is_none());
    assert!(table.get(&[b'a'; 4096]).is_none());
    assert!(table.get(b"g\xffet").is_none());
}

#[test]
fn resolve_descends_into_subcommands_and_checks_arity() {
    let table = CommandTable::builtin();
    let name = |args: &[&[u8]]| with_args(args, |a| table.resolve(a).map(|s| s.name.to_string()));
    assert_eq!(name(&[b"get", b"k"]).unwrap(), "get");
    assert_eq!(
        name(&[b"OBJECT", b"Encoding", b"k"]).unwrap(),
        "object|encoding"
    );
    assert_eq!(
        name(&[b"xinfo", b"STREAM", b"k", b"FULL"]).unwrap(),
        "xinfo|stream"
    );
    assert_eq!(
        name(&[b"client", b"setname", b"n"]).unwrap(),
        "client|setname"
    );
    assert_eq!(name(&[b"COMMAND"]).unwrap(), "command");
    assert_eq!(name(&[b"command", b"count"]).unwrap(), "command|count");
    // Non-container commands ignore what looks like a subcommand.
    assert_eq!(name(&[b"set", b"k", b"encoding"]).unwrap(), "set");
    let err = |args: &[&[u8]]| name(args).unwrap_err().to_string();
    assert_eq!(
        err(&[b"get"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&[b"get", b"a", b"b"]),
        "ERR wrong number of arguments for 'get' command"
    );
    assert_eq!(
        err(&[b"mset", b"a"]),
        "ERR wrong number of arguments for 'mset' command"
    );
    assert_eq!(
        err(&[b"object"]),
        "ERR wrong number of arguments for 'object' command"
    );
    assert_eq!(
        err(&[b"object", b"encoding"]),
        "ERR wrong number of arguments for 'object|encoding' command"
    );
    assert_eq!(
        err(&[b"Object", b"x"]),
        "ERR unknown subcommand 'x'. Try OBJECT HELP."
    );
    assert_eq!(
        err(&[b"foo", b"a", b"b"]),
        "ERR unknown command 'foo', with args beginning with: 'a' 'b' "
    );
    assert_eq!(
        err(&[]),
        "ERR unknown command '', with args beginning with: "
    );
}

#[test]
fn key_positions_of_common_shapes() {
    let table = CommandTable::builtin();
    assert_eq!(
        positions(&table, &[b"MSET", b"k1", b"v1", b"k2", b"v2"]),
        Ok(vec![1, 3])
    );
    assert_eq!(positions(&table, &[b"EVAL", b"s", b"0"]), Ok(vec![]));
    assert_eq!(
        positions(&table, &[b"EVAL", b"s", b"2", b"a", b"b", b"c"]),
        Ok(vec![3, 4])
    );
    assert_eq!(
        positions(&table, &[b"ZUNIONSTORE", b"d", b"2", b"a", b"b"]),
        Ok(vec![1, 3, 4])
    );
    assert_eq!(positions(&table, &[b"PING"]), Ok(vec![]));
    assert_eq!(positions(&table, &[b"SPUBLISH", b"ch", b"m"]), Ok(vec![]));
    assert_eq!(
        positions(&table, &[b"ZUNIONSTORE", b"d", b"0", b"a"]).map_err(|e| e.to_string()),
        Err("ERR at least 1 input key is needed for 'zunionstore' command".to_string())
    );
    let err = with_args(&[b"xread", b"streams", b"a", b"b", b"c"], |a| {
        let mut out = vec![7];
        let e = table.resolve(a).unwrap().key_positions(a, &mut out);
        (e, out)
    });
    assert_eq!(err, (Err(NumkeysError::UnbalancedStreams.into()), vec![7]));
    // Odd STREAMS lists behind an invalid COUNT are left to the server to word.
    let args: [&[u8]; 7] = [b"xread", b"count", b"x", b"streams", b"a", b"b", b"c"];
    assert_eq!(positions(&table, &args), Ok(vec![4]));
}

#[test]
fn routing_positions_include_shard_channels() {
    let table = CommandTable::builtin();
    for args in [
        &[&b"SPUBLISH"[..], b"ch", b"m"][..],
        &[b"ssubscribe", b"ch"],
        &[b"SUNSUBSCRIBE", b"ch"],
    ] {
        let got = with_args(args, |a| {
            let mut out = Vec::new();
            table
                .resolve(a)
                .unwrap()
                .routing_positions(a, &mut out)
                .unwrap();
            out
        });
        assert_eq!(got, vec![1], "{args:?}");
    }
    let got = with_args(&[b"ssubscribe", b"a", b"b"], |a| {
        let mut out = Vec::new();
        table
            .resolve(a)
            .unwrap()
            .routing_positions(a, &mut out)
            .unwrap();
        out
    });
    assert_eq!(got, vec![1, 2]);
}

#[test]
fn flag_predicates() {
    let table = CommandTable::builtin();
    let get = table.get(b"get").unwrap();
    assert!(get.is_readonly() && get.is_fast() && !get.is_write() && !get.has_movable_keys());
    let set = table.get(b"set").unwrap();
    assert!(set.is_write() && set.is_denyoom() && !set.is_readonly());
    assert!(table.get(b"blpop").unwrap().is_blocking());
    assert!(table.get(b"subscribe").unwrap().is_pubsub());
    assert!(table.get(b"eval").unwrap().has_movable_keys());
    assert!(table.get(b"auth").unwrap().is_no_auth());
    assert!(table.get(b"config|set").unwrap().is_admin());
    assert!(table.get(b"object").unwrap().is_container());
    assert!(
        table
            .get(b"watch")
            .unwrap()
            .flags
            .contains(Flags::ALLOW_BUSY)
    );
    assert!(table.get(b"save").unwrap().is_no_multi());
}

#[test]
fn module_command_with_unresolvable_spec_keeps_the_keys_it_can_find() {
    let known = KeySpec {
        begin: BeginSearch::Index(1),
        find: FindKeys::Range {
            last_key: 0,
            step: 1,
            limit: 0,
        },
        not_key: false,
        incomplete: false,
        variable_flags: false,
        access: KeyAccess::RW,
    };
    let unknown = KeySpec {
        begin: BeginSearch::Unknown,
        find: FindKeys::Unknown,
        ..known.clone()
    };
    let cmd = CommandSpec::new(
        "My.Cmd",
        -2,
        Flags::MODULE,
        vec![known, unknown],
        (1, 1, 1),
        vec![],
    );
    assert_eq!(&*cmd.name, "my.cmd");
    let table = CommandTable::from_specs(vec![cmd.clone(), cmd]).unwrap();
    assert_eq!(table.len(), 1, "a repeated name keeps its first spec");
    assert_eq!(positions(&table, &[b"MY.CMD", b"k", b"x"]), Ok(vec![1]));
}

#[test]
fn subcommand_names_must_belong_to_their_container() {
    let sub = CommandSpec::new("other|x", 2, Flags::empty(), vec![], (0, 0, 0), vec![]);
    let cmd = CommandSpec::new("c", -2, Flags::empty(), vec![], (0, 0, 0), vec![sub]);
    assert!(matches!(
        CommandTable::from_specs(vec![cmd]),
        Err(CommandInfoError::BadEntry { .. })
    ));
}

#[test]
fn metric_ids_are_given_per_top_level_command() {
    let mut table = CommandTable::builtin();
    assert_eq!(
        table.metric_id(b"get"),
        0,
        "unnumbered tables count as unknown"
    );
    let mut names = Vec::new();
    table.number_commands(|name| {
        names.push(name.to_string());
        names.len() as u16
    });
    assert_eq!(names.len(), table.len());
    let get = table.metric_id(b"GeT");
    assert_eq!(names[usize::from(get) - 1], "get");
    let object = table.metric_id(b"object");
    assert_ne!(object, get);
    with_args(&[b"OBJECT", b"ENCODING", b"k"], |a| {
        assert_eq!(
            table.resolve(a).unwrap().metric_id(),
            object,
            "a subcommand counts as its container"
        );
    });
    assert_eq!(table.metric_id(b"nosuchcommand"), 0);
}

#[test]
fn the_first_argument_shortcut_finds_what_the_spec_walk_finds() {
    let table = CommandTable::builtin();
    let mut checked = 0;
    for cmd in table
        .iter()
        .flat_map(|c| std::iter::once(c).chain(c.subcommands.iter()))
    {
        let [only] = cmd.key_specs.as_slice() else {
            continue;
        };
        if !only.is_first_argument_only() {
            continue;
        }
        // As many arguments as the arity asks for (at least 2), then a few more when it allows.
        let need = usize::try_from(cmd.arity.unsigned_abs())
            .unwrap_or(2)
            .max(2);
        for extra in [0usize, 1, 3] {
            if cmd.arity > 0 && extra > 0 {
                continue;
            }
            let mut args: Vec<Vec<u8>> =
                cmd.name.split('|').map(|p| p.as_bytes().to_vec()).collect();
            while args.len() < need + extra {
                args.push(format!("a{}", args.len()).into_bytes());
            }
            let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            with_args(&refs, |a| {
                let mut fast = Vec::new();
                cmd.key_positions(a, &mut fast).expect("positions");
                let mut walked = Vec::new();
                keyspec::find_keys(&cmd.key_specs, a, false, false, &mut walked).expect("walk");
                assert_eq!(fast, walked, "{} with {} arguments", cmd.name, refs.len());
            });
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} commands took the shortcut");
}
