//! Tables of cases for the read decision, with a fake clock (one captured instant plus offsets)
//! and seeded RNGs. Statistical checks live in `stats`, the smaller entry points in `api`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;

mod api;
mod stats;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Local DC `east`; map latencies east 0.3, west 40, eu 85; the config's default priorities.
fn params() -> PolicyParams {
    PolicyParams {
        local_dc: Some(Arc::from("east")),
        latency_row: BTreeMap::from([
            ("east".to_string(), 0.3),
            ("west".to_string(), 40.0),
            ("eu".to_string(), 85.0),
        ]),
        master_priority: 60,
        static_replica_priority: 50,
        dynamic_replica_priority: 50,
        latency_source: LatencySource::Map,
        tolerance_ms: 2.0,
        max_latency_ms: 0.0,
        weights: BTreeMap::new(),
        max_replica_lag: 0,
    }
}

fn cand(node: NodeId, kind: ReplicaKind, dc: Option<&str>) -> Candidate {
    Candidate {
        node,
        kind,
        dc: dc.map(Arc::from),
        breaker: BreakerState::Closed,
        retry_at: None,
        loading: false,
        link_up: true,
        lag_bytes: 0,
        outstanding: 0,
        rtt_ms: None,
        rtt_fresh: false,
    }
}

fn master(node: NodeId, dc: &str) -> Candidate {
    cand(node, ReplicaKind::Master, Some(dc))
}

fn replica(node: NodeId, dc: &str) -> Candidate {
    cand(node, ReplicaKind::DynamicReplica, Some(dc))
}

fn unknown(node: NodeId) -> Candidate {
    cand(node, ReplicaKind::DynamicReplica, None)
}

/// Modifiers, so a table row reads as one expression.
trait Tweak {
    fn open_until(self, at: Option<Instant>) -> Self;
    fn half_open(self) -> Self;
    fn loading(self) -> Self;
    fn link_down(self) -> Self;
    fn lag(self, bytes: u64) -> Self;
    fn rtt(self, ms: f64, fresh: bool) -> Self;
    fn busy(self, outstanding: u32) -> Self;
    fn kind(self, kind: ReplicaKind) -> Self;
}

impl Tweak for Candidate {
    fn open_until(mut self, at: Option<Instant>) -> Self {
        self.breaker = BreakerState::Open;
        self.retry_at = at;
        self
    }
    fn half_open(mut self) -> Self {
        self.breaker = BreakerState::HalfOpen;
        self
    }
    fn loading(mut self) -> Self {
        self.loading = true;
        self
    }
    fn link_down(mut self) -> Self {
        self.link_up = false;
        self
    }
    fn lag(mut self, bytes: u64) -> Self {
        self.lag_bytes = bytes;
        self
    }
    fn rtt(mut self, ms: f64, fresh: bool) -> Self {
        self.rtt_ms = Some(ms);
        self.rtt_fresh = fresh;
        self
    }
    fn busy(mut self, outstanding: u32) -> Self {
        self.outstanding = outstanding;
        self
    }
    fn kind(mut self, kind: ReplicaKind) -> Self {
        self.kind = kind;
        self
    }
}

/// The expected outcome: its kind and the set of nodes it may name.
#[derive(Debug)]
enum Want {
    Node(&'static [NodeId]),
    Fallback(&'static [NodeId]),
    None,
}

struct Case {
    name: &'static str,
    tweak: fn(&mut PolicyParams),
    cands: Vec<Candidate>,
    want: Want,
}

fn keep(_: &mut PolicyParams) {}

/// Runs each case 400 times with a seeded RNG: every outcome must be of the wanted kind and
/// name an allowed node, and every allowed node must come up.
fn run(t0: Instant, cases: Vec<Case>) {
    for case in cases {
        let mut p = params();
        (case.tweak)(&mut p);
        let mut rng = StdRng::seed_from_u64(7);
        let mut seen = BTreeMap::new();
        for _ in 0..400 {
            let got = choose(Some(&p), Access::Read, &case.cands, t0, &mut rng)
                .expect("reads are never refused");
            let (ok, node) = match (&case.want, got) {
                (Want::Node(set), Choice::Node(n)) | (Want::Fallback(set), Choice::Fallback(n)) => {
                    (set.contains(&n), Some(n))
                }
                (Want::None, Choice::None) => (true, None),
                _ => (false, got.node()),
            };
            assert!(ok, "{}: got {got:?}, want {:?}", case.name, case.want);
            if let Some(n) = node {
                *seen.entry(n).or_insert(0) += 1;
            }
        }
        if let Want::Node(set) | Want::Fallback(set) = case.want {
            for n in set {
                assert!(seen.contains_key(n), "{}: node {n} never chosen", case.name);
            }
        }
    }
}

#[test]
fn tiers_and_priorities() {
    use ReplicaKind::*;
    let t0 = Instant::now();
    run(
        t0,
        vec![
            Case {
                name: "local replicas beat a remote master",
                tweak: keep,
                cands: vec![
                    master(0, "west"),
                    replica(1, "east"),
                    replica(2, "east"),
                    replica(3, "west"),
                ],
                want: Want::Node(&[1, 2]),
            },
            Case {
                name: "a local master outranks local replicas",
                tweak: keep,
                cands: vec![master(0, "east"), replica(1, "east"), replica(2, "west")],
                want: Want::Node(&[0]),
            },
            Case {
                name: "master priority 0 drops the master",
                tweak: |p| p.master_priority = 0,
                cands: vec![master(0, "east"), replica(1, "east")],
                want: Want::Node(&[1]),
            },
            Case {
                name: "replica priority 0 leaves the remote master",
                tweak: |p| p.dynamic_replica_priority = 0,
                cands: vec![master(0, "west"), replica(1, "east")],
                want: Want::Node(&[0]),
            },
            Case {
                name: "static and dynamic replicas by their own priorities",
                tweak: |p| p.static_replica_priority = 70,
                cands: vec![
                    master(0, "east"),
                    replica(1, "east"),
                    replica(2, "east").kind(StaticReplica),
                ],
                want: Want::Node(&[2]),
            },
            Case {
                name: "equal priorities share the tier",
                tweak: |p| p.master_priority = 50,
                cands: vec![master(0, "east"), replica(1, "east"), replica(2, "west")],
                want: Want::Node(&[0, 1]),
            },
            Case {
                name: "priority is chosen inside the nearest tier, not across tiers",
                tweak: |p| p.static_replica_priority = 90,
                cands: vec![replica(1, "east"), replica(2, "west").kind(StaticReplica)],
                want: Want::Node(&[1]),
            },
            Case {
                name: "every priority 0 is None",
                tweak: |p| {
                    p.master_priority = 0;
                    p.dynamic_replica_priority = 0;
                },
                cands: vec![master(0, "east"), replica(1, "east").open_until(None)],
                want: Want::None,
            },
            Case {
                name: "no candidates is None",
                tweak: keep,
                cands: vec![],
                want: Want::None,
            },
            Case {
                name: "a shard without local nodes reads from the nearest DC that has some",
                tweak: keep,
                cands: vec![master(0, "eu"), replica(1, "west"), replica(2, "eu")],
                want: Want::Node(&[1]),
            },
        ],
    );
}

#[test]
fn filters_move_reads_to_the_next_tier() {
    let t0 = Instant::now();
    let remote = || vec![master(0, "eu"), replica(2, "west"), replica(3, "west")];
    let with = |local: Candidate| {
        let mut v = remote();
        v.push(local);
        v
    };
    run(
        t0,
        vec![
            Case {
                name: "open local replica",
                tweak: keep,
                cands: with(replica(1, "east").open_until(Some(t0 + ms(500)))),
                want: Want::Fallback(&[2, 3]),
            },
            Case {
                name: "open past its retry time is half-open, still not a normal choice",
                tweak: keep,
                cands: with(replica(1, "east").open_until(Some(t0))),
                want: Want::Fallback(&[2, 3]),
            },
            Case {
                name: "half-open local replica",
                tweak: keep,
                cands: with(replica(1, "east").half_open()),
                want: Want::Fallback(&[2, 3]),
            },
            Case {
                name: "loading local replica",
                tweak: keep,
                cands: with(replica(1, "east").loading()),
                want: Want::Fallback(&[2, 3]),
            },
            Case {
                name: "local replica with its master link down",
                tweak: keep,
                cands: with(replica(1, "east").link_down()),
                want: Want::Fallback(&[2, 3]),
            },
            Case {
                name: "lag over the limit",
                tweak: |p| p.max_replica_lag = 1000,
                cands: with(replica(1, "east").lag(1001)),
                want: Want::Fallback(&[2, 3]),
            },
            Case {
                name: "lag at the limit is fine",
                tweak: |p| p.max_replica_lag = 1000,
                cands: with(replica(1, "east").lag(1000)),
                want: Want::Node(&[1]),
            },
            Case {
                name: "lag limit 0 is off",
                tweak: keep,
                cands: with(replica(1, "east").lag(u64::MAX)),
                want: Want::Node(&[1]),
            },
            Case {
                name: "one healthy local node is enough",
                tweak: keep,
                cands: {
                    let mut v = with(replica(1, "east").loading());
                    v.push(replica(4, "east"));
                    v
                },
                want: Want::Node(&[4]),
            },
            Case {
                name: "next tier after west is eu",
                tweak: keep,
                cands: vec![
                    replica(1, "east").loading(),
                    replica(2, "west").link_down(),
                    master(0, "eu"),
                    replica(5, "eu"),
                ],
                want: Want::Fallback(&[0]),
            },
        ],
    );
}

#[test]
fn tolerance_and_max_latency() {
    let t0 = Instant::now();
    let far = || vec![replica(1, "west"), replica(2, "eu")];
    run(
        t0,
        vec![
            Case {
                name: "40.0 and 40.5 are one tier",
                tweak: |p| {
                    p.latency_row.insert("eu".into(), 40.5);
                },
                cands: far(),
                want: Want::Node(&[1, 2]),
            },
            Case {
                name: "tolerance boundary is inclusive",
                tweak: |p| {
                    p.latency_row.insert("eu".into(), 42.0);
                },
                cands: far(),
                want: Want::Node(&[1, 2]),
            },
            Case {
                name: "just past the tolerance is the next tier",
                tweak: |p| {
                    p.latency_row.insert("eu".into(), 42.01);
                },
                cands: far(),
                want: Want::Node(&[1]),
            },
            Case {
                name: "tolerance 0 keeps only the nearest",
                tweak: |p| {
                    p.tolerance_ms = 0.0;
                    p.latency_row.insert("eu".into(), 40.0001);
                },
                cands: far(),
                want: Want::Node(&[1]),
            },
            Case {
                name: "max latency boundary is inclusive",
                tweak: |p| p.max_latency_ms = 40.0,
                cands: far(),
                want: Want::Node(&[1]),
            },
            Case {
                name: "beyond max latency only as a fallback",
                tweak: |p| p.max_latency_ms = 39.0,
                cands: far(),
                want: Want::Fallback(&[1]),
            },
            Case {
                name: "unknown DC before DCs beyond max latency",
                tweak: |p| p.max_latency_ms = 10.0,
                cands: vec![replica(1, "west"), unknown(3)],
                want: Want::Fallback(&[3]),
            },
        ],
    );
}

#[test]
fn unknown_dcs_and_last_resorts() {
    let t0 = Instant::now();
    run(
        t0,
        vec![
            Case {
                name: "unknown DC is not read while a known one can answer",
                tweak: keep,
                cands: vec![unknown(9), replica(1, "eu")],
                want: Want::Node(&[1]),
            },
            Case {
                name: "a DC missing from the latency row counts as unknown",
                tweak: keep,
                cands: vec![
                    cand(9, ReplicaKind::DynamicReplica, Some("mars")),
                    replica(1, "eu"),
                ],
                want: Want::Node(&[1]),
            },
            Case {
                name: "next tier before unknown DC",
                tweak: keep,
                cands: vec![replica(1, "east").loading(), unknown(9), replica(2, "eu")],
                want: Want::Fallback(&[2]),
            },
            Case {
                name: "unknown DC before half-open",
                tweak: keep,
                cands: vec![replica(1, "east").half_open(), unknown(9)],
                want: Want::Fallback(&[9]),
            },
            Case {
                name: "half-open before stale, loading and open",
                tweak: keep,
                cands: vec![
                    replica(1, "east").open_until(Some(t0 + ms(5))),
                    replica(2, "west").loading(),
                    replica(3, "west").link_down(),
                    replica(4, "eu").half_open(),
                ],
                want: Want::Fallback(&[4]),
            },
            Case {
                name: "stale before loading",
                tweak: keep,
                cands: vec![replica(2, "east").loading(), replica(3, "eu").link_down()],
                want: Want::Fallback(&[3]),
            },
            Case {
                name: "loading before open",
                tweak: keep,
                cands: vec![
                    replica(1, "east").open_until(Some(t0 + ms(1))),
                    replica(2, "eu").loading(),
                ],
                want: Want::Fallback(&[2]),
            },
            Case {
                name: "half-open nearest first",
                tweak: keep,
                cands: vec![replica(1, "eu").half_open(), replica(2, "west").half_open()],
                want: Want::Fallback(&[2]),
            },
            Case {
                name: "all open: the soonest retry, whatever the distance",
                tweak: keep,
                cands: vec![
                    replica(1, "east").open_until(Some(t0 + ms(500))),
                    replica(2, "eu").open_until(Some(t0 + ms(200))),
                    master(0, "west").open_until(None),
                ],
                want: Want::Fallback(&[2]),
            },
            Case {
                name: "open with a past retry time counts as half-open",
                tweak: keep,
                cands: vec![
                    replica(1, "east").open_until(Some(t0 + ms(1))),
                    replica(2, "eu").open_until(Some(t0)),
                ],
                want: Want::Fallback(&[2]),
            },
            Case {
                name: "open without a retry time comes last",
                tweak: keep,
                cands: vec![
                    replica(1, "east").open_until(None),
                    replica(2, "eu").open_until(Some(t0 + ms(9))),
                ],
                want: Want::Fallback(&[2]),
            },
            Case {
                name: "open ties go to the nearer node",
                tweak: keep,
                cands: vec![
                    replica(2, "eu").open_until(Some(t0 + ms(9))),
                    replica(1, "west").open_until(Some(t0 + ms(9))),
                ],
                want: Want::Fallback(&[1]),
            },
        ],
    );
}

#[test]
fn no_dc_information_is_one_tier() {
    let t0 = Instant::now();
    run(
        t0,
        vec![
            Case {
                name: "no local DC: master by priority",
                tweak: |p| {
                    p.local_dc = None;
                    p.latency_row.clear();
                },
                cands: vec![unknown(1), cand(0, ReplicaKind::Master, None), unknown(2)],
                want: Want::Node(&[0]),
            },
            Case {
                name: "no local DC: the master filtered, replicas of the same tier serve",
                tweak: |p| p.latency_row.clear(),
                cands: vec![
                    cand(0, ReplicaKind::Master, None).open_until(Some(t0 + ms(3))),
                    unknown(1),
                    unknown(2),
                ],
                want: Want::Node(&[1, 2]),
            },
        ],
    );
}

#[test]
fn latency_sources() {
    let t0 = Instant::now();
    run(
        t0,
        vec![
            Case {
                name: "measured: the faster node wins across DCs",
                tweak: |p| p.latency_source = LatencySource::Measured,
                cands: vec![
                    replica(1, "east").rtt(50.0, true),
                    replica(2, "west").rtt(1.0, false),
                ],
                want: Want::Node(&[2]),
            },
            Case {
                name: "measured: unmeasured nodes are unknown",
                tweak: |p| p.latency_source = LatencySource::Measured,
                cands: vec![replica(1, "east"), replica(2, "eu").rtt(80.0, true)],
                want: Want::Node(&[2]),
            },
            Case {
                name: "hybrid: fresh samples win over the map",
                tweak: |p| p.latency_source = LatencySource::Hybrid,
                cands: vec![
                    replica(1, "east").rtt(50.0, true),
                    replica(2, "west").rtt(1.0, true),
                ],
                want: Want::Node(&[2]),
            },
            Case {
                name: "hybrid: stale samples give way to the map",
                tweak: |p| p.latency_source = LatencySource::Hybrid,
                cands: vec![
                    replica(1, "east").rtt(50.0, false),
                    replica(2, "west").rtt(1.0, false),
                ],
                want: Want::Node(&[1]),
            },
            Case {
                name: "hybrid: a measured node and a mapped one in one tier",
                tweak: |p| p.latency_source = LatencySource::Hybrid,
                cands: vec![replica(1, "east").rtt(1.0, true), replica(2, "east")],
                want: Want::Node(&[1, 2]),
            },
        ],
    );
}

#[test]
fn weights_choose_the_dc() {
    let t0 = Instant::now();
    let pair = || vec![replica(1, "east"), replica(2, "west")];
    run(
        t0,
        vec![
            Case {
                name: "zero weight gets nothing",
                tweak: |p| {
                    p.latency_row.insert("west".into(), 1.0);
                    p.weights = BTreeMap::from([("east".into(), 0), ("west".into(), 1)]);
                },
                cands: pair(),
                want: Want::Node(&[2]),
            },
            Case {
                name: "a DC left out of the weights gets nothing",
                tweak: |p| {
                    p.latency_row.insert("west".into(), 1.0);
                    p.weights = BTreeMap::from([("east".into(), 3)]);
                },
                cands: pair(),
                want: Want::Node(&[1]),
            },
            Case {
                name: "all weights zero: no weights",
                tweak: |p| {
                    p.latency_row.insert("west".into(), 1.0);
                    p.weights = BTreeMap::from([("eu".into(), 3)]);
                },
                cands: pair(),
                want: Want::Node(&[1, 2]),
            },
            Case {
                name: "weights never pull reads out of the nearest tier",
                tweak: |p| p.weights = BTreeMap::from([("east".into(), 1), ("west".into(), 100)]),
                cands: pair(),
                want: Want::Node(&[1]),
            },
        ],
    );
}
