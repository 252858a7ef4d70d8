//! How meridian treats each command, by name: forwarded by key, split by slot, answered
//! locally, sent to any master, or refused with a reason. One table, no scattered branches.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The transaction commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxCmd {
    Multi,
    Exec,
    Discard,
    Watch,
    Unwatch,
}

/// The subscribe-family commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PubSubCmd {
    Subscribe,
    Psubscribe,
    Unsubscribe,
    Punsubscribe,
    Ssubscribe,
    Sunsubscribe,
}

impl PubSubCmd {
    /// SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE (not their UNSUBSCRIBEs).
    pub fn subscribes(self) -> bool {
        matches!(
            self,
            PubSubCmd::Subscribe | PubSubCmd::Psubscribe | PubSubCmd::Ssubscribe
        )
    }
}

/// How a multi-key command is split and merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// MGET: one key per argument, array reply gathered back in key order.
    Mget,
    /// MSET: key/value pairs, `+OK` from every part.
    Mset,
    /// DEL, UNLINK, EXISTS, TOUCH: one key per argument, integers summed.
    Count,
}

/// Commands meridian answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Local {
    Ping,
    Echo,
    Quit,
    Reset,
    Select,
    Hello,
    Auth,
    Acl,
    Client,
    Info,
    Command,
    ReadMode,
    Role,
    Config,
}

/// The treatment of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Routed by its keys, which must share one slot (the default for commands with keys).
    Keyed,
    /// Subcommands with a key routed by it; keyless ones (MEMORY STATS, OBJECT HELP) answered
    /// by any master, or fanned out when `fanout::rule` has them (MEMORY PURGE).
    KeyedOrAny,
    /// Split by slot, sent together, merged.
    Split(Split),
    /// MSETNX: passes through within one slot, refused across slots (it cannot be atomic).
    MsetNx,
    /// Answered by meridian.
    Local(Local),
    /// Keyless and node-independent: any master answers as the cluster would.
    AnyMaster,
    /// PUBLISH: on the master of the channel's slot, where meridian subscribes the channel.
    Publish,
    /// Scripts and functions: by their keys; keyless ones by the slot of the first argument.
    Script,
    /// Sent to several nodes and merged (see `fanout::rule`).
    Fanout,
    /// SCAN: one shard at a time behind a client cursor.
    Scan,
    /// MULTI, EXEC, DISCARD, WATCH, UNWATCH.
    Tx(TxCmd),
    /// WAIT: on every master this client wrote to.
    Wait,
    /// CLUSTER: KEYSLOT, COUNTKEYSINSLOT and INFO answered; the rest refused.
    Cluster,
    /// The subscribe family, on the client's own connections.
    PubSub(PubSubCmd),
    /// Refused: makes no sense through a gateway.
    Unsupported(&'static str),
    /// Needs a dedicated connection or a fan-out that this version does not do yet.
    NotYet(&'static str),
}

const GATEWAY: &str = "it acts on one node, not on the cluster a gateway presents";

fn table() -> &'static HashMap<&'static str, Class> {
    static TABLE: OnceLock<HashMap<&'static str, Class>> = OnceLock::new();
    TABLE.get_or_init(|| {
        use Class::*;
        let mut t = HashMap::new();
        let mut put = |names: &[&'static str], class: Class| {
            for n in names {
                t.insert(*n, class);
            }
        };
        put(&["mget"], Split(self::Split::Mget));
        put(&["mset"], Split(self::Split::Mset));
        put(
            &["del", "unlink", "exists", "touch"],
            Split(self::Split::Count),
        );
        put(&["msetnx"], MsetNx);
        put(&["ping"], Local(self::Local::Ping));
        put(&["echo"], Local(self::Local::Echo));
        put(&["quit"], Local(self::Local::Quit));
        put(&["reset"], Local(self::Local::Reset));
        put(&["select"], Local(self::Local::Select));
        put(&["hello"], Local(self::Local::Hello));
        put(&["auth"], Local(self::Local::Auth));
        put(&["acl"], Local(self::Local::Acl));
        put(&["client"], Local(self::Local::Client));
        put(&["info"], Local(self::Local::Info));
        put(&["command"], Local(self::Local::Command));
        put(&["readonly", "readwrite"], Local(self::Local::ReadMode));
        put(&["role"], Local(self::Local::Role));
        put(&["config"], Local(self::Local::Config));
        put(&["memory", "object"], KeyedOrAny);
        put(&["time", "lolwut"], AnyMaster);
        put(&["publish"], Publish);
        put(
            &[
                "eval",
                "evalsha",
                "eval_ro",
                "evalsha_ro",
                "fcall",
                "fcall_ro",
            ],
            Script,
        );
        put(
            &[
                "monitor",
                "sync",
                "psync",
                "replicaof",
                "slaveof",
                "debug",
                "shutdown",
                "migrate",
                "failover",
                "save",
                "bgsave",
                "bgrewriteaof",
                "module",
                "swapdb",
                "move",
                "latency",
                "slowlog",
                "replconf",
                "restore-asking",
                "asking",
            ],
            Unsupported(GATEWAY),
        );
        put(&["multi"], Tx(TxCmd::Multi));
        put(&["exec"], Tx(TxCmd::Exec));
        put(&["discard"], Tx(TxCmd::Discard));
        put(&["watch"], Tx(TxCmd::Watch));
        put(&["unwatch"], Tx(TxCmd::Unwatch));
        put(&["subscribe"], PubSub(PubSubCmd::Subscribe));
        put(&["psubscribe"], PubSub(PubSubCmd::Psubscribe));
        put(&["unsubscribe"], PubSub(PubSubCmd::Unsubscribe));
        put(&["punsubscribe"], PubSub(PubSubCmd::Punsubscribe));
        put(&["ssubscribe"], PubSub(PubSubCmd::Ssubscribe));
        put(&["sunsubscribe"], PubSub(PubSubCmd::Sunsubscribe));
        put(&["pubsub"], Fanout);
        put(
            &[
                "blpop",
                "brpop",
                "blmove",
                "brpoplpush",
                "blmpop",
                "bzpopmin",
                "bzpopmax",
                "bzmpop",
            ],
            Keyed,
        );
        put(&["wait"], Wait);
        put(&["cluster"], Cluster);
        put(
            &["waitaof"],
            Unsupported("WAITAOF needs the writes of the same node connection"),
        );
        put(
            &[
                "flushall",
                "flushdb",
                "dbsize",
                "keys",
                "randomkey",
                "script",
                "function",
                "lastsave",
            ],
            Fanout,
        );
        put(&["scan"], Scan);
        t
    })
}

/// The class of the command named `name` (lowercase, top-level name). Commands that are not
/// listed are `Keyed`; the caller refuses keyless ones.
pub fn of(name: &str) -> Class {
    table().get(name).copied().unwrap_or(Class::Keyed)
}

/// One worker's classes of the commands it has seen, by metric id (one id per top-level
/// name, see `CommandTable::number_commands`): an index instead of hashing the name on every
/// request.
#[derive(Debug, Default)]
pub struct ClassCache(RefCell<Vec<Option<Class>>>);

impl ClassCache {
    /// The class of the top-level command `name`, whose metric id is `id`.
    #[inline]
    pub fn get(&self, id: u16, name: &str) -> Class {
        let i = usize::from(id);
        if let Some(Some(class)) = self.0.borrow().get(i) {
            return *class;
        }
        let class = of(name);
        // Id 0 is `unknown`, shared by every name a table has not numbered.
        if i != 0 {
            let mut cache = self.0.borrow_mut();
            if cache.len() <= i {
                cache.resize(i + 1, None);
            }
            cache[i] = Some(class);
        }
        class
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_lookups() {
        assert_eq!(of("get"), Class::Keyed);
        assert_eq!(of("mget"), Class::Split(Split::Mget));
        assert_eq!(of("ping"), Class::Local(Local::Ping));
        assert!(matches!(of("monitor"), Class::Unsupported(_)));
        assert_eq!(of("blpop"), Class::Keyed);
        assert_eq!(of("exec"), Class::Tx(TxCmd::Exec));
        assert_eq!(of("publish"), Class::Publish);
        assert_eq!(of("role"), Class::Local(Local::Role));
        assert_eq!(of("memory"), Class::KeyedOrAny);
        assert_eq!(of("config"), Class::Local(Local::Config));
    }

    #[test]
    fn cache_answers_as_the_table_and_never_keeps_id_zero() {
        let cache = ClassCache::default();
        assert_eq!(cache.get(7, "mget"), Class::Split(Split::Mget));
        // Learnt: the id alone answers now.
        assert_eq!(cache.get(7, "ignored"), Class::Split(Split::Mget));
        assert_eq!(cache.get(0, "ping"), Class::Local(Local::Ping));
        assert_eq!(cache.get(0, "get"), Class::Keyed);
    }
}
