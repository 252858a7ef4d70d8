//! Structured events: the gateway's state changes (breaker, failover, MOVED storm, reload, DC
//! re-resolution) kept in a small ring for `/api/state` and emitted as tracing events with
//! `event`, `node`, `dc` and `slot` fields so shipped logs can be filtered on them.
//!
//! Recording takes a short lock; it happens on state changes only, never per request.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;

/// Events kept; older ones are dropped.
pub const CAPACITY: usize = 200;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    BreakerOpen,
    BreakerHalfOpen,
    BreakerClose,
    /// A slot's master changed between two cluster maps.
    Failover,
    /// Many MOVED replies in a short window (see [`MovedStorm`]).
    MovedStorm,
    Reload,
    ReloadFailed,
    /// DNS re-resolution changed the addresses of a DC's host names.
    DcResolved,
}

impl EventKind {
    /// The name logs and `/api/state` show.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BreakerOpen => "breaker_open",
            EventKind::BreakerHalfOpen => "breaker_half_open",
            EventKind::BreakerClose => "breaker_close",
            EventKind::Failover => "failover",
            EventKind::MovedStorm => "moved_storm",
            EventKind::Reload => "reload",
            EventKind::ReloadFailed => "reload_failed",
            EventKind::DcResolved => "dc_resolved",
        }
    }
}

/// One recorded event, in the shape `/api/state` serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    pub kind: EventKind,
    pub node: Option<String>,
    pub dc: Option<String>,
    pub slot: Option<u16>,
    pub message: String,
}

/// The ring of recent events.
#[derive(Debug, Default)]
pub struct EventLog {
    ring: Mutex<VecDeque<Event>>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl EventLog {
    /// Keeps an event (dropping the oldest past [`CAPACITY`]) and logs it. Failures and
    /// refusals log at WARN, the rest at INFO.
    pub fn record(
        &self,
        kind: EventKind,
        node: Option<&str>,
        dc: Option<&str>,
        slot: Option<u16>,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let (n, d) = (node.unwrap_or(""), dc.unwrap_or(""));
        let s = slot.map_or(-1, i32::from);
        match kind {
            EventKind::BreakerOpen
            | EventKind::Failover
            | EventKind::MovedStorm
            | EventKind::ReloadFailed => {
                tracing::warn!(
                    event = kind.as_str(),
                    node = n,
                    dc = d,
                    slot = s,
                    "{message}"
                )
            }
            _ => tracing::info!(
                event = kind.as_str(),
                node = n,
                dc = d,
                slot = s,
                "{message}"
            ),
        }
        let event = Event {
            ts_ms: unix_ms(),
            kind,
            node: node.map(str::to_string),
            dc: dc.map(str::to_string),
            slot,
            message,
        };
        let mut ring = self.ring.lock();
        if ring.len() >= CAPACITY {
            ring.pop_front();
        }
        ring.push_back(event);
    }

    /// The events kept, oldest first.
    pub fn recent(&self) -> Vec<Event> {
        self.ring.lock().iter().cloned().collect()
    }
}

/// MOVED replies within [`MovedStorm::WINDOW`] that make a storm. A resharding moves slots
/// one at a time and a healthy gateway follows each move after one MOVED per slot and
/// worker; hundreds within a second mean the map keeps being wrong (a flapping failover, a
/// stale seed, a resharding the refresher cannot keep up with).
pub const MOVED_STORM_THRESHOLD: u32 = 200;

/// Counts MOVED replies in fixed windows and says once per window when they reach
/// [`MOVED_STORM_THRESHOLD`]. Pure: the caller passes the time.
#[derive(Debug, Clone)]
pub struct MovedStorm {
    start: Option<Instant>,
    count: u32,
}

impl Default for MovedStorm {
    fn default() -> MovedStorm {
        MovedStorm::new()
    }
}

impl MovedStorm {
    /// Length of one counting window.
    pub const WINDOW: Duration = Duration::from_secs(1);

    pub fn new() -> MovedStorm {
        MovedStorm {
            start: None,
            count: 0,
        }
    }

    /// Counts one MOVED at `now`; true exactly when this one reaches the threshold.
    pub fn on_moved(&mut self, now: Instant) -> bool {
        match self.start {
            Some(s) if now.saturating_duration_since(s) < Self::WINDOW => {}
            _ => {
                self.start = Some(now);
                self.count = 0;
            }
        }
        self.count += 1;
        self.count == MOVED_STORM_THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_keeps_the_newest_last() {
        let log = EventLog::default();
        for i in 0..(CAPACITY + 5) {
            log.record(EventKind::Reload, None, None, None, format!("n{i}"));
        }
        let all = log.recent();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0].message, "n5");
        assert_eq!(all[CAPACITY - 1].message, format!("n{}", CAPACITY + 4));
    }

    #[test]
    fn event_json_shape() {
        let log = EventLog::default();
        log.record(
            EventKind::BreakerOpen,
            Some("127.0.0.1:7001"),
            Some("east"),
            Some(42),
            "opened",
        );
        log.record(EventKind::Reload, None, None, None, "ok");
        let v = serde_json::to_value(log.recent()).unwrap();
        let first = &v[0];
        assert!(first["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(first["kind"], "breaker_open");
        assert_eq!(first["node"], "127.0.0.1:7001");
        assert_eq!(first["dc"], "east");
        assert_eq!(first["slot"], 42);
        assert_eq!(first["message"], "opened");
        assert_eq!(first.as_object().unwrap().len(), 6);
        assert!(v[1]["node"].is_null() && v[1]["dc"].is_null() && v[1]["slot"].is_null());
        assert_eq!(v[1]["kind"], "reload");
    }

    #[test]
    fn moved_storm_fires_once_per_window() {
        let t0 = Instant::now();
        let mut s = MovedStorm::new();
        let fired = (0..MOVED_STORM_THRESHOLD * 2)
            .filter(|_| s.on_moved(t0))
            .count();
        assert_eq!(fired, 1);
        // A new window starts counting again.
        let t1 = t0 + MovedStorm::WINDOW;
        assert!(!s.on_moved(t1));
        assert_eq!(s.count, 1);
    }
}
