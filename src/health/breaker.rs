//! The per-node circuit breaker: Closed → Open after `failure_limit` consecutive failures →
//! HalfOpen once the retry time has passed → one probe → Closed, or Open again with a doubled
//! (capped) retry time.
//!
//! The state is derived from stored instants and the `now` each call passes in, so Open turns
//! into HalfOpen by the clock alone, with no timer task and no race between threads about who
//! flips it.

use std::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// Longest wait between probes of a node that keeps failing them.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The classic breaker states. Open means no traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Healthy: all traffic passes.
    Closed,
    /// Cut off: nothing passes until the retry time.
    Open,
    /// The retry time has passed: exactly one probe request may pass.
    HalfOpen,
}

impl BreakerState {
    /// The lower-case name INFO and logs show.
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half-open",
        }
    }
}

/// A state change, returned once so the caller logs and counts it exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
}

/// What a breaker is tuned by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerParams {
    /// Consecutive failures that open a closed breaker; 0 is taken as 1.
    pub failure_limit: u32,
    /// Wait before the first probe after opening; also the age after which an unanswered
    /// probe permit is given out again.
    pub retry_timeout: Duration,
    /// Cap of the retry wait, which doubles after each failed probe.
    pub max_backoff: Duration,
}

impl BreakerParams {
    /// Parameters from the `breaker` config section, with [`DEFAULT_MAX_BACKOFF`] as the cap.
    pub fn from_config(cfg: &BreakerConfig) -> BreakerParams {
        BreakerParams {
            failure_limit: cfg.failure_limit,
            retry_timeout: cfg.retry_timeout,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// The breaker of one node.
#[derive(Debug, Clone)]
pub struct Breaker {
    params: BreakerParams,
    /// Failures since the last success; a success resets it (predixy's never did).
    failures: u32,
    /// When the breaker last opened; `None` while Closed.
    opened_at: Option<Instant>,
    /// Wait from `opened_at` to HalfOpen: `retry_timeout`, doubled per failed probe, capped.
    backoff: Duration,
    /// When the current HalfOpen probe permit was handed out; `None` when none is out.
    probe_since: Option<Instant>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(params: BreakerParams) -> Breaker {
        Breaker {
            params,
            failures: 0,
            opened_at: None,
            backoff: params.retry_timeout,
            probe_since: None,
        }
    }

    /// New parameters (a reload): the state and counts stay; a changed `retry_timeout` is
    /// the base of the next opening's wait.
    pub fn set_params(&mut self, params: BreakerParams) {
        if self.opened_at.is_none() {
            self.backoff = params.retry_timeout;
        }
        self.params = params;
    }

    /// The state at `now`: Open becomes HalfOpen once the retry time has passed.
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.retry_at() {
            None => BreakerState::Closed,
            Some(at) if now < at => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may be sent now. Closed: yes. Open: no. HalfOpen: yes exactly once
    /// (the probe) until a result is reported, or again when the permit is older than
    /// `retry_timeout`, so a probe whose result never comes back cannot wedge the breaker.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state(now) {
            BreakerState::Closed => true,
            BreakerState::Open => false,
            BreakerState::HalfOpen => {
                let stale = self.probe_since.is_none_or(|since| {
                    now.saturating_duration_since(since) >= self.params.retry_timeout
                });
                if stale {
                    self.probe_since = Some(now);
                }
                stale
            }
        }
    }

    /// Reports a request that got an answer. Resets the consecutive count; in HalfOpen with a
    /// probe out, closes the breaker and resets the backoff.
    ///
    /// While Open, or HalfOpen before any probe was let through, the answer belongs to a
    /// request sent before the breaker opened; it proves little about the node now, so it
    /// does not close the breaker.
    pub fn on_success(&mut self, now: Instant) -> Option<Transition> {
        self.failures = 0;
        let from = self.state(now);
        if from == BreakerState::HalfOpen && self.probe_since.is_some() {
            self.opened_at = None;
            self.probe_since = None;
            self.backoff = self.params.retry_timeout;
            return Some(Transition {
                from,
                to: BreakerState::Closed,
            });
        }
        None
    }

    /// Reports a failed request (connect error, timeout, I/O error, closed connection).
    /// Closed: counts it and opens at `failure_limit`. HalfOpen with a probe out: opens again
    /// with the retry wait doubled, capped at `max_backoff`. Otherwise only counts it: late
    /// failures of requests sent before opening must not push the probe further away.
    pub fn on_failure(&mut self, now: Instant) -> Option<Transition> {
        self.failures = self.failures.saturating_add(1);
        let from = self.state(now);
        match from {
            BreakerState::Closed if self.failures >= self.params.failure_limit.max(1) => {
                self.opened_at = Some(now);
                self.backoff = self.params.retry_timeout;
                self.probe_since = None;
            }
            BreakerState::HalfOpen if self.probe_since.is_some() => {
                self.opened_at = Some(now);
                let cap = self.params.max_backoff.max(self.params.retry_timeout);
                self.backoff = self.backoff.saturating_mul(2).min(cap);
                self.probe_since = None;
            }
            _ => return None,
        }
        Some(Transition {
            from,
            to: BreakerState::Open,
        })
    }

    /// Time left until the next probe is allowed, while Open.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        let at = self.retry_at()?;
        (now < at).then(|| at - now)
    }

    /// When an open breaker turns HalfOpen; `None` while Closed. In the past once HalfOpen.
    pub fn retry_at(&self) -> Option<Instant> {
        self.opened_at.map(|at| at + self.backoff)
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// When the breaker last opened; `None` while Closed.
    pub fn opened_at(&self) -> Option<Instant> {
        self.opened_at
    }

    /// The current wait from opening to HalfOpen (grows with failed probes).
    pub fn backoff(&self) -> Duration {
        self.backoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn params(limit: u32) -> BreakerParams {
        BreakerParams {
            failure_limit: limit,
            retry_timeout: ms(1000),
            max_backoff: ms(5000),
        }
    }

    /// A breaker opened at `t0` by `limit` failures.
    fn opened(t0: Instant, limit: u32) -> Breaker {
        let mut b = Breaker::new(params(limit));
        for _ in 0..limit {
            b.on_failure(t0);
        }
        assert_eq!(b.state(t0), Open);
        b
    }

    fn tr(from: BreakerState, to: BreakerState) -> Option<Transition> {
        Some(Transition { from, to })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let t0 = Instant::now();
        let mut b = Breaker::new(params(3));
        assert_eq!(b.state(t0), Closed);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.consecutive_failures(), 2);
        // A success in between resets the count: failures must be consecutive.
        assert_eq!(b.on_success(t0), None);
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.on_failure(t0), None);
        assert_eq!(b.on_failure(t0), None);
        assert!(b.allow(t0));
        assert_eq!(b.on_failure(t0 + ms(1)), tr(Closed, Open));
        assert_eq!(b.opened_at(), Some(t0 + ms(1)));
        assert_eq!(b.state(t0 + ms(1)), Open);
    }

    #[test]
    fn every_nth_failure_ever_does_not_trip() {
        // predixy's bug: a counter that never resets opens on every Nth failure in history.
        let t0 = Instant::now();
        let mut b = Breaker::new(params(3));
        for i in 0..1000u64 {
            let now = t0 + ms(i);
            if i % 3 == 0 {
                b.on_failure(now);
            } else {
                b.on_success(now);
            }
            assert_eq!(b.state(now), Closed, "step {i}");
        }
    }

    #[test]
    fn zero_limit_is_one() {
        let t0 = Instant::now();
        let mut b = Breaker::new(params(0));
        assert_eq!(b.on_failure(t0), tr(Closed, Open));
    }

    #[test]
    fn open_refuses_then_half_open_after_retry_timeout() {
        let t0 = Instant::now();
        let mut b = opened(t0, 2);
        let table = [
            (0, Open, false, Some(1000)),
            (1, Open, false, Some(999)),
            (999, Open, false, Some(1)),
            (1000, HalfOpen, true, None),
        ];
        for (at, state, allow, retry) in table {
            let now = t0 + ms(at);
            assert_eq!(b.state(now), state, "at {at}");
            assert_eq!(b.retry_in(now), retry.map(ms), "at {at}");
            assert_eq!(b.allow(now), allow, "at {at}");
        }
        assert_eq!(b.retry_at(), Some(t0 + ms(1000)));
    }

    #[test]
    fn half_open_allows_exactly_one_probe() {
        let t0 = Instant::now();
        let mut b = opened(t0, 1);
        let t1 = t0 + ms(1000);
        assert!(b.allow(t1));
        for i in 0..10 {
            assert!(!b.allow(t1 + ms(i)), "second probe at +{i}ms");
        }
        assert_eq!(b.state(t1 + ms(5)), HalfOpen);
    }

    #[test]
    fn probe_success_closes_and_resets_backoff() {
        let t0 = Instant::now();
        let mut b = opened(t0, 1);
        let t1 = t0 + ms(1000);
        assert!(b.allow(t1));
        assert_eq!(b.on_failure(t1 + ms(10)), tr(HalfOpen, Open));
        assert_eq!(b.backoff(), ms(2000));
        let t2 = t1 + ms(10) + ms(2000);
        assert!(b.allow(t2));
        assert_eq!(b.on_success(t2 + ms(1)), tr(HalfOpen, Closed));
        assert_eq!(b.state(t2 + ms(1)), Closed);
        assert_eq!(b.opened_at(), None);
        assert_eq!(b.retry_in(t2), None);
        assert_eq!(b.backoff(), ms(1000));
        assert!(b.allow(t2 + ms(2)));
        assert!(b.allow(t2 + ms(2)));
    }

    #[test]
    fn failed_probes_double_the_wait_up_to_the_cap() {
        let t0 = Instant::now();
        let mut b = opened(t0, 1);
        let mut now = t0;
        for expected in [1000, 2000, 4000, 5000, 5000] {
            assert_eq!(b.retry_in(now), Some(ms(expected)));
            now += ms(expected);
            assert_eq!(b.state(now), HalfOpen);
            assert!(b.allow(now));
            assert_eq!(b.on_failure(now), tr(HalfOpen, Open));
        }
    }

    #[test]
    fn cap_below_retry_timeout_keeps_retry_timeout() {
        let t0 = Instant::now();
        let mut b = Breaker::new(BreakerParams {
            failure_limit: 1,
            retry_timeout: ms(1000),
            max_backoff: ms(10),
        });
        b.on_failure(t0);
        let t1 = t0 + ms(1000);
        assert!(b.allow(t1));
        b.on_failure(t1);
        assert_eq!(b.retry_in(t1), Some(ms(1000)));
    }

    #[test]
    fn lost_probe_does_not_wedge() {
        let t0 = Instant::now();
        let mut b = opened(t0, 1);
        let t1 = t0 + ms(1000);
        assert!(b.allow(t1));
        assert!(!b.allow(t1 + ms(999)));
        // No result ever came back: after retry_timeout another probe may go.
        assert!(b.allow(t1 + ms(1000)));
        assert!(!b.allow(t1 + ms(1001)));
        assert_eq!(b.on_success(t1 + ms(1002)), tr(HalfOpen, Closed));
    }

    #[test]
    fn late_results_while_open_change_nothing() {
        let t0 = Instant::now();
        let mut b = opened(t0, 2);
        // Requests pipelined before the breaker opened come back late.
        assert_eq!(b.on_success(t0 + ms(10)), None);
        assert_eq!(b.state(t0 + ms(10)), Open);
        assert_eq!(b.on_failure(t0 + ms(20)), None);
        assert_eq!(b.retry_at(), Some(t0 + ms(1000)));
        // HalfOpen but no probe sent yet: a late timeout does not reopen.
        assert_eq!(b.on_failure(t0 + ms(1100)), None);
        assert_eq!(b.state(t0 + ms(1100)), HalfOpen);
        assert_eq!(b.on_success(t0 + ms(1100)), None);
        assert_eq!(b.state(t0 + ms(1100)), HalfOpen);
        assert!(b.allow(t0 + ms(1100)));
        assert_eq!(b.on_success(t0 + ms(1101)), tr(HalfOpen, Closed));
    }

    #[test]
    fn reopened_breaker_counts_from_zero_after_closing() {
        let t0 = Instant::now();
        let mut b = opened(t0, 3);
        let t1 = t0 + ms(1000);
        assert!(b.allow(t1));
        b.on_success(t1);
        assert_eq!(b.consecutive_failures(), 0);
        assert_eq!(b.on_failure(t1), None);
        assert_eq!(b.on_failure(t1), None);
        assert_eq!(b.on_failure(t1), tr(Closed, Open));
        assert_eq!(b.retry_in(t1), Some(ms(1000)));
    }

    #[test]
    fn params_from_config() {
        let cfg = BreakerConfig::default();
        let p = BreakerParams::from_config(&cfg);
        assert_eq!(p.failure_limit, 5);
        assert_eq!(p.retry_timeout, ms(1000));
        assert_eq!(p.max_backoff, DEFAULT_MAX_BACKOFF);
        assert_eq!(HalfOpen.as_str(), "half-open");
    }
}
