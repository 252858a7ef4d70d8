//! The pure permission decisions: may this user run this command, on these keys and channels.

use crate::command::Flags;
use crate::config::Role;

use super::users::User;

/// Why a request is refused; `message` is Redis 7.0's error text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Nobody is authenticated.
    NoAuth,
    /// The command is outside the user's role.
    Command,
    /// A key is outside the user's patterns.
    Key,
    /// A channel is outside the user's patterns.
    Channel,
}

impl Denied {
    /// The error line (without `-`); `command` is the full name (`client|kill`).
    pub fn message(self, command: &str) -> String {
        match self {
            Denied::NoAuth => "NOAUTH Authentication required.".to_string(),
            Denied::Command => {
                format!("NOPERM this user has no permissions to run the '{command}' command")
            }
            Denied::Key => {
                "NOPERM this user has no permissions to access one of the keys used as arguments"
                    .to_string()
            }
            Denied::Channel => {
                "NOPERM this user has no permissions to access one of the channels used as arguments"
                    .to_string()
            }
        }
    }
}

/// Commands that carry neither the `write` nor the `admin` flag yet act on every client: only
/// `admin` users run them.
const ADMINISH: [&str; 3] = ["script|flush", "script|kill", "function|kill"];

/// Scripts that may write: Redis checks each command a script runs, meridian cannot see them,
/// so a `read` user gets only the `_ro` forms.
const MAY_WRITE: [&str; 3] = ["eval", "evalsha", "fcall"];

/// Whether `role` may run the command `name` with `flags`. A flag test; the name is compared
/// only for the few commands flagged `noscript` but neither `write` nor `admin`.
pub fn command_allowed(role: Role, flags: Flags, name: &str) -> bool {
    if role == Role::Admin {
        return true;
    }
    if flags.contains(Flags::ADMIN) {
        return false;
    }
    let unflagged = flags.contains(Flags::NOSCRIPT) && !flags.contains(Flags::WRITE);
    if unflagged && ADMINISH.contains(&name) {
        return false;
    }
    match role {
        Role::Read => {
            let may_write =
                flags.contains(Flags::WRITE) || (unflagged && MAY_WRITE.contains(&name));
            !may_write
        }
        Role::Write | Role::Admin => true,
    }
}

/// What a command does with its keys, as Redis 7 decides from the key specs: `access` needs
/// read permission, `insert`/`delete`/`update` need write permission; neither (EXISTS, TYPE)
/// needs any pattern that matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyNeed {
    pub read: bool,
    pub write: bool,
}

/// Whether `user` may use every key of `keys` the way `need` says.
pub fn keys_allowed<'k>(
    user: &User,
    need: KeyNeed,
    keys: impl IntoIterator<Item = &'k [u8]>,
) -> bool {
    let (r, w) = (&user.readable, &user.writable);
    let everything = match (need.read, need.write) {
        (false, false) => r.all || w.all,
        (read, write) => (!read || r.all) && (!write || w.all),
    };
    everything
        || keys.into_iter().all(|k| match (need.read, need.write) {
            (false, false) => r.allows(k) || w.allows(k),
            (read, write) => (!read || r.allows(k)) && (!write || w.allows(k)),
        })
}

/// Whether `user` may use every channel of `channels`.
pub fn channels_allowed<'c>(user: &User, channels: impl IntoIterator<Item = &'c [u8]>) -> bool {
    user.channels.all || channels.into_iter().all(|c| user.channels.allows(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UserConfig;

    fn user(yaml: &str) -> User {
        let cfg: UserConfig = serde_yaml_ng::from_str(yaml).unwrap();
        User::from_config(&cfg)
    }

    #[test]
    fn roles_are_flag_tests() {
        let w = Flags::WRITE;
        let a = Flags::ADMIN;
        let r = Flags::READONLY;
        let ns = Flags::NOSCRIPT;
        assert!(command_allowed(Role::Read, r, "get") && !command_allowed(Role::Read, w, "set"));
        assert!(!command_allowed(Role::Read, a, "x") && !command_allowed(Role::Write, a, "x"));
        assert!(command_allowed(Role::Write, w, "set") && command_allowed(Role::Admin, a, "x"));
        // Scripts that may write, and the kill/flush of every client's scripts.
        assert!(
            !command_allowed(Role::Read, ns, "eval") && command_allowed(Role::Write, ns, "eval")
        );
        assert!(command_allowed(Role::Read, ns, "eval_ro"));
        assert!(!command_allowed(Role::Write, ns, "script|flush"));
        assert!(command_allowed(Role::Admin, ns, "script|flush"));
        assert!(command_allowed(Role::Read, ns, "script|load"));
    }

    #[test]
    fn read_and_write_key_patterns() {
        let u = user("{name: a, keys: ['app:*'], read_keys: ['shared:*'], write_keys: ['log:*']}");
        let k = |s: &'static str| [s.as_bytes()];
        let read = KeyNeed {
            read: true,
            write: false,
        };
        let write = KeyNeed {
            read: false,
            write: true,
        };
        let both = KeyNeed {
            read: true,
            write: true,
        };
        let any = KeyNeed {
            read: false,
            write: false,
        };
        assert!(keys_allowed(&u, read, k("app:1")) && keys_allowed(&u, both, k("app:1")));
        assert!(keys_allowed(&u, read, k("shared:1")) && !keys_allowed(&u, write, k("shared:1")));
        assert!(!keys_allowed(&u, read, k("log:1")) && keys_allowed(&u, write, k("log:1")));
        assert!(!keys_allowed(&u, both, k("log:1")) && !keys_allowed(&u, both, k("shared:1")));
        assert!(keys_allowed(&u, any, k("log:1")) && keys_allowed(&u, any, k("shared:1")));
        assert!(!keys_allowed(&u, any, k("other")));
        assert!(!keys_allowed(&u, read, [b"app:1".as_slice(), b"other"]));
        let none = user("{name: n}");
        assert!(!keys_allowed(&none, read, k("x")) && keys_allowed(&none, read, []));
    }

    #[test]
    fn channel_patterns() {
        let u = user("{name: a, channels: ['news.*']}");
        assert!(channels_allowed(&u, [b"news.1".as_slice()]));
        assert!(!channels_allowed(&u, [b"news.1".as_slice(), b"sports"]));
    }

    #[test]
    fn messages_are_redis_7_0_texts() {
        assert_eq!(
            Denied::NoAuth.message("get"),
            "NOAUTH Authentication required."
        );
        assert_eq!(
            Denied::Command.message("set"),
            "NOPERM this user has no permissions to run the 'set' command"
        );
    }
}
