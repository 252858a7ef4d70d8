//! Statistical checks of the read policy with fixed seeds: locality, spread, load and weights.

use super::super::read::weighted_index;
use super::*;

#[test]
fn weighted_index_boundaries() {
    let table: [(&[u64], u64, Option<usize>); 10] = [
        (&[2, 1], 0, Some(0)),
        (&[2, 1], 1, Some(0)),
        (&[2, 1], 2, Some(1)),
        (&[2, 1], 3, None),
        (&[0, 1], 0, Some(1)),
        (&[1, 0, 1], 1, Some(2)),
        (&[1], 0, Some(0)),
        (&[], 0, None),
        (&[5, 5], 5, Some(1)),
        (&[u64::MAX, 1], u64::MAX - 1, Some(0)),
    ];
    for (weights, r, want) in table {
        assert_eq!(
            weighted_index(weights.iter().copied(), r),
            want,
            "{weights:?} r={r}"
        );
    }
}

/// Counts picks per node over `n` decisions.
fn tally(p: &PolicyParams, cands: &[Candidate], seed: u64, n: usize) -> BTreeMap<NodeId, usize> {
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut counts = BTreeMap::new();
    for _ in 0..n {
        if let Some(id) = choose_read(p, cands, t0, &mut rng).node() {
            *counts.entry(id).or_insert(0) += 1;
        }
    }
    counts
}

#[test]
fn reads_stay_in_the_local_dc() {
    let cands = vec![
        master(0, "west"),
        replica(1, "east").busy(3),
        replica(2, "east"),
        replica(3, "west"),
        replica(4, "eu"),
        replica(5, "eu").rtt(86.0, true),
        replica(6, "west").rtt(0.2, false),
    ];
    for source in [LatencySource::Map, LatencySource::Hybrid] {
        let mut p = params();
        p.latency_source = source;
        let counts = tally(&p, &cands, 11, 10_000);
        let local = counts.get(&1).unwrap_or(&0) + counts.get(&2).unwrap_or(&0);
        assert!(local >= 9_950, "{source:?}: {counts:?}");
    }
}

#[test]
fn p2c_spreads_equal_candidates() {
    let cands: Vec<_> = (0..4).map(|i| replica(i, "east")).collect();
    for seed in [1, 2, 3] {
        let counts = tally(&params(), &cands, seed, 10_000);
        for i in 0..4 {
            let c = counts.get(&i).copied().unwrap_or(0);
            assert!((2_250..=2_750).contains(&c), "seed {seed}: {counts:?}");
        }
    }
}

#[test]
fn p2c_prefers_less_loaded_and_faster() {
    let cands = vec![
        replica(0, "east").busy(10),
        replica(1, "east"),
        replica(2, "east"),
    ];
    let counts = tally(&params(), &cands, 5, 3_000);
    assert_eq!(counts.get(&0), None, "{counts:?}");
    let cands = vec![
        replica(0, "east").rtt(3.0, true),
        replica(1, "east").rtt(1.0, true),
    ];
    let counts = tally(&params(), &cands, 5, 1_000);
    assert_eq!(counts.get(&1), Some(&1_000));
    // Unknown rtt counts as 1 ms: equal to a measured 1 ms, so both get picks.
    let cands = vec![replica(0, "east"), replica(1, "east").rtt(1.0, true)];
    let counts = tally(&params(), &cands, 5, 1_000);
    assert!(counts.get(&0).is_some_and(|&c| c > 400), "{counts:?}");
}

#[test]
fn equal_dcs_do_not_flip_flop() {
    let mut p = params();
    p.latency_row.insert("west".into(), 40.0);
    p.latency_row.insert("eu".into(), 40.5);
    let cands = vec![
        replica(1, "west"),
        replica(2, "eu"),
        replica(3, "west"),
        replica(4, "eu"),
    ];
    let counts = tally(&p, &cands, 9, 10_000);
    let west = counts.get(&1).unwrap_or(&0) + counts.get(&3).unwrap_or(&0);
    assert!((4_500..=5_500).contains(&west), "{counts:?}");
}

#[test]
fn weights_two_to_one() {
    let mut p = params();
    p.latency_row.insert("west".into(), 1.0);
    p.weights = BTreeMap::from([("east".into(), 2), ("west".into(), 1)]);
    // Three east replicas against one west: the split is by DC, not by node count.
    let cands = vec![
        replica(1, "east"),
        replica(2, "east"),
        replica(3, "east"),
        replica(4, "west"),
    ];
    for seed in [21, 22] {
        let counts = tally(&p, &cands, seed, 9_000);
        let west = counts.get(&4).copied().unwrap_or(0);
        let east = 9_000 - west;
        let ratio = east as f64 / west as f64;
        assert!((1.8..=2.2).contains(&ratio), "seed {seed}: {counts:?}");
        for i in 1..=3 {
            assert!(counts.get(&i).is_some_and(|&c| c > 1_600), "{counts:?}");
        }
    }
}

#[test]
fn large_shards_spill_to_the_heap_and_behave_the_same() {
    // 1 remote master + 24 replicas: past the inline capacity of the decision's scratch space.
    let mut cands = vec![master(0, "west")];
    cands.extend((1..=12).map(|i| replica(i, "west")));
    cands.extend((13..=24).map(|i| replica(i, "east")));
    cands[20] = cands[20].clone().open_until(None);
    let counts = tally(&params(), &cands, 3, 12_000);
    assert!(
        counts.keys().all(|&id| (13..=24).contains(&id) && id != 20),
        "{counts:?}"
    );
    assert_eq!(counts.len(), 11, "{counts:?}");
}
