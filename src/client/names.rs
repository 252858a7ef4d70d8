//! The channels and patterns a client is subscribed to, by name, as CLIENT LIST counts them
//! (`sub`, `psub`): kept from the commands the client sent, since the subscription
//! connections only report one count for both.

use std::collections::HashSet;

use bytes::Bytes;

/// Channel and pattern names of one client's subscriptions.
#[derive(Debug, Default)]
pub struct SubNames {
    channels: HashSet<Bytes>,
    patterns: HashSet<Bytes>,
}

impl SubNames {
    /// Notes a (P)SUBSCRIBE or (P)UNSUBSCRIBE with its arguments; without arguments an
    /// unsubscribe drops every name of its kind.
    pub fn apply<'a>(
        &mut self,
        pattern: bool,
        subscribe: bool,
        names: impl Iterator<Item = &'a [u8]>,
    ) {
        let set = if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        };
        let mut any = false;
        for name in names {
            any = true;
            if subscribe {
                set.insert(Bytes::copy_from_slice(name));
            } else {
                set.remove(name);
            }
        }
        if !subscribe && !any {
            set.clear();
        }
    }

    /// Subscribed channels.
    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// Subscribed patterns.
    pub fn patterns(&self) -> usize {
        self.patterns.len()
    }

    /// No subscription any more (RESET, the client left).
    pub fn clear(&mut self) {
        self.channels.clear();
        self.patterns.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_subscribe_and_unsubscribe() {
        let mut n = SubNames::default();
        n.apply(false, true, [&b"a"[..], b"b", b"a"].into_iter());
        n.apply(true, true, [&b"p*"[..]].into_iter());
        assert_eq!((n.channels(), n.patterns()), (2, 1));
        n.apply(false, false, [&b"a"[..], b"zz"].into_iter());
        assert_eq!(n.channels(), 1);
        n.apply(false, false, std::iter::empty());
        assert_eq!((n.channels(), n.patterns()), (0, 1));
        n.clear();
        assert_eq!(n.patterns(), 0);
    }
}
