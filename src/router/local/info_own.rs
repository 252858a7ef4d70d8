//! The INFO lines meridian writes from its own facts: Redis' `# Server`, `# Clients`,
//! `# Replication`, `# CPU`, `# Modules`, `# Cluster` as the one standalone master it presents,
//! the gateway's counters of `# Stats`, and meridian's predixy-style `# Proxy` and `# Servers`.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::router::worker::Worker;

use super::answer::REDIS_COMPAT_VERSION;

/// The lines of section `name` (without its header), each ending in CRLF.
pub fn render(worker: &Worker, name: &str) -> String {
    let mut out = String::new();
    match name {
        "server" => server(worker, &mut out),
        "proxy" => proxy(worker, &mut out),
        "clients" => clients(worker, &mut out),
        "replication" => replication(worker, &mut out),
        "cpu" => cpu(&mut out),
        "cluster" => out.push_str("cluster_enabled:0\r\n"),
        "servers" => servers(worker, &mut out),
        "workers" => workers(worker, &mut out),
        _ => {}
    }
    out
}

fn server(worker: &Worker, out: &mut String) {
    let shared = &worker.shared;
    let uptime = shared.started.elapsed().as_secs();
    let now_usec = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let executable = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let _ = write!(
        out,
        "redis_version:{REDIS_COMPAT_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:{}\r\nmultiplexing_api:epoll\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{now_usec}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\nexecutable:{executable}\r\nconfig_file:{}\r\nmeridian_version:{}\r\n",
        os_name(),
        usize::BITS,
        std::process::id(),
        shared.identity.run_id,
        shared.identity.port(),
        uptime / 86400,
        shared.identity.config_file(),
        env!("CARGO_PKG_VERSION"),
    );
}

/// `Linux 6.1.0 x86_64`, as Redis prints uname's system, release and machine.
fn os_name() -> String {
    let read = |f: &str| {
        std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
            .map(|s| s.trim().to_string())
            .ok()
    };
    match (read("ostype"), read("osrelease")) {
        (Some(os), Some(release)) => format!("{os} {release} {}", std::env::consts::ARCH),
        _ => format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
    }
}

fn proxy(worker: &Worker, out: &mut String) {
    let shared = &worker.shared;
    let config = shared.config();
    let _ = write!(
        out,
        "Version:{}\r\nName:meridian\r\nBind:{}\r\nRedisMode:proxy\r\nSingleThread:{}\r\nWorkerThreads:{}\r\nLocalDC:{}\r\nUptime:{}\r\nClients:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        config.listen,
        config.effective_workers() == 1,
        config.effective_workers(),
        config.local_dc.as_deref().unwrap_or(""),
        shared.started.elapsed().as_secs(),
        shared.client_count(),
    );
}

/// One line per worker: clients served now, connections it accepted (some handed to another
/// worker), requests it served.
fn workers(worker: &Worker, out: &mut String) {
    for (id, w) in worker.shared.stats.per_worker().iter().enumerate() {
        let _ = write!(
            out,
            "worker{id}:clients={},accepted={},requests={}\r\n",
            w.clients, w.accepts, w.requests
        );
    }
}

fn clients(worker: &Worker, out: &mut String) {
    let shared = &worker.shared;
    // No cluster bus and no tracking through meridian: those two are truly 0.
    let _ = write!(
        out,
        "connected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nblocked_clients:{}\r\ntracking_clients:0\r\n",
        shared.client_count(),
        shared.config().client.max_clients,
        shared.clients_registry.blocked_count(),
    );
}

/// The gateway's own counters that open `# Stats` (the masters' keyspace counters follow).
pub fn stats_head(worker: &Worker) -> String {
    let t = worker.shared.stats.info_totals();
    format!(
        "total_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n",
        t.accepts, t.requests, t.recv_client_bytes, t.send_client_bytes,
    )
}

/// meridian's predixy-style counters that close `# Stats`.
pub fn stats_tail(worker: &Worker) -> String {
    let t = worker.shared.stats.info_totals();
    format!(
        "Accept:{}\r\nClientConnections:{}\r\nTotalRequests:{}\r\nTotalResponses:{}\r\nTotalRecvClientBytes:{}\r\nTotalSendServerBytes:{}\r\nTotalRecvServerBytes:{}\r\nTotalSendClientBytes:{}\r\nRedirects:{}\r\nReadRetries:{}\r\nProtocolErrors:{}\r\nAuthFailures:{}\r\n",
        t.accepts,
        t.client_connections,
        t.requests,
        t.responses,
        t.recv_client_bytes,
        t.send_server_bytes,
        t.recv_server_bytes,
        t.send_client_bytes,
        t.redirects,
        t.read_retries,
        t.protocol_errors,
        t.auth_failures,
    )
}

/// The one master meridian presents: no replicas, a replication history that starts with
/// this run (its own replication id), no offset.
fn replication(worker: &Worker, out: &mut String) {
    let _ = write!(
        out,
        "role:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\n",
        worker.shared.identity.replid,
    );
}

/// The gateway process's CPU time (all its threads), from /proc/self/stat.
fn cpu(out: &mut String) {
    let times = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| cpu_times(&s));
    let [user, sys, cuser, csys] = times.unwrap_or_default();
    let secs = |d: Duration| format!("{}.{:06}", d.as_secs(), d.subsec_micros());
    let _ = write!(
        out,
        "used_cpu_sys:{}\r\nused_cpu_user:{}\r\nused_cpu_sys_children:{}\r\nused_cpu_user_children:{}\r\n",
        secs(sys),
        secs(user),
        secs(csys),
        secs(cuser),
    );
}

/// utime, stime, cutime, cstime of a /proc/PID/stat line. They count USER_HZ ticks, which
/// Linux fixes at 100 per second for user space.
fn cpu_times(stat: &str) -> Option<[Duration; 4]> {
    // The command name may hold spaces: the fields after it start past its closing paren.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14.
    let tick = |i: usize| -> Option<Duration> {
        let n: u64 = fields.get(i - 3)?.parse().ok()?;
        Some(Duration::from_millis(n * 10))
    };
    Some([tick(14)?, tick(15)?, tick(16)?, tick(17)?])
}

fn servers(worker: &Worker, out: &mut String) {
    let shared = &worker.shared;
    let topo = worker.topology();
    let now = Instant::now();
    for (i, node) in topo.nodes.iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let t = shared.stats.info_node_totals(&node.addr);
        let (breaker, failures, rtt, loading, link) = match shared.health.get(&node.addr) {
            Some(h) => (
                h.state(now).as_str(),
                h.consecutive_failures(),
                h.probe_rtt(now, Duration::from_secs(3600))
                    .map_or("-".to_string(), |(ms, _)| format!("{ms:.3}")),
                h.loading.load(Ordering::Relaxed),
                h.link_up.load(Ordering::Relaxed),
            ),
            None => ("closed", 0, "-".to_string(), false, true),
        };
        let group = topo
            .shards
            .get(node.shard as usize)
            .map(|shard| topo.node(shard.master).addr.clone())
            .unwrap_or_else(|| node.addr.clone());
        let _ = write!(
            out,
            "Server:{}\r\nRole:{}\r\nGroup:{group}\r\nDC:{}\r\nCurrentIsFail:{}\r\nConnections:{}\r\nConnect:{}\r\nRequests:{}\r\nResponses:{}\r\nSendBytes:{}\r\nRecvBytes:{}\r\nFailures:{}\r\nBreaker:{breaker}\r\nConsecutiveFailures:{failures}\r\nRttMs:{rtt}\r\nLoading:{}\r\nLinkUp:{}\r\n",
            node.addr,
            node.role.as_str(),
            node.dc.as_deref().unwrap_or(crate::config::UNKNOWN_DC),
            u8::from(breaker != "closed"),
            t.connections,
            t.connects,
            t.requests,
            t.responses,
            t.send_bytes,
            t.recv_bytes,
            t.failures,
            u8::from(loading),
            u8::from(link),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_from_a_stat_line() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 125 7 3 20 0 4 0 100 0";
        let [user, sys, cuser, csys] = cpu_times(line).unwrap();
        assert_eq!(user, Duration::from_millis(2500));
        assert_eq!(sys, Duration::from_millis(1250));
        assert_eq!(cuser, Duration::from_millis(70));
        assert_eq!(csys, Duration::from_millis(30));
        assert!(cpu_times("garbage").is_none());
    }
}
