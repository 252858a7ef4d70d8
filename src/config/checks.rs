//! The problem list every semantic check of a config appends to, with the small rules that
//! several checks share.

use std::time::Duration;

use super::errors::ConfigError;

/// The problems found so far; checks only ever add to it.
pub(super) struct Errors(Vec<ConfigError>);

impl Errors {
    /// An empty list.
    pub(super) fn new() -> Errors {
        Errors(Vec::new())
    }

    /// The problems in the order they were found.
    pub(super) fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }

    /// Adds a problem at `path`.
    pub(super) fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path, message));
    }

    /// A duration that must not be zero.
    pub(super) fn positive(&mut self, path: &str, value: Duration) {
        if value.is_zero() {
            self.push(path, "must be greater than 0");
        }
    }

    /// A count that must not be zero.
    pub(super) fn at_least_one(&mut self, path: &str, value: usize) {
        if value == 0 {
            self.push(path, "must be at least 1");
        }
    }
}
