//! The gateway's YAML configuration: the types with their defaults (all in this file), loading
//! and validation, and the datacenter lookups built on the DC map.
//!
//! Every struct denies unknown fields, so a typo is an error rather than a silently ignored
//! setting. A field left out takes the value of its struct's `Default` impl below — the one
//! place defaults live.

mod addr;
mod checks;
mod dc;
mod dns;
mod errors;
mod latency;
mod load;
mod locate;
pub mod settings;
mod tls;
mod units;
mod users;
mod validate;
mod validate_admin;
mod validate_dc;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use addr::split_host_port;
pub use dc::{DatacenterConfig, UNKNOWN_DC, parse_cidr};
pub use dns::{DNS_PORT, DnsConfig};
pub use errors::{ConfigError, ConfigErrors, HostPortError, UnitError};
pub use latency::{LatencyMonitorConfig, MAX_MONITORS, predixy_defaults};
pub use load::Overrides;
pub(crate) use locate::line_of;
pub use tls::{BackendTlsConfig, TlsListenConfig, TlsVersion};
pub use units::{format_duration, format_size, parse_duration, parse_size};
pub use users::{PasswordDigest, Role, UserConfig, warnings};
pub use validate::{MAX_BULK_LIMIT, MAX_PRIORITY, MAX_WORKERS};

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address clients connect to in plain text, `ip:port`; may be empty when `tls.listen` is set.
    pub listen: String,
    /// The TLS listener for clients (off unless `tls.listen` is set).
    pub tls: TlsListenConfig,
    /// Worker threads; 0 means one per core (see [`Config::effective_workers`]).
    pub workers: usize,
    /// Local address for outgoing backend sockets, for hosts with several interfaces.
    pub source_address: Option<IpAddr>,
    /// How to find and talk to the Redis Cluster.
    pub cluster: ClusterConfig,
    /// Name servers for seeds and DC host names (the system's when left out).
    pub dns: DnsConfig,
    /// Limits and timeouts of client connections.
    pub client: ClientConfig,
    /// Request-size limits of the protocol parser.
    pub limits: LimitsConfig,
    /// The datacenter this gateway serves; overridable with `--local-dc`/`MERIDIAN_LOCAL_DC`.
    pub local_dc: Option<String>,
    /// Datacenters by name.
    pub datacenters: BTreeMap<String, DatacenterConfig>,
    /// Ops' latency map in milliseconds: `latency_ms[from][to]`.
    pub latency_ms: BTreeMap<String, BTreeMap<String, f64>>,
    /// How reads choose a node.
    pub read_policy: ReadPolicyConfig,
    /// Per-node circuit breakers and backend timeouts.
    pub breaker: BreakerConfig,
    /// Background health probing of nodes.
    pub health: HealthConfig,
    /// Gateway users; none keeps meridian open (AUTH behaves as a Redis without passwords).
    pub users: Vec<UserConfig>,
    /// The admin HTTP endpoint (metrics, health, state).
    pub admin: AdminConfig,
    /// Log format, level and file.
    pub log: LogConfig,
    /// How a changed config file is noticed.
    pub reload: ReloadConfig,
    /// predixy-style latency monitors; `None` (left out) = predixy's example monitors, see
    /// [`Config::latency_monitors`].
    pub latency_monitors: Option<Vec<LatencyMonitorConfig>>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:7617".to_string(),
            tls: TlsListenConfig::default(),
            workers: 0,
            source_address: None,
            cluster: ClusterConfig::default(),
            dns: DnsConfig::default(),
            client: ClientConfig::default(),
            limits: LimitsConfig::default(),
            local_dc: None,
            datacenters: BTreeMap::new(),
            latency_ms: BTreeMap::new(),
            read_policy: ReadPolicyConfig::default(),
            breaker: BreakerConfig::default(),
            health: HealthConfig::default(),
            users: Vec::new(),
            admin: AdminConfig::default(),
            log: LogConfig::default(),
            reload: ReloadConfig::default(),
            latency_monitors: None,
        }
    }
}

/// The `cluster` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// Nodes to ask for the slot map, `host:port`; host names are allowed. Required.
    pub seeds: Vec<String>,
    /// How often the slot map is refreshed when nothing forces it sooner.
    #[serde(deserialize_with = "units::duration")]
    pub refresh_interval: Duration,
    /// Backend ACL user name.
    pub username: Option<String>,
    /// Backend password (AUTH).
    pub password: Option<String>,
    /// TLS to the nodes (`tls-port`, `tls-cluster yes`).
    pub tls: BackendTlsConfig,
}

impl Default for ClusterConfig {
    fn default() -> ClusterConfig {
        ClusterConfig {
            seeds: Vec::new(),
            refresh_interval: Duration::from_secs(1),
            username: None,
            password: None,
            tls: BackendTlsConfig::default(),
        }
    }
}

/// The `client` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    /// Idle time after which a client is closed; zero means never.
    #[serde(deserialize_with = "units::duration")]
    pub timeout: Duration,
    /// Most clients connected at once.
    pub max_clients: usize,
    /// Bytes of replies held for a client that does not read them: past it the client stops
    /// being read.
    #[serde(deserialize_with = "units::size")]
    pub output_buffer_limit: usize,
    /// How long a client past `output_buffer_limit` may go without taking any of its replies
    /// before it is disconnected (a client that writes and never reads would otherwise hang).
    #[serde(deserialize_with = "units::duration")]
    pub output_stall: Duration,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            timeout: Duration::from_secs(300),
            max_clients: 10_000,
            output_buffer_limit: 64 << 20,
            output_stall: Duration::from_secs(30),
        }
    }
}

/// The `limits` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest bulk string in a request, in bytes (at most 512mb).
    #[serde(deserialize_with = "units::size")]
    pub max_bulk: usize,
    /// Most arguments in one request.
    pub max_args: usize,
    /// Most requests in flight per client before it stops being read.
    pub max_pipeline: usize,
}

impl Default for LimitsConfig {
    fn default() -> LimitsConfig {
        LimitsConfig {
            max_bulk: 512 << 20,
            max_args: 1_048_576,
            max_pipeline: 4096,
        }
    }
}

/// Where a node's distance comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencySource {
    /// The configured `latency_ms` map only.
    Map,
    /// The measured round-trip EWMA only.
    Measured,
    /// Measured when the node has fresh samples, the map otherwise.
    #[default]
    Hybrid,
}

/// The `read_policy` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadPolicyConfig {
    /// Priority of the slot master for reads, 0..=100; 0 = never read from a master.
    pub master_priority: u8,
    /// Priority of replicas listed in `cluster.seeds`, 0..=100.
    pub static_replica_priority: u8,
    /// Priority of replicas discovered from the cluster, 0..=100.
    pub dynamic_replica_priority: u8,
    /// Where distances come from.
    pub latency_source: LatencySource,
    /// DCs within this many milliseconds of the nearest count as equally near.
    pub tolerance_ms: f64,
    /// Never read from a DC further than this; 0 = no limit.
    pub max_latency_ms: f64,
    /// Optional share of reads between equally near DCs.
    pub weights: BTreeMap<String, u32>,
}

impl Default for ReadPolicyConfig {
    fn default() -> ReadPolicyConfig {
        ReadPolicyConfig {
            master_priority: 60,
            static_replica_priority: 50,
            dynamic_replica_priority: 50,
            latency_source: LatencySource::Hybrid,
            tolerance_ms: 2.0,
            max_latency_ms: 0.0,
            weights: BTreeMap::new(),
        }
    }
}

/// The `breaker` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// Consecutive failures that open a node's breaker.
    pub failure_limit: u32,
    /// Time an open breaker waits before letting one probe through.
    #[serde(deserialize_with = "units::duration")]
    pub retry_timeout: Duration,
    /// A request older than this fails and counts as a failure of its node.
    #[serde(deserialize_with = "units::duration")]
    pub server_timeout: Duration,
    /// Time allowed for a backend connect.
    #[serde(deserialize_with = "units::duration")]
    pub connect_timeout: Duration,
    /// TCP keepalive of backend sockets; zero = off.
    #[serde(deserialize_with = "units::duration")]
    pub keepalive: Duration,
}

impl Default for BreakerConfig {
    fn default() -> BreakerConfig {
        BreakerConfig {
            failure_limit: 5,
            retry_timeout: Duration::from_secs(1),
            server_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_millis(500),
            keepalive: Duration::from_secs(120),
        }
    }
}

/// The `health` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthConfig {
    /// Interval of the PING/INFO probe of each node.
    #[serde(deserialize_with = "units::duration")]
    pub probe_interval: Duration,
    /// Bytes of replication offset lag beyond which a replica is skipped; 0 = off.
    #[serde(deserialize_with = "units::size_u64")]
    pub max_replica_lag: u64,
}

impl Default for HealthConfig {
    fn default() -> HealthConfig {
        HealthConfig {
            probe_interval: Duration::from_secs(1),
            max_replica_lag: 0,
        }
    }
}

/// Default address of the admin endpoint.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:7618";

/// The `admin` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin HTTP endpoint, `ip:port`; empty = no endpoint (and no per-request
    /// metrics).
    pub listen: String,
    /// File holding the bearer token that every endpoint but `/healthz`, `/readyz` and
    /// `/metrics` requires; mandatory when `listen` is not a loopback address.
    pub token_file: Option<PathBuf>,
    /// Require the token on a loopback address too.
    pub require_token: bool,
}

impl Default for AdminConfig {
    fn default() -> AdminConfig {
        AdminConfig {
            listen: DEFAULT_ADMIN_LISTEN.to_string(),
            token_file: None,
            require_token: false,
        }
    }
}

impl AdminConfig {
    /// True when the endpoint is on (`listen` is not empty).
    pub fn enabled(&self) -> bool {
        !self.listen.trim().is_empty()
    }

    /// Whether the protected endpoints need the token: always off loopback, or when asked.
    /// `None` when `listen` is not an address.
    pub fn token_required(&self) -> Option<bool> {
        let addr: std::net::SocketAddr = self.listen.trim().parse().ok()?;
        Some(self.require_token || !addr.ip().to_canonical().is_loopback())
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// When the log file starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogRotation {
    /// A new file each day (UTC), named `<stem>.YYYY-MM-DD.<ext>`.
    #[default]
    Daily,
    /// A new file each hour, named `<stem>.YYYY-MM-DD-HH.<ext>`.
    Hourly,
    /// One file, exactly the configured path.
    Never,
}

/// The `log` section. The command line's `--log-format` / `--log-level`, when given, win
/// over it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `meridian=debug,warn`... (`RUST_LOG`, when set, wins).
    pub level: String,
    /// Write logs to this file instead of stderr.
    pub file: Option<PathBuf>,
    /// When `file` rolls over to a new one.
    pub rotation: LogRotation,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            format: LogFormat::Text,
            level: "info".to_string(),
            file: None,
            rotation: LogRotation::Daily,
        }
    }
}

/// The `reload` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadConfig {
    /// Watch the config file's directory and reload when the file changes (also when it is
    /// replaced by a rename, as Kubernetes ConfigMap volumes do).
    pub watch: bool,
    /// Quiet time after the last change before the file is read.
    #[serde(deserialize_with = "units::duration")]
    pub debounce: Duration,
}

impl Default for ReloadConfig {
    fn default() -> ReloadConfig {
        ReloadConfig {
            watch: false,
            debounce: Duration::from_millis(500),
        }
    }
}

impl Config {
    /// Worker threads to run: `workers`, or the number of cores when it is 0.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// Every semantic problem of this config (lines unknown; [`Config::parse`] fills them in).
    pub fn validate(&self) -> Vec<ConfigError> {
        validate::validate(self)
    }

    /// The DC whose CIDRs contain `addr`, longest prefix winning; `None` for DC `unknown`.
    /// Explicit `nodes` entries are not consulted here: use [`Config::dc_of_node`] for a node.
    pub fn dc_of(&self, addr: IpAddr) -> Option<&str> {
        dc::dc_of_addr(&self.datacenters, addr)
    }

    /// The DC of a node (`host:port`): the DC listing it in `nodes`, else the CIDR match of its
    /// address. `None` when neither matches; the caller then tries `hosts` resolution.
    pub fn dc_of_node(&self, host_port: &str) -> Option<&str> {
        dc::dc_of_node(&self.datacenters, host_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The core issue's example, verbatim.
    const CORE_EXAMPLE: &str = "\
listen: 127.0.0.1:7617
workers: 1
cluster:
  seeds: [127.0.0.1:7001, 127.0.0.1:7002]
  refresh_interval: 1s
  username: null      # backend ACL user, optional
  password: null      # backend AUTH, optional
client: { timeout: 300s, max_clients: 10000 }
limits: { max_bulk: 512mb, max_args: 1048576 }
";

    /// The multi-DC issue's example sections, verbatim, after a seed list.
    const DC_EXAMPLE: &str = "\
cluster: { seeds: [127.0.1.1:7001] }
local_dc: east
datacenters:
  east: { cidrs: [10.1.0.0/16, 127.0.1.0/24], hosts: [redis-east.internal], nodes: [] }
  west: { cidrs: [10.2.0.0/16, 127.0.2.0/24] }
  eu:   { cidrs: [10.3.0.0/16, 127.0.3.0/24] }
latency_ms:                 # ops' DC latency map: from DC -> to DC
  east: { east: 0.3, west: 40, eu: 85 }
  west: { east: 40, west: 0.3, eu: 120 }
  eu:   { east: 85, west: 120, eu: 0.3 }
read_policy:
  master_priority: 60
  static_replica_priority: 50
  dynamic_replica_priority: 50
  latency_source: hybrid
  tolerance_ms: 2
  max_latency_ms: 0
  weights: { east: 1, west: 1 }
breaker:
  failure_limit: 5
  retry_timeout: 1s
  server_timeout: 1s
  connect_timeout: 500ms
  keepalive: 120s
health:
  probe_interval: 1s
  max_replica_lag: 0
";

    #[test]
    fn defaults_match_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.listen, "127.0.0.1:7617");
        assert_eq!(c.workers, 0);
        assert_eq!(c.source_address, None);
        assert!(c.cluster.seeds.is_empty());
        assert_eq!(c.cluster.refresh_interval, Duration::from_secs(1));
        assert_eq!(
            (c.cluster.username.as_ref(), c.cluster.password.as_ref()),
            (None, None)
        );
        assert_eq!(c.client.timeout, Duration::from_secs(300));
        assert_eq!(c.client.max_clients, 10_000);
        assert_eq!(c.client.output_buffer_limit, 64 * 1024 * 1024);
        assert_eq!(c.limits.max_bulk, 512 * 1024 * 1024);
        assert_eq!(c.limits.max_args, 1_048_576);
        assert_eq!(c.limits.max_pipeline, 4096);
        assert_eq!(c.local_dc, None);
        assert!(c.datacenters.is_empty() && c.latency_ms.is_empty());
        let p = &c.read_policy;
        assert_eq!(
            (
                p.master_priority,
                p.static_replica_priority,
                p.dynamic_replica_priority
            ),
            (60, 50, 50)
        );
        assert_eq!(p.latency_source, LatencySource::Hybrid);
        assert_eq!((p.tolerance_ms, p.max_latency_ms), (2.0, 0.0));
        assert!(p.weights.is_empty());
        let b = &c.breaker;
        assert_eq!(b.failure_limit, 5);
        assert_eq!(b.retry_timeout, Duration::from_secs(1));
        assert_eq!(b.server_timeout, Duration::from_secs(1));
        assert_eq!(b.connect_timeout, Duration::from_millis(500));
        assert_eq!(b.keepalive, Duration::from_secs(120));
        assert_eq!(c.health.probe_interval, Duration::from_secs(1));
        assert_eq!(c.health.max_replica_lag, 0);
        assert_eq!(c.admin.listen, "127.0.0.1:7618");
        assert_eq!(c.admin.token_file, None);
        assert!(!c.admin.require_token && c.admin.enabled());
        assert_eq!(c.admin.token_required(), Some(false));
        // The only thing a default config lacks is a seed.
        let errs = c.validate();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "cluster.seeds");
    }

    #[test]
    fn core_example_parses() {
        let c = Config::parse(CORE_EXAMPLE, "core").unwrap();
        assert_eq!(c.workers, 1);
        assert_eq!(c.effective_workers(), 1);
        assert_eq!(c.cluster.seeds, ["127.0.0.1:7001", "127.0.0.1:7002"]);
        assert_eq!(c.client.timeout, Duration::from_secs(300));
        assert_eq!(c.limits.max_bulk, 512 << 20);
    }

    #[test]
    fn zero_workers_means_cores() {
        let c = Config::default();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(c.effective_workers(), cores);
    }

    #[test]
    fn dc_example_parses_and_maps_nodes() {
        let c = Config::parse(DC_EXAMPLE, "dc").unwrap();
        assert_eq!(c.local_dc.as_deref(), Some("east"));
        assert_eq!(c.datacenters["east"].hosts, ["redis-east.internal"]);
        assert_eq!(c.latency_ms["west"]["eu"], 120.0);
        assert_eq!(c.read_policy.weights["west"], 1);
        assert_eq!(c.dc_of("127.0.2.7".parse().unwrap()), Some("west"));
        assert_eq!(c.dc_of("10.3.9.9".parse().unwrap()), Some("eu"));
        assert_eq!(c.dc_of("127.0.0.1".parse().unwrap()), None);
        assert_eq!(c.dc_of_node("127.0.1.1:7001"), Some("east"));
        assert_eq!(c.dc_of_node("redis-east.internal:7001"), None);
        for dc in ["east", "west", "eu"] {
            let moved = c.clone().with_local_dc(Some(dc.into())).unwrap();
            assert_eq!(moved.local_dc.as_deref(), Some(dc));
        }
    }

    #[test]
    fn latency_sources_and_optional_fields() {
        for (text, source) in [
            ("map", LatencySource::Map),
            ("measured", LatencySource::Measured),
            ("hybrid", LatencySource::Hybrid),
        ] {
            let yaml = format!(
                "cluster: {{seeds: [a:1]}}\nread_policy: {{latency_source: {text}}}\n\
                 source_address: 10.0.0.5\nhealth: {{max_replica_lag: 1mb}}\n"
            );
            let c = Config::parse(&yaml, "t").unwrap();
            assert_eq!(c.read_policy.latency_source, source);
            assert_eq!(c.source_address, Some("10.0.0.5".parse().unwrap()));
            assert_eq!(c.health.max_replica_lag, 1 << 20);
        }
    }
}
