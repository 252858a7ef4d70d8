//! The `latency_monitors` section: predixy's LatencyMonitor (named histograms of request
//! latency over some commands, with bucket bounds in µs), and predixy's own example monitors
//! (its `conf/latency.conf`) as the default when the section is left out.

use serde::Deserialize;

use super::Config;
use super::checks::Errors;

/// Most monitors: a request carries the set it counts in as a 32-bit mask.
pub const MAX_MONITORS: usize = 32;
/// Most bucket bounds of one monitor.
pub const MAX_BUCKETS: usize = 64;

/// One latency monitor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencyMonitorConfig {
    /// What `INFO latency <name>` asks for.
    pub name: String,
    /// Commands counted (lower case, as COMMAND names them; subcommands count as their
    /// container); `all` means every command.
    pub commands: Vec<String>,
    /// Commands left out (with `all`: every command but these).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Upper bounds of the buckets in microseconds, increasing; slower requests fall in the
    /// `>` bucket past the last.
    pub buckets_us: Vec<u64>,
}

impl LatencyMonitorConfig {
    /// Whether the command `name` (lower case) counts in this monitor.
    pub fn counts(&self, name: &str) -> bool {
        let listed = |list: &[String]| list.iter().any(|c| c.eq_ignore_ascii_case(name));
        (self.has_all() || listed(&self.commands)) && !listed(&self.exclude)
    }

    fn has_all(&self) -> bool {
        self.commands.iter().any(|c| c.eq_ignore_ascii_case("all"))
    }
}

/// predixy's example monitors (conf/latency.conf), used when `latency_monitors` is left out.
pub fn predixy_defaults() -> Vec<LatencyMonitorConfig> {
    let fine: Vec<u64> = (1..=10).map(|n| n * 100).collect();
    let mut all = fine.clone();
    all.extend([1200, 1400, 1600, 1700, 1800, 2000]);
    all.extend((5..=10).map(|n| n * 500));
    all.extend((6..=10).map(|n| n * 1000));
    let mut blocking: Vec<u64> = (1..=10).map(|n| n * 1000).collect();
    blocking.extend((2..=10).map(|n| n * 10_000));
    let list = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
    let monitor = |name: &str, commands, exclude, buckets_us| LatencyMonitorConfig {
        name: name.to_string(),
        commands,
        exclude,
        buckets_us,
    };
    vec![
        monitor(
            "all",
            list(&["all"]),
            list(&["blpop", "brpop", "brpoplpush"]),
            all,
        ),
        monitor("get", list(&["get"]), Vec::new(), fine.clone()),
        monitor("set", list(&["set", "setnx", "setex"]), Vec::new(), fine),
        monitor(
            "blist",
            list(&["blpop", "brpop", "brpoplpush"]),
            Vec::new(),
            blocking,
        ),
    ]
}

impl Config {
    /// The monitors in force: `latency_monitors`, or predixy's defaults when it is left out
    /// (`latency_monitors: []` turns them off).
    pub fn latency_monitors(&self) -> Vec<LatencyMonitorConfig> {
        match &self.latency_monitors {
            Some(list) => list.clone(),
            None => predixy_defaults(),
        }
    }
}

/// The semantic rules of `latency_monitors`.
pub(super) fn check_monitors(cfg: &Config, out: &mut Errors) {
    let Some(list) = &cfg.latency_monitors else {
        return;
    };
    if list.len() > MAX_MONITORS {
        out.push(
            "latency_monitors",
            format!("at most {MAX_MONITORS} monitors"),
        );
    }
    for (i, m) in list.iter().enumerate() {
        let at = |key: &str| format!("latency_monitors[{i}].{key}");
        if m.name.is_empty() || m.name.bytes().any(|b| b.is_ascii_whitespace()) {
            out.push(at("name"), "must be a non-empty name without spaces");
        }
        if list[..i].iter().any(|o| o.name == m.name) {
            out.push(at("name"), format!("`{}` is listed twice", m.name));
        }
        if m.commands.is_empty() {
            out.push(at("commands"), "must name at least one command (or `all`)");
        }
        if m.buckets_us.is_empty() || m.buckets_us.len() > MAX_BUCKETS {
            out.push(
                at("buckets_us"),
                format!("must hold 1 to {MAX_BUCKETS} bounds"),
            );
        }
        if m.buckets_us.first() == Some(&0) || m.buckets_us.windows(2).any(|w| w[0] >= w[1]) {
            out.push(
                at("buckets_us"),
                "bounds must be greater than 0 and strictly increasing",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::tests::{BASE, one};

    #[test]
    fn defaults_are_predixys_examples() {
        let d = predixy_defaults();
        let names: Vec<&str> = d.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["all", "get", "set", "blist"]);
        assert_eq!(d[0].buckets_us.len(), 27);
        assert_eq!(d[0].buckets_us[..3], [100, 200, 300]);
        assert_eq!(d[0].buckets_us.last(), Some(&10_000));
        assert_eq!(d[3].buckets_us.last(), Some(&100_000));
        assert!(d[0].counts("get") && d[0].counts("HSET") && !d[0].counts("blpop"));
        assert!(d[2].counts("setex") && !d[2].counts("get"));
        let c = Config::parse(BASE, "t").unwrap();
        assert_eq!(c.latency_monitors(), d);
        let off = Config::parse(&format!("{BASE}latency_monitors: []\n"), "t").unwrap();
        assert!(off.latency_monitors().is_empty());
    }

    #[test]
    fn bad_monitors_are_named() {
        let yaml = format!(
            "{BASE}latency_monitors:\n  - {{name: a, commands: [get], buckets_us: [100, 50]}}\n"
        );
        one(
            &yaml,
            "latency_monitors[0].buckets_us",
            Some(7),
            "increasing",
        );
        let yaml =
            format!("{BASE}latency_monitors:\n  - {{name: a, commands: [], buckets_us: [1]}}\n");
        one(
            &yaml,
            "latency_monitors[0].commands",
            Some(7),
            "at least one",
        );
    }
}
