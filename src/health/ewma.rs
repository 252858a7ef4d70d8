//! Peak-EWMA of a node's round-trip times: a slower sample is taken at once, faster samples
//! pull the value down with a time constant, so a node that turns slow is avoided at once and
//! trusted again only gradually.

use std::time::{Duration, Instant};

/// The peak-weighted moving average of one node's round-trip times.
#[derive(Debug, Clone)]
pub struct PeakEwma {
    /// Time constant of the decay toward faster samples.
    tau: Duration,
    /// Current estimate in milliseconds; `None` before the first sample.
    value_ms: Option<f64>,
    /// When the last sample was taken.
    last: Option<Instant>,
}

impl PeakEwma {
    /// An empty average decaying with time constant `tau`.
    pub fn new(tau: Duration) -> PeakEwma {
        PeakEwma {
            tau,
            value_ms: None,
            last: None,
        }
    }

    /// Adds a sample taken at `now`. Above the current value it replaces it; below, the value
    /// moves toward it by `1 - exp(-elapsed / tau)`, `elapsed` being the time since the last
    /// sample, so a burst of samples at one instant does not erase a recent peak.
    pub fn observe(&mut self, rtt: Duration, now: Instant) {
        let sample = rtt.as_secs_f64() * 1000.0;
        // A sample no higher than the value, taken at the instant of the last one, moves it by
        // `1 - exp(0)`: nothing. Replies read together share their instant, so most of a
        // pipelined batch ends here without the exponential.
        // (With a zero `tau` every sample is the value: no shortcut.)
        if self.last == Some(now)
            && !self.tau.is_zero()
            && self.value_ms.is_some_and(|v| sample <= v)
        {
            return;
        }
        let next = match (self.value_ms, self.last) {
            (Some(current), Some(last)) if sample < current => {
                let elapsed = now.saturating_duration_since(last).as_secs_f64();
                let tau = self.tau.as_secs_f64();
                let weight = if tau > 0.0 {
                    1.0 - (-elapsed / tau).exp()
                } else {
                    1.0
                };
                current + weight * (sample - current)
            }
            _ => sample,
        };
        self.value_ms = Some(next);
        // Samples may be reported out of order across workers; time never runs backward here.
        self.last = Some(self.last.map_or(now, |last| last.max(now)));
    }

    /// The estimate in milliseconds; `None` before any sample.
    pub fn value_ms(&self) -> Option<f64> {
        self.value_ms
    }

    /// When the last sample was taken.
    pub fn last_sample(&self) -> Option<Instant> {
        self.last
    }

    /// Whether a sample was taken within `max_age` before `now`.
    pub fn is_fresh(&self, now: Instant, max_age: Duration) -> bool {
        self.last
            .is_some_and(|last| now.saturating_duration_since(last) <= max_age)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn empty_until_first_sample() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(ms(1000));
        assert_eq!(e.value_ms(), None);
        assert_eq!(e.last_sample(), None);
        assert!(!e.is_fresh(t0, ms(1000)));
        e.observe(ms(4), t0);
        assert_eq!(e.value_ms(), Some(4.0));
        assert_eq!(e.last_sample(), Some(t0));
    }

    #[test]
    fn peaks_are_taken_at_once() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(ms(1000));
        e.observe(ms(1), t0);
        e.observe(ms(50), t0);
        assert_eq!(e.value_ms(), Some(50.0));
        e.observe(Duration::from_micros(50_500), t0 + ms(1));
        assert_eq!(e.value_ms(), Some(50.5));
    }

    #[test]
    fn lower_samples_decay_by_elapsed_time() {
        let t0 = Instant::now();
        // (elapsed since the previous sample, expected weight of the new sample)
        let table = [
            (0u64, 0.0),
            (1000, 1.0 - (-1.0f64).exp()),
            (500, 1.0 - (-0.5f64).exp()),
            (10_000, 1.0 - (-10.0f64).exp()),
        ];
        for (elapsed, weight) in table {
            let mut e = PeakEwma::new(ms(1000));
            e.observe(ms(100), t0);
            e.observe(ms(10), t0 + ms(elapsed));
            let expected = 100.0 + weight * (10.0 - 100.0);
            assert!(
                close(e.value_ms().unwrap(), expected),
                "elapsed {elapsed}: {:?} != {expected}",
                e.value_ms()
            );
        }
    }

    #[test]
    fn repeated_fast_samples_converge() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(ms(200));
        e.observe(ms(80), t0);
        for i in 1..=50u64 {
            e.observe(ms(2), t0 + ms(100 * i));
        }
        let v = e.value_ms().unwrap();
        assert!((2.0..2.01).contains(&v), "{v}");
    }

    #[test]
    fn zero_tau_follows_the_last_sample() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(Duration::ZERO);
        e.observe(ms(9), t0);
        e.observe(ms(3), t0);
        assert_eq!(e.value_ms(), Some(3.0));
    }

    #[test]
    fn freshness_and_out_of_order_samples() {
        let t0 = Instant::now();
        let mut e = PeakEwma::new(ms(1000));
        e.observe(ms(5), t0 + ms(100));
        e.observe(ms(6), t0);
        assert_eq!(e.last_sample(), Some(t0 + ms(100)));
        assert!(e.is_fresh(t0 + ms(1100), ms(1000)));
        assert!(!e.is_fresh(t0 + ms(1101), ms(1000)));
        assert!(e.is_fresh(t0, ms(0)), "a sample from the future is fresh");
    }
}
