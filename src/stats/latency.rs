//! predixy-style latency monitors: per-worker histograms (count and total µs per bucket, in
//! plain cells only their worker writes), summed into [`Snapshot`]s when INFO reads them, and
//! the text predixy prints for one (`<=`, `>` and `T` lines). Which monitors are in force
//! and each worker's set of histograms: [`super::monitors`].

use std::fmt::Write as _;
use std::sync::Arc;

use super::Counter;

/// One monitor's histogram in one worker (overall, or for one node).
#[derive(Debug)]
pub struct Histogram {
    /// Bucket upper bounds in µs, increasing.
    bounds: Arc<[u64]>,
    /// Per bound, then the `>` bucket past the last: (count, total µs).
    cells: Box<[(Counter, Counter)]>,
}

impl Histogram {
    /// An empty histogram with `bounds`.
    pub fn new(bounds: Arc<[u64]>) -> Histogram {
        let cells = (0..=bounds.len()).map(|_| Default::default()).collect();
        Histogram { bounds, cells }
    }

    /// Counts one request of `us` µs (only the owning worker calls this).
    #[inline]
    pub fn add(&self, us: u64) {
        let i = bucket(&self.bounds, us);
        if let Some((count, total)) = self.cells.get(i) {
            count.add(1);
            total.add(us);
        }
    }

    /// What the cells hold now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            bounds: self.bounds.clone(),
            cells: self.cells.iter().map(|(c, t)| (c.get(), t.get())).collect(),
        }
    }
}

/// The bucket of `us`: the first bound it does not exceed, else the one past the last (as
/// predixy's `lower_bound`).
pub fn bucket(bounds: &[u64], us: u64) -> usize {
    bounds.partition_point(|&b| b < us)
}

/// A histogram's counts at one moment, summable over workers and nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub bounds: Arc<[u64]>,
    /// (count, total µs) per bound, then the `>` bucket.
    pub cells: Vec<(u64, u64)>,
}

impl Snapshot {
    /// An empty snapshot with `bounds`.
    pub fn empty(bounds: Arc<[u64]>) -> Snapshot {
        let cells = vec![(0, 0); bounds.len() + 1];
        Snapshot { bounds, cells }
    }

    /// Adds `other` (same bounds) into this one.
    pub fn add(&mut self, other: &Snapshot) {
        for (mine, theirs) in self.cells.iter_mut().zip(&other.cells) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    /// This one minus `base` (an earlier snapshot of the same cells), for CONFIG RESETSTAT.
    pub fn since(&self, base: &Snapshot) -> Snapshot {
        let mut out = self.clone();
        for (mine, old) in out.cells.iter_mut().zip(&base.cells) {
            mine.0 = mine.0.saturating_sub(old.0);
            mine.1 = mine.1.saturating_sub(old.1);
        }
        out
    }

    /// Requests counted.
    pub fn count(&self) -> u64 {
        self.cells.iter().map(|c| c.0).sum()
    }

    /// predixy's text: a `<=` line per non-empty bucket (bound, total µs, count, cumulative
    /// share), a `>` line for requests past the last bound, and `T` (mean µs, total, count);
    /// nothing when no request was counted. Lines end in CRLF, as the rest of INFO.
    pub fn render(&self, out: &mut String) {
        let all = self.count();
        if all == 0 {
            return;
        }
        let mut seen = 0;
        let mut total = 0;
        for (bound, &(count, sum)) in self.bounds.iter().zip(&self.cells) {
            total += sum;
            if count == 0 {
                continue;
            }
            seen += count;
            let share = seen as f64 * 100.0 / all as f64;
            let _ = write!(out, "<= {bound:>12} {sum:>20} {count:>16} {share:.2}%\r\n");
        }
        if let (Some(&(count, sum)), Some(last)) = (self.cells.last(), self.bounds.last()) {
            total += sum;
            if count > 0 {
                let _ = write!(out, ">  {last:>12} {sum:>20} {count:>16} 100.00%\r\n");
            }
        }
        let _ = write!(out, "T  {:>12} {total:>20} {all:>16}\r\n", total / all);
    }
}

/// Counts a request of `us` µs in every histogram of `mask` (bit i = histogram i).
#[inline]
pub fn add_masked(hists: &[Histogram], mask: u32, us: u64) {
    let mut bits = mask;
    while bits != 0 {
        let i = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if let Some(h) = hists.get(i) {
            h.add(us);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(b: &[u64]) -> Arc<[u64]> {
        Arc::from(b)
    }

    #[test]
    fn buckets_take_the_first_bound_not_exceeded() {
        let b = [100, 200, 300];
        assert_eq!(bucket(&b, 0), 0);
        assert_eq!(bucket(&b, 100), 0);
        assert_eq!(bucket(&b, 101), 1);
        assert_eq!(bucket(&b, 300), 2);
        assert_eq!(bucket(&b, 301), 3);
        let h = Histogram::new(bounds(&b));
        for us in [50, 150, 150, 1000] {
            h.add(us);
        }
        let s = h.snapshot();
        assert_eq!(s.cells, [(1, 50), (2, 300), (0, 0), (1, 1000)]);
        assert_eq!(s.count(), 4);
    }

    #[test]
    fn snapshots_sum_and_subtract() {
        let a = Histogram::new(bounds(&[10]));
        let b = Histogram::new(bounds(&[10]));
        a.add(5);
        b.add(20);
        let mut sum = a.snapshot();
        sum.add(&b.snapshot());
        assert_eq!(sum.cells, [(1, 5), (1, 20)]);
        let base = sum.clone();
        a.add(7);
        let mut now = a.snapshot();
        now.add(&b.snapshot());
        assert_eq!(now.since(&base).cells, [(1, 7), (0, 0)]);
    }

    #[test]
    fn text_is_predixys_layout() {
        let h = Histogram::new(bounds(&[100, 200, 300]));
        for us in [50, 150, 150, 1000] {
            h.add(us);
        }
        let mut out = String::new();
        h.snapshot().render(&mut out);
        let want = "<=          100                   50                1 25.00%\r\n\
                    <=          200                  300                2 75.00%\r\n\
                    >           300                 1000                1 100.00%\r\n\
                    T           337                 1350                4\r\n";
        assert_eq!(out, want);
        let mut empty = String::new();
        Snapshot::empty(bounds(&[1])).render(&mut empty);
        assert!(empty.is_empty());
    }

    #[test]
    fn masks_pick_monitors() {
        let hists: Vec<Histogram> = (0..3).map(|_| Histogram::new(bounds(&[10]))).collect();
        add_masked(&hists, 0b101, 3);
        let counts: Vec<u64> = hists.iter().map(|h| h.snapshot().count()).collect();
        assert_eq!(counts, [1, 0, 1]);
    }
}
