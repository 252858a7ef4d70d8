//! Samples every node's own counters (`INFO commandstats replication`) every 100 ms during a
//! drill: which DC served reads (per read command, so per gateway), each node's role, and
//! writes a node refused (`rejected_calls` of SET: a write sent to a replica).
//!
//! The sampler talks to the nodes' real ports, not their relays, so it is neither delayed nor
//! partitioned; a stopped node just misses samples.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use super::client::{Conn, Reply, info_fields};
use super::load::READ_COMMANDS;

/// Bound on one sample of one node (a stopped node must not delay the next).
const SAMPLE_TIMEOUT: Duration = Duration::from_millis(80);

/// One sample of one node's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeSample {
    /// When, in ms since the drill started.
    pub at_ms: u32,
    /// `role:master`.
    pub master: bool,
    /// `calls` of each of [`READ_COMMANDS`].
    pub reads: [u64; READ_COMMANDS.len()],
    /// `rejected_calls` of SET.
    pub set_rejected: u64,
}

/// The samples of one node.
#[derive(Debug, Clone)]
pub struct NodeSeries {
    /// Node name.
    pub name: String,
    /// Its DC.
    pub dc: String,
    /// Successful samples, in time order.
    pub samples: Vec<NodeSample>,
}

/// A node to sample: name, DC, its real address.
pub type Target = (String, String, SocketAddr);

/// Samples every node every `every` from `start` until `end`.
pub async fn run(
    targets: Vec<Target>,
    start: Instant,
    end: Instant,
    every: Duration,
) -> Vec<NodeSeries> {
    let tasks: Vec<_> = targets
        .into_iter()
        .map(|(name, dc, addr)| {
            tokio::spawn(async move {
                let samples = sample_node(addr, start, end, every).await;
                NodeSeries { name, dc, samples }
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        if let Ok(series) = task.await {
            out.push(series);
        }
    }
    out
}

async fn sample_node(
    addr: SocketAddr,
    start: Instant,
    end: Instant,
    every: Duration,
) -> Vec<NodeSample> {
    let mut out = Vec::new();
    let mut conn: Option<Conn> = None;
    let mut tick = start;
    // Bounded by time: `tick` advances by `every` each pass until `end`.
    while tick <= end {
        tokio::time::sleep_until(tick).await;
        tick += every;
        if conn.is_none() {
            conn = Conn::connect(addr, None, SAMPLE_TIMEOUT).await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let at_ms = u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX);
        match c
            .call(&["INFO", "commandstats", "replication"], SAMPLE_TIMEOUT)
            .await
        {
            Ok(Reply::Bulk(Some(text))) => {
                let mut sample = parse_info(&String::from_utf8_lossy(&text));
                sample.at_ms = at_ms;
                out.push(sample);
            }
            // A late reply would be read as the next sample's: start over on a new connection.
            _ => conn = None,
        }
    }
    out
}

/// Reads the counters out of an `INFO commandstats replication` reply.
pub fn parse_info(text: &str) -> NodeSample {
    let mut sample = NodeSample::default();
    for (key, value) in info_fields(text) {
        if key == "role" {
            sample.master = value == "master";
            continue;
        }
        let Some(cmd) = key.strip_prefix("cmdstat_") else {
            continue;
        };
        let field = |name: &str| {
            value
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        if let Some(i) = READ_COMMANDS.iter().position(|c| *c == cmd) {
            sample.reads[i] = field("calls");
        } else if cmd == "set" {
            sample.set_rejected = field("rejected_calls");
        }
    }
    sample
}

/// The increase of a counter between two samples; a restarted node starts from zero again.
pub fn delta(before: u64, after: u64) -> u64 {
    if after >= before {
        after - before
    } else {
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commandstats_and_role() {
        let text = "# Commandstats\r\n\
            cmdstat_get:calls=10,usec=5,usec_per_call=0.5,rejected_calls=1,failed_calls=0\r\n\
            cmdstat_mget:calls=4,usec=5,usec_per_call=1.2,rejected_calls=0,failed_calls=0\r\n\
            cmdstat_set:calls=7,usec=9,usec_per_call=1.3,rejected_calls=3,failed_calls=0\r\n\
            \r\n# Replication\r\nrole:slave\r\nmaster_host:127.0.1.1\r\n";
        let s = parse_info(text);
        assert!(!s.master);
        assert_eq!(s.reads, [10, 0, 0, 4]);
        assert_eq!(s.set_rejected, 3);
        assert!(parse_info("role:master\r\n").master);
        assert_eq!((delta(5, 9), delta(9, 2)), (4, 2));
    }
}
