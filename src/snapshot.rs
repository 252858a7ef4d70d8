//! `Published<T>`: an immutable snapshot behind an `Arc`, swapped under a lock that only writers
//! (and readers who saw the version change) take. Readers poll `version()` — one atomic load —
//! and keep their own `Arc` until it changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

/// A value shared by all workers, replaced as a whole.
#[derive(Debug, Default)]
pub struct Published<T> {
    version: AtomicU64,
    current: Mutex<Arc<T>>,
}

impl<T> Published<T> {
    pub fn new(value: T) -> Published<T> {
        Published {
            version: AtomicU64::new(1),
            current: Mutex::new(Arc::new(value)),
        }
    }

    /// Changes whenever a new value is published.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The current value and its version.
    pub fn load(&self) -> (u64, Arc<T>) {
        let guard = self.current.lock();
        (self.version.load(Ordering::Acquire), guard.clone())
    }

    /// Publishes a new value.
    pub fn store(&self, value: T) {
        let mut guard = self.current.lock();
        *guard = Arc::new(value);
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Publishes `f(current)` when it returns a value, atomically with respect to other writers.
    pub fn update(&self, f: impl FnOnce(&T) -> Option<T>) {
        let mut guard = self.current.lock();
        if let Some(next) = f(&guard) {
            *guard = Arc::new(next);
            self.version.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A worker's cached copy of a [`Published`] value.
#[derive(Debug)]
pub struct Cached<T> {
    version: u64,
    value: Arc<T>,
}

impl<T> Cached<T> {
    pub fn new(source: &Published<T>) -> Cached<T> {
        let (version, value) = source.load();
        Cached { version, value }
    }

    /// The current value, refreshed from `source` when its version moved.
    pub fn get(&mut self, source: &Published<T>) -> &Arc<T> {
        if source.version() != self.version {
            let (version, value) = source.load();
            self.version = version;
            self.value = value;
        }
        &self.value
    }

    /// The value as last refreshed, without looking at the source.
    pub fn stale(&self) -> &Arc<T> {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_follows_published_versions() {
        let p = Published::new(1u32);
        let mut c = Cached::new(&p);
        assert_eq!(**c.get(&p), 1);
        p.store(2);
        assert_eq!(**c.stale(), 1);
        assert_eq!(**c.get(&p), 2);
        p.update(|v| (*v == 2).then_some(3));
        p.update(|_| None);
        assert_eq!(**c.get(&p), 3);
    }
}
