//! Spreading clients over the workers: each worker counts the clients it serves, and a worker
//! that accepts a connection while it serves clearly more than another hands the connection to
//! the least loaded one.
//!
//! SO_REUSEPORT alone hashes connections to listeners by address and port: with a few dozen
//! clients one worker often gets 60–70% of them, and a pool opened in a burst can land on one
//! worker entirely. Counting happens on connect and disconnect only, never per request.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A worker serving this many more clients than the least loaded one hands new ones over: with
/// one, no worker ever serves more than one client above another.
const SLACK: usize = 1;

/// Clients per worker, as the accept paths see them.
#[derive(Debug, Default)]
pub struct Balance {
    loads: Vec<AtomicUsize>,
}

impl Balance {
    pub fn new(workers: usize) -> Balance {
        Balance {
            loads: (0..workers).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Worker `me` accepted a client: the worker that serves it (counted from now on).
    pub fn assign(&self, me: usize) -> usize {
        let loads: Vec<usize> = self
            .loads
            .iter()
            .map(|l| l.load(Ordering::Acquire))
            .collect();
        let to = pick(me, &loads);
        if let Some(load) = self.loads.get(to) {
            load.fetch_add(1, Ordering::AcqRel);
        }
        to
    }

    /// Counts a client on worker `id` without choosing (when a hand-over failed).
    pub fn assign_to(&self, id: usize) {
        if let Some(load) = self.loads.get(id) {
            load.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// A client of worker `id` left.
    pub fn release(&self, id: usize) {
        if let Some(load) = self.loads.get(id) {
            let _ = load.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// Clients per worker now, by worker id.
    pub fn loads(&self) -> Vec<usize> {
        self.loads
            .iter()
            .map(|l| l.load(Ordering::Acquire))
            .collect()
    }
}

/// The worker that should serve a client worker `me` accepted, given every worker's client
/// count: `me` unless it serves [`SLACK`] or more clients above the least loaded worker, else
/// the least loaded one (the lowest id among equals).
pub fn pick(me: usize, loads: &[usize]) -> usize {
    let Some((least, &min)) = loads.iter().enumerate().min_by_key(|&(i, n)| (*n, i)) else {
        return me;
    };
    match loads.get(me) {
        Some(&mine) if mine >= min + SLACK => least,
        Some(_) => me,
        None => least,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_keeps_clients_while_within_the_slack() {
        assert_eq!(pick(0, &[0, 0]), 0);
        assert_eq!(pick(1, &[1, 1]), 1);
        assert_eq!(pick(0, &[3, 4]), 0);
        assert_eq!(pick(0, &[5]), 0);
    }

    #[test]
    fn a_worker_ahead_by_the_slack_hands_over_to_the_least_loaded() {
        assert_eq!(pick(0, &[1, 0]), 1);
        assert_eq!(pick(1, &[3, 4]), 0);
        assert_eq!(pick(1, &[1, 9, 0, 0]), 2);
        assert_eq!(pick(3, &[4, 4, 4, 6]), 0);
    }

    #[test]
    fn an_unknown_worker_hands_over() {
        assert_eq!(pick(7, &[3, 1]), 1);
        assert_eq!(pick(0, &[]), 0);
    }

    #[test]
    fn a_burst_on_one_listener_ends_spread_evenly() {
        // Every connection hashed to worker 0: it keeps one in two.
        let b = Balance::new(2);
        for _ in 0..50 {
            b.assign(0);
        }
        assert_eq!(b.loads(), vec![25, 25]);
        // Three workers, connections hashed unevenly.
        let b = Balance::new(3);
        for i in 0..90 {
            b.assign(if i % 5 == 0 { 2 } else { 0 });
        }
        let loads = b.loads();
        let (lo, hi) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(hi - lo <= SLACK, "{loads:?}");
        assert_eq!(loads.iter().sum::<usize>(), 90);
    }

    #[test]
    fn releases_never_underflow() {
        let b = Balance::new(2);
        b.assign(0);
        b.release(0);
        b.release(0);
        b.release(5);
        assert_eq!(b.loads(), vec![0, 0]);
    }
}
