//! Client-side helpers shared by the core tests: a bystander client that keeps using the
//! gateway in the background (to prove a fault stayed with its own client), and INFO parsing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::info_fields;
use crate::common::raw::{Raw, encode, show};

/// Bound on one bystander's life (a failure guard; tests stop it much earlier).
const BYSTANDER_LIMIT: Duration = Duration::from_secs(300);
/// Pause between two bystander rounds, so it does not hog the 2 cores.
const BYSTANDER_PAUSE: Duration = Duration::from_millis(5);

/// A client that PINGs and GETs a known key through the gateway until stopped, recording every
/// reply that is not the expected one.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    handle: Option<JoinHandle<()>>,
}

impl Bystander {
    /// Starts one on its own connection to `addr`; `key` must hold `value` (set it first).
    pub fn start(addr: &str, key: &str, value: &str) -> Bystander {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut raw = Raw::connect(addr);
        let get = encode(&["GET", key]);
        let want_get = format!("${}\r\n{value}\r\n", value.len()).into_bytes();
        let handle = {
            let (stop, rounds, errors) = (stop.clone(), rounds.clone(), errors.clone());
            thread::spawn(move || {
                let deadline = Instant::now() + BYSTANDER_LIMIT;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let mut check = |request: &[u8], want: &[u8]| {
                        raw.write(request);
                        match raw.try_read() {
                            Ok(got) if got == want => true,
                            Ok(got) => {
                                errors.lock().unwrap().push(format!(
                                    "{} answered {}",
                                    show(request),
                                    show(&got)
                                ));
                                true
                            }
                            Err(e) => {
                                errors
                                    .lock()
                                    .unwrap()
                                    .push(format!("{}: {e}", show(request)));
                                false
                            }
                        }
                    };
                    if !check(b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n") || !check(&get, &want_get) {
                        return;
                    }
                    rounds.fetch_add(1, Ordering::SeqCst);
                    thread::sleep(BYSTANDER_PAUSE);
                }
            })
        };
        Bystander {
            stop,
            rounds,
            errors,
            handle: Some(handle),
        }
    }

    /// Rounds completed so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::SeqCst)
    }

    /// Waits (bounded) until `n` more rounds completed, so a check really overlapped traffic.
    pub fn wait_rounds(&self, n: u64) {
        let target = self.rounds() + n;
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.rounds() < target && Instant::now() < deadline {
            if self.handle.as_ref().is_some_and(|h| h.is_finished()) {
                break;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it and returns (rounds completed, unexpected replies).
    pub fn finish(mut self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        (self.rounds(), self.errors.lock().unwrap().clone())
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The text of INFO's reply (bulk string or RESP3 verbatim string) as raw bytes.
pub fn info_text(reply: &[u8]) -> String {
    let text = String::from_utf8_lossy(reply);
    let Some((_, body)) = text.split_once("\r\n") else {
        return String::new();
    };
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    // A verbatim string starts with its 3-letter format and a colon.
    if reply.first() == Some(&b'=') {
        body.get(4..).unwrap_or_default().to_string()
    } else {
        body.to_string()
    }
}

/// The lines of one `# Section` of an INFO text (without the header).
pub fn info_section(text: &str, name: &str) -> Option<Vec<String>> {
    let header = format!("# {name}");
    let mut lines = text.lines().map(str::trim_end);
    lines.find(|l| *l == header)?;
    Some(
        lines
            .take_while(|l| !l.starts_with("# "))
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// `Field:value` lines of INFO's `# Servers`, one map per server, in order.
pub fn info_servers(text: &str) -> Vec<HashMap<String, String>> {
    let lines = info_section(text, "Servers").expect("INFO has a # Servers section");
    let mut out: Vec<HashMap<String, String>> = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if k == "Server" {
            out.push(HashMap::new());
        }
        let current = out
            .last_mut()
            .expect("# Servers starts with a Server: line");
        current.insert(k.to_string(), v.to_string());
    }
    out
}

/// INFO `section` through a raw connection, parsed.
pub fn info(raw: &mut Raw, section: &str) -> HashMap<String, String> {
    let reply = raw.call(&["INFO", section]);
    info_fields(&info_text(&reply))
}

/// A numeric INFO field, panicking with the whole map when absent.
pub fn info_u64(fields: &HashMap<String, String>, name: &str) -> u64 {
    fields
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO has no numeric {name}: {fields:?}"))
}
