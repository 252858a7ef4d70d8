//! The read decision: filter, group by distance into tiers, keep the best role priority, pick
//! by power of two choices (or DC weights), and fall back step by step when the nearest tier
//! has nothing usable.
//!
//! It runs per request, so it allocates nothing for shards of up to [`INLINE`] nodes: the
//! facts of each candidate are computed once into a stack array and every step is a pass
//! over it.

use std::time::Instant;

use rand::{Rng, RngExt};

use super::{Candidate, Choice, PolicyParams, distance_ms};
use crate::health::breaker::BreakerState;

/// Candidates handled without a heap allocation.
const INLINE: usize = 16;

/// Why a candidate may or may not serve a normal read, in the order fallback tries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// Breaker Closed, not loading, link up, lag within the limit.
    Usable,
    /// Breaker HalfOpen (or Open past its retry time), otherwise fine.
    HalfOpen,
    /// Serves stale data: master link down or lag over the limit.
    Stale,
    /// Loading its dataset: answers `-LOADING`.
    Loading,
    /// Breaker Open: no traffic until `retry_at`.
    Open,
    /// Role priority 0: never read from.
    Excluded,
}

/// What the policy needs of one candidate, computed once per decision.
#[derive(Debug, Clone, Copy)]
struct Facts {
    dist: Option<f64>,
    prio: u8,
    health: Health,
}

impl Facts {
    const EXCLUDED: Facts = Facts {
        dist: None,
        prio: 0,
        health: Health::Excluded,
    };
}

/// Chooses the node a read of one slot goes to among `candidates` (the slot's master and
/// replicas).
///
/// Candidates with role priority 0 never serve. The nearest tier is every candidate within
/// `tolerance_ms` of the nearest known distance (under `max_latency_ms` when set); its usable
/// nodes of the highest priority are picked from by power of two choices on
/// `(outstanding + 1) × rtt`, or by DC `weights`. When that tier has no usable node the
/// answer is a [`Choice::Fallback`], tried in order: the next tiers' usable nodes, usable
/// nodes of unknown distance, usable nodes beyond `max_latency_ms`, HalfOpen nodes, stale
/// replicas, loading nodes, and last the Open node whose retry time is nearest. So the answer
/// is [`Choice::None`] only when no candidate has a role priority above 0.
///
/// When no candidate has a known distance (no DC information at all), they all form the
/// nearest tier.
pub fn choose_read(
    params: &PolicyParams,
    candidates: &[Candidate],
    now: Instant,
    rng: &mut impl Rng,
) -> Choice {
    let mut inline = [Facts::EXCLUDED; INLINE];
    let mut spill = Vec::new();
    let facts: &mut [Facts] = if candidates.len() <= INLINE {
        &mut inline[..candidates.len()]
    } else {
        spill.resize(candidates.len(), Facts::EXCLUDED);
        &mut spill
    };
    for (fact, cand) in facts.iter_mut().zip(candidates) {
        *fact = facts_of(params, cand, now);
    }
    let view = View {
        params,
        cands: candidates,
        facts,
    };
    decide(&view, rng)
}

fn facts_of(params: &PolicyParams, cand: &Candidate, now: Instant) -> Facts {
    let prio = params.priority(cand.kind);
    if prio == 0 {
        return Facts::EXCLUDED;
    }
    let lagging = params.max_replica_lag > 0 && cand.lag_bytes > params.max_replica_lag;
    let health = match cand.breaker_at(now) {
        BreakerState::Open => Health::Open,
        _ if cand.loading => Health::Loading,
        _ if !cand.link_up || lagging => Health::Stale,
        BreakerState::HalfOpen => Health::HalfOpen,
        BreakerState::Closed => Health::Usable,
    };
    Facts {
        dist: distance_ms(params, cand),
        prio,
        health,
    }
}

/// The candidates and their facts, side by side.
struct View<'a> {
    params: &'a PolicyParams,
    cands: &'a [Candidate],
    facts: &'a [Facts],
}

fn decide(v: &View<'_>, rng: &mut impl Rng) -> Choice {
    let within = |d: f64| v.params.max_latency_ms <= 0.0 || d <= v.params.max_latency_ms;
    let eligible = |i: usize| v.facts[i].health != Health::Excluded;
    let known_within = |i: usize| eligible(i) && v.facts[i].dist.is_some_and(within);
    let usable = |i: usize| v.facts[i].health == Health::Usable;

    // The nearest tier is placed by every eligible node, usable or not: when it has nothing
    // usable, the read leaves it and says so with a Fallback.
    let primary = match nearest(v, known_within) {
        Some(near) => pick(
            v,
            |i| usable(i) && known_within(i) && in_tier(v, i, near),
            rng,
        ),
        None if !(0..v.facts.len()).any(|i| eligible(i) && v.facts[i].dist.is_some()) => {
            pick(v, usable, rng)
        }
        None => None,
    };
    if let Some(i) = primary {
        return Choice::Node(v.cands[i].node);
    }

    let unknown = |i: usize| v.facts[i].dist.is_none();
    let with = |h: Health| move |i: usize| v.facts[i].health == h;
    let fallback = pick_nearest(v, |i| usable(i) && known_within(i), rng)
        .or_else(|| pick(v, |i| usable(i) && unknown(i), rng))
        // Usable nodes left now are all beyond max_latency_ms.
        .or_else(|| pick_nearest(v, usable, rng))
        .or_else(|| pick_nearest(v, with(Health::HalfOpen), rng))
        .or_else(|| pick_nearest(v, with(Health::Stale), rng))
        .or_else(|| pick_nearest(v, with(Health::Loading), rng))
        .or_else(|| soonest_open(v));
    match fallback {
        Some(i) => Choice::Fallback(v.cands[i].node),
        None => Choice::None,
    }
}

/// The smallest known distance among the candidates `pred` accepts.
fn nearest(v: &View<'_>, pred: impl Fn(usize) -> bool) -> Option<f64> {
    (0..v.facts.len())
        .filter(|&i| pred(i))
        .filter_map(|i| v.facts[i].dist)
        .min_by(f64::total_cmp)
}

/// Whether candidate `i` is within the tolerance band of the tier starting at `near`.
fn in_tier(v: &View<'_>, i: usize, near: f64) -> bool {
    v.facts[i]
        .dist
        .is_some_and(|d| d <= near + v.params.tolerance_ms)
}

/// Picks from the nearest tier of the candidates `pred` accepts; from all of them when none
/// has a known distance.
fn pick_nearest(v: &View<'_>, pred: impl Fn(usize) -> bool, rng: &mut impl Rng) -> Option<usize> {
    match nearest(v, &pred) {
        Some(near) => pick(v, |i| pred(i) && in_tier(v, i, near), rng),
        None => pick(v, pred, rng),
    }
}

/// Among the candidates `pred` accepts: keep the highest role priority, then choose by DC
/// weights (when set and the tier spans weighted DCs) and power of two choices.
fn pick(v: &View<'_>, pred: impl Fn(usize) -> bool, rng: &mut impl Rng) -> Option<usize> {
    let best = (0..v.facts.len())
        .filter(|&i| pred(i))
        .map(|i| v.facts[i].prio)
        .max()?;
    let member = |i: usize| pred(i) && v.facts[i].prio == best;
    if !v.params.weights.is_empty()
        && let Some(dc_of) = weighted_dc(v, member, rng)
    {
        let dc = v.cands[dc_of].dc.as_deref();
        return p2c(v, |i| member(i) && v.cands[i].dc.as_deref() == dc, rng);
    }
    p2c(v, member, rng)
}

/// Chooses a DC among the members' DCs by weight; returns a member of the chosen DC. `None`
/// when the members span fewer than two DCs or no member's DC has a weight.
fn weighted_dc(v: &View<'_>, member: impl Fn(usize) -> bool, rng: &mut impl Rng) -> Option<usize> {
    // The first member of each DC stands for its DC.
    let first_of_dc =
        |i: usize| member(i) && !(0..i).any(|j| member(j) && v.cands[j].dc == v.cands[i].dc);
    let weight = |i: usize| {
        v.cands[i]
            .dc
            .as_deref()
            .and_then(|dc| v.params.weights.get(dc))
            .map_or(0, |&w| u64::from(w))
    };
    let groups = || (0..v.facts.len()).filter(|&i| first_of_dc(i));
    if groups().count() < 2 {
        return None;
    }
    let total: u64 = groups().map(weight).sum();
    if total == 0 {
        return None;
    }
    let r = rng.random_range(0..total);
    let k = weighted_index(groups().map(weight), r)?;
    groups().nth(k)
}

/// The index of the entry whose cumulative-weight interval holds `r`: entry k owns
/// `[w0 + … + w(k-1), w0 + … + wk)`, so a zero weight owns nothing and `r` equal to a
/// cumulative sum belongs to the next entry (the off-by-one predixy's `lower_bound` had).
pub(super) fn weighted_index(weights: impl Iterator<Item = u64>, r: u64) -> Option<usize> {
    let mut cumulative = 0u64;
    for (k, w) in weights.enumerate() {
        cumulative = cumulative.saturating_add(w);
        if r < cumulative {
            return Some(k);
        }
    }
    None
}

/// Power of two choices among the members: two distinct members at random, the one with the
/// lower `(outstanding + 1) × rtt` wins (rtt 1.0 when unmeasured).
fn p2c(v: &View<'_>, member: impl Fn(usize) -> bool, rng: &mut impl Rng) -> Option<usize> {
    let nth = |k: usize| (0..v.facts.len()).filter(|&i| member(i)).nth(k);
    let n = (0..v.facts.len()).filter(|&i| member(i)).count();
    match n {
        0 => None,
        1 => nth(0),
        _ => {
            let a = rng.random_range(0..n);
            let mut b = rng.random_range(0..n - 1);
            if b >= a {
                b += 1;
            }
            let (a, b) = (nth(a)?, nth(b)?);
            Some(if cost(&v.cands[b]) < cost(&v.cands[a]) {
                b
            } else {
                a
            })
        }
    }
}

fn cost(c: &Candidate) -> f64 {
    let rtt = c.rtt_ms.filter(|ms| ms.is_finite() && *ms >= 0.0);
    (f64::from(c.outstanding) + 1.0) * rtt.unwrap_or(1.0)
}

/// The Open candidate whose breaker lets a probe through first; unknown retry times last,
/// ties to the nearer, then higher-priority node.
fn soonest_open(v: &View<'_>) -> Option<usize> {
    (0..v.facts.len())
        .filter(|&i| v.facts[i].health == Health::Open)
        .min_by(|&a, &b| {
            let key = |i: usize| {
                let c = &v.cands[i];
                (c.retry_at.is_none(), c.retry_at, v.facts[i].dist.is_none())
            };
            key(a)
                .cmp(&key(b))
                .then_with(|| {
                    let d = |i: usize| v.facts[i].dist.unwrap_or(f64::INFINITY);
                    d(a).total_cmp(&d(b))
                })
                .then_with(|| v.facts[b].prio.cmp(&v.facts[a].prio))
        })
}
