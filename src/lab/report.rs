//! The drill report: what every gateway's clients saw, per phase and per 100 ms, which DC
//! served their reads (from the nodes' own counters), and the invariants. Written out as a
//! table and JSON by [`super::summary`], as a page by [`super::html`].

use std::collections::BTreeMap;

use super::load::{GatewayLoad, Op, Outcome, READ_COMMANDS};
use super::sampler::{NodeSeries, delta};
use super::scrape::GatewayMetrics;

/// Width of a time-line bucket.
pub const BUCKET_MS: u32 = 100;
/// A replica refusing writes only counts once it has been a replica this long: just after a
/// failover a demoted master legitimately redirects writes that were already on their way.
pub const REPLICA_STABLE_MS: u32 = 3000;
/// Phase names, in order.
pub const PHASES: [&str; 3] = ["before", "during", "after"];

/// What the drill did and when (ms since the load started).
#[derive(Debug, Clone, Default)]
pub struct DrillInfo {
    /// Scenario name.
    pub scenario: String,
    /// Topology name.
    pub topology: String,
    /// What was broken, in words.
    pub target: String,
    /// Fault injected.
    pub fault_ms: u32,
    /// Fault healed.
    pub heal_ms: u32,
    /// End of the settle window: errors after this break an invariant.
    pub settle_ms: u32,
    /// Load stopped.
    pub end_ms: u32,
    /// Requests per second per gateway.
    pub rate: u32,
    /// Slot ranges whose master the fault touched.
    pub affected_slots: Vec<(u16, u16)>,
    /// Gateways: DC and address, in load order.
    pub gateways: Vec<(String, String)>,
    /// DCs in topology order.
    pub dcs: Vec<String>,
    /// What happened, `(ms, text)`.
    pub events: Vec<(u32, String)>,
}

/// One 100 ms bucket of one gateway.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    /// Requests sent in the bucket.
    pub requests: u64,
    /// Those that failed.
    pub errors: u64,
    /// Median latency (ms) of its requests.
    pub p50_ms: f64,
    /// 99th percentile latency (ms).
    pub p99_ms: f64,
    /// Reads of this gateway served per DC (in `DrillInfo::dcs` order), per the nodes.
    pub reads_by_dc: Vec<u64>,
}

/// Latency of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseLatency {
    /// Requests in the phase.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// What one gateway's clients saw.
#[derive(Debug, Clone, Default)]
pub struct GatewayReport {
    /// Its DC.
    pub dc: String,
    /// Its address.
    pub addr: String,
    /// The read command its load used.
    pub read_command: String,
    /// Requests sent.
    pub requests: u64,
    /// Reads sent.
    pub reads: u64,
    /// Writes sent.
    pub writes: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Reads that returned an older value (replica lag, or writes lost in a failover).
    pub stale_reads: u64,
    /// Replies that belonged to another request.
    pub crossed_replies: u64,
    /// Reads that returned a value never written.
    pub wrong_values: u64,
    /// First failed write on the affected slots (after the fault).
    pub write_fail_ms: Option<u32>,
    /// First successful write on the affected slots after that.
    pub write_back_ms: Option<u32>,
    /// Share of reads per DC, per phase.
    pub read_share: [BTreeMap<String, f64>; 3],
    /// Latency per phase.
    pub latency: [PhaseLatency; 3],
    /// Errors sent after the settle window.
    pub errors_after_settle: u64,
    /// The time line.
    pub timeline: Vec<Bucket>,
    /// First examples of broken invariants.
    pub examples: Vec<(u32, String)>,
    /// The first message of each error kind.
    pub error_texts: BTreeMap<String, String>,
    /// Requests the load did not send because too many were in flight.
    pub skipped: u64,
    /// Its live dashboard, `http://ADDR/`.
    pub dashboard: String,
    /// The gateway's own counters over the drill, from its `/metrics` (after minus before);
    /// `Err` says why they could not be read.
    pub metrics: Option<Result<GatewayMetrics, String>>,
}

impl GatewayReport {
    /// Total errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Write-unavailability window in ms: `None` if no write failed, `Some(None)` if writes
    /// never came back.
    pub fn write_window_ms(&self) -> Option<Option<u32>> {
        let fail = self.write_fail_ms?;
        Some(self.write_back_ms.map(|back| back.saturating_sub(fail)))
    }
}

/// One invariant and whether it held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invariant {
    /// Short name.
    pub name: &'static str,
    /// Whether it held.
    pub ok: bool,
    /// Numbers behind the verdict.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// What the drill did.
    pub info: DrillInfo,
    /// Per gateway.
    pub gateways: Vec<GatewayReport>,
    /// All reads served per DC per bucket (every gateway), in `info.dcs` order.
    pub dc_reads: Vec<Vec<u64>>,
    /// Writes refused by nodes that had been replicas for a while.
    pub writes_on_replicas: u64,
    /// The invariants.
    pub invariants: Vec<Invariant>,
}

fn phase_of(info: &DrillInfo, at_ms: u32) -> usize {
    if at_ms < info.fault_ms {
        0
    } else if at_ms < info.heal_ms {
        1
    } else {
        2
    }
}

/// The `q` quantile (0..=1) of sorted values, in ms.
fn quantile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let at = ((sorted_us.len() - 1) as f64 * q).round() as usize;
    f64::from(sorted_us[at.min(sorted_us.len() - 1)]) / 1000.0
}

impl Report {
    /// Builds the report from what the load and the sampler recorded.
    pub fn build(info: DrillInfo, loads: &[GatewayLoad], nodes: &[NodeSeries]) -> Report {
        let buckets = (info.end_ms / BUCKET_MS + 1) as usize;
        let dc_index = |dc: &str| info.dcs.iter().position(|d| d == dc);
        // reads[command][dc][bucket], from the nodes' counters.
        let mut reads = vec![vec![vec![0u64; buckets]; info.dcs.len()]; READ_COMMANDS.len()];
        let mut writes_on_replicas = 0;
        for series in nodes {
            let Some(dc) = dc_index(&series.dc) else {
                continue;
            };
            let mut replica_since: Option<u32> = None;
            for pair in series.samples.windows(2) {
                let (prev, cur) = (&pair[0], &pair[1]);
                if prev.master {
                    replica_since = None;
                } else if replica_since.is_none() {
                    replica_since = Some(prev.at_ms);
                }
                let bucket = ((cur.at_ms / BUCKET_MS) as usize).min(buckets - 1);
                for (cmd, per_dc) in reads.iter_mut().enumerate() {
                    per_dc[dc][bucket] += delta(prev.reads[cmd], cur.reads[cmd]);
                }
                let settled =
                    replica_since.is_some_and(|since| prev.at_ms >= since + REPLICA_STABLE_MS);
                if settled && !cur.master {
                    writes_on_replicas += delta(prev.set_rejected, cur.set_rejected);
                }
            }
        }
        let dc_reads = (0..info.dcs.len())
            .map(|dc| {
                (0..buckets)
                    .map(|b| reads.iter().map(|per_dc| per_dc[dc][b]).sum())
                    .collect()
            })
            .collect();
        let gateways = loads
            .iter()
            .enumerate()
            .map(|(i, load)| {
                gateway_report(&info, i, load, &reads[i % READ_COMMANDS.len()], buckets)
            })
            .collect();
        let mut report = Report {
            info,
            gateways,
            dc_reads,
            writes_on_replicas,
            invariants: Vec::new(),
        };
        report.invariants = report.check();
        report
    }

    fn check(&self) -> Vec<Invariant> {
        let sum = |f: &dyn Fn(&GatewayReport) -> u64| self.gateways.iter().map(f).sum::<u64>();
        let readonly = sum(&|g| g.errors.get("READONLY").copied().unwrap_or(0));
        let wrong = sum(&|g| g.wrong_values);
        let crossed = sum(&|g| g.crossed_replies);
        let late = sum(&|g| g.errors_after_settle);
        let settle_s = f64::from(self.info.settle_ms) / 1000.0;
        vec![
            Invariant {
                name: "no write reached a replica",
                ok: self.writes_on_replicas == 0 && readonly == 0,
                detail: format!(
                    "{} writes refused by settled replicas (nodes' rejected_calls), {readonly} READONLY errors",
                    self.writes_on_replicas
                ),
            },
            Invariant {
                name: "reads returned written values",
                ok: wrong == 0,
                detail: format!("{wrong} reads returned a value never written to their key"),
            },
            Invariant {
                name: "replies matched requests",
                ok: crossed == 0,
                detail: format!("{crossed} replies belonged to another request"),
            },
            Invariant {
                name: "no errors after heal",
                ok: late == 0,
                detail: format!("{late} errors after {settle_s:.1}s (heal + settle window)"),
            },
        ]
    }

    /// Whether every invariant held.
    pub fn ok(&self) -> bool {
        self.invariants.iter().all(|i| i.ok)
    }
}

fn gateway_report(
    info: &DrillInfo,
    index: usize,
    load: &GatewayLoad,
    reads: &[Vec<u64>],
    buckets: usize,
) -> GatewayReport {
    let (dc, addr) = info.gateways.get(index).cloned().unwrap_or_default();
    let mut g = GatewayReport {
        dc,
        addr,
        read_command: READ_COMMANDS[index % READ_COMMANDS.len()].to_string(),
        examples: load.examples.clone(),
        error_texts: load.error_texts.clone(),
        skipped: load.skipped,
        ..GatewayReport::default()
    };
    let affected = |slot: u16| {
        info.affected_slots
            .iter()
            .any(|(lo, hi)| (*lo..=*hi).contains(&slot))
    };
    let mut phase_lat: [Vec<u32>; 3] = Default::default();
    let mut bucket_lat: Vec<Vec<u32>> = vec![Vec::new(); buckets];
    g.timeline = vec![
        Bucket {
            reads_by_dc: vec![0; info.dcs.len()],
            ..Bucket::default()
        };
        buckets
    ];
    for s in &load.samples {
        g.requests += 1;
        match s.op {
            Op::Read => g.reads += 1,
            Op::Write => g.writes += 1,
        }
        let b = ((s.at_ms / BUCKET_MS) as usize).min(buckets - 1);
        g.timeline[b].requests += 1;
        phase_lat[phase_of(info, s.at_ms)].push(s.latency_us);
        bucket_lat[b].push(s.latency_us);
        match &s.outcome {
            Outcome::Ok => {
                if s.op == Op::Write
                    && affected(s.slot)
                    && g.write_fail_ms.is_some()
                    && g.write_back_ms.is_none()
                {
                    g.write_back_ms = Some(s.at_ms);
                }
            }
            Outcome::Stale => g.stale_reads += 1,
            Outcome::Crossed => g.crossed_replies += 1,
            Outcome::Wrong => g.wrong_values += 1,
            Outcome::Error(kind) => {
                *g.errors.entry(kind.clone()).or_default() += 1;
                g.timeline[b].errors += 1;
                if s.at_ms >= info.settle_ms {
                    g.errors_after_settle += 1;
                }
                let after_fault = s.at_ms >= info.fault_ms;
                if s.op == Op::Write && affected(s.slot) && after_fault && g.write_fail_ms.is_none()
                {
                    g.write_fail_ms = Some(s.at_ms);
                }
            }
        }
    }
    for (phase, lat) in phase_lat.iter_mut().enumerate() {
        lat.sort_unstable();
        g.latency[phase] = PhaseLatency {
            count: lat.len() as u64,
            p50_ms: quantile_ms(lat, 0.5),
            p99_ms: quantile_ms(lat, 0.99),
        };
    }
    for (b, lat) in bucket_lat.iter_mut().enumerate() {
        lat.sort_unstable();
        g.timeline[b].p50_ms = quantile_ms(lat, 0.5);
        g.timeline[b].p99_ms = quantile_ms(lat, 0.99);
        for (dc, per_bucket) in reads.iter().enumerate() {
            g.timeline[b].reads_by_dc[dc] = per_bucket[b];
        }
    }
    for (phase, share) in g.read_share.iter_mut().enumerate() {
        let mut totals = vec![0u64; info.dcs.len()];
        for (b, bucket) in g.timeline.iter().enumerate() {
            if phase_of(info, b as u32 * BUCKET_MS) == phase {
                for (dc, n) in bucket.reads_by_dc.iter().enumerate() {
                    totals[dc] += n;
                }
            }
        }
        let all: u64 = totals.iter().sum();
        for (dc, n) in totals.iter().enumerate() {
            let value = if all == 0 {
                0.0
            } else {
                *n as f64 / all as f64
            };
            share.insert(info.dcs[dc].clone(), value);
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::load::Sample;
    use crate::lab::sampler::NodeSample;

    fn info() -> DrillInfo {
        DrillInfo {
            scenario: "kill-master".into(),
            topology: "t".into(),
            target: "x".into(),
            fault_ms: 1000,
            heal_ms: 2000,
            settle_ms: 2500,
            end_ms: 3000,
            rate: 10,
            affected_slots: vec![(0, 99)],
            gateways: vec![("east".into(), "127.0.1.100:7617".into())],
            dcs: vec!["east".into(), "west".into()],
            events: vec![(1000, "kill".into())],
        }
    }

    fn sample(at_ms: u32, op: Op, slot: u16, outcome: Outcome) -> Sample {
        Sample {
            at_ms,
            latency_us: 1000 + at_ms,
            op,
            slot,
            outcome,
        }
    }

    #[test]
    fn phases_windows_and_invariants() {
        let err = || Outcome::Error("TRYAGAIN".into());
        let load = GatewayLoad {
            samples: vec![
                sample(100, Op::Write, 5, Outcome::Ok),
                sample(900, Op::Write, 5, err()),
                sample(1100, Op::Write, 500, err()),
                sample(1200, Op::Write, 5, err()),
                sample(1300, Op::Write, 500, Outcome::Ok),
                sample(1700, Op::Write, 6, Outcome::Ok),
                sample(2100, Op::Read, 6, Outcome::Stale),
                sample(2600, Op::Read, 6, err()),
            ],
            examples: vec![],
            error_texts: BTreeMap::from([("TRYAGAIN".to_string(), "TRYAGAIN x".to_string())]),
            skipped: 0,
        };
        let node = |name: &str, dc: &str, samples: Vec<NodeSample>| NodeSeries {
            name: name.into(),
            dc: dc.into(),
            samples,
        };
        let s = |at_ms, master, get, rejected| NodeSample {
            at_ms,
            master,
            reads: [get, 0, 0, 0],
            set_rejected: rejected,
        };
        let nodes = vec![
            node(
                "east-1",
                "east",
                vec![s(0, true, 0, 0), s(150, true, 4, 9), s(2150, true, 6, 9)],
            ),
            node(
                "west-1",
                "west",
                vec![
                    s(0, false, 0, 0),
                    s(1500, false, 2, 0),
                    s(3000, false, 2, 0),
                ],
            ),
        ];
        let r = Report::build(info(), &[load], &nodes);
        let g = &r.gateways[0];
        assert_eq!(
            (g.requests, g.reads, g.writes, g.error_count()),
            (8, 2, 6, 4)
        );
        assert_eq!((g.write_fail_ms, g.write_back_ms), (Some(1200), Some(1700)));
        assert_eq!(g.write_window_ms(), Some(Some(500)));
        assert_eq!(g.errors_after_settle, 1);
        assert_eq!(g.read_share[0]["east"], 1.0);
        assert_eq!(g.read_share[1]["west"], 1.0);
        assert_eq!(g.read_share[2]["east"], 1.0);
        assert_eq!(g.latency[0].count, 2);
        assert_eq!(r.dc_reads[0][1], 4);
        assert_eq!(r.writes_on_replicas, 0);
        let broken: Vec<&str> = r
            .invariants
            .iter()
            .filter(|i| !i.ok)
            .map(|i| i.name)
            .collect();
        assert_eq!(broken, ["no errors after heal"]);
        let text = r.to_table();
        assert!(
            text.contains("INVARIANT BROKEN") && text.contains("east TRYAGAIN: TRYAGAIN x"),
            "{text}"
        );
        let json: serde_yaml_ng::Value = serde_yaml_ng::from_str(&r.to_json().to_pretty()).unwrap();
        assert_eq!(
            json["gateways"][0]["write_unavailable_ms"].as_u64(),
            Some(500)
        );
        assert_eq!(
            json["gateways"][0]["timeline"]["requests"][1].as_u64(),
            Some(1)
        );
    }

    #[test]
    fn settled_replicas_refusing_writes_break_the_invariant() {
        let s = |at_ms, master, rejected| NodeSample {
            at_ms,
            master,
            reads: [0; 4],
            set_rejected: rejected,
        };
        let series = NodeSeries {
            name: "west-1".into(),
            dc: "west".into(),
            // Demoted at 0: refusals in its first 3 s do not count, later ones do.
            samples: vec![
                s(0, false, 0),
                s(1000, false, 5),
                s(3000, false, 5),
                s(3100, false, 7),
            ],
        };
        let r = Report::build(info(), &[], &[series]);
        assert_eq!(r.writes_on_replicas, 2);
        assert!(!r.invariants[0].ok);
    }
}
