//! INFO of the one server meridian presents: the text meridian wrote itself interleaved with
//! sections folded from every master's INFO reply (memory, persistence, stats counters,
//! commandstats, errorstats, keyspace), each field combined by its own rule.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use bytes::{Bytes, BytesMut};

use crate::resp::encode;

/// One piece of an INFO answer, in output order.
#[derive(Debug, Clone, PartialEq)]
pub enum InfoPiece {
    /// Text meridian wrote itself.
    Text(String),
    /// Lines folded from the masters' replies.
    Fold(Fold),
}

/// A group of lines folded from the masters' INFO replies (the section header and the blank
/// line after it are the caller's text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fold {
    Memory,
    Persistence,
    /// The keyspace counters of `# Stats` (the rest of that section is the gateway's own).
    Stats,
    Commandstats,
    Errorstats,
    Keyspace,
}

impl Fold {
    /// The section of a master's INFO the lines come from.
    pub fn section(self) -> &'static str {
        match self {
            Fold::Memory => "memory",
            Fold::Persistence => "persistence",
            Fold::Stats => "stats",
            Fold::Commandstats => "commandstats",
            Fold::Errorstats => "errorstats",
            Fold::Keyspace => "keyspace",
        }
    }
}

/// How one field of several masters becomes one value.
#[derive(Debug, Clone, Copy)]
enum How {
    /// Added up (sizes, counters).
    Sum,
    /// The largest: flags (1 if any master has it), durations, script counts (every master
    /// holds the same scripts).
    Max,
    /// The smallest: a time stamp, where the oldest is the worst case.
    Min,
    /// Any master's value (settings that are the same on every master).
    First,
    /// `ok` unless some master says otherwise (the first other value).
    Status,
    /// `bytes_to_human` of the summed field named.
    Human(&'static str),
    /// The summed first field divided by the summed second, two decimals.
    Ratio(&'static str, &'static str),
}

use How::*;

/// `# Memory`: sizes summed over the masters, settings from one of them.
const MEMORY: &[(&str, How)] = &[
    ("used_memory", Sum),
    ("used_memory_human", Human("used_memory")),
    ("used_memory_rss", Sum),
    ("used_memory_rss_human", Human("used_memory_rss")),
    ("used_memory_peak", Sum),
    ("used_memory_peak_human", Human("used_memory_peak")),
    ("used_memory_overhead", Sum),
    ("used_memory_startup", Sum),
    ("used_memory_dataset", Sum),
    ("used_memory_lua", Sum),
    ("used_memory_scripts", Sum),
    ("number_of_cached_scripts", Max),
    ("number_of_functions", Max),
    ("number_of_libraries", Max),
    ("maxmemory", First),
    ("maxmemory_human", First),
    ("maxmemory_policy", First),
    (
        "mem_fragmentation_ratio",
        Ratio("used_memory_rss", "used_memory"),
    ),
    ("mem_allocator", First),
    ("lazyfree_pending_objects", Sum),
];

/// `# Persistence`: counters summed; flags, durations and statuses the worst case over the
/// masters (a flag is 1 if any master has it, a status is the first that is not `ok`); the
/// last save time is the oldest. `loading_*` appear only while some master loads.
const PERSISTENCE: &[(&str, How)] = &[
    ("loading", Max),
    ("async_loading", Max),
    ("loading_loaded_perc", Min),
    ("loading_eta_seconds", Max),
    ("rdb_changes_since_last_save", Sum),
    ("rdb_bgsave_in_progress", Max),
    ("rdb_last_save_time", Min),
    ("rdb_last_bgsave_status", Status),
    ("rdb_last_bgsave_time_sec", Max),
    ("rdb_current_bgsave_time_sec", Max),
    ("rdb_saves", Sum),
    ("aof_enabled", Max),
    ("aof_rewrite_in_progress", Max),
    ("aof_rewrite_scheduled", Max),
    ("aof_last_rewrite_time_sec", Max),
    ("aof_current_rewrite_time_sec", Max),
    ("aof_last_bgrewrite_status", Status),
    ("aof_rewrites", Sum),
    ("aof_last_write_status", Status),
];

/// The `# Stats` counters that describe the data: summed. `instantaneous_ops_per_sec` is the
/// masters' (what the cluster serves, every client of it included).
const STATS: &[(&str, How)] = &[
    ("instantaneous_ops_per_sec", Sum),
    ("expired_keys", Sum),
    ("evicted_keys", Sum),
    ("keyspace_hits", Sum),
    ("keyspace_misses", Sum),
];

/// One master's INFO reply: section name (lowercase) → its `field:value` lines.
type Sections<'a> = BTreeMap<String, Vec<(&'a str, &'a str)>>;

fn sections(text: &str) -> Sections<'_> {
    let mut out = Sections::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("# ") {
            current = name.trim().to_ascii_lowercase();
            out.entry(current.clone()).or_default();
        } else if let Some((k, v)) = line.split_once(':') {
            out.entry(current.clone())
                .or_default()
                .push((k, v.trim_end()));
        }
    }
    out
}

/// Renders `pieces` with the folds computed from the masters' replies `parts`, as a
/// verbatim string (a bulk string in RESP2).
pub fn render(pieces: &[InfoPiece], parts: &[Bytes], proto: u8) -> Bytes {
    let texts: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(payload(p)).into_owned())
        .collect();
    let masters: Vec<Sections> = texts.iter().map(|t| sections(t)).collect();
    let mut text = String::new();
    for piece in pieces {
        match piece {
            InfoPiece::Text(t) => text.push_str(t),
            InfoPiece::Fold(fold) => {
                let lines: Vec<&[(&str, &str)]> = masters
                    .iter()
                    .map(|m| m.get(fold.section()).map_or(&[][..], Vec::as_slice))
                    .collect();
                match fold {
                    Fold::Memory => by_rules(MEMORY, &lines, &mut text),
                    Fold::Persistence => by_rules(PERSISTENCE, &lines, &mut text),
                    Fold::Stats => by_rules(STATS, &lines, &mut text),
                    Fold::Commandstats => sum_tagged(&lines, &mut text, true),
                    Fold::Errorstats => sum_tagged(&lines, &mut text, false),
                    Fold::Keyspace => keyspace(&lines, &mut text),
                }
            }
        }
    }
    let mut out = BytesMut::with_capacity(text.len() + 16);
    encode::verbatim(&mut out, "txt", text.as_bytes(), proto);
    out.freeze()
}

/// The values of `field` over the masters that have it.
fn values<'a>(lines: &[&[(&'a str, &'a str)]], field: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|m| m.iter().find(|(k, _)| *k == field).map(|(_, v)| *v))
        .collect()
}

/// A number as INFO writes it: an integer when it is one, else two decimals.
enum Num {
    Int(i64),
    Float(f64),
}

fn parse_num(v: &str) -> Option<Num> {
    match v.parse::<i64>() {
        Ok(n) => Some(Num::Int(n)),
        Err(_) => v.parse::<f64>().ok().map(Num::Float),
    }
}

fn sum_of(values: &[&str]) -> Option<Num> {
    let mut int: i64 = 0;
    let mut float: Option<f64> = None;
    for v in values {
        match parse_num(v)? {
            Num::Int(n) => int = int.saturating_add(n),
            Num::Float(f) => *float.get_or_insert(0.0) += f,
        }
    }
    Some(match float {
        Some(f) => Num::Float(f + int as f64),
        None => Num::Int(int),
    })
}

fn extreme(values: &[&str], largest: bool) -> Option<String> {
    let mut best: Option<(f64, &str)> = None;
    for v in values {
        let n = match parse_num(v)? {
            Num::Int(n) => n as f64,
            Num::Float(f) => f,
        };
        let better = best.is_none_or(|(b, _)| if largest { n > b } else { n < b });
        if better {
            best = Some((n, v));
        }
    }
    best.map(|(_, v)| v.to_string())
}

fn show(n: Num) -> String {
    match n {
        Num::Int(n) => n.to_string(),
        Num::Float(f) => format!("{f:.2}"),
    }
}

fn by_rules(rules: &[(&str, How)], lines: &[&[(&str, &str)]], out: &mut String) {
    let summed = |field: &str| match sum_of(&values(lines, field)) {
        Some(Num::Int(n)) => Some(n as f64),
        Some(Num::Float(f)) => Some(f),
        None => None,
    };
    for (field, how) in rules {
        let vals = values(lines, field);
        if vals.is_empty() {
            continue;
        }
        let value = match how {
            Sum => sum_of(&vals).map(show),
            Max => extreme(&vals, true),
            Min => extreme(&vals, false),
            First => vals.first().map(|v| v.to_string()),
            Status => Some(
                vals.iter()
                    .find(|v| **v != "ok")
                    .map_or("ok", |v| *v)
                    .to_string(),
            ),
            Human(of) => summed(of).map(|n| bytes_to_human(n as u64)),
            Ratio(a, b) => match (summed(a), summed(b)) {
                (Some(a), Some(b)) if b > 0.0 => Some(format!("{:.2}", a / b)),
                _ => None,
            },
        };
        if let Some(v) = value {
            let _ = write!(out, "{field}:{v}\r\n");
        }
    }
}

/// `cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=..,failed_calls=..`
/// (`per_call`) or `errorstat_<code>:count=..`: every counter summed per name, usec_per_call
/// computed again from the sums.
fn sum_tagged(lines: &[&[(&str, &str)]], out: &mut String, per_call: bool) {
    let mut totals: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for master in lines {
        for (name, fields) in master.iter() {
            let entry = totals.entry(name).or_default();
            for kv in fields.split(',') {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: f64 = v.parse().unwrap_or(0.0);
                match entry.iter_mut().find(|(name, _)| *name == k) {
                    Some(slot) => slot.1 += v,
                    None => entry.push((k, v)),
                }
            }
        }
    }
    for (name, counters) in totals {
        let get = |k: &str| counters.iter().find(|(n, _)| *n == k).map_or(0.0, |c| c.1);
        let _ = write!(out, "{name}:");
        if per_call {
            let (calls, usec) = (get("calls"), get("usec"));
            let per = if calls > 0.0 { usec / calls } else { 0.0 };
            let _ = write!(
                out,
                "calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
                calls as u64,
                usec as u64,
                get("rejected_calls") as u64,
                get("failed_calls") as u64,
            );
        } else {
            let fields: Vec<String> = counters
                .iter()
                .map(|(k, v)| format!("{k}={}", *v as u64))
                .collect();
            let _ = write!(out, "{}\r\n", fields.join(","));
        }
    }
}

/// `dbN:keys=..,expires=..,avg_ttl=..`: keys and expires summed, the longest average TTL.
fn keyspace(lines: &[&[(&str, &str)]], out: &mut String) {
    let mut dbs: BTreeMap<u32, (u64, u64, u64)> = BTreeMap::new();
    for master in lines {
        for (db, fields) in master.iter() {
            let Some(n) = db.strip_prefix("db").and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let entry = dbs.entry(n).or_default();
            for kv in fields.split(',') {
                let (k, v) = kv.split_once('=').unwrap_or((kv, "0"));
                let v: u64 = v.trim().parse().unwrap_or(0);
                match k {
                    "keys" => entry.0 += v,
                    "expires" => entry.1 += v,
                    "avg_ttl" => entry.2 = entry.2.max(v),
                    _ => {}
                }
            }
        }
    }
    for (db, (keys, expires, ttl)) in dbs {
        let _ = write!(
            out,
            "db{db}:keys={keys},expires={expires},avg_ttl={ttl}\r\n"
        );
    }
}

/// A byte count as Redis writes it for humans: `512B`, `1.50K`, `20.00M`, ….
pub fn bytes_to_human(n: u64) -> String {
    const UNITS: [(u64, &str); 5] = [
        (1 << 50, "P"),
        (1 << 40, "T"),
        (1 << 30, "G"),
        (1 << 20, "M"),
        (1 << 10, "K"),
    ];
    if n >= 1 << 60 {
        return format!("{n}B");
    }
    for (size, unit) in UNITS {
        if n >= size {
            return format!("{:.2}{unit}", n as f64 / size as f64);
        }
    }
    format!("{n}B")
}

/// The payload of a bulk or verbatim string reply (empty for anything else).
pub fn payload(p: &[u8]) -> &[u8] {
    let Some(nl) = p.iter().position(|&b| b == b'\n') else {
        return &[];
    };
    let body = p[nl + 1..].strip_suffix(b"\r\n").unwrap_or(&[]);
    match p.first() {
        Some(b'$') => body,
        Some(b'=') => body.get(4..).unwrap_or(&[]),
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Bytes {
        Bytes::from(format!("${}\r\n{s}\r\n", s.len()))
    }

    fn rendered(pieces: &[InfoPiece], parts: &[Bytes]) -> String {
        let out = render(pieces, parts, 2);
        String::from_utf8_lossy(payload(&out)).into_owned()
    }

    #[test]
    fn keyspace_lines_are_summed() {
        let parts = vec![
            bulk("# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=10\r\n"),
            bulk(
                "# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=20\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n",
            ),
        ];
        let text = rendered(
            &[
                InfoPiece::Text("# Keyspace\r\n".into()),
                InfoPiece::Fold(Fold::Keyspace),
            ],
            &parts,
        );
        assert_eq!(
            text,
            "# Keyspace\r\ndb0:keys=5,expires=1,avg_ttl=20\r\ndb1:keys=1,expires=0,avg_ttl=0\r\n"
        );
    }

    #[test]
    fn memory_and_persistence_follow_their_rules() {
        let parts = vec![
            bulk(
                "# Memory\r\nused_memory:1024\r\nused_memory_human:1.00K\r\nused_memory_rss:4096\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nnumber_of_cached_scripts:2\r\nmem_fragmentation_ratio:4.00\r\n\r\n# Persistence\r\nloading:0\r\nrdb_last_save_time:100\r\nrdb_last_bgsave_status:ok\r\nrdb_changes_since_last_save:3\r\n",
            ),
            bulk(
                "# Memory\r\nused_memory:2048\r\nused_memory_human:2.00K\r\nused_memory_rss:4096\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nnumber_of_cached_scripts:2\r\n\r\n# Persistence\r\nloading:1\r\nloading_eta_seconds:7\r\nrdb_last_save_time:90\r\nrdb_last_bgsave_status:err\r\nrdb_changes_since_last_save:4\r\n",
            ),
        ];
        let text = rendered(
            &[
                InfoPiece::Fold(Fold::Memory),
                InfoPiece::Fold(Fold::Persistence),
            ],
            &parts,
        );
        for line in [
            "used_memory:3072\r\n",
            "used_memory_human:3.00K\r\n",
            "used_memory_rss:8192\r\n",
            "number_of_cached_scripts:2\r\n",
            "maxmemory_policy:noeviction\r\n",
            "mem_fragmentation_ratio:2.67\r\n",
            "loading:1\r\n",
            "loading_eta_seconds:7\r\n",
            "rdb_last_save_time:90\r\n",
            "rdb_last_bgsave_status:err\r\n",
            "rdb_changes_since_last_save:7\r\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        assert!(!text.contains("aof_enabled"), "absent fields stay absent");
    }

    #[test]
    fn commandstats_are_summed_per_command() {
        let parts = vec![
            bulk(
                "# Commandstats\r\ncmdstat_get:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=1\r\n\r\n# Errorstats\r\nerrorstat_ERR:count=2\r\n",
            ),
            bulk(
                "# Commandstats\r\ncmdstat_get:calls=1,usec=3,usec_per_call=3.00,rejected_calls=2,failed_calls=0\r\ncmdstat_set:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n",
            ),
        ];
        let text = rendered(
            &[
                InfoPiece::Fold(Fold::Commandstats),
                InfoPiece::Fold(Fold::Errorstats),
            ],
            &parts,
        );
        assert_eq!(
            text,
            "cmdstat_get:calls=4,usec=12,usec_per_call=3.00,rejected_calls=2,failed_calls=1\r\n\
             cmdstat_set:calls=1,usec=5,usec_per_call=5.00,rejected_calls=0,failed_calls=0\r\n\
             errorstat_ERR:count=2\r\n"
        );
    }

    #[test]
    fn human_sizes_as_redis_writes_them() {
        assert_eq!(bytes_to_human(512), "512B");
        assert_eq!(bytes_to_human(1536), "1.50K");
        assert_eq!(bytes_to_human(20 << 20), "20.00M");
        assert_eq!(bytes_to_human(3 << 30), "3.00G");
    }

    #[test]
    fn resp3_is_a_verbatim_string() {
        let out = render(&[InfoPiece::Text("# X\r\n".into())], &[], 3);
        assert_eq!(&out[..], b"=9\r\ntxt:# X\r\n\r\n");
    }
}
