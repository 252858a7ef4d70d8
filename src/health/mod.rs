//! Per-node health decisions: the circuit breaker state machine and the peak-EWMA of
//! round-trip times.
//!
//! Both are pure: they take the time as an argument and own no clock, socket or task. The
//! connection layer reports results into them; the read policy reads their outputs through
//! the `Candidate`s of the policy module.

pub mod breaker;
pub mod ewma;
pub mod probe;
pub mod table;
