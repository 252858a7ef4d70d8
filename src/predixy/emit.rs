//! Writes a gathered predixy [`Model`] as meridian YAML: values meridian takes as they are,
//! predixy's defaults where they differ from meridian's, and a comment at every place the
//! meaning changes or something could not be carried over.

use std::time::Duration;

use super::auth::Line;
use super::dc::NEVER_MS;
use super::latency::lines as latency_lines;
use super::plan::{Plan, plan_dcs};
use super::{Model, Pool, PredixyError};
use crate::config::{format_duration, split_host_port};

/// Comment lines are wrapped to this width.
const WIDTH: usize = 98;

/// The YAML text being written.
#[derive(Default)]
struct Out(String);

impl Out {
    fn line(&mut self, indent: usize, text: &str) {
        self.0.push_str(&" ".repeat(indent));
        self.0.push_str(text);
        self.0.push('\n');
    }

    /// A comment, wrapped at word boundaries; continuation lines are indented two more than
    /// the text's own leading spaces.
    fn comment(&mut self, indent: usize, text: &str) {
        let text = clean(text);
        let lead = text.len() - text.trim_start().len();
        let hang = " ".repeat(lead + 2);
        let mut current = " ".repeat(lead);
        let mut fresh = true;
        for word in text.split_whitespace() {
            if !fresh && indent + 2 + current.len() + 1 + word.len() > WIDTH {
                self.line(indent, &format!("# {current}"));
                current.clone_from(&hang);
                fresh = true;
            }
            if !fresh {
                current.push(' ');
            }
            current.push_str(word);
            fresh = false;
        }
        self.line(indent, &format!("# {current}"));
    }

    fn notes(&mut self, indent: usize, notes: &[String]) {
        for note in notes {
            self.comment(indent, &format!("NOTE: {note}"));
        }
    }
}

/// Text safe inside a comment: one line, no control characters.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A YAML double-quoted scalar.
fn q(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn ms(value: f64) -> String {
    format!("{value}")
}

pub(super) fn emit(m: &Model) -> Result<String, PredixyError> {
    let pool = m.pool.as_ref().ok_or(PredixyError::NoClusterPool)?;
    let mut warnings = Vec::new();
    let mut skipped = m.skipped.clone();
    let plan = match &m.dcs {
        Some(dcs) => Some(plan_dcs(m, pool, dcs, &mut warnings)?),
        None => {
            if let Some((name, at)) = &m.local_dc {
                skipped.push(format!(
                    "LocalDC {name} ({at}): there is no DataCenter section"
                ));
            }
            None
        }
    };
    let mut seeds = Vec::new();
    for seed in &pool.seeds {
        match split_host_port(seed) {
            Ok(_) => seeds.push(seed.as_str()),
            Err(err) => warnings.push(format!("server `{seed}` left out: {err}")),
        }
    }
    if seeds.is_empty() {
        return Err(PredixyError::Invalid {
            at: pool.at.clone(),
            message: "no server of ClusterServerPool is a host:port meridian can use".into(),
        });
    }

    let password = cluster_password(pool, seeds.len(), &mut warnings);

    let mut o = Out::default();
    o.comment(
        0,
        "meridian configuration converted from predixy by `meridian import-predixy`.",
    );
    o.comment(
        0,
        "Every NOTE marks a place where meridian's meaning differs from predixy's.",
    );
    if !warnings.is_empty() {
        o.comment(0, "WARNINGS: check these before deploying:");
        for w in &warnings {
            o.comment(0, &format!("  - {w}"));
        }
    }
    o.line(0, "");
    match &m.listen {
        Some(listen) => o.line(0, &format!("listen: {}", q(listen))),
        None => {
            o.comment(
                0,
                "predixy's default Bind (meridian's own default is 127.0.0.1:7617)",
            );
            o.line(0, "listen: \"0.0.0.0:7617\"");
        }
    }
    match m.workers {
        Some(n) => o.line(0, &format!("workers: {n}")),
        None => {
            o.comment(
                0,
                "predixy's default WorkerThreads (meridian's 0 means one per core)",
            );
            o.line(0, "workers: 1");
        }
    }
    o.line(0, "client:");
    match m.client_timeout {
        Some(t) => o.line(2, &format!("timeout: {}", format_duration(t))),
        None => {
            o.comment(
                2,
                "predixy's default ClientTimeout: idle clients are never closed",
            );
            o.line(2, "timeout: 0");
        }
    }
    write_cluster(&mut o, m, pool, &seeds, password);
    if let Some(plan) = &plan {
        write_dcs(&mut o, plan);
    }
    write_read_policy(&mut o, pool, plan.as_ref());
    write_breaker(&mut o, pool);
    if !skipped.is_empty() {
        o.line(0, "");
        o.comment(0, "Not converted (no meridian counterpart):");
        for s in &skipped {
            o.comment(0, &format!("  - {s}"));
        }
    }
    if let Some(authority) = &m.authority {
        o.line(0, "");
        write_lines(&mut o, authority.lines());
    }
    o.line(0, "");
    write_lines(&mut o, latency_lines(&m.monitors));
    Ok(o.0)
}

/// Prints lines made by the section converters, quoting their texts.
fn write_lines(o: &mut Out, lines: Vec<Line>) {
    for line in lines {
        match line {
            Line::Yaml(indent, text) => o.line(indent, &text),
            Line::Comment(indent, text) => o.comment(indent, &text),
            Line::List(indent, key, items) => {
                let items: Vec<String> = items.iter().map(|i| q(i)).collect();
                o.line(indent, &format!("{key}: [{}]", items.join(", ")));
            }
            Line::Item(indent, key, value) => o.line(indent, &format!("- {key}: {}", q(&value))),
        }
    }
}

/// The cluster password, and a note when it came from the servers' own passwords.
fn cluster_password(
    pool: &Pool,
    seeds: usize,
    warnings: &mut Vec<String>,
) -> Option<(String, Option<&'static str>)> {
    let password = pool.password.clone().filter(|p| !p.is_empty());
    let Some(first) = pool.server_passwords.first() else {
        return password.map(|p| (p, None));
    };
    let agree = pool.server_passwords.iter().all(|p| p == first);
    if password.is_none() && agree && pool.server_passwords.len() == seeds {
        return Some((
            first.clone(),
            Some("NOTE: the servers' own password (password@addr) became the cluster password"),
        ));
    }
    warnings.push(
        "Servers carry their own passwords (password@addr); meridian uses one cluster.password \
         for every node"
            .into(),
    );
    password.map(|p| (p, None))
}

fn write_cluster(
    o: &mut Out,
    m: &Model,
    pool: &Pool,
    seeds: &[&str],
    password: Option<(String, Option<&str>)>,
) {
    o.line(0, "");
    o.line(0, "cluster:");
    o.notes(2, &m.cluster_notes);
    o.notes(2, &pool.notes);
    o.line(2, "seeds:");
    for seed in seeds {
        o.line(4, &format!("- {}", q(seed)));
    }
    match pool.refresh {
        Some(t) if t.is_zero() => o.comment(
            2,
            "NOTE: RefreshInterval 0 is not allowed in meridian; refresh_interval stays at 1s",
        ),
        Some(t) => o.line(2, &format!("refresh_interval: {}", format_duration(t))),
        None => {}
    }
    if let Some((password, note)) = password {
        if let Some(note) = note {
            o.comment(2, note);
        }
        o.line(2, &format!("password: {}", q(&password)));
    }
}

fn write_dcs(o: &mut Out, plan: &Plan) {
    o.line(0, "");
    if let Some(local) = &plan.local_dc {
        o.line(0, &format!("local_dc: {}", q(local)));
    }
    o.line(0, "datacenters:");
    o.notes(2, &plan.dc_notes);
    for (name, cidrs, nodes) in &plan.dcs {
        o.line(2, &format!("{}:", q(name)));
        let cidrs: Vec<String> = cidrs.iter().map(|c| q(&c.to_string())).collect();
        if cidrs.len() <= 3 {
            o.line(4, &format!("cidrs: [{}]", cidrs.join(", ")));
        } else {
            o.line(4, "cidrs:");
            for c in &cidrs {
                o.line(6, &format!("- {c}"));
            }
        }
        if !nodes.is_empty() {
            let nodes: Vec<String> = nodes.iter().map(|n| q(n)).collect();
            o.line(4, &format!("nodes: [{}]", nodes.join(", ")));
        }
    }
    o.line(0, "latency_ms:");
    o.notes(2, &plan.latency_notes);
    for (from, row) in &plan.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|(to, v)| format!("{}: {}", q(to), ms(*v)))
            .collect();
        o.line(2, &format!("{}: {{ {} }}", q(from), cells.join(", ")));
    }
}

fn write_read_policy(o: &mut Out, pool: &Pool, plan: Option<&Plan>) {
    o.line(0, "");
    o.line(0, "read_policy:");
    let mut priority = |key: &str, value: Option<u8>, default: u8, what: &str| match value {
        Some(v) => o.line(2, &format!("{key}: {v}")),
        None => {
            o.comment(2, &format!("predixy's default {what}"));
            o.line(2, &format!("{key}: {default}"));
        }
    };
    priority(
        "master_priority",
        pool.master_priority,
        50,
        "MasterReadPriority",
    );
    let replicas = "(replicas are not read)";
    priority(
        "static_replica_priority",
        pool.static_priority,
        0,
        &format!("StaticSlaveReadPriority {replicas}"),
    );
    priority(
        "dynamic_replica_priority",
        pool.dynamic_priority,
        0,
        &format!("DynamicSlaveReadPriority {replicas}"),
    );
    let Some(plan) = plan else { return };
    o.comment(
        2,
        "NOTE: predixy placed reads by configured priorities only; `hybrid` or `measured` would \
         let measured round-trips reorder the DCs",
    );
    o.line(2, "latency_source: map");
    if plan.fenced {
        o.line(2, &format!("max_latency_ms: {}", ms(NEVER_MS - 1.0)));
    }
    if !plan.weights.is_empty() {
        o.notes(2, &plan.policy_notes);
        let cells: Vec<String> = plan
            .weights
            .iter()
            .map(|(dc, w)| format!("{}: {w}", q(dc)))
            .collect();
        o.line(2, &format!("weights: {{ {} }}", cells.join(", ")));
    } else {
        o.notes(2, &plan.policy_notes);
    }
}

fn write_breaker(o: &mut Out, pool: &Pool) {
    o.line(0, "");
    o.line(0, "breaker:");
    o.comment(
        2,
        "NOTE: predixy's ServerFailureLimit counted failures without resetting, so every Nth \
         failure ever cut a server off; failure_limit counts consecutive failures (a success \
         resets it)",
    );
    match pool.failure_limit {
        Some(n) => o.line(2, &format!("failure_limit: {n}")),
        None => o.line(2, "failure_limit: 10   # predixy's default"),
    }
    let retry_note = "NOTE: after a failed probe meridian doubles the wait, up to 30s";
    match pool.retry_timeout {
        Some(t) if t.is_zero() => o.comment(
            2,
            "NOTE: ServerRetryTimeout 0 is not allowed in meridian; retry_timeout stays at 1s",
        ),
        Some(t) => {
            o.comment(2, retry_note);
            o.line(2, &format!("retry_timeout: {}", format_duration(t)));
        }
        None => o.comment(2, retry_note),
    }
    match pool.server_timeout.filter(|t| !t.is_zero()) {
        Some(t) => o.line(2, &format!("server_timeout: {}", format_duration(t))),
        None => o.comment(
            2,
            "NOTE: predixy had no ServerTimeout (0 = none); meridian fails a request after \
             server_timeout and counts it against its node: left at meridian's default 1s",
        ),
    }
    match pool.keepalive {
        Some(t) => o.line(2, &format!("keepalive: {}", format_duration(t))),
        None => o.line(
            2,
            &format!(
                "keepalive: {}   # predixy's default: off",
                format_duration(Duration::ZERO)
            ),
        ),
    }
}
