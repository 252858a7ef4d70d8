//! meridian's own settings as `CONFIG GET` shows them: one `meridian.<path>` name per value,
//! written the way the config file takes it (`500ms`, `64mb`), secrets left out.

use std::fmt::Display;

use super::units::{format_duration, format_size};
use super::{Config, LatencySource};

/// The prefix of every meridian setting; `CONFIG SET` refuses names under it.
pub const PREFIX: &str = "meridian.";

/// Every setting of `c` as (name, value), names in a fixed order. `cluster.password`, user
/// passwords and the admin token are never listed (only where the token lives).
pub fn settings(c: &Config) -> Vec<(String, String)> {
    let mut out = Settings(Vec::new());
    out.put("listen", &c.listen);
    out.put("workers", c.workers);
    out.put("workers_running", c.effective_workers());
    out.opt("source_address", c.source_address.as_ref());
    out.put("cluster.seeds", c.cluster.seeds.join(" "));
    out.put(
        "cluster.refresh_interval",
        format_duration(c.cluster.refresh_interval),
    );
    out.opt("cluster.username", c.cluster.username.as_ref());
    out.put("client.timeout", format_duration(c.client.timeout));
    out.put("client.max_clients", c.client.max_clients);
    out.put(
        "client.output_buffer_limit",
        format_size(c.client.output_buffer_limit as u64),
    );
    out.put(
        "client.output_stall",
        format_duration(c.client.output_stall),
    );
    out.put("limits.max_bulk", format_size(c.limits.max_bulk as u64));
    out.put("limits.max_args", c.limits.max_args);
    out.put("limits.max_pipeline", c.limits.max_pipeline);
    out.opt("local_dc", c.local_dc.as_ref());
    for (name, dc) in &c.datacenters {
        let cidrs: Vec<String> = dc.cidrs.iter().map(|n| n.to_string()).collect();
        out.put(&format!("datacenters.{name}.cidrs"), cidrs.join(" "));
        out.put(&format!("datacenters.{name}.hosts"), dc.hosts.join(" "));
        out.put(&format!("datacenters.{name}.nodes"), dc.nodes.join(" "));
    }
    for (from, row) in &c.latency_ms {
        for (to, ms) in row {
            out.put(&format!("latency_ms.{from}.{to}"), ms);
        }
    }
    let p = &c.read_policy;
    out.put("read_policy.master_priority", p.master_priority);
    out.put(
        "read_policy.static_replica_priority",
        p.static_replica_priority,
    );
    out.put(
        "read_policy.dynamic_replica_priority",
        p.dynamic_replica_priority,
    );
    let source = match p.latency_source {
        LatencySource::Map => "map",
        LatencySource::Measured => "measured",
        LatencySource::Hybrid => "hybrid",
    };
    out.put("read_policy.latency_source", source);
    out.put("read_policy.tolerance_ms", p.tolerance_ms);
    out.put("read_policy.max_latency_ms", p.max_latency_ms);
    for (dc, weight) in &p.weights {
        out.put(&format!("read_policy.weights.{dc}"), weight);
    }
    let b = &c.breaker;
    out.put("breaker.failure_limit", b.failure_limit);
    out.put("breaker.retry_timeout", format_duration(b.retry_timeout));
    out.put("breaker.server_timeout", format_duration(b.server_timeout));
    out.put(
        "breaker.connect_timeout",
        format_duration(b.connect_timeout),
    );
    out.put("breaker.keepalive", format_duration(b.keepalive));
    out.put(
        "health.probe_interval",
        format_duration(c.health.probe_interval),
    );
    out.put(
        "health.max_replica_lag",
        format_size(c.health.max_replica_lag),
    );
    let names: Vec<&str> = c.users.iter().map(|u| u.name.as_str()).collect();
    out.put("users", names.join(" "));
    out.put("admin.listen", &c.admin.listen);
    out.opt(
        "admin.token_file",
        c.admin.token_file.as_ref().map(|p| p.display()),
    );
    out.put("admin.require_token", c.admin.require_token);
    for m in c.latency_monitors() {
        let bounds: Vec<String> = m.buckets_us.iter().map(u64::to_string).collect();
        out.put(
            &format!("latency_monitors.{}.commands", m.name),
            m.commands.join(" "),
        );
        out.put(
            &format!("latency_monitors.{}.exclude", m.name),
            m.exclude.join(" "),
        );
        out.put(
            &format!("latency_monitors.{}.buckets_us", m.name),
            bounds.join(" "),
        );
    }
    out.0
}

struct Settings(Vec<(String, String)>);

impl Settings {
    fn put(&mut self, name: &str, value: impl Display) {
        self.0.push((format!("{PREFIX}{name}"), value.to_string()));
    }

    /// An optional setting: an empty value when unset, as Redis shows unset strings.
    fn opt(&mut self, name: &str, value: Option<impl Display>) {
        let value = value.map(|v| v.to_string()).unwrap_or_default();
        self.put(name, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(all: &'a [(String, String)], name: &str) -> &'a str {
        all.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} missing"))
    }

    #[test]
    fn settings_are_written_as_the_file_takes_them() {
        let yaml = "cluster: {seeds: [a:1, b:2], password: hunter2}\nworkers: 2\n\
                    local_dc: east\ndatacenters: {east: {cidrs: [10.1.0.0/16]}, west: {}}\n\
                    latency_ms: {east: {west: 40, east: 0.3}}\n\
                    breaker: {connect_timeout: 250ms}\nclient: {output_buffer_limit: 8mb}\n";
        let c = Config::parse(yaml, "t").unwrap();
        let all = settings(&c);
        assert_eq!(get(&all, "meridian.workers"), "2");
        assert_eq!(get(&all, "meridian.cluster.seeds"), "a:1 b:2");
        assert_eq!(get(&all, "meridian.local_dc"), "east");
        assert_eq!(get(&all, "meridian.latency_ms.east.west"), "40");
        assert_eq!(get(&all, "meridian.latency_ms.east.east"), "0.3");
        assert_eq!(get(&all, "meridian.datacenters.east.cidrs"), "10.1.0.0/16");
        assert_eq!(get(&all, "meridian.breaker.connect_timeout"), "250ms");
        assert_eq!(get(&all, "meridian.client.output_buffer_limit"), "8mb");
        assert_eq!(get(&all, "meridian.read_policy.latency_source"), "hybrid");
        assert_eq!(get(&all, "meridian.cluster.username"), "");
        assert_eq!(get(&all, "meridian.latency_monitors.get.commands"), "get");
        assert_eq!(
            get(&all, "meridian.latency_monitors.set.buckets_us"),
            "100 200 300 400 500 600 700 800 900 1000"
        );
        // Every name carries the prefix, none twice, and no secret shows.
        assert!(all.iter().all(|(n, _)| n.starts_with(PREFIX)));
        let mut names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(
            all.iter()
                .all(|(n, v)| !n.contains("password") && v != "hunter2")
        );
    }
}
