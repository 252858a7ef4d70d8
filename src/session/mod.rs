//! A client session: reads requests, dispatches them, and writes replies back in request
//! order. A client that stops reading its replies stops being read (bounded memory).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{debug, warn};

use crate::client::ClientState;
use crate::clients::facts::{FLAG_CLOSING, FLAG_MULTI, FLAG_NO_EVICT, FLAG_PUBSUB, Facts};
use crate::clients::{ClientEntry, Endpoint};
use crate::command::CommandTable;
use crate::resp::ReqArgs;
use crate::resp::request::{Limits, ParseOutcome, RequestParser};
use crate::router::request::Request;
use crate::router::worker::Worker;
use crate::router::{self, Flow};
use crate::snapshot::Cached;
use crate::transport::{ReadHalf, Transport, WriteHalf};

mod sentinel;
mod writeback;

use sentinel::{IDLE_CHECK, KILLED, SHUTDOWN, Sentinel, Signal};

const READ_CHUNK: usize = 16 * 1024;
/// Replies gathered from the queue for one write.
const WRITE_CHUNK: usize = 64 * 1024;
/// Input buffered while a request waits for the client's earlier replies.
const HELD_INPUT_LIMIT: usize = 64 * 1024;
/// CLIENT LIST's `rbp` is the read buffer's peak use over about this long.
const PEAK_WINDOW: Duration = Duration::from_secs(5);

/// The read buffer's peak use over the last [`PEAK_WINDOW`] or so.
struct Peak {
    bytes: usize,
    /// When the window that started with the last reset ends (a comparison per call is
    /// cheaper than the `Instant` subtraction it replaces, done three times a request).
    until: Instant,
}

impl Peak {
    fn observe(&mut self, used: usize, now: Instant) -> usize {
        if now >= self.until {
            self.bytes = used;
            self.until = now + PEAK_WINDOW;
        }
        self.bytes = self.bytes.max(used);
        self.bytes
    }
}

/// What CLIENT LIST and INFO on any worker show about this client, as of now.
fn facts_of(client: &ClientState, rbuf: &BytesMut, wbuf: &BytesMut, peak: usize) -> Facts {
    let mut flags = 0;
    for (on, flag) in [
        (client.tx.in_multi, FLAG_MULTI),
        (client.pubsub.is_subscribed(), FLAG_PUBSUB),
        (client.quit, FLAG_CLOSING),
        (client.no_evict, FLAG_NO_EVICT),
    ] {
        if on {
            flags |= flag;
        }
    }
    let queue = &client.queue;
    let (sub, psub, ssub) = client.pubsub.counts();
    Facts {
        flags,
        sub: sub as u64,
        psub: psub as u64,
        ssub: ssub as u64,
        multi: if client.tx.in_multi {
            client.tx.queued as i64
        } else {
            -1
        },
        multi_mem: client.tx.queued_bytes as u64,
        qbuf: rbuf.len() as u64,
        qbuf_free: (rbuf.capacity() - rbuf.len()) as u64,
        rbs: rbuf.capacity() as u64,
        rbp: peak as u64,
        obl: wbuf.len() as u64,
        oll: queue.held_replies() as u64,
        omem: queue.held_bytes() as u64,
        writing: !wbuf.is_empty(),
        resp: client.proto,
    }
}

/// Publishes a client's facts to the shared registry, only when they changed since the last
/// time (most event-loop turns of a busy client change nothing a reader would see).
struct Publisher {
    last: Facts,
}

impl Publisher {
    fn publish(&mut self, entry: &ClientEntry, facts: Facts) {
        if facts != self.last {
            entry.live.publish(&facts);
            self.last = facts;
        }
    }

    /// Publishes the read buffer's figures just after a read, the rest as last published
    /// (they are published in full at the end of the loop turn): what the read changed, at a
    /// fraction of [`facts_of`]'s cost.
    fn publish_read(&mut self, entry: &ClientEntry, rbuf: &BytesMut, peak: usize) {
        let facts = Facts {
            qbuf: rbuf.len() as u64,
            qbuf_free: (rbuf.capacity() - rbuf.len()) as u64,
            rbs: rbuf.capacity() as u64,
            rbp: peak as u64,
            ..self.last
        };
        self.publish(entry, facts);
    }
}

/// Parses and dispatches every complete request in `rbuf`, stopping early at a request that
/// must wait for the client's earlier replies (`parked`) or after an exclusive one.
#[allow(clippy::too_many_arguments)]
fn process_input(
    worker: &Rc<Worker>,
    table: &CommandTable,
    client: &mut ClientState,
    rbuf: &mut BytesMut,
    parser: &mut RequestParser,
    spans: &mut Vec<std::ops::Range<usize>>,
    limits: &Limits,
    parked: &mut Option<(Bytes, Vec<std::ops::Range<usize>>, bool)>,
    exclusive: &mut bool,
    (max_pipeline, out_limit, unwritten): (usize, usize, usize),
) {
    // Only requests still waiting on a backend count toward `max_pipeline`: replies that are
    // merely waiting to be written are bounded by the output limit instead, so a client that
    // writes a whole pipeline before reading a byte keeps being served.
    while !rbuf.is_empty()
        && !client.quit
        && !*exclusive
        && parked.is_none()
        && client.queue.unanswered() < max_pipeline
        && client.queue.has_room(out_limit, unwritten)
    {
        match parser.parse(rbuf, limits, spans) {
            Ok(ParseOutcome::Incomplete) => break,
            Ok(ParseOutcome::Complete { len, inline }) => {
                let frame = rbuf.split_to(len).freeze();
                if !spans.is_empty() {
                    let req = Request {
                        frame: &frame,
                        args: ReqArgs::new(&frame, spans),
                        inline,
                    };
                    match router::dispatch(worker, table, client, &req) {
                        Flow::Next => {}
                        Flow::Exclusive => *exclusive = true,
                        Flow::Defer => {
                            *parked = Some((frame.clone(), std::mem::take(spans), inline))
                        }
                    }
                }
                spans.clear();
            }
            Err(e) => {
                worker.stats.protocol_errors.add(1);
                let seq = client.queue.reserve();
                client.reply_error(seq, &format!("ERR Protocol error: {e}"));
                client.quit = true;
                rbuf.clear();
            }
        }
    }
}

/// A client's limits and timeouts, from the config in force.
struct Settings {
    limits: Limits,
    max_pipeline: usize,
    out_limit: usize,
    stall: Duration,
    idle: Duration,
}

impl Settings {
    fn of(config: &crate::config::Config) -> Settings {
        Settings {
            limits: Limits {
                max_bulk: config.limits.max_bulk,
                max_args: config.limits.max_args,
                ..Limits::default()
            },
            max_pipeline: config.limits.max_pipeline.max(1),
            out_limit: config.client.output_buffer_limit.max(1),
            stall: config.client.output_stall,
            idle: config.client.timeout,
        }
    }
}

/// Serves one client until it leaves, breaks the protocol, idles out, or the gateway stops.
///
/// Reading and writing never wait for each other: a client that writes a long pipeline
/// before reading any reply keeps being read while its replies wait for the socket, up to
/// `client.output_buffer_limit` bytes held; past that it stops being read, and if it then
/// takes none of its replies for `client.output_stall` it is disconnected with a logged reason.
///
/// Generic over the [`Transport`] (plain TCP or TLS), so each compiles to its own direct code.
pub async fn run<T: Transport>(worker: Rc<Worker>, stream: T, peer: SocketAddr) {
    let shared = worker.shared.clone();
    let stats = worker.stats.clone();
    let endpoint = Endpoint {
        peer,
        local: stream.tcp().local_addr().ok(),
        fd: i64::from(std::os::fd::AsRawFd::as_raw_fd(stream.tcp())),
    };
    let (mut rd, mut wr) = stream.split();
    if !shared.admit_client() {
        let _ = wr
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        return;
    }
    stats.client_connections.add(1);
    let mut config_version = shared.config_version();
    let Settings {
        mut limits,
        mut max_pipeline,
        mut out_limit,
        mut stall,
        mut idle,
    } = Settings::of(&shared.config());
    // A worker whose sessions were all idle since a reload takes it now.
    worker.follow_config(config_version);
    let mut client = ClientState::new(shared.next_client_id(), peer);
    let entry = shared.clients_registry.add(client.id, endpoint, worker.id);
    client.entry = Some(entry.clone());
    client.set_user(shared.users().as_ref().and_then(|u| u.initial()));
    let queue = client.queue.clone();
    // The reply of a lone request is written from where it arrives (`writeback`).
    let direct = wr
        .direct()
        .map(|socket| writeback::Direct::install(&queue, socket, worker.clone()));

    let mut commands = Cached::new(&shared.commands);
    let mut parser = RequestParser::new();
    let mut spans = Vec::new();
    let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
    let mut wbuf = BytesMut::with_capacity(READ_CHUNK);
    // CLIENT KILL, the gateway stopping and the idle timeout are watched by a task of its own
    // (see `sentinel`), so that the loop below polls one flag for them, not three futures.
    let signal = Signal::new(idle);
    let _sentinel = Sentinel::start(&signal, entry.clone(), shared.shutdown_signal());
    // Last time the client took some of its replies (or had none waiting).
    let mut last_drain = Instant::now();
    let mut peak = Peak {
        bytes: 0,
        until: Instant::now() + PEAK_WINDOW,
    };
    let mut publisher = Publisher {
        last: Facts::default(),
    };
    let stall_timer = tokio::time::sleep(stall);
    tokio::pin!(stall_timer);

    // A request waiting for the client's earlier replies (see `router::Flow`).
    let mut parked: Option<(Bytes, Vec<std::ops::Range<usize>>, bool)> = None;
    // An exclusive request is in flight: dispatch nothing until every reply is in.
    let mut exclusive = false;

    let end = loop {
        if let Some(d) = &direct {
            // Running again: replies wait for this loop turn; and what a direct write left
            // goes out before anything else.
            d.arm(false);
            d.take_spill(&mut wbuf);
        }
        if let Some(reason) = queue.killed() {
            break reason.to_string();
        }
        // A reload's client limits and timeouts apply from this loop turn (one load when
        // nothing changed).
        if shared.config_version() != config_version {
            config_version = shared.config_version();
            // And the worker's own part (latency monitor cells), once per worker.
            worker.follow_config(config_version);
            Settings {
                limits,
                max_pipeline,
                out_limit,
                stall,
                idle,
            } = Settings::of(&shared.config());
            signal.set_idle(idle);
        }
        // Replies leave in request order, at most WRITE_CHUNK at a time gathered from the
        // queue, as long as the socket takes them; what waits stays counted as held.
        let monitored = worker.latency_monitored();
        let wrote = loop {
            let drained = if stats.metrics.is_none() && !monitored {
                queue.drain_ready(&mut wbuf, WRITE_CHUNK)
            } else {
                // A reply's latency runs from the step its request was read in to the step
                // it leaves for the socket (the worker clock: no clock read per reply).
                let now = worker.env.clock.now_tick();
                queue.drain_ready_with(&mut wbuf, WRITE_CHUNK, |tag, reply| {
                    writeback::observe_reply(&worker, monitored, now, tag, reply)
                })
            };
            stats.responses.add(drained as u64);
            if wbuf.is_empty() {
                break Ok(());
            }
            let before = wbuf.len();
            match wr.write_now(&mut wbuf) {
                Err(e) => break Err(e),
                Ok(progressed) => {
                    if progressed {
                        stats.send_client_bytes.add((before - wbuf.len()) as u64);
                        last_drain = worker.now();
                    }
                    if !wbuf.is_empty() {
                        break Ok(());
                    }
                }
            }
        };
        if let Err(e) = wrote {
            break format!("write failed: {e}");
        }
        if wbuf.is_empty() {
            last_drain = worker.now();
            if wbuf.capacity() > 4 * WRITE_CHUNK {
                wbuf = BytesMut::with_capacity(READ_CHUNK);
            }
        }
        if (exclusive || parked.is_some()) && queue.unanswered() == 0 {
            exclusive = false;
            if client.blocking {
                // Its blocking command was answered: CLIENT UNBLOCK has nothing to act on.
                client.blocking = false;
                entry.set_blocked_on(None);
            }
            if let Some((frame, sp, inline)) = parked.take() {
                let req = Request {
                    frame: &frame,
                    args: ReqArgs::new(&frame, &sp),
                    inline,
                };
                let table = commands.get(&shared.commands);
                exclusive = router::dispatch(&worker, table, &mut client, &req) == Flow::Exclusive;
                continue;
            }
        }
        if client.quit && queue.in_flight() == 0 && wbuf.is_empty() && !wr.unflushed() {
            break "closed by meridian".to_string();
        }
        // Requests just read, or read earlier and held back by the pipeline/output limits.
        if !rbuf.is_empty() && !exclusive && parked.is_none() {
            process_input(
                &worker,
                commands.get(&shared.commands),
                &mut client,
                &mut rbuf,
                &mut parser,
                &mut spans,
                &limits,
                &mut parked,
                &mut exclusive,
                (max_pipeline, out_limit, wbuf.len()),
            );
        }
        // While a request waits for its turn, keep reading a little (so a client that leaves
        // is noticed and its blocked backend connection released) but not much.
        let holding = exclusive || parked.is_some();
        let output_full = queue.held_bytes() + wbuf.len() >= out_limit;
        let can_read = !client.quit
            && (!holding || rbuf.len() < HELD_INPUT_LIMIT)
            && queue.unanswered() < max_pipeline
            && !output_full;
        // Replies waiting for the socket: if the client takes none of them while it cannot be
        // read (or while meridian waits to close it), nothing else ends the wait.
        let blocked = !wbuf.is_empty() || wr.unflushed();
        if blocked {
            stall_timer.as_mut().reset((last_drain + stall).into());
        }
        if rbuf.capacity() - rbuf.len() < READ_CHUNK / 4 {
            rbuf.reserve(READ_CHUNK);
        }
        let peak_now = peak.observe(rbuf.len(), worker.now());
        publisher.publish(&entry, facts_of(&client, &rbuf, &wbuf, peak_now));
        if let Some(d) = &direct {
            // Asleep with nothing held or unwritten and nothing to wake for but the client's
            // next bytes: the reply of a lone request in flight needs no session turn.
            d.arm(can_read && !blocked && !holding);
        }
        tokio::select! {
            biased;
            _ = queue.wait_ready() => {
                if let Some(d) = &direct {
                    d.arm(false);
                }
                if queue.unanswered() > 0 {
                    // More replies of this client are on their way, likely in this same turn
                    // of the event loop: let them land so they leave in one write.
                    tokio::task::yield_now().await;
                }
            }
            r = wr.writable(), if blocked => {
                if let Err(e) = r {
                    break format!("write failed: {e}");
                }
                worker.tick();
                // Written at the top of the loop.
            }
            r = rd.read_some(&mut rbuf), if can_read => {
                match r {
                    Ok(0) => break "client closed".to_string(),
                    Err(e) => break format!("read failed: {e}"),
                    Ok(n) => {
                        stats.recv_client_bytes.add(n as u64);
                        let now = worker.tick();
                        entry.touch_at(now);
                        // When the client was last active: kept by the signal, which the
                        // sentinel times the idle timeout from.
                        signal.touch(now);
                        // What just arrived counts in the client's own CLIENT INFO (qbuf).
                        let peak_now = peak.observe(rbuf.len(), now);
                        publisher.publish_read(&entry, &rbuf, peak_now);
                    }
                }
                // Parsed and dispatched at the top of the loop.
            }
            _ = &mut stall_timer, if blocked => {
                let now = worker.tick();
                let over = queue.held_bytes() + wbuf.len() >= out_limit || client.quit;
                if !over {
                    // Still within the limit: the stall period starts when it is passed.
                    last_drain = now;
                } else if now >= last_drain + stall {
                    let held = queue.held_bytes() + wbuf.len();
                    warn!(
                        client = client.id,
                        %peer,
                        held_bytes = held,
                        stalled_ms = stall.as_millis() as u64,
                        "disconnecting a client that reads none of its replies"
                    );
                    break format!(
                        "output buffer stalled: {held} bytes of replies untaken for {}ms",
                        stall.as_millis()
                    );
                }
            }
            raised = signal.next() => {
                if raised & KILLED != 0 {
                    break "killed by CLIENT KILL".to_string();
                }
                if raised & SHUTDOWN != 0 {
                    client.quit = true;
                }
                if raised & IDLE_CHECK != 0
                    && !idle.is_zero()
                    && queue.in_flight() == 0
                    && wbuf.is_empty()
                    && signal.last_active().elapsed() >= idle
                {
                    break "idle timeout".to_string();
                }
            }
        }
    };
    debug!(client = client.id, %peer, reason = %end, "client session ended");
    if client.auth_failures > 0 {
        // Failures since the last AUTH log line (at most one line per interval while it lasted).
        tracing::warn!(client = client.id, %peer, failures = client.auth_failures, "AUTH failed (wrong user or password, or disabled user) before the client left");
    }
    queue.close();
    client.release();
    shared.clients_registry.remove(client.id);
    stats.client_connections.sub(1);
    shared.release_client();
}
