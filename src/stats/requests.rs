//! Per-worker request metrics: a counter and a latency histogram per command, error replies
//! by kind and reads per DC, in plain cells one worker writes and the scrape sums.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::Counter;
use super::dcs::MAX_DCS;
use super::errors::ErrorKind;

/// Most distinct command names counted; names past it count as `unknown`.
pub const MAX_COMMANDS: usize = 512;
/// The id of `unknown`: names not in the command table (and past [`MAX_COMMANDS`]).
pub const UNKNOWN_COMMAND: u16 = 0;
/// Upper bounds of the latency buckets in seconds; a `+Inf` bucket follows.
pub const LATENCY_BOUNDS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// The same bounds in nanoseconds, compared on the request path.
const BOUNDS_NS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];
/// Buckets per histogram: one per bound and `+Inf`.
pub const BUCKETS: usize = BOUNDS_NS.len() + 1;

/// Command names by id, shared by all workers and only grown: an id keeps its name when the
/// command table is replaced, so the cells of every worker keep meaning the same command.
#[derive(Debug)]
pub struct CommandNames {
    inner: Mutex<NamesInner>,
}

#[derive(Debug)]
struct NamesInner {
    names: Vec<Arc<str>>,
    ids: HashMap<Arc<str>, u16>,
}

impl Default for CommandNames {
    fn default() -> CommandNames {
        let unknown: Arc<str> = Arc::from("unknown");
        CommandNames {
            inner: Mutex::new(NamesInner {
                names: vec![unknown.clone()],
                ids: HashMap::from([(unknown, UNKNOWN_COMMAND)]),
            }),
        }
    }
}

impl CommandNames {
    /// The id of `name` (lower case), given out on first use; [`UNKNOWN_COMMAND`] once
    /// [`MAX_COMMANDS`] names are taken. Called when a command table is built, not per request.
    pub fn intern(&self, name: &str) -> u16 {
        let mut inner = self.inner.lock();
        if let Some(&id) = inner.ids.get(name) {
            return id;
        }
        if inner.names.len() >= MAX_COMMANDS {
            return UNKNOWN_COMMAND;
        }
        let id = inner.names.len() as u16;
        let name: Arc<str> = Arc::from(name);
        inner.names.push(name.clone());
        inner.ids.insert(name, id);
        id
    }

    /// Every name, indexed by id.
    pub fn names(&self) -> Vec<Arc<str>> {
        self.inner.lock().names.clone()
    }
}

/// One command's cells in one worker.
#[derive(Debug, Default)]
struct CommandCell {
    requests: Counter,
    /// Replies by latency bucket (not cumulative: each reply adds to one bucket).
    buckets: [Counter; BUCKETS],
    sum_ns: Counter,
}

/// A latency histogram in the metrics' buckets, written by one worker only.
#[derive(Debug, Default)]
pub struct LatencyCells {
    /// Observations by bucket (not cumulative).
    buckets: [Counter; BUCKETS],
    sum_ns: Counter,
}

impl LatencyCells {
    /// Records one observation.
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(BOUNDS_NS.len());
        self.buckets[bucket].add(1);
        self.sum_ns.add(ns);
    }

    /// Adds these cells to `into`.
    pub fn add_to(&self, into: &mut LatencyTotals) {
        for (sum, cell) in into.buckets.iter_mut().zip(&self.buckets) {
            *sum += cell.get();
        }
        into.sum_ns += self.sum_ns.get();
    }
}

/// [`LatencyCells`] summed over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LatencyTotals {
    /// Observations by bucket, not cumulative.
    pub buckets: [u64; BUCKETS],
    pub sum_ns: u64,
}

impl LatencyTotals {
    /// Observations in all (the `+Inf` bucket of the cumulative histogram).
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// One worker's request metrics.
#[derive(Debug)]
pub struct RequestMetrics {
    commands: Box<[CommandCell]>,
    errors: [Counter; ErrorKind::COUNT],
    /// Reads sent, by DC index (see [`super::dcs::DcNames`]; sized for every index at once, so
    /// a DC a reload adds needs no new cell).
    reads_by_dc: Box<[Counter]>,
}

/// One command's sums over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommandTotals {
    pub requests: u64,
    /// Replies by bucket, not cumulative.
    pub buckets: [u64; BUCKETS],
    pub sum_ns: u64,
}

impl CommandTotals {
    /// Replies observed (the `+Inf` bucket of the cumulative histogram).
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// Sums of [`RequestMetrics`] over workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RequestTotals {
    /// By command id.
    pub commands: Vec<CommandTotals>,
    /// By [`ErrorKind`] index.
    pub errors: [u64; ErrorKind::COUNT],
    /// By DC index.
    pub reads_by_dc: Vec<u64>,
}

impl Default for RequestMetrics {
    fn default() -> RequestMetrics {
        RequestMetrics::new()
    }
}

impl RequestMetrics {
    /// Cells for every command id and every DC index.
    pub fn new() -> RequestMetrics {
        RequestMetrics {
            commands: (0..MAX_COMMANDS).map(|_| CommandCell::default()).collect(),
            errors: Default::default(),
            reads_by_dc: (0..MAX_DCS).map(|_| Counter::default()).collect(),
        }
    }

    /// Counts a request of command `id`.
    #[inline]
    pub fn count(&self, id: u16) {
        if let Some(cell) = self.commands.get(usize::from(id)) {
            cell.requests.add(1);
        }
    }

    /// Records the reply to a request of command `id` that took `elapsed`, and its error kind
    /// when it is an error.
    #[inline]
    pub fn observe(&self, id: u16, elapsed: Duration, reply: &[u8]) {
        if let Some(cell) = self.commands.get(usize::from(id)) {
            let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            let bucket = BOUNDS_NS
                .iter()
                .position(|&bound| ns <= bound)
                .unwrap_or(BOUNDS_NS.len());
            cell.buckets[bucket].add(1);
            cell.sum_ns.add(ns);
        }
        if matches!(reply.first(), Some(b'-' | b'!'))
            && let Some(kind) = ErrorKind::of_reply(reply)
        {
            self.errors[kind as usize].add(1);
        }
    }

    /// Counts a read sent to a node of DC index `dc`.
    #[inline]
    pub fn count_read(&self, dc: usize) {
        if let Some(c) = self.reads_by_dc.get(dc) {
            c.add(1);
        }
    }

    /// Adds this worker's cells to `into`.
    pub fn add_to(&self, into: &mut RequestTotals) {
        if into.commands.len() < self.commands.len() {
            into.commands
                .resize(self.commands.len(), CommandTotals::default());
        }
        for (cell, t) in self.commands.iter().zip(into.commands.iter_mut()) {
            t.requests += cell.requests.get();
            for (b, c) in t.buckets.iter_mut().zip(&cell.buckets) {
                *b += c.get();
            }
            t.sum_ns += cell.sum_ns.get();
        }
        for (t, c) in into.errors.iter_mut().zip(&self.errors) {
            *t += c.get();
        }
        if into.reads_by_dc.len() < self.reads_by_dc.len() {
            into.reads_by_dc.resize(self.reads_by_dc.len(), 0);
        }
        for (t, c) in into.reads_by_dc.iter_mut().zip(self.reads_by_dc.iter()) {
            *t += c.get();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_get_stable_ids_up_to_the_limit() {
        let names = CommandNames::default();
        let get = names.intern("get");
        assert_eq!(get, 1);
        assert_eq!(names.intern("set"), 2);
        assert_eq!(names.intern("get"), get);
        assert_eq!(names.intern("unknown"), UNKNOWN_COMMAND);
        for i in 0..MAX_COMMANDS {
            names.intern(&format!("c{i}"));
        }
        assert_eq!(names.intern("one-too-many"), UNKNOWN_COMMAND);
        let all = names.names();
        assert_eq!(all.len(), MAX_COMMANDS);
        assert_eq!((&*all[0], &*all[1]), ("unknown", "get"));
    }

    #[test]
    fn latencies_land_in_their_bucket_and_sum() {
        let m = RequestMetrics::new();
        let us = Duration::from_micros;
        for (elapsed, reply) in [
            (us(50), &b"+OK\r\n"[..]),
            (us(100), b"+OK\r\n"),
            (us(101), b"-WRONGTYPE x\r\n"),
            (Duration::from_secs(20), b"$1\r\nx\r\n"),
        ] {
            m.count(3);
            m.observe(3, elapsed, reply);
        }
        m.count(u16::MAX);
        m.observe(u16::MAX, us(1), b"-ERR x\r\n");
        m.count_read(1);
        m.count_read(MAX_DCS);
        let mut t = RequestTotals::default();
        m.add_to(&mut t);
        m.add_to(&mut t);
        let c = &t.commands[3];
        assert_eq!(c.requests, 8);
        assert_eq!(
            (c.buckets[0], c.buckets[1], c.buckets[BUCKETS - 1]),
            (4, 2, 2)
        );
        assert_eq!(c.count(), 8);
        assert_eq!(c.sum_ns, 2 * (251_000 + 20_000_000_000));
        assert_eq!(t.errors[ErrorKind::WrongType as usize], 2);
        assert_eq!(
            t.errors[ErrorKind::Err as usize],
            2,
            "counted without a command cell"
        );
        assert_eq!(
            (t.reads_by_dc[1], t.reads_by_dc.iter().sum::<u64>()),
            (2, 2)
        );
    }
}
