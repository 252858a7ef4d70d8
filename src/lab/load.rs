//! The drill load: an open-loop stream of reads and writes through every gateway, each reply
//! judged ([`super::values`]) and timed.
//!
//! Requests leave on a fixed schedule whatever happens to earlier ones (a stalled request must
//! not hide the ones that would have followed it), each on a connection taken from the
//! gateway's pool; most carry one command, one in four a pipeline of three (so a reply handed
//! to the wrong request shows). A connection that times out or fails is dropped, since a late
//! reply would otherwise be taken for the next request's. At most one write per key is in
//! flight, so every read has a well-defined expected value. Reads through gateway `i` use
//! `READ_COMMANDS[i % 4]`, all plain reads of the whole value, so the nodes' own
//! `INFO commandstats` tell which gateway's reads each DC served.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::client::{ClientError, Conn, Login, Reply};
use super::values::{KeyTrack, ReadCheck, Writer};

/// Read commands, one per gateway (cyclically); each returns the whole string value.
pub const READ_COMMANDS: [&str; 4] = ["get", "getrange", "substr", "mget"];
/// Expiry of the load's keys, so reused labs do not fill up.
const KEY_TTL_MS: &str = "600000";
/// Violation examples kept per gateway.
const MAX_EXAMPLES: usize = 20;
/// Requests in flight per gateway before new ones are skipped (the client is saturated).
const MAX_IN_FLIGHT: usize = 512;
/// Idle connections kept per gateway.
const MAX_IDLE: usize = 64;

/// What load to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Gateway addresses.
    pub gateways: Vec<SocketAddr>,
    /// Commands per second per gateway.
    pub rate: u32,
    /// Keys per gateway.
    pub keys: usize,
    /// Share of reads, 0..=1.
    pub read_ratio: f64,
    /// Tag of this run, part of every key.
    pub run: u32,
    /// A request without a reply after this fails (and its connection is dropped).
    pub timeout: Duration,
    /// Seed of the random choices.
    pub seed: u64,
    /// The user every connection authenticates as (`users: true` labs), before its first
    /// request.
    pub login: Option<Login>,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A read of one key.
    Read,
    /// A SET of one key.
    Write,
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Success (for reads: a value the read may see).
    Ok,
    /// A read that returned an older value.
    Stale,
    /// An error reply or no reply; the kind (`MOVED`, `TRYAGAIN`, `timeout`, `io`, …).
    Error(String),
    /// A reply that belongs to another request.
    Crossed,
    /// A read that returned a value no write produced.
    Wrong,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was sent, in ms since the drill started.
    pub at_ms: u32,
    /// Time to its reply (or failure), in microseconds.
    pub latency_us: u32,
    /// Read or write.
    pub op: Op,
    /// Its key's slot.
    pub slot: u16,
    /// How it ended.
    pub outcome: Outcome,
}

/// Everything one gateway's load saw.
#[derive(Debug, Clone, Default)]
pub struct GatewayLoad {
    /// Every request.
    pub samples: Vec<Sample>,
    /// First examples of broken invariants, `(at_ms, what)`.
    pub examples: Vec<(u32, String)>,
    /// The first message seen of each error kind.
    pub error_texts: BTreeMap<String, String>,
    /// Requests not sent because too many were in flight.
    pub skipped: u64,
}

impl GatewayLoad {
    fn example(&mut self, at_ms: u32, what: String) {
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push((at_ms, what));
        }
    }
}

/// A xorshift64* generator: enough randomness for picking keys, and reproducible by seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// What a gateway's requests share: keys, connections, results.
struct Shared {
    addr: SocketAddr,
    login: Option<Login>,
    writer: Writer,
    read_cmd: &'static str,
    names: Vec<String>,
    slots: Vec<u16>,
    timeout: Duration,
    start: Instant,
    keys: Mutex<Keys>,
    idle: Mutex<Vec<Conn>>,
    out: Mutex<GatewayLoad>,
}

/// Per key: what was written, and whether a write is in flight.
struct Keys {
    tracks: Vec<KeyTrack>,
    writing: Vec<bool>,
}

/// One command of a request.
struct Command {
    op: Op,
    key: usize,
    /// Writes: the sequence written; reads: the floor when sent.
    seq: Option<u64>,
}

/// Runs the load from `start` until `end`; one result per gateway. Requests still in flight
/// at `end` get up to the request timeout to finish.
pub async fn run(spec: LoadSpec, start: Instant, end: Instant) -> Vec<GatewayLoad> {
    let tasks: Vec<_> = (0..spec.gateways.len())
        .map(|g| tokio::spawn(gateway(spec.clone(), g, start, end)))
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap_or_default());
    }
    out
}

async fn gateway(spec: LoadSpec, g: usize, start: Instant, end: Instant) -> GatewayLoad {
    let writer = Writer { gateway: g };
    let names: Vec<String> = (0..spec.keys).map(|k| writer.key(spec.run, k)).collect();
    let shared = Arc::new(Shared {
        addr: spec.gateways[g],
        login: spec.login.clone(),
        writer,
        read_cmd: READ_COMMANDS[g % READ_COMMANDS.len()],
        slots: names
            .iter()
            .map(|k| crate::slot::key_slot(k.as_bytes()).get())
            .collect(),
        names,
        timeout: spec.timeout,
        start,
        keys: Mutex::new(Keys {
            tracks: vec![KeyTrack::default(); spec.keys],
            writing: vec![false; spec.keys],
        }),
        idle: Mutex::new(Vec::new()),
        out: Mutex::new(GatewayLoad::default()),
    });
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut rng = Rng::new(spec.seed ^ (g as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let interval = Duration::from_secs_f64(1.0 / f64::from(spec.rate.max(1)));
    let mut next = start;
    let mut tasks = tokio::task::JoinSet::new();
    // Bounded by time: `next` advances by at least one interval per pass until `end`.
    while next < end {
        tokio::time::sleep_until(next).await;
        let size = if rng.below(4) == 0 { 3 } else { 1 };
        next += interval * size as u32;
        // Far behind (the runtime stalled): drop the backlog rather than burst.
        let now = Instant::now();
        if next + Duration::from_millis(100) < now {
            next = now;
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Ok(mut out) = shared.out.lock() {
                out.skipped += size as u64;
            }
            continue;
        };
        let batch = pick(&shared, &mut rng, size, spec.read_ratio);
        let shared = shared.clone();
        tasks.spawn(async move {
            request(&shared, batch).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    let drain = tokio::time::timeout(spec.timeout + Duration::from_secs(1), async {
        while tasks.join_next().await.is_some() {}
    });
    let _ = drain.await;
    tasks.abort_all();
    let mut out = shared.out.lock().map(|o| o.clone()).unwrap_or_default();
    out.samples.sort_by_key(|s| s.at_ms);
    out.examples.sort();
    out
}

/// Chooses `size` commands: reads, or writes of keys with no write in flight.
fn pick(shared: &Shared, rng: &mut Rng, size: usize, read_ratio: f64) -> Vec<Command> {
    let Ok(mut keys) = shared.keys.lock() else {
        return Vec::new();
    };
    let count = keys.tracks.len();
    (0..size)
        .map(|_| {
            let key = rng.below(count);
            if rng.unit() >= read_ratio {
                // A few tries for a key that is not being written; else read instead.
                for candidate in [key, rng.below(count), rng.below(count), rng.below(count)] {
                    if !keys.writing[candidate] {
                        keys.writing[candidate] = true;
                        let seq = keys.tracks[candidate].issue();
                        return Command {
                            op: Op::Write,
                            key: candidate,
                            seq: Some(seq),
                        };
                    }
                }
            }
            Command {
                op: Op::Read,
                key,
                seq: keys.tracks[key].floor(),
            }
        })
        .collect()
}

/// Sends one request (one or more commands) on a pooled connection and judges the replies.
async fn request(shared: &Shared, batch: Vec<Command>) {
    let sent = Instant::now();
    let at_ms =
        u32::try_from(sent.saturating_duration_since(shared.start).as_millis()).unwrap_or(u32::MAX);
    let pooled = shared.idle.lock().ok().and_then(|mut idle| idle.pop());
    let mut conn = match pooled {
        Some(conn) => conn,
        None => match Conn::open(shared.addr, None, shared.login.as_ref(), shared.timeout).await {
            Ok(conn) => conn,
            Err(e) => return fail(shared, &batch, &e, at_ms, sent),
        },
    };
    for cmd in &batch {
        let name = shared.names[cmd.key].as_str();
        match (cmd.op, shared.read_cmd) {
            (Op::Read, "get" | "mget") => conn.queue(&[shared.read_cmd, name]),
            (Op::Read, read) => conn.queue(&[read, name, "0", "-1"]),
            (Op::Write, _) => {
                let value = shared.writer.value(cmd.key, cmd.seq.unwrap_or(0));
                conn.queue(&["set", name, value.as_str(), "px", KEY_TTL_MS]);
            }
        }
    }
    let deadline = sent + shared.timeout;
    let flushed = match tokio::time::timeout_at(deadline, conn.flush()).await {
        Ok(res) => res,
        Err(_) => Err(ClientError::Timeout),
    };
    if let Err(e) = flushed {
        return fail(shared, &batch, &e, at_ms, sent);
    }
    for (i, cmd) in batch.iter().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let reply = match conn.read(left).await {
            Ok(reply) => reply,
            // The connection is dropped here: its late replies must never reach anyone.
            Err(e) => return fail(shared, &batch[i..], &e, at_ms, sent),
        };
        let latency_us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        let outcome = judge(shared, cmd, &reply, at_ms);
        let slot = shared.slots[cmd.key];
        if let Ok(mut out) = shared.out.lock() {
            out.samples.push(Sample {
                at_ms,
                latency_us,
                op: cmd.op,
                slot,
                outcome,
            });
        }
    }
    if let Ok(mut idle) = shared.idle.lock()
        && idle.len() < MAX_IDLE
    {
        idle.push(conn);
    }
}

/// Records `batch` as failed with `err`; its writes may or may not have been applied.
fn fail(shared: &Shared, batch: &[Command], err: &ClientError, at_ms: u32, sent: Instant) {
    let latency_us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
    if let Ok(mut keys) = shared.keys.lock() {
        for cmd in batch.iter().filter(|c| c.op == Op::Write) {
            keys.tracks[cmd.key].unknown(cmd.seq.unwrap_or(0));
            keys.writing[cmd.key] = false;
        }
    }
    if let Ok(mut out) = shared.out.lock() {
        out.error_texts
            .entry(err.kind().to_string())
            .or_insert_with(|| err.to_string());
        for cmd in batch {
            let outcome = Outcome::Error(err.kind().to_string());
            let slot = shared.slots[cmd.key];
            out.samples.push(Sample {
                at_ms,
                latency_us,
                op: cmd.op,
                slot,
                outcome,
            });
        }
    }
}

/// Judges one reply, updating the key's track (and releasing it for writes).
fn judge(shared: &Shared, cmd: &Command, reply: &Reply, at_ms: u32) -> Outcome {
    let Ok(mut keys) = shared.keys.lock() else {
        return Outcome::Ok;
    };
    let Ok(mut out) = shared.out.lock() else {
        return Outcome::Ok;
    };
    if cmd.op == Op::Write {
        keys.writing[cmd.key] = false;
    }
    let track = &mut keys.tracks[cmd.key];
    let seq = cmd.seq.unwrap_or(0);
    if let Reply::Error(text) = reply {
        if cmd.op == Op::Write {
            track.unknown(seq);
        }
        let kind = text.split_whitespace().next().unwrap_or("ERR").to_string();
        out.error_texts
            .entry(kind.clone())
            .or_insert_with(|| text.clone());
        if kind == "READONLY" {
            out.example(at_ms, format!("a write reached a replica: {text}"));
        }
        return Outcome::Error(kind);
    }
    let read_cmd = shared.read_cmd;
    match cmd.op {
        Op::Write => match reply {
            Reply::Simple(ok) if ok == "OK" => {
                track.acked(seq);
                Outcome::Ok
            }
            other => {
                track.unknown(seq);
                out.example(
                    at_ms,
                    format!("SET got {other:?}: a reply for another request"),
                );
                Outcome::Crossed
            }
        },
        Op::Read => {
            let value = match (read_cmd, reply) {
                ("mget", Reply::Array(Some(items))) if items.len() == 1 => match &items[0] {
                    Reply::Bulk(v) => Some(v.as_deref()),
                    _ => None,
                },
                ("mget", _) => None,
                (_, Reply::Bulk(v)) => Some(v.as_deref()),
                _ => None,
            };
            let Some(value) = value else {
                out.example(
                    at_ms,
                    format!("{read_cmd} got {reply:?}: a reply for another request"),
                );
                return Outcome::Crossed;
            };
            match track.check(shared.writer, cmd.key, value, cmd.seq) {
                ReadCheck::Exact | ReadCheck::Ahead => Outcome::Ok,
                ReadCheck::Stale => Outcome::Stale,
                ReadCheck::Crossed(what) => {
                    out.example(at_ms, what);
                    Outcome::Crossed
                }
                ReadCheck::Wrong(what) => {
                    out.example(at_ms, what);
                    Outcome::Wrong
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_bounded() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            let x = a.below(10);
            assert_eq!(x, b.below(10));
            assert!(x < 10);
            let u = a.unit();
            b.unit();
            assert!((0.0..1.0).contains(&u));
        }
    }

    fn shared(read_cmd: &'static str) -> Shared {
        Shared {
            addr: "127.0.0.1:1".parse().unwrap(),
            login: None,
            writer: Writer { gateway: 3 },
            read_cmd,
            names: vec!["k0".into(), "k1".into()],
            slots: vec![1, 2],
            timeout: Duration::from_secs(1),
            start: Instant::now(),
            keys: Mutex::new(Keys {
                tracks: vec![KeyTrack::default(); 2],
                writing: vec![false; 2],
            }),
            idle: Mutex::new(Vec::new()),
            out: Mutex::new(GatewayLoad::default()),
        }
    }

    #[test]
    fn never_two_writes_of_a_key_in_flight() {
        let s = shared("get");
        let mut rng = Rng::new(1);
        let batch = pick(&s, &mut rng, 3, 0.0);
        let writes: Vec<usize> = batch
            .iter()
            .filter(|c| c.op == Op::Write)
            .map(|c| c.key)
            .collect();
        assert_eq!(
            writes.len(),
            2,
            "two keys, so the third command must be a read"
        );
        assert_ne!(writes[0], writes[1]);
    }

    #[test]
    fn judges_replies_by_type() {
        let s = shared("mget");
        let mut rng = Rng::new(1);
        let write = pick(&s, &mut rng, 1, 0.0).remove(0);
        assert_eq!(
            judge(&s, &write, &Reply::Simple("OK".into()), 0),
            Outcome::Ok
        );
        let read = pick(&s, &mut rng, 1, 1.0)
            .into_iter()
            .map(|c| Command {
                key: write.key,
                ..c
            })
            .next()
            .unwrap();
        let read = Command {
            seq: s.keys.lock().unwrap().tracks[write.key].floor(),
            ..read
        };
        let value = Reply::Array(Some(vec![Reply::Bulk(Some(
            s.writer.value(write.key, 1).into_bytes(),
        ))]));
        assert_eq!(judge(&s, &read, &value, 0), Outcome::Ok);
        assert_eq!(
            judge(&s, &read, &Reply::Simple("OK".into()), 0),
            Outcome::Crossed
        );
        let err = Reply::Error("TRYAGAIN x".into());
        assert_eq!(judge(&s, &read, &err, 0), Outcome::Error("TRYAGAIN".into()));
        let write2 = pick(&s, &mut rng, 1, 0.0).remove(0);
        assert_eq!(judge(&s, &write2, &Reply::Bulk(None), 0), Outcome::Crossed);
        let out = s.out.lock().unwrap();
        assert_eq!(out.examples.len(), 2);
        assert_eq!(out.error_texts["TRYAGAIN"], "TRYAGAIN x");
    }
}
