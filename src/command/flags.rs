//! Command flags (`write`, `readonly`, `blocking`, …) as a small hand-written bit set.

use std::fmt;

/// The flags `COMMAND` reports for a command, one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u32);

impl Flags {
    /// May modify the dataset.
    pub const WRITE: Flags = Flags(1);
    /// Never modifies the dataset.
    pub const READONLY: Flags = Flags(1 << 1);
    /// Administrative (CONFIG, DEBUG, …).
    pub const ADMIN: Flags = Flags(1 << 2);
    /// May block the client (BLPOP, XREAD BLOCK, …).
    pub const BLOCKING: Flags = Flags(1 << 3);
    /// Pub/sub related.
    pub const PUBSUB: Flags = Flags(1 << 4);
    /// Not allowed inside scripts.
    pub const NOSCRIPT: Flags = Flags(1 << 5);
    /// Allowed while the server is loading its dataset.
    pub const LOADING: Flags = Flags(1 << 6);
    /// Allowed on a replica with a stale dataset.
    pub const STALE: Flags = Flags(1 << 7);
    /// O(1) or O(log N).
    pub const FAST: Flags = Flags(1 << 8);
    /// May replicate even though it is not a write (PUBLISH, EVAL). Redis 7.0 does not report
    /// it in `COMMAND`, so the built-in table never sets it.
    pub const MAY_REPLICATE: Flags = Flags(1 << 9);
    /// Not allowed inside MULTI.
    pub const NO_MULTI: Flags = Flags(1 << 10);
    /// Key positions depend on the arguments; the key specs (or a native rule) decide.
    pub const MOVABLE_KEYS: Flags = Flags(1 << 11);
    /// May grow memory; refused when over `maxmemory`.
    pub const DENYOOM: Flags = Flags(1 << 12);
    /// Allowed before authentication.
    pub const NO_AUTH: Flags = Flags(1 << 13);
    /// Allowed while a script or module is busy.
    pub const ALLOW_BUSY: Flags = Flags(1 << 14);
    /// A module command.
    pub const MODULE: Flags = Flags(1 << 15);
    /// Not shown in MONITOR.
    pub const SKIP_MONITOR: Flags = Flags(1 << 16);
    /// Not logged in SLOWLOG.
    pub const SKIP_SLOWLOG: Flags = Flags(1 << 17);
    /// Accepted on an importing slot after ASKING.
    pub const ASKING: Flags = Flags(1 << 18);
    /// Valid with zero keys (EVAL … 0).
    pub const NO_MANDATORY_KEYS: Flags = Flags(1 << 19);
    /// Refused during async loading.
    pub const NO_ASYNC_LOADING: Flags = Flags(1 << 20);

    /// Every flag with the name `COMMAND` gives it.
    pub const NAMES: [(&'static str, Flags); 21] = [
        ("write", Self::WRITE),
        ("readonly", Self::READONLY),
        ("admin", Self::ADMIN),
        ("blocking", Self::BLOCKING),
        ("pubsub", Self::PUBSUB),
        ("noscript", Self::NOSCRIPT),
        ("loading", Self::LOADING),
        ("stale", Self::STALE),
        ("fast", Self::FAST),
        ("may_replicate", Self::MAY_REPLICATE),
        ("no_multi", Self::NO_MULTI),
        ("movablekeys", Self::MOVABLE_KEYS),
        ("denyoom", Self::DENYOOM),
        ("no_auth", Self::NO_AUTH),
        ("allow_busy", Self::ALLOW_BUSY),
        ("module", Self::MODULE),
        ("skip_monitor", Self::SKIP_MONITOR),
        ("skip_slowlog", Self::SKIP_SLOWLOG),
        ("asking", Self::ASKING),
        ("no_mandatory_keys", Self::NO_MANDATORY_KEYS),
        ("no_async_loading", Self::NO_ASYNC_LOADING),
    ];

    /// No flag set.
    pub const fn empty() -> Flags {
        Flags(0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The union of both sets.
    pub const fn union(self, other: Flags) -> Flags {
        Flags(self.0 | other.0)
    }

    /// The flag `COMMAND` calls `name` (case-insensitive); `None` for names this version
    /// does not know, which callers ignore so that newer servers still parse.
    pub fn from_name(name: &[u8]) -> Option<Flags> {
        Self::NAMES
            .iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            .map(|(_, f)| *f)
    }

    /// The names of the set flags, in the order of [`Flags::NAMES`].
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .iter()
            .filter(move |(_, f)| self.contains(*f))
            .map(|(n, _)| *n)
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Flags(")?;
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            f.write_str(name)?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bits_are_distinct() {
        let mut all = Flags::empty();
        for (name, flag) in Flags::NAMES {
            assert_eq!(flag.bits().count_ones(), 1, "{name}");
            assert!(!all.contains(flag), "{name} reuses a bit");
            all |= flag;
            assert_eq!(Flags::from_name(name.as_bytes()), Some(flag));
            assert_eq!(Flags::from_name(name.to_uppercase().as_bytes()), Some(flag));
        }
        assert_eq!(Flags::from_name(b"no_such_flag"), None);
        assert_eq!(all.names().count(), Flags::NAMES.len());
    }

    #[test]
    fn contains_and_debug() {
        let f = Flags::WRITE | Flags::DENYOOM;
        assert!(f.contains(Flags::WRITE));
        assert!(f.contains(Flags::WRITE | Flags::DENYOOM));
        assert!(!f.contains(Flags::READONLY));
        assert!(f.contains(Flags::empty()));
        assert_eq!(format!("{f:?}"), "Flags(write | denyoom)");
    }
}
