//! `meridian import-predixy`: converts a predixy configuration into meridian's YAML, with a
//! comment wherever meridian's meaning differs, and never a silent drop.
//!
//! [`convert`] reads the predixy syntax (`parse`), gathers what it means into a `Model`,
//! translates the DataCenter section (`plan`, with the address and priority rules in `dc`)
//! and writes the YAML (`emit`).

mod auth;
mod dc;
mod emit;
mod latency;
mod parse;
mod plan;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::time::Duration;

use parse::Directive;

/// The label of the top-level file in messages (included files go by their names).
const MAIN_LABEL: &str = "predixy.conf";

/// Why a predixy configuration could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PredixyError {
    /// A line predixy itself would reject.
    #[error("{at}: {message}")]
    Syntax { at: String, message: String },
    /// An `Include` that could not be followed.
    #[error("{at}: Include {file}: {reason}")]
    Include {
        at: String,
        file: String,
        reason: String,
    },
    /// A value of the wrong shape or out of range.
    #[error("{at}: {key} `{value}`: expected {expected}")]
    Value {
        at: String,
        key: String,
        value: String,
        expected: String,
    },
    /// A predixy feature meridian does not have (Sentinel or standalone pools).
    #[error("{at}: {what} cannot be converted: {reason}")]
    Unsupported {
        at: String,
        what: String,
        reason: String,
    },
    /// A configuration that predixy would also refuse, or that has no meridian form.
    #[error("{at}: {message}")]
    Invalid { at: String, message: String },
    /// Nothing to point meridian at.
    #[error("no ClusterServerPool with Servers: meridian fronts a Redis Cluster and needs seeds")]
    NoClusterPool,
}

/// Converts the predixy configuration `predixy_conf` into meridian YAML. `included` returns
/// the text of a file an `Include` names (as written; the caller resolves paths), or `None`
/// when it cannot be read.
///
/// The YAML parses with `Config::parse` and validates whenever conversion succeeds: values
/// meridian cannot take are left out with a comment saying so.
pub fn convert(
    predixy_conf: &str,
    included: &dyn Fn(&str) -> Option<String>,
) -> Result<String, PredixyError> {
    let tree = parse::parse(predixy_conf, MAIN_LABEL, included)?;
    let mut model = Model::default();
    for d in &tree {
        model.top(d)?;
    }
    if model.pool.as_ref().is_none_or(|p| p.seeds.is_empty()) {
        return Err(PredixyError::NoClusterPool);
    }
    emit::emit(&model)
}

/// What the predixy file says, in the units meridian uses; `None` = not set there.
#[derive(Debug, Default)]
struct Model {
    listen: Option<String>,
    workers: Option<usize>,
    client_timeout: Option<Duration>,
    pool: Option<Pool>,
    local_dc: Option<(String, String)>,
    /// DataCenter's DCs, in file order; `None` when there is no DataCenter section.
    dcs: Option<Vec<Dc>>,
    /// The users an Authority block becomes.
    authority: Option<auth::Authority>,
    /// LatencyMonitor blocks, in file order.
    monitors: Vec<latency::Monitor>,
    /// `directive (where): why`, for the "not converted" list.
    skipped: Vec<String>,
    /// Notes shown as comments in the `cluster` section.
    cluster_notes: Vec<String>,
}

#[derive(Debug, Default)]
struct Pool {
    at: String,
    seeds: Vec<String>,
    password: Option<String>,
    /// Passwords given per server (`+ password@addr`), in order.
    server_passwords: Vec<String>,
    master_priority: Option<u8>,
    static_priority: Option<u8>,
    dynamic_priority: Option<u8>,
    refresh: Option<Duration>,
    server_timeout: Option<Duration>,
    failure_limit: Option<u32>,
    retry_timeout: Option<Duration>,
    keepalive: Option<Duration>,
    /// Notes about how values were read (predixy's `m` unit).
    notes: Vec<String>,
}

#[derive(Debug, Clone)]
struct Dc {
    name: String,
    at: String,
    /// (prefix as written, where)
    prefixes: Vec<(String, String)>,
    /// `None` when the DC has no ReadPolicy block.
    policy: Option<Vec<dc::PolicyEntry>>,
}

/// Why common predixy directives have no meridian counterpart.
const NO_COUNTERPART: &[(&str, &str)] = &[
    ("Name", "meridian has no service name"),
    (
        "MaxMemory",
        "no global memory cap; client.output_buffer_limit bounds each client's queued replies",
    ),
    ("BufSize", "buffers are sized automatically"),
    (
        "Log",
        "meridian logs to stderr; redirect or rotate it with your supervisor",
    ),
    (
        "LogRotate",
        "meridian logs to stderr; rotate it with your supervisor",
    ),
    (
        "AllowMissLog",
        "meridian's logging never drops lines to save a lock",
    ),
    (
        "CustomCommand",
        "command facts come from the cluster's COMMAND INFO, so module commands route unconfigured",
    ),
];

impl Model {
    fn top(&mut self, d: &Directive) -> Result<(), PredixyError> {
        if d.is("Bind") {
            self.bind(d);
        } else if d.is("WorkerThreads") {
            let n = int(d, 1, i64::MAX)?;
            match usize::try_from(n) {
                Ok(n) if n <= crate::config::MAX_WORKERS => self.workers = Some(n),
                _ => {
                    self.workers = Some(0);
                    self.skip(
                        d,
                        "more workers than meridian allows; workers: 0 (one per core)",
                    );
                }
            }
        } else if d.is("ClientTimeout") {
            self.client_timeout = Some(Duration::from_secs(non_negative(d)?));
        } else if d.is("LocalDC") {
            self.local_dc = Some((d.value.clone(), d.at.clone()));
        } else if d.is("ClusterServerPool") {
            if self.pool.is_some() {
                self.cluster_notes.push(format!(
                    "ClusterServerPool at {} replaces an earlier one, as in predixy",
                    d.at
                ));
            }
            self.pool = Some(pool(d, &mut self.skipped)?);
        } else if d.is("SentinelServerPool") || d.is("StandaloneServerPool") {
            return Err(PredixyError::Unsupported {
                at: d.at.clone(),
                what: d.key.clone(),
                reason: "meridian fronts a Redis Cluster only".into(),
            });
        } else if d.is("DataCenter") {
            let dcs = datacenter(d, &mut self.skipped)?;
            if dcs.is_empty() {
                self.skip(d, "it defines no DC");
            } else {
                self.dcs = Some(dcs);
            }
        } else if d.is("Authority") {
            if self.authority.is_some() {
                self.cluster_notes.push(format!(
                    "Authority at {} replaces an earlier one, as in predixy",
                    d.at
                ));
            }
            self.authority = Some(auth::authority(d)?);
        } else if d.is("LatencyMonitor") {
            let m = latency::monitor(d)?;
            if self.monitors.iter().any(|o| o.name() == m.name()) {
                return Err(PredixyError::Invalid {
                    at: d.at.clone(),
                    message: format!("LatencyMonitor \"{}\" is defined twice", m.name()),
                });
            }
            self.monitors.push(m);
        } else if d.key.starts_with("Log") && d.key.ends_with("Sample") {
            self.skip(d, "meridian does not sample its log");
        } else if let Some((_, why)) = NO_COUNTERPART.iter().find(|(k, _)| d.is(k)) {
            self.skip(d, why);
        } else {
            self.skip(d, "unknown predixy directive");
        }
        Ok(())
    }

    fn bind(&mut self, d: &Directive) {
        if d.value.parse::<SocketAddr>().is_ok() {
            self.listen = Some(d.value.clone());
        } else if d.value.starts_with('/') {
            self.skip(d, "meridian listens on TCP only, not on a Unix socket");
        } else {
            self.skip(d, "meridian listens on an ip:port, not a host name");
        }
    }

    fn skip(&mut self, d: &Directive, why: &str) {
        self.skipped.push(skipped(d, why));
    }
}

fn skipped(d: &Directive, why: &str) -> String {
    let block = if d.block.is_some() { " { … }" } else { "" };
    let sep = if d.value.is_empty() { "" } else { " " };
    format!("{}{sep}{}{block} ({}): {why}", d.key, d.value, d.at)
}

fn pool(d: &Directive, skipped_out: &mut Vec<String>) -> Result<Pool, PredixyError> {
    let mut p = Pool {
        at: d.at.clone(),
        ..Pool::default()
    };
    for c in block(d)? {
        if c.is("Password") {
            p.password = Some(c.value.clone());
        } else if c.is("MasterReadPriority") {
            p.master_priority = Some(priority(c)?);
        } else if c.is("StaticSlaveReadPriority") {
            p.static_priority = Some(priority(c)?);
        } else if c.is("DynamicSlaveReadPriority") {
            p.dynamic_priority = Some(priority(c)?);
        } else if c.is("RefreshInterval") {
            p.refresh = Some(duration(c, &mut p.notes)?);
        } else if c.is("ServerTimeout") {
            p.server_timeout = Some(duration(c, &mut p.notes)?);
        } else if c.is("ServerRetryTimeout") {
            p.retry_timeout = Some(duration(c, &mut p.notes)?);
        } else if c.is("ServerFailureLimit") {
            let n = int(c, 1, i64::from(u32::MAX))?;
            p.failure_limit = u32::try_from(n).ok();
        } else if c.is("KeepAlive") {
            p.keepalive = Some(Duration::from_secs(non_negative(c)?));
        } else if c.is("Databases") {
            if int(c, 1, 1).is_err() {
                return Err(PredixyError::Invalid {
                    at: c.at.clone(),
                    message: "a Redis Cluster has exactly one database (Databases 1)".into(),
                });
            }
            skipped_out.push(skipped(c, "a Redis Cluster always has one database"));
        } else if c.is("Servers") {
            for s in block(c)? {
                server(s, &mut p)?;
            }
        } else {
            skipped_out.push(skipped(c, "unknown ClusterServerPool setting"));
        }
    }
    Ok(p)
}

/// `+ [password@]addr [anything]`, as predixy reads a server line.
fn server(s: &Directive, p: &mut Pool) -> Result<(), PredixyError> {
    let spec = s.value.split_whitespace().next().unwrap_or("");
    if s.key != "+" || spec.is_empty() {
        return Err(value_error(s, "`+ host:port` server lines"));
    }
    let addr = match spec.split_once('@') {
        Some((password, addr)) => {
            p.server_passwords.push(password.to_string());
            addr
        }
        None => spec,
    };
    p.seeds.push(addr.to_string());
    Ok(())
}

fn datacenter(d: &Directive, skipped_out: &mut Vec<String>) -> Result<Vec<Dc>, PredixyError> {
    let mut dcs = Vec::new();
    for c in block(d)? {
        if !c.is("DC") || c.block.is_none() {
            return Err(PredixyError::Invalid {
                at: c.at.clone(),
                message: "DataCenter holds only `DC name { … }` blocks".into(),
            });
        }
        let mut dc = Dc {
            name: c.value.clone(),
            at: c.at.clone(),
            prefixes: Vec::new(),
            policy: None,
        };
        for item in block(c)? {
            if item.is("AddrPrefix") {
                for p in block(item)? {
                    if p.key != "+" || p.value.is_empty() {
                        return Err(value_error(p, "`+ prefix` lines"));
                    }
                    dc.prefixes.push((p.value.clone(), p.at.clone()));
                }
            } else if item.is("ReadPolicy") {
                let entries = block(item)?.iter().map(read_policy_entry);
                dc.policy = Some(entries.collect::<Result<_, _>>()?);
            } else {
                skipped_out.push(skipped(item, "unknown DC setting"));
            }
        }
        dcs.push(dc);
    }
    Ok(dcs)
}

/// `dcname priority [weight]`; the weight defaults to 1 as in predixy.
fn read_policy_entry(e: &Directive) -> Result<dc::PolicyEntry, PredixyError> {
    let numbers: Vec<&str> = e.value.split_whitespace().collect();
    let parse = |s: &str| s.parse::<i64>().ok();
    let (priority, weight) = match numbers.as_slice() {
        [p] => (parse(p), Some(1)),
        [p, w] => (parse(p), parse(w)),
        _ => (None, None),
    };
    match (priority, weight) {
        (Some(priority), Some(weight)) if weight >= 0 => Ok(dc::PolicyEntry {
            dc: e.key.clone(),
            priority,
            weight,
        }),
        _ => Err(value_error(
            e,
            "`dcname priority [weight]` with whole numbers",
        )),
    }
}

/// The children of a directive that must have a block.
fn block(d: &Directive) -> Result<&[Directive], PredixyError> {
    d.block.as_deref().ok_or_else(|| PredixyError::Invalid {
        at: d.at.clone(),
        message: format!("{} needs a `{{ … }}` block", d.key),
    })
}

fn value_error(d: &Directive, expected: &str) -> PredixyError {
    PredixyError::Value {
        at: d.at.clone(),
        key: d.key.clone(),
        value: d.value.clone(),
        expected: expected.to_string(),
    }
}

fn int(d: &Directive, min: i64, max: i64) -> Result<i64, PredixyError> {
    match d.value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ if max == i64::MAX => Err(value_error(d, &format!("a whole number >= {min}"))),
        _ => Err(value_error(d, &format!("a whole number in {min}..{max}"))),
    }
}

fn non_negative(d: &Directive) -> Result<u64, PredixyError> {
    int(d, 0, i64::MAX).map(|n| n.unsigned_abs())
}

fn priority(d: &Directive) -> Result<u8, PredixyError> {
    let n = int(d, 0, i64::from(crate::config::MAX_PRIORITY))?;
    u8::try_from(n).map_err(|_| value_error(d, "a priority in 0..100"))
}

/// predixy durations: a whole number with `s`, `m` or `ms` (both milliseconds), `u` or `us`;
/// no unit means seconds. A bare `m` gets a note: in meridian it would mean minutes.
fn duration(d: &Directive, notes: &mut Vec<String>) -> Result<Duration, PredixyError> {
    let v = d.value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let n: u64 = number
        .parse()
        .map_err(|_| value_error(d, "a duration such as 1, 1s, 500ms or 200us"))?;
    match unit.trim().to_ascii_lowercase().as_str() {
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => {
            notes.push(format!(
                "{} {} ({}): predixy's `m` means milliseconds (meridian's `m` is minutes)",
                d.key, d.value, d.at
            ));
            Ok(Duration::from_millis(n))
        }
        "ms" => Ok(Duration::from_millis(n)),
        "u" | "us" => Ok(Duration::from_micros(n)),
        _ => Err(value_error(d, "a duration such as 1, 1s, 500ms or 200us")),
    }
}
