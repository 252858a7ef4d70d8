//! The `commands` section of `/api/state`: per command, requests and replies so far and the
//! p50/p99 latency estimated from the same per-worker histograms `/metrics` exposes.

use serde::Serialize;

use crate::stats::requests::{CommandTotals, LATENCY_BOUNDS};

/// One command's figures since the gateway started; the dashboard turns successive
/// `requests` into a rate.
#[derive(Debug, Serialize, PartialEq)]
pub struct CommandState {
    /// A name of the command table, or `unknown`.
    pub command: String,
    pub requests: u64,
    /// Replies observed (the histogram's count).
    pub replies: u64,
    /// Estimated median latency in milliseconds; `None` before any reply.
    pub p50_ms: Option<f64>,
    /// Estimated 99th percentile in milliseconds; `None` before any reply.
    pub p99_ms: Option<f64>,
    /// Mean latency in milliseconds; `None` before any reply.
    pub mean_ms: Option<f64>,
    /// Replies per latency bucket (not cumulative; bounds in [`bounds_ms`], then `+Inf`), so
    /// a reader can take quantiles over the window between two reads.
    pub buckets: Vec<u64>,
}

/// The upper bounds of the latency buckets in milliseconds (a `+Inf` bucket follows).
pub fn bounds_ms() -> Vec<f64> {
    // Rounded to the microsecond, so the JSON shows 0.25, not 0.25000000000000006.
    LATENCY_BOUNDS
        .iter()
        .map(|s| (s * 1e6).round() / 1e3)
        .collect()
}

/// The `q` quantile (0..=1) of a histogram given as per-bucket counts (not cumulative, the
/// last bucket `+Inf`), interpolated linearly inside its bucket as Prometheus'
/// `histogram_quantile` does; a quantile in the `+Inf` bucket is the largest finite bound.
/// Seconds; `None` for an empty histogram.
pub fn quantile(buckets: &[u64], q: f64) -> Option<f64> {
    let count: u64 = buckets.iter().sum();
    if count == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let mut below = 0u64;
    for (i, &n) in buckets.iter().enumerate() {
        if n > 0 && (below + n) as f64 >= rank {
            let Some(&upper) = LATENCY_BOUNDS.get(i) else {
                return LATENCY_BOUNDS.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { LATENCY_BOUNDS[i - 1] };
            let into = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
            return Some(lower + (upper - lower) * into);
        }
        below += n;
    }
    LATENCY_BOUNDS.last().copied()
}

/// Every command with at least one request, busiest first; `names` maps ids to names.
pub fn summarize(totals: &[CommandTotals], names: &[std::sync::Arc<str>]) -> Vec<CommandState> {
    let ms = |s: f64| (s * 1e6).round() / 1e3;
    let mut out: Vec<CommandState> = totals
        .iter()
        .enumerate()
        .filter(|(_, t)| t.requests > 0 || t.count() > 0)
        .map(|(id, t)| {
            let replies = t.count();
            CommandState {
                command: names.get(id).map_or("unknown", |n| &**n).to_string(),
                requests: t.requests,
                replies,
                p50_ms: quantile(&t.buckets, 0.5).map(ms),
                p99_ms: quantile(&t.buckets, 0.99).map(ms),
                mean_ms: (replies > 0).then(|| ms(t.sum_ns as f64 / 1e9 / replies as f64)),
                buckets: t.buckets.to_vec(),
            }
        })
        .collect();
    out.sort_by(|a, b| {
        b.requests
            .cmp(&a.requests)
            .then_with(|| a.command.cmp(&b.command))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::requests::BUCKETS;
    use std::sync::Arc;

    fn buckets(pairs: &[(usize, u64)]) -> [u64; BUCKETS] {
        let mut b = [0; BUCKETS];
        for &(i, n) in pairs {
            b[i] = n;
        }
        b
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        assert_eq!(quantile(&[0; BUCKETS], 0.5), None);
        // 100 replies in (0.1ms, 0.25ms]: the median sits half way.
        let b = buckets(&[(1, 100)]);
        let p50 = quantile(&b, 0.5).unwrap();
        assert!((p50 - 0.000175).abs() < 1e-12, "{p50}");
        // 98 fast, 2 in (1ms, 2.5ms]: p99 is in the slow bucket, p50 in the fast one.
        let b = buckets(&[(0, 98), (4, 2)]);
        assert!(quantile(&b, 0.5).unwrap() <= 0.0001);
        let p99 = quantile(&b, 0.99).unwrap();
        assert!(p99 > 0.001 && p99 <= 0.0025, "{p99}");
        // Everything past the last bound: the last bound, not infinity.
        let b = buckets(&[(BUCKETS - 1, 3)]);
        assert_eq!(quantile(&b, 0.99), Some(10.0));
        assert_eq!(quantile(&b, 0.0), Some(10.0));
    }

    #[test]
    fn summary_names_commands_and_skips_idle_ones() {
        let names: Vec<Arc<str>> = ["unknown", "get", "set", "del"]
            .into_iter()
            .map(Arc::from)
            .collect();
        let mut totals = vec![CommandTotals::default(); 5];
        totals[1].requests = 10;
        totals[1].buckets = buckets(&[(2, 10)]);
        totals[1].sum_ns = 10 * 400_000;
        totals[2].requests = 20;
        totals[2].buckets = buckets(&[(0, 19)]);
        // An id past the names (cannot happen, but must not panic) and an idle one.
        totals[4].requests = 1;
        let s = summarize(&totals, &names);
        let got: Vec<(&str, u64, u64)> = s
            .iter()
            .map(|c| (c.command.as_str(), c.requests, c.replies))
            .collect();
        assert_eq!(got, [("set", 20, 19), ("get", 10, 10), ("unknown", 1, 0)]);
        assert_eq!(s[1].mean_ms, Some(0.4));
        assert_eq!(s[1].p50_ms, Some(0.375));
        assert_eq!(s[2].p99_ms, None);
        assert_eq!(s[1].buckets[2], 10);
        assert_eq!(s[1].buckets.len(), bounds_ms().len() + 1);
        assert_eq!(bounds_ms()[..3], [0.1, 0.25, 0.5]);
        assert_eq!(bounds_ms().last(), Some(&10_000.0));
    }
}
