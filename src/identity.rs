//! Who the gateway says it is when a client asks (INFO server and replication): a run id and a
//! replication id drawn once per start, the port it listens on, its executable and config file.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU16, Ordering};

/// The gateway's identity for this run.
#[derive(Debug)]
pub struct Identity {
    /// 40 hex digits, new at every start (INFO `run_id`).
    pub run_id: String,
    /// 40 hex digits, new at every start (INFO `master_replid`): the replication history of
    /// the one master meridian presents begins with this run.
    pub replid: String,
    port: AtomicU16,
    config_file: OnceLock<PathBuf>,
}

impl Default for Identity {
    fn default() -> Identity {
        Identity {
            run_id: random_hex40(),
            replid: random_hex40(),
            port: AtomicU16::new(0),
            config_file: OnceLock::new(),
        }
    }
}

impl Identity {
    /// Records the port the listeners are bound to.
    pub fn set_port(&self, port: u16) {
        self.port.store(port, Ordering::Relaxed);
    }

    /// The port clients connect to (0 before the listeners are bound).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }

    /// Records the config file the gateway was started with (first call wins).
    pub fn set_config_file(&self, path: PathBuf) {
        let _ = self.config_file.set(path);
    }

    /// The config file, absolute when it could be resolved; empty when there is none.
    pub fn config_file(&self) -> String {
        self.config_file
            .get()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

fn random_hex40() -> String {
    let (a, b, c) = (
        rand::random::<u64>(),
        rand::random::<u64>(),
        rand::random::<u32>(),
    );
    format!("{a:016x}{b:016x}{c:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_40_hex_digits_and_differ() {
        let id = Identity::default();
        assert_eq!(id.run_id.len(), 40);
        assert!(id.run_id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(id.run_id, id.replid);
        assert_eq!(id.config_file(), "");
        id.set_port(7617);
        assert_eq!(id.port(), 7617);
    }
}
