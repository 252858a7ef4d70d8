//! The `hosts` part of the DC map: names listed under `datacenters.<dc>.hosts` are resolved
//! (by `topology::resolve`, never by the map refresh itself) and their addresses placed in
//! that DC. Answers are kept until their DNS TTL runs out, then asked again, so a name that
//! moves to new addresses takes its nodes along; a name that cannot be resolved keeps the
//! addresses it had and is asked again after [`RETRY_AFTER`].
//!
//! This file only decides: which names are due, and what an answer changes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Config;

/// How long a name whose lookup failed waits before it is asked again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// What one name is known to resolve to.
#[derive(Debug)]
struct Entry {
    dc: String,
    /// Sorted; empty until a first answer.
    ips: Vec<IpAddr>,
    /// When the answer expires (or the name may be asked again after a failure).
    until: Instant,
    /// A lookup is under way: not due again until it ends.
    asking: bool,
    /// Lookups that failed in a row, and the last one's error.
    failures: u32,
    last_error: Option<String>,
}

/// One DC host name as `/api/state` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostState {
    pub name: String,
    pub dc: String,
    /// The addresses it places in `dc` (the last good answer's).
    pub addresses: Vec<String>,
    /// Until the answer expires (or the next try after a failure), in ms; 0 when due.
    pub expires_in_ms: u64,
    /// A lookup is under way.
    pub resolving: bool,
    /// Lookups that failed in a row (0 after a good answer).
    pub failures: u32,
    pub last_error: Option<String>,
}

/// What an answer (or a failed lookup) changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The name resolves where it did (or failed again, keeping what was known).
    Same,
    /// The placement changed without a move to report: a first answer, or the name now
    /// belongs to another DC (a reload).
    Placed,
    /// The name now resolves to other addresses than before: the message says how.
    Moved(String),
}

/// Addresses learned from DC host names, with when they must be resolved again.
#[derive(Debug, Default)]
pub struct DcHosts {
    by_name: HashMap<String, Entry>,
}

/// Names to resolve now, as (DC, name), and whether names the config dropped changed the
/// placement.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Due {
    pub names: Vec<(String, String)>,
    pub dropped: bool,
}

impl DcHosts {
    /// Forgets names the config no longer lists and returns the names to ask for now: new
    /// ones, expired answers, and names a reload moved to another DC. They count as being
    /// asked until [`DcHosts::answer`] takes their result.
    pub fn due(&mut self, config: &Config, now: Instant) -> Due {
        let before = self.by_name.len();
        self.by_name
            .retain(|host, _| config.datacenters.values().any(|s| s.hosts.contains(host)));
        let mut due = Due {
            names: Vec::new(),
            dropped: self.by_name.len() != before,
        };
        for (dc, spec) in &config.datacenters {
            for host in &spec.hosts {
                let entry = self.by_name.entry(host.clone()).or_insert_with(|| Entry {
                    dc: dc.clone(),
                    ips: Vec::new(),
                    until: now,
                    asking: false,
                    failures: 0,
                    last_error: None,
                });
                if entry.asking || (entry.until > now && entry.dc == *dc) {
                    continue;
                }
                entry.asking = true;
                due.names.push((dc.clone(), host.clone()));
            }
        }
        due
    }

    /// Takes the answer for `host` of DC `dc` (its addresses and until when they hold) or
    /// the failed lookup's error, and says what changed.
    pub fn answer(
        &mut self,
        dc: &str,
        host: &str,
        answer: Result<(Vec<IpAddr>, Instant), String>,
        now: Instant,
    ) -> Outcome {
        let Some(entry) = self.by_name.get_mut(host) else {
            // Dropped by a reload while it was asked.
            return Outcome::Same;
        };
        entry.asking = false;
        let moved_dc = entry.dc != dc;
        entry.dc = dc.to_string();
        // The addresses before a good answer replaced them; none after a failed lookup.
        let before = match answer {
            Ok((mut ips, until)) => {
                ips.sort();
                ips.dedup();
                entry.until = until;
                entry.failures = 0;
                entry.last_error = None;
                Some(std::mem::replace(&mut entry.ips, ips))
            }
            Err(error) => {
                entry.until = now + RETRY_AFTER;
                entry.failures = entry.failures.saturating_add(1);
                entry.last_error = Some(error);
                None
            }
        };
        match before {
            Some(old) if old != entry.ips && old.is_empty() => Outcome::Placed,
            Some(old) if old != entry.ips => Outcome::Moved(format!(
                "{host} now resolves to {:?} (was {old:?})",
                entry.ips
            )),
            _ if moved_dc && !entry.ips.is_empty() => Outcome::Placed,
            _ => Outcome::Same,
        }
    }

    /// Every name with what it resolves to, by name.
    pub fn states(&self, now: Instant) -> Vec<HostState> {
        let mut out: Vec<HostState> = self
            .by_name
            .iter()
            .map(|(name, e)| HostState {
                name: name.clone(),
                dc: e.dc.clone(),
                addresses: e.ips.iter().map(IpAddr::to_string).collect(),
                expires_in_ms: e.until.saturating_duration_since(now).as_millis() as u64,
                resolving: e.asking,
                failures: e.failures,
                last_error: e.last_error.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// The DC whose host names resolve to `ip`.
    pub fn dc_of(&self, ip: IpAddr) -> Option<&str> {
        self.by_name
            .values()
            .find(|e| e.ips.contains(&ip))
            .map(|e| e.dc.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        let head = "cluster: { seeds: [127.0.0.1:7001] }\ndatacenters:\n";
        Config::parse(&format!("{head}{text}"), "t.yaml").unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(due: &Due) -> Vec<&str> {
        due.names.iter().map(|(_, h)| h.as_str()).collect()
    }

    #[test]
    fn names_are_asked_once_until_answered_and_again_when_the_answer_expires() {
        let cfg = config("  east: { hosts: [a.test, b.test] }\n");
        let mut hosts = DcHosts::default();
        let t0 = Instant::now();
        let due = hosts.due(&cfg, t0);
        assert_eq!(names(&due), ["a.test", "b.test"]);
        // Being asked: not due again, however long the lookup takes.
        assert!(
            hosts
                .due(&cfg, t0 + Duration::from_secs(60))
                .names
                .is_empty()
        );

        let ttl = t0 + Duration::from_secs(10);
        let got = hosts.answer(
            "east",
            "a.test",
            Ok((vec![ip("10.0.0.2"), ip("10.0.0.1")], ttl)),
            t0,
        );
        assert_eq!(got, Outcome::Placed);
        assert_eq!(hosts.dc_of(ip("10.0.0.1")), Some("east"));
        assert!(
            hosts
                .due(&cfg, t0 + Duration::from_secs(9))
                .names
                .is_empty()
        );
        let due = hosts.due(&cfg, ttl);
        assert_eq!(names(&due), ["a.test"]);
        let same = hosts.answer(
            "east",
            "a.test",
            Ok((vec![ip("10.0.0.1"), ip("10.0.0.2")], ttl)),
            ttl,
        );
        assert_eq!(same, Outcome::Same);
        let moved = hosts.answer("east", "a.test", Ok((vec![ip("10.0.0.3")], ttl)), ttl);
        let Outcome::Moved(message) = moved else {
            panic!("a move: {moved:?}");
        };
        assert!(
            message.contains("a.test") && message.contains("10.0.0.3"),
            "{message}"
        );
        assert_eq!(hosts.dc_of(ip("10.0.0.1")), None);
        assert_eq!(hosts.dc_of(ip("10.0.0.3")), Some("east"));
    }

    #[test]
    fn a_failed_lookup_keeps_the_addresses_and_waits_before_asking_again() {
        let cfg = config("  east: { hosts: [a.test] }\n");
        let mut hosts = DcHosts::default();
        let t0 = Instant::now();
        hosts.due(&cfg, t0);
        hosts.answer("east", "a.test", Ok((vec![ip("10.0.0.1")], t0)), t0);
        assert_eq!(names(&hosts.due(&cfg, t0)), ["a.test"]);
        assert_eq!(
            hosts.answer("east", "a.test", Err("timed out".into()), t0),
            Outcome::Same
        );
        assert_eq!(hosts.dc_of(ip("10.0.0.1")), Some("east"));
        let shown = &hosts.states(t0)[0];
        assert_eq!(shown.addresses, ["10.0.0.1"]);
        assert_eq!(
            (shown.failures, shown.last_error.as_deref()),
            (1, Some("timed out"))
        );
        assert_eq!(shown.expires_in_ms, RETRY_AFTER.as_millis() as u64);
        assert!(hosts.due(&cfg, t0 + RETRY_AFTER / 2).names.is_empty());
        assert_eq!(names(&hosts.due(&cfg, t0 + RETRY_AFTER)), ["a.test"]);
        assert!(hosts.states(t0)[0].resolving);
        hosts.answer("east", "a.test", Ok((vec![ip("10.0.0.1")], t0)), t0);
        let shown = &hosts.states(t0)[0];
        assert_eq!((shown.failures, shown.last_error.as_deref()), (0, None));
        // A name never resolved places nothing.
        let cfg = config("  east: { hosts: [a.test, new.test] }\n");
        hosts.due(&cfg, t0 + RETRY_AFTER);
        assert_eq!(
            hosts.answer("east", "new.test", Err("no such name".into()), t0),
            Outcome::Same
        );
    }

    #[test]
    fn a_reload_that_moves_or_drops_a_name_changes_the_placement() {
        let mut hosts = DcHosts::default();
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(60);
        let cfg = config("  east: { hosts: [a.test] }\n  west: { hosts: [b.test] }\n");
        hosts.due(&cfg, t0);
        hosts.answer("east", "a.test", Ok((vec![ip("10.0.0.1")], later)), t0);
        hosts.answer("west", "b.test", Ok((vec![ip("10.0.0.2")], later)), t0);
        // a.test moves to west, b.test is dropped.
        let cfg = config("  east: {}\n  west: { hosts: [a.test] }\n");
        let due = hosts.due(&cfg, t0);
        assert!(due.dropped);
        assert_eq!(due.names, [("west".to_string(), "a.test".to_string())]);
        assert_eq!(hosts.dc_of(ip("10.0.0.2")), None);
        let got = hosts.answer("west", "a.test", Ok((vec![ip("10.0.0.1")], later)), t0);
        assert_eq!(got, Outcome::Placed);
        assert_eq!(hosts.dc_of(ip("10.0.0.1")), Some("west"));
    }

    #[tokio::test]
    async fn host_names_place_their_addresses_in_a_dc() {
        let cfg = config("  east: { hosts: [localhost] }\n");
        let mut hosts = DcHosts::default();
        let now = Instant::now();
        for (dc, host) in hosts.due(&cfg, now).names {
            let answer = crate::dns::lookup_host_ttl(&host)
                .await
                .map_err(|e| e.to_string());
            hosts.answer(&dc, &host, answer, now);
        }
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let resolved = crate::dns::lookup_host("localhost").await.unwrap();
        let expected = resolved.contains(&local).then_some("east");
        assert_eq!(hosts.dc_of(local), expected);
        assert_eq!(hosts.dc_of("10.9.9.9".parse().unwrap()), None);
    }
}
