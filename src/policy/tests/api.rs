//! The policy's smaller entry points: distances, parameters from a config, writes, candidates
//! from a topology, and [`choose`] without a read policy.

use super::*;
use crate::topology::{NodeSpec, ShardSpec, Topology};

#[test]
fn distance_per_source() {
    let mut p = params();
    let east = replica(1, "east");
    let measured = replica(2, "west").rtt(7.0, true);
    let stale = replica(3, "west").rtt(7.0, false);
    let nowhere = unknown(4).rtt(3.0, true);
    let table = [
        (LatencySource::Map, &east, Some(0.3)),
        (LatencySource::Map, &measured, Some(40.0)),
        (LatencySource::Map, &nowhere, None),
        (LatencySource::Measured, &east, None),
        (LatencySource::Measured, &stale, Some(7.0)),
        (LatencySource::Measured, &nowhere, Some(3.0)),
        (LatencySource::Hybrid, &measured, Some(7.0)),
        (LatencySource::Hybrid, &stale, Some(40.0)),
        (LatencySource::Hybrid, &east, Some(0.3)),
        (LatencySource::Hybrid, &nowhere, Some(3.0)),
    ];
    for (source, c, want) in table {
        p.latency_source = source;
        assert_eq!(distance_ms(&p, c), want, "{source:?} node {}", c.node);
    }
    p.latency_source = LatencySource::Measured;
    assert_eq!(
        distance_ms(&p, &replica(5, "east").rtt(f64::NAN, true)),
        None
    );
}

#[test]
fn params_from_config() {
    let yaml = "cluster: {seeds: [a:1]}\nlocal_dc: west\ndatacenters: {east: {}, west: {}}\n\
                latency_ms:\n  west: {east: 40}\n\
                read_policy: {master_priority: 0, tolerance_ms: 3, weights: {east: 2}}\n\
                health: {max_replica_lag: 1kb}\n";
    let cfg = Config::parse(yaml, "t").unwrap();
    let p = PolicyParams::from_config(&cfg);
    assert_eq!(p.local_dc.as_deref(), Some("west"));
    assert_eq!(p.latency_row["east"], 40.0);
    assert_eq!(p.latency_row["west"], 0.0, "the local DC defaults to 0");
    assert_eq!(p.priority(ReplicaKind::Master), 0);
    assert_eq!(p.priority(ReplicaKind::StaticReplica), 50);
    assert_eq!((p.tolerance_ms, p.max_replica_lag), (3.0, 1024));
    assert_eq!(p.weights["east"], 2);
    let p = PolicyParams::from_config(&Config::default());
    assert!(p.local_dc.is_none() && p.latency_row.is_empty());
}

#[test]
fn writes_go_to_the_master_or_fail_fast() {
    let t0 = Instant::now();
    let m = master(3, "west");
    let table = [
        (m.clone(), Ok(3)),
        (m.clone().half_open(), Ok(3)),
        (m.clone().open_until(Some(t0)), Ok(3)),
        (
            m.clone().open_until(Some(t0 + ms(750))),
            Err(WriteRefusal { retry_in: ms(750) }),
        ),
        (
            m.clone().open_until(None),
            Err(WriteRefusal {
                retry_in: Duration::ZERO,
            }),
        ),
        // Loading or lagging does not matter to writes: Redis answers for itself.
        (m.clone().loading(), Ok(3)),
    ];
    for (c, want) in table {
        assert_eq!(choose_write(&c, t0), want, "{c:?}");
    }
    let refusal = WriteRefusal {
        retry_in: Duration::from_micros(749_001),
    };
    assert_eq!(
        refusal.client_message("10.2.0.5:7001", Slot::new(1234).unwrap()),
        "TRYAGAIN meridian: master 10.2.0.5:7001 for slot 1234 unavailable (circuit open, retry in 750ms)"
    );
}

#[test]
fn candidates_from_the_topology() {
    let mut topo = Topology::from_shards(vec![ShardSpec {
        master: NodeSpec {
            addr: "10.1.0.1:7001".into(),
            id: String::new(),
        },
        replicas: vec![
            NodeSpec {
                addr: "10.2.0.1:7001".into(),
                id: String::new(),
            },
            NodeSpec {
                addr: "10.3.0.1:7001".into(),
                id: String::new(),
            },
        ],
        slots: vec![(0, 16383)],
    }]);
    topo.annotate(
        |addr| addr.starts_with("10.2.").then(|| Arc::from("west")),
        |addr| addr == "10.2.0.1:7001",
    );
    let kinds: Vec<_> = (0..3u16)
        .map(|id| Candidate::new(id, topo.node(id)))
        .map(|c| (c.kind, c.dc.as_deref().map(str::to_string)))
        .collect();
    assert_eq!(
        kinds,
        [
            (ReplicaKind::Master, None),
            (ReplicaKind::StaticReplica, Some("west".to_string())),
            (ReplicaKind::DynamicReplica, None),
        ]
    );
    let c = Candidate::new(1, topo.node(1));
    assert!(c.link_up && !c.loading && c.breaker == BreakerState::Closed);
}

#[test]
fn without_a_read_policy_both_accesses_follow_the_write_rule() {
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(1);
    let cands = [master(0, "east"), replica(1, "east")];
    for access in [Access::Read, Access::Write] {
        assert_eq!(
            choose(None, access, &cands, t0, &mut rng),
            Ok(Choice::Node(0))
        );
    }
    let open = [
        master(0, "east").open_until(Some(t0 + ms(20))),
        replica(1, "east"),
    ];
    for access in [Access::Read, Access::Write] {
        assert_eq!(
            choose(None, access, &open, t0, &mut rng),
            Err(WriteRefusal { retry_in: ms(20) })
        );
    }
    // With a policy, writes still take the master and nothing else.
    let p = params();
    assert_eq!(
        choose(Some(&p), Access::Write, &cands, t0, &mut rng),
        Ok(Choice::Node(0))
    );
    assert_eq!(
        choose(Some(&p), Access::Write, &open, t0, &mut rng),
        Err(WriteRefusal { retry_in: ms(20) })
    );
    assert_eq!(
        choose(None, Access::Write, &[], t0, &mut rng),
        Ok(Choice::None)
    );
}
