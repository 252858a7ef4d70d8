//! The drill load: paced, pipelined reads and writes through every gateway, each reply judged
//! ([`super::values`]) and timed.
//!
//! Every connection is a writer with its own keys (spread over many slots) and sends, at its
//! share of the rate, a small pipeline of random reads and writes of its keys. A connection
//! that times out or fails is dropped and opened again, since a late reply would otherwise be
//! taken for the next request's. Reads through gateway `i` use `READ_COMMANDS[i % 4]`, all
//! plain reads of the whole value, so the nodes' own `INFO commandstats` tell which gateway's
//! reads each DC served.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::client::{ClientError, Conn, Reply};
use super::values::{KeyTrack, ReadCheck, Writer};

/// Read commands, one per gateway (cyclically); each returns the whole string value.
pub const READ_COMMANDS: [&str; 4] = ["get", "getrange", "substr", "mget"];
/// Expiry of the load's keys, so reused labs do not fill up.
const KEY_TTL_MS: &str = "600000";
/// Violation examples kept per gateway.
const MAX_EXAMPLES: usize = 20;

/// What load to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Gateway addresses.
    pub gateways: Vec<SocketAddr>,
    /// Requests per second per gateway.
    pub rate: u32,
    /// Connections per gateway.
    pub conns: usize,
    /// Commands per pipeline.
    pub depth: usize,
    /// Keys per connection.
    pub keys: usize,
    /// Share of reads, 0..=1.
    pub read_ratio: f64,
    /// Tag of this run, part of every key.
    pub run: u32,
    /// A request without a reply after this fails (and its connection is dropped).
    pub timeout: Duration,
    /// Seed of the random choices.
    pub seed: u64,
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
    /// Success (for reads: the value expected, or one possibly applied).
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
}

/// Runs the load from `start` until `end`; one result per gateway.
pub async fn run(spec: LoadSpec, start: Instant, end: Instant) -> Vec<GatewayLoad> {
    let spec = Arc::new(spec);
    let mut tasks = Vec::new();
    for gateway in 0..spec.gateways.len() {
        for conn in 0..spec.conns {
            tasks.push((gateway, tokio::spawn(connection(spec.clone(), Writer { gateway, conn }, start, end))));
        }
    }
    let mut out = vec![GatewayLoad::default(); spec.gateways.len()];
    for (gateway, task) in tasks {
        if let Ok(load) = task.await {
            let slot = &mut out[gateway];
            slot.samples.extend(load.samples);
            let room = MAX_EXAMPLES.saturating_sub(slot.examples.len());
            slot.examples.extend(load.examples.into_iter().take(room));
            for (kind, text) in load.error_texts {
                slot.error_texts.entry(kind).or_insert(text);
            }
        }
    }
    for load in &mut out {
        load.samples.sort_by_key(|s| s.at_ms);
        load.examples.sort();
    }
    out
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

/// One pipelined request waiting for its reply.
struct InFlight {
    op: Op,
    key: usize,
    seq: u64,
}

async fn connection(spec: Arc<LoadSpec>, writer: Writer, start: Instant, end: Instant) -> GatewayLoad {
    let addr = spec.gateways[writer.gateway];
    let read_cmd = READ_COMMANDS[writer.gateway % READ_COMMANDS.len()];
    let names: Vec<String> = (0..spec.keys).map(|k| writer.key(spec.run, k)).collect();
    let slots: Vec<u16> = names.iter().map(|k| crate::slot::key_slot(k.as_bytes()).get()).collect();
    let mut keys = vec![KeyTrack::default(); spec.keys];
    let mut rng = Rng::new(spec.seed ^ ((writer.gateway as u64) << 32 | writer.conn as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let per_second = f64::from(spec.rate.max(1)) / (spec.depth * spec.conns) as f64;
    let interval = Duration::from_secs_f64(1.0 / per_second);
    let mut next = start + interval.mul_f64(writer.conn as f64 / spec.conns as f64);
    let mut out = GatewayLoad::default();
    let mut conn: Option<Conn> = None;
    let ms_since = |t: Instant| u32::try_from(t.saturating_duration_since(start).as_millis()).unwrap_or(u32::MAX);
    // Bounded by time: every pass advances `next` by at least one interval, ending at `end`.
    while next < end {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        next += interval;
        if next < now {
            // Behind (a slow reply): skip the missed slots rather than burst to catch up.
            next = now + interval;
        }
        let batch: Vec<InFlight> = (0..spec.depth)
            .map(|_| {
                let key = rng.below(spec.keys);
                if rng.unit() < spec.read_ratio {
                    InFlight { op: Op::Read, key, seq: 0 }
                } else {
                    InFlight { op: Op::Write, key, seq: keys[key].issue() }
                }
            })
            .collect();
        let sent = Instant::now();
        let at_ms = ms_since(sent);
        if conn.is_none() {
            match Conn::connect(addr, None, spec.timeout).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    fail_rest(&batch, &e, at_ms, sent, &slots, &mut keys, &mut out);
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        for item in &batch {
            let name = names[item.key].as_str();
            match item.op {
                Op::Read if read_cmd == "get" || read_cmd == "mget" => c.queue(&[read_cmd, name]),
                Op::Read => c.queue(&[read_cmd, name, "0", "-1"]),
                Op::Write => {
                    let value = writer.value(item.key, item.seq);
                    c.queue(&["set", name, value.as_str(), "px", KEY_TTL_MS]);
                }
            }
        }
        let deadline = sent + spec.timeout;
        let flushed = match tokio::time::timeout_at(deadline, c.flush()).await {
            Ok(res) => res,
            Err(_) => Err(ClientError::Timeout),
        };
        if let Err(e) = flushed {
            fail_rest(&batch, &e, at_ms, sent, &slots, &mut keys, &mut out);
            conn = None;
            continue;
        }
        for (i, item) in batch.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = match c.read(left).await {
                Ok(reply) => reply,
                Err(e) => {
                    fail_rest(&batch[i..], &e, at_ms, sent, &slots, &mut keys, &mut out);
                    conn = None;
                    break;
                }
            };
            let latency_us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
            if let Reply::Error(text) = &reply {
                let kind = text.split_whitespace().next().unwrap_or("ERR").to_string();
                out.error_texts.entry(kind).or_insert_with(|| text.clone());
            }
            let outcome = judge(item, &reply, writer, &mut keys[item.key], read_cmd, at_ms, &mut out.examples);
            out.samples.push(Sample { at_ms, latency_us, op: item.op, slot: slots[item.key], outcome });
        }
    }
    out
}

/// Records `batch` as failed with `err`; its writes may or may not have been applied.
fn fail_rest(
    batch: &[InFlight],
    err: &ClientError,
    at_ms: u32,
    sent: Instant,
    slots: &[u16],
    keys: &mut [KeyTrack],
    out: &mut GatewayLoad,
) {
    let latency_us = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
    out.error_texts.entry(err.kind().to_string()).or_insert_with(|| err.to_string());
    for item in batch {
        if item.op == Op::Write {
            keys[item.key].unknown(item.seq);
        }
        out.samples.push(Sample {
            at_ms,
            latency_us,
            op: item.op,
            slot: slots[item.key],
            outcome: Outcome::Error(err.kind().to_string()),
        });
    }
}

/// Judges one reply and updates the key's track.
fn judge(
    item: &InFlight,
    reply: &Reply,
    writer: Writer,
    track: &mut KeyTrack,
    read_cmd: &str,
    at_ms: u32,
    examples: &mut Vec<(u32, String)>,
) -> Outcome {
    let mut example = |what: String| {
        if examples.len() < MAX_EXAMPLES {
            examples.push((at_ms, what));
        }
    };
    if let Reply::Error(text) = reply {
        if item.op == Op::Write {
            track.unknown(item.seq);
        }
        let kind = text.split_whitespace().next().unwrap_or("ERR").to_string();
        if kind == "READONLY" {
            example(format!("a write reached a replica: {text}"));
        }
        return Outcome::Error(kind);
    }
    match item.op {
        Op::Write => match reply {
            Reply::Simple(ok) if ok == "OK" => {
                track.acked(item.seq);
                Outcome::Ok
            }
            other => {
                track.unknown(item.seq);
                example(format!("SET got {other:?}: a reply for another request"));
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
                example(format!("{read_cmd} got {reply:?}: a reply for another request"));
                return Outcome::Crossed;
            };
            match track.check(writer, item.key, value) {
                ReadCheck::Exact | ReadCheck::Ahead => Outcome::Ok,
                ReadCheck::Stale => Outcome::Stale,
                ReadCheck::Crossed(what) => {
                    example(what);
                    Outcome::Crossed
                }
                ReadCheck::Wrong(what) => {
                    example(what);
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

    #[test]
    fn judges_replies_by_type() {
        let w = Writer { gateway: 3, conn: 0 };
        let mut track = KeyTrack::default();
        let mut ex = Vec::new();
        let seq = track.issue();
        let write = InFlight { op: Op::Write, key: 0, seq };
        assert_eq!(judge(&write, &Reply::Simple("OK".into()), w, &mut track, "mget", 0, &mut ex), Outcome::Ok);
        let read = InFlight { op: Op::Read, key: 0, seq: 0 };
        let value = Reply::Array(Some(vec![Reply::Bulk(Some(w.value(0, seq).into_bytes()))]));
        assert_eq!(judge(&read, &value, w, &mut track, "mget", 0, &mut ex), Outcome::Ok);
        assert_eq!(judge(&read, &Reply::Simple("OK".into()), w, &mut track, "mget", 0, &mut ex), Outcome::Crossed);
        assert_eq!(
            judge(&read, &Reply::Error("TRYAGAIN x".into()), w, &mut track, "mget", 0, &mut ex),
            Outcome::Error("TRYAGAIN".into())
        );
        assert_eq!(judge(&write, &Reply::Bulk(None), w, &mut track, "get", 0, &mut ex), Outcome::Crossed);
        assert_eq!(ex.len(), 2);
    }
}
