//! Semantic checks of a parsed config. Every rule runs and every problem is collected, so an
//! operator fixes a file in one pass instead of one error per `meridian check`.

use std::net::SocketAddr;

use super::Config;
use super::addr::split_host_port;
use super::checks::Errors;
use super::errors::ConfigError;
use super::validate_dc;

/// Most workers a gateway may run; far past any useful count, low enough to catch typos.
pub const MAX_WORKERS: usize = 256;
/// Largest bulk string a client may send; Redis refuses larger ones by default too.
pub const MAX_BULK_LIMIT: usize = 512 * 1024 * 1024;
/// Upper bound of a role priority.
pub const MAX_PRIORITY: u8 = 100;

/// Collects the problems of `cfg`, lines left unknown (the caller knows the text).
pub(crate) fn validate(cfg: &Config) -> Vec<ConfigError> {
    let mut out = Errors::new();
    check_core(cfg, &mut out);
    validate_dc::check_datacenters(cfg, &mut out);
    validate_dc::check_latency(cfg, &mut out);
    super::dns::check_dns(cfg, &mut out);
    check_policy(cfg, &mut out);
    check_breaker_and_health(cfg, &mut out);
    super::users::check_users(cfg, &mut out);
    super::validate_admin::check_admin(cfg, &mut out);
    super::validate_admin::check_log_reload(cfg, &mut out);
    super::latency::check_monitors(cfg, &mut out);
    super::tls::check_tls(cfg, &mut out);
    out.into_vec()
}

fn check_core(cfg: &Config, out: &mut Errors) {
    // An empty `listen` leaves only the TLS listener (checked with the `tls` section).
    let tls_only = cfg.listen.is_empty() && cfg.tls.enabled();
    if !tls_only && cfg.listen.parse::<SocketAddr>().is_err() {
        out.push(
            "listen",
            format!(
                "`{}` is not a socket address; write ip:port, e.g. 127.0.0.1:7617",
                cfg.listen
            ),
        );
    }
    if cfg.workers > MAX_WORKERS {
        out.push(
            "workers",
            format!(
                "{} is more than {MAX_WORKERS}; use 0 for one per core",
                cfg.workers
            ),
        );
    }
    if cfg.cluster.seeds.is_empty() {
        out.push("cluster.seeds", "at least one seed (host:port) is required");
    }
    for (i, seed) in cfg.cluster.seeds.iter().enumerate() {
        if let Err(err) = split_host_port(seed) {
            out.push(format!("cluster.seeds[{i}]"), err.to_string());
        }
    }
    out.positive("cluster.refresh_interval", cfg.cluster.refresh_interval);
    out.at_least_one("client.max_clients", cfg.client.max_clients);
    out.at_least_one("client.output_buffer_limit", cfg.client.output_buffer_limit);
    out.positive("client.output_stall", cfg.client.output_stall);
    if cfg.limits.max_bulk == 0 || cfg.limits.max_bulk > MAX_BULK_LIMIT {
        out.push(
            "limits.max_bulk",
            format!("{} bytes is outside 1b..512mb", cfg.limits.max_bulk),
        );
    }
    out.at_least_one("limits.max_args", cfg.limits.max_args);
    out.at_least_one("limits.max_pipeline", cfg.limits.max_pipeline);
}

fn check_policy(cfg: &Config, out: &mut Errors) {
    let policy = &cfg.read_policy;
    for (key, value) in [
        ("master_priority", policy.master_priority),
        ("static_replica_priority", policy.static_replica_priority),
        ("dynamic_replica_priority", policy.dynamic_replica_priority),
    ] {
        if value > MAX_PRIORITY {
            out.push(
                format!("read_policy.{key}"),
                format!("{value} is outside 0..{MAX_PRIORITY}"),
            );
        }
    }
    for (key, value) in [
        ("tolerance_ms", policy.tolerance_ms),
        ("max_latency_ms", policy.max_latency_ms),
    ] {
        if !value.is_finite() || value < 0.0 {
            out.push(
                format!("read_policy.{key}"),
                format!("{value} is not a latency; use milliseconds >= 0"),
            );
        }
    }
    for name in policy.weights.keys() {
        if !cfg.datacenters.contains_key(name) {
            out.push(
                format!("read_policy.weights.{name}"),
                format!("`{name}` is not a defined datacenter"),
            );
        }
    }
}

fn check_breaker_and_health(cfg: &Config, out: &mut Errors) {
    if cfg.breaker.failure_limit == 0 {
        out.push("breaker.failure_limit", "must be at least 1");
    }
    out.positive("breaker.retry_timeout", cfg.breaker.retry_timeout);
    out.positive("breaker.server_timeout", cfg.breaker.server_timeout);
    out.positive("breaker.connect_timeout", cfg.breaker.connect_timeout);
    out.positive("health.probe_interval", cfg.health.probe_interval);
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A valid base; each test appends or swaps lines to break one rule.
    pub(crate) const BASE: &str = "\
listen: 127.0.0.1:7617
cluster:
  seeds:
    - 127.0.0.1:7001
  refresh_interval: 1s
";

    /// (path, line, message) of every error `Config::parse` reports for `yaml`.
    pub(crate) fn errors(yaml: &str) -> Vec<(String, Option<usize>, String)> {
        match Config::parse(yaml, "t.yaml") {
            Ok(_) => Vec::new(),
            Err(errs) => errs
                .errors
                .into_iter()
                .map(|e| (e.path, e.line, e.message))
                .collect(),
        }
    }

    /// Asserts exactly one error, at `path` on `line`, whose message contains `words`.
    pub(crate) fn one(yaml: &str, path: &str, line: Option<usize>, words: &str) {
        let errs = errors(yaml);
        assert_eq!(errs.len(), 1, "{errs:?}");
        let (p, l, m) = &errs[0];
        assert_eq!((p.as_str(), *l), (path, line), "{m}");
        assert!(m.contains(words), "`{m}` lacks `{words}`");
    }

    #[test]
    fn base_is_valid() {
        assert!(errors(BASE).is_empty());
    }

    #[test]
    fn listen_must_be_a_socket_address() {
        let yaml = BASE.replace("127.0.0.1:7617", "localhost:7617");
        one(&yaml, "listen", Some(1), "not a socket address");
        let yaml = BASE.replace("127.0.0.1:7617", "\"[::1]:7617\"");
        assert!(errors(&yaml).is_empty());
    }

    #[test]
    fn workers_at_most_256() {
        one(
            &format!("{BASE}workers: 257\n"),
            "workers",
            Some(6),
            "more than 256",
        );
        assert!(errors(&format!("{BASE}workers: 256\n")).is_empty());
    }

    #[test]
    fn seeds_required() {
        let yaml = "cluster:\n  refresh_interval: 1s\n";
        one(yaml, "cluster.seeds", Some(1), "at least one seed");
        one(
            "cluster:\n  seeds: []\n",
            "cluster.seeds",
            Some(2),
            "at least one seed",
        );
    }

    #[test]
    fn each_seed_is_host_port() {
        let yaml = BASE.replace(
            "    - 127.0.0.1:7001\n",
            "    - 127.0.0.1:7001\n    - redis.internal:6379\n    - 127.0.0.1\n    - h:99999\n",
        );
        let errs = errors(&yaml);
        let got: Vec<_> = errs.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
        assert_eq!(
            got,
            [("cluster.seeds[2]", Some(6)), ("cluster.seeds[3]", Some(7))]
        );
        assert!(errs[0].2.contains("no port"));
        assert!(errs[1].2.contains("invalid port"));
    }

    #[test]
    fn refresh_interval_positive() {
        let yaml = BASE.replace("refresh_interval: 1s", "refresh_interval: 0ms");
        one(&yaml, "cluster.refresh_interval", Some(5), "greater than 0");
    }

    #[test]
    fn client_limits() {
        let yaml = format!("{BASE}client:\n  max_clients: 0\n  output_buffer_limit: 0\n");
        let errs = errors(&yaml);
        let got: Vec<_> = errs.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
        assert_eq!(
            got,
            [
                ("client.max_clients", Some(7)),
                ("client.output_buffer_limit", Some(8))
            ]
        );
    }

    #[test]
    fn max_bulk_between_one_byte_and_512mb() {
        let too_big = format!("{BASE}limits:\n  max_bulk: 513mb\n");
        one(&too_big, "limits.max_bulk", Some(7), "outside 1b..512mb");
        let zero = format!("{BASE}limits:\n  max_bulk: 0\n");
        one(&zero, "limits.max_bulk", Some(7), "outside 1b..512mb");
        assert!(errors(&format!("{BASE}limits:\n  max_bulk: 512mb\n")).is_empty());
        assert!(errors(&format!("{BASE}limits:\n  max_bulk: 1b\n")).is_empty());
    }

    #[test]
    fn max_args_and_pipeline_at_least_one() {
        one(
            &format!("{BASE}limits:\n  max_args: 0\n"),
            "limits.max_args",
            Some(7),
            "at least 1",
        );
        one(
            &format!("{BASE}limits:\n  max_pipeline: 0\n"),
            "limits.max_pipeline",
            Some(7),
            "at least 1",
        );
    }

    #[test]
    fn priorities_0_to_100() {
        let yaml = format!(
            "{BASE}read_policy:\n  master_priority: 101\n  static_replica_priority: 100\n  \
             dynamic_replica_priority: 255\n"
        );
        let errs = errors(&yaml);
        let got: Vec<_> = errs.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
        assert_eq!(
            got,
            [
                ("read_policy.master_priority", Some(7)),
                ("read_policy.dynamic_replica_priority", Some(9)),
            ]
        );
        assert!(errs[0].2.contains("outside 0..100"));
    }

    #[test]
    fn policy_latencies_and_weights() {
        let yaml = format!(
            "{BASE}datacenters:\n  east: {{}}\nread_policy:\n  tolerance_ms: -0.5\n  max_latency_ms: .inf\n  weights:\n    east: 2\n    mars: 1\n"
        );
        let errs = errors(&yaml);
        let got: Vec<_> = errs.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
        assert_eq!(
            got,
            [
                ("read_policy.tolerance_ms", Some(9)),
                ("read_policy.max_latency_ms", Some(10)),
                ("read_policy.weights.mars", Some(13)),
            ]
        );
    }

    #[test]
    fn breaker_and_health_rules() {
        let yaml = format!(
            "{BASE}breaker:\n  failure_limit: 0\n  retry_timeout: 0\n  server_timeout: 0s\n  connect_timeout: 0ms\n  keepalive: 0\nhealth:\n  probe_interval: 0\n"
        );
        let errs = errors(&yaml);
        let got: Vec<_> = errs.iter().map(|(p, l, _)| (p.as_str(), *l)).collect();
        assert_eq!(
            got,
            [
                ("breaker.failure_limit", Some(7)),
                ("breaker.retry_timeout", Some(8)),
                ("breaker.server_timeout", Some(9)),
                ("breaker.connect_timeout", Some(10)),
                ("health.probe_interval", Some(13)),
            ]
        );
    }

    #[test]
    fn all_errors_are_collected_and_displayed() {
        let yaml = "\
listen: nowhere
workers: 999
cluster:
  seeds: []
  refresh_interval: 0
";
        let errs = Config::parse(yaml, "bad.yaml").unwrap_err();
        assert_eq!(
            errs.to_string(),
            "bad.yaml:1: listen: `nowhere` is not a socket address; write ip:port, e.g. 127.0.0.1:7617\n\
             bad.yaml:2: workers: 999 is more than 256; use 0 for one per core\n\
             bad.yaml:4: cluster.seeds: at least one seed (host:port) is required\n\
             bad.yaml:5: cluster.refresh_interval: must be greater than 0"
        );
    }
}
