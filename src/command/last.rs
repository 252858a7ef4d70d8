//! The last command name a worker looked up: pipelines and busy clients repeat one command, and
//! comparing its bytes to the last name is cheaper than lower-casing and hashing them again
//! (~150 instructions of a ~3,400-instruction pipelined GET).

use std::cell::Cell;

use super::{CommandError, CommandSpec, CommandTable};
use crate::resp::ReqArgs;

/// Names up to this long are remembered.
const MAX_NAME: usize = 16;

/// One worker's last lookup (same thread only).
#[derive(Debug, Default)]
pub struct LastCommand(Cell<Option<Last>>);

#[derive(Debug, Clone, Copy)]
struct Last {
    /// The table it was found in ([`CommandTable`]'s serial: tables are replaced when the
    /// cluster's `COMMAND` reply comes in).
    serial: u64,
    len: u8,
    /// The name as the client spelled it (case and all).
    name: [u8; MAX_NAME],
    /// Its top-level index in that table.
    top: usize,
}

impl LastCommand {
    /// [`CommandTable::resolve`], remembering where a known name was found.
    #[inline]
    pub fn resolve<'t>(
        &self,
        table: &'t CommandTable,
        args: &ReqArgs<'_>,
    ) -> Result<&'t CommandSpec, CommandError> {
        let name = args.get(0).unwrap_or_default();
        if let Some(last) = self.0.get()
            && last.serial == table.serial
            && name.len() == usize::from(last.len)
            && name == &last.name[..name.len()]
        {
            return table.resolve_at(Some(last.top), args);
        }
        let top = table.top_index(name);
        if let Some(top) = top
            && name.len() <= MAX_NAME
        {
            let mut copy = [0u8; MAX_NAME];
            copy[..name.len()].copy_from_slice(name);
            self.0.set(Some(Last {
                serial: table.serial,
                len: name.len() as u8,
                name: copy,
                top,
            }));
        }
        table.resolve_at(top, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::testsrv::req;

    fn resolve_both(
        last: &LastCommand,
        table: &CommandTable,
        args: &[&[u8]],
    ) -> (Result<String, String>, Result<String, String>) {
        let (buf, spans) = req(args);
        let args = ReqArgs {
            buf: &buf,
            spans: &spans,
        };
        let show = |r: Result<&CommandSpec, CommandError>| {
            r.map(|s| s.name.to_string()).map_err(|e| e.to_string())
        };
        (show(last.resolve(table, &args)), show(table.resolve(&args)))
    }

    #[test]
    fn answers_as_the_table_whatever_came_before() {
        let table = CommandTable::builtin();
        let last = LastCommand::default();
        let requests: &[&[&[u8]]] = &[
            &[b"GET", b"k"],
            &[b"GET", b"k"],
            &[b"get", b"k"],
            &[b"GET"],
            &[b"GETX", b"k"],
            &[b"CLIENT", b"LIST"],
            &[b"CLIENT", b"NOPE"],
            &[b"CLIENT", b"LIST"],
            &[b"OBJECT"],
            &[b"averyveryverylongcommandname", b"x"],
            &[b"SET", b"k", b"v"],
            &[b"SET", b"k"],
            &[b""],
        ];
        for args in requests {
            let (cached, plain) = resolve_both(&last, &table, args);
            assert_eq!(cached, plain, "{args:?}");
        }
    }

    #[test]
    fn a_new_table_is_looked_up_afresh() {
        let builtin = CommandTable::builtin();
        // GET at index 1 here, elsewhere in the built-in table.
        let specs = [b"ping".as_slice(), b"get", b"set"]
            .iter()
            .map(|n| builtin.get(n).cloned().expect("built-in command"))
            .collect();
        let small = CommandTable::from_specs(specs).expect("table");
        assert_ne!(builtin.top_index(b"get"), small.top_index(b"get"));
        let last = LastCommand::default();
        for table in [&builtin, &small, &builtin] {
            let (cached, plain) = resolve_both(&last, table, &[b"GET", b"k"]);
            assert_eq!(cached, plain);
            assert_eq!(cached.as_deref(), Ok("get"));
        }
        assert_ne!(builtin.serial, small.serial);
    }
}
