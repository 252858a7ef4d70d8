//! The command table: for every Redis command its arity, flags and where its keys are, with
//! the lookup the router does for every request.
//!
//! The table comes from a backend's `COMMAND` reply ([`CommandTable::from_command_reply`]) so
//! that module and newer commands route right; [`CommandTable::builtin`] is the Redis 7.0
//! fallback. Key positions follow Redis 7.0's own algorithm (key specs, then the native rules
//! of SORT, MIGRATE, EVAL, …), so they equal what `COMMAND GETKEYS` answers.

mod builtin;
mod error;
mod flags;
mod info;
pub mod keyspec;
mod last;
mod lookup;
mod native;
#[cfg(test)]
mod testsrv;

pub use error::{CommandError, NumkeysError};
pub use flags::Flags;
pub use info::CommandInfoError;
pub use keyspec::{BeginSearch, FindKeys, KeyAccess, KeySpec};

use std::sync::atomic::{AtomicU64, Ordering};

use crate::resp::{ReqArgs, Value};
pub use last::LastCommand;
use lookup::{Index, Key};
use native::Native;

/// Everything the gateway knows about one command or subcommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// Lowercase name; `container|sub` for subcommands (`object|encoding`).
    pub name: Box<str>,
    /// `n > 0`: exactly `n` arguments including the name; `n < 0`: at least `-n`.
    pub arity: i32,
    /// Command flags.
    pub flags: Flags,
    /// Redis 7 key specifications, in the server's order.
    pub key_specs: Vec<KeySpec>,
    /// The legacy `(first, last, step)` key triple, as reported.
    pub legacy_keys: (i32, i32, i32),
    /// Subcommands of a container command, sorted by name.
    pub subcommands: Vec<CommandSpec>,
    /// The native key rule for this name; derived in [`CommandSpec::new`].
    native: Native,
    /// The small id this command is counted under in the metrics (a subcommand: its
    /// container's); set by [`CommandTable::number_commands`], 0 (`unknown`) until then.
    metric: u16,
}

impl CommandSpec {
    /// A spec; the name is lower-cased and the native key rule picked from it.
    pub fn new(
        name: &str,
        arity: i32,
        flags: Flags,
        key_specs: Vec<KeySpec>,
        legacy_keys: (i32, i32, i32),
        subcommands: Vec<CommandSpec>,
    ) -> CommandSpec {
        let name = name.to_ascii_lowercase();
        CommandSpec {
            native: Native::for_name(&name),
            name: name.into(),
            arity,
            flags,
            key_specs,
            legacy_keys,
            subcommands,
            metric: 0,
        }
    }

    /// The id this command is counted under (see [`CommandTable::number_commands`]).
    #[inline]
    pub fn metric_id(&self) -> u16 {
        self.metric
    }

    /// Positions (indices into `args`) of the keys of this request, in order, appended to
    /// `out`; the same keys `COMMAND GETKEYS` names. Nothing appended means the request names
    /// no key. On error `out` is left as it was.
    pub fn key_positions(
        &self,
        args: &ReqArgs<'_>,
        out: &mut Vec<usize>,
    ) -> Result<(), CommandError> {
        self.positions(args, false, out)
    }

    /// Like [`key_positions`](Self::key_positions), but also the arguments that are not keys
    /// yet hash to a slot: the shard channels of SPUBLISH, SSUBSCRIBE and SUNSUBSCRIBE.
    pub fn routing_positions(
        &self,
        args: &ReqArgs<'_>,
        out: &mut Vec<usize>,
    ) -> Result<(), CommandError> {
        self.positions(args, true, out)
    }

    fn positions(
        &self,
        args: &ReqArgs<'_>,
        include_not_key: bool,
        out: &mut Vec<usize>,
    ) -> Result<(), CommandError> {
        native::precheck(self.native, args)?;
        // Most requests name one key right after the command (GET, SET, INCR, HGET, …): the
        // spec walk below would find the same position in ~10 times the instructions.
        if let [only] = self.key_specs.as_slice()
            && only.is_first_argument_only()
            && args.len() > 1
        {
            out.push(1);
            return Ok(());
        }
        let start = out.len();
        if keyspec::find_keys(&self.key_specs, args, include_not_key, false, out).is_ok() {
            return Ok(());
        }
        // A spec could not be resolved: Redis then asks the command's native rule.
        out.truncate(start);
        match native::fallback(self.native, &self.name, args, out) {
            Ok(true) => Ok(()),
            Ok(false) => {
                // No native rule (module commands): keep what the resolvable specs find.
                let partial = keyspec::find_keys(&self.key_specs, args, include_not_key, true, out);
                debug_assert!(partial.is_ok(), "partial search never fails");
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e.into())
            }
        }
    }

    /// True when `argc` arguments (the name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = i64::try_from(argc).unwrap_or(i64::MAX);
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// May modify the dataset: must go to a master.
    pub fn is_write(&self) -> bool {
        self.flags.contains(Flags::WRITE)
    }

    /// Never modifies the dataset: a replica may serve it.
    pub fn is_readonly(&self) -> bool {
        self.flags.contains(Flags::READONLY)
    }

    /// May block the connection (needs a dedicated backend connection).
    pub fn is_blocking(&self) -> bool {
        self.flags.contains(Flags::BLOCKING)
    }

    /// Administrative command.
    pub fn is_admin(&self) -> bool {
        self.flags.contains(Flags::ADMIN)
    }

    /// Pub/sub command.
    pub fn is_pubsub(&self) -> bool {
        self.flags.contains(Flags::PUBSUB)
    }

    /// O(1) or O(log N).
    pub fn is_fast(&self) -> bool {
        self.flags.contains(Flags::FAST)
    }

    /// Not allowed inside MULTI.
    pub fn is_no_multi(&self) -> bool {
        self.flags.contains(Flags::NO_MULTI)
    }

    /// Key positions depend on the arguments.
    pub fn has_movable_keys(&self) -> bool {
        self.flags.contains(Flags::MOVABLE_KEYS)
    }

    /// Refused when the server is over `maxmemory`.
    pub fn is_denyoom(&self) -> bool {
        self.flags.contains(Flags::DENYOOM)
    }

    /// Allowed before authentication.
    pub fn is_no_auth(&self) -> bool {
        self.flags.contains(Flags::NO_AUTH)
    }

    /// A container command (OBJECT, CLIENT, XINFO, …) whose real work is in a subcommand.
    pub fn is_container(&self) -> bool {
        !self.subcommands.is_empty()
    }
}

/// All known commands, with case-insensitive indexes by name.
#[derive(Debug, Clone)]
pub struct CommandTable {
    /// Tells this table from every other one made in the process (see [`LastCommand`]).
    serial: u64,
    commands: Vec<CommandSpec>,
    /// Top-level name → index into `commands`.
    top: Index,
    /// (container index, subcommand name) → `container << 16 | subcommand index`.
    subs: Index,
}

impl CommandTable {
    /// The Redis 7.0.15 table compiled into the binary, for when no backend answers `COMMAND`.
    pub fn builtin() -> CommandTable {
        builtin::table()
    }

    /// Parses the reply of `COMMAND` (Redis 7 entries with key specs and subcommands, RESP2
    /// or RESP3; Redis 6 entries without key specs fall back to the built-in specs of the same
    /// command or to first/last/step).
    pub fn from_command_reply(reply: &Value) -> Result<CommandTable, CommandInfoError> {
        CommandTable::from_specs(info::parse_reply(reply)?)
    }

    /// A table of `commands`. A name given twice keeps its first spec; subcommand names must
    /// be `container|sub` of their container.
    pub fn from_specs(commands: Vec<CommandSpec>) -> Result<CommandTable, CommandInfoError> {
        let subs: usize = commands.iter().map(|c| c.subcommands.len()).sum();
        static SERIALS: AtomicU64 = AtomicU64::new(1);
        let mut table = CommandTable {
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            commands: Vec::with_capacity(commands.len()),
            top: Index::with_capacity(commands.len()),
            subs: Index::with_capacity(subs),
        };
        for cmd in commands {
            if table.top_index(cmd.name.as_bytes()).is_some() {
                continue;
            }
            let top = table.commands.len();
            let too_many = || CommandInfoError::TooMany(top + 1);
            if top >= usize::from(u16::MAX) || cmd.subcommands.len() >= usize::from(u16::MAX) {
                return Err(too_many());
            }
            if !table.top.insert(&Key::new(cmd.name.as_bytes()), top as u32) {
                return Err(too_many());
            }
            for (i, sub) in cmd.subcommands.iter().enumerate() {
                let suffix =
                    sub_suffix(&cmd.name, &sub.name).ok_or_else(|| CommandInfoError::BadEntry {
                        command: sub.name.to_string(),
                        problem: "subcommand name is not <container>|<name>",
                    })?;
                let key = Key::new(suffix.as_bytes()).scoped(top);
                if !table.subs.insert(&key, (top as u32) << 16 | i as u32) {
                    return Err(too_many());
                }
            }
            table.commands.push(cmd);
        }
        Ok(table)
    }

    /// Gives every top-level command the metric id `id_of(name)`; its subcommands share it,
    /// so the counted names are bounded by the top-level commands of the table.
    pub fn number_commands(&mut self, mut id_of: impl FnMut(&str) -> u16) {
        for cmd in &mut self.commands {
            let id = id_of(&cmd.name);
            cmd.metric = id;
            for sub in &mut cmd.subcommands {
                sub.metric = id;
            }
        }
    }

    /// The metric id of the top-level command `name` (any case); 0 (`unknown`) when the table
    /// has no such command.
    pub fn metric_id(&self, name: &[u8]) -> u16 {
        self.top_index(name)
            .and_then(|i| self.commands.get(i))
            .map_or(0, CommandSpec::metric_id)
    }

    /// Number of top-level commands (subcommands not counted).
    pub fn len(&self) -> usize {
        self.commands.len()
    }

    /// True when the table has no command.
    pub fn is_empty(&self) -> bool {
        self.commands.is_empty()
    }

    /// The top-level commands.
    pub fn iter(&self) -> impl Iterator<Item = &CommandSpec> {
        self.commands.iter()
    }

    /// The command called `name`, ASCII case-insensitive, without allocating; `container|sub`
    /// finds a subcommand.
    pub fn get(&self, name: &[u8]) -> Option<&CommandSpec> {
        let key = Key::new(name);
        if !key.has_bar {
            return self.find_top(&key, name).and_then(|i| self.commands.get(i));
        }
        let bar = name.iter().position(|&b| b == b'|')?;
        let (container, sub) = (&name[..bar], &name[bar + 1..]);
        self.sub_spec(self.top_index(container)?, sub)
    }

    /// The spec that serves the request `args`: `args[0]`, or its subcommand `args[1]` for a
    /// container command, with the arity checked like Redis does before running a command.
    pub fn resolve<'t>(&'t self, args: &ReqArgs<'_>) -> Result<&'t CommandSpec, CommandError> {
        self.resolve_at(self.top_index(args.get(0).unwrap_or_default()), args)
    }

    /// [`resolve`](Self::resolve) with the top-level command already looked up (`None`: no
    /// such command).
    fn resolve_at<'t>(
        &'t self,
        top: Option<usize>,
        args: &ReqArgs<'_>,
    ) -> Result<&'t CommandSpec, CommandError> {
        let name = args.get(0).unwrap_or_default();
        let Some((top, cmd)) = top.and_then(|i| Some((i, self.commands.get(i)?))) else {
            return Err(CommandError::unknown(args));
        };
        let spec = match args.get(1) {
            Some(sub) if cmd.is_container() => self
                .sub_spec(top, sub)
                .ok_or_else(|| CommandError::unknown_subcommand(name, sub))?,
            // A container alone (`OBJECT`) is checked against its own arity, like Redis does.
            _ => cmd,
        };
        if !spec.arity_ok(args.len()) {
            return Err(CommandError::WrongArity {
                name: spec.name.clone(),
            });
        }
        Ok(spec)
    }

    #[inline]
    fn top_index(&self, name: &[u8]) -> Option<usize> {
        self.find_top(&Key::new(name), name)
    }

    #[inline]
    fn find_top(&self, key: &Key, name: &[u8]) -> Option<usize> {
        self.top
            .find(key, |i| {
                self.commands
                    .get(i as usize)
                    .is_some_and(|c| lookup::long_eq(key, c.name.as_bytes(), name))
            })
            .map(|i| i as usize)
    }

    fn sub_spec(&self, top: usize, sub: &[u8]) -> Option<&CommandSpec> {
        let cmd = self.commands.get(top)?;
        let key = Key::new(sub).scoped(top);
        let at = |v: u32| cmd.subcommands.get((v & 0xFFFF) as usize);
        let found = self.subs.find(&key, |v| {
            (v >> 16) as usize == top
                && at(v)
                    .and_then(|s| sub_suffix(&cmd.name, &s.name))
                    .is_some_and(|suffix| lookup::long_eq(&key, suffix.as_bytes(), sub))
        })?;
        at(found)
    }
}

/// `encoding` of `object|encoding`, if `full` is a subcommand name of `container`.
fn sub_suffix<'a>(container: &str, full: &'a str) -> Option<&'a str> {
    full.strip_prefix(container)?.strip_prefix('|')
}

#[cfg(test)]
mod tests;
