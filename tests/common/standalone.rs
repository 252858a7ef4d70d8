//! One plain (non-cluster) redis-server on loopback: what an application would talk to without
//! meridian, the reference the compatibility tests compare meridian's replies with.

use super::raw::Raw;
use super::{Node, TempDir, tail};
use std::path::Path;
use std::thread;

/// A standalone redis-server; dropping it kills the process and removes its temp dir.
pub struct Standalone {
    node: Node,
    _dir: TempDir,
}

impl Standalone {
    /// Starts a redis-server on 127.0.0.1 (no persistence) with `extra` arguments added (e.g.
    /// `&["--notify-keyspace-events", "Ex"]`) and waits until it answers.
    pub fn start(extra: &[&str]) -> Standalone {
        let dir = TempDir::new();
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let args = move |port: u16, dir: &Path| -> Vec<String> {
            let (port, dir) = (port.to_string(), dir.to_string_lossy());
            #[rustfmt::skip]
            let args = [
                "--port", &port, "--bind", "127.0.0.1", "--dir", &dir,
                "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--daemonize", "no",
            ];
            args.iter()
                .map(|s| s.to_string())
                .chain(extra.iter().cloned())
                .collect()
        };
        let node = Node::launch("127.0.0.1", dir.path(), args);
        Standalone { node, _dir: dir }
    }

    /// `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        self.node.addr.clone()
    }

    /// The server process, for queries ([`Node::query`]) and its log.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// A raw client connected to it.
    pub fn raw(&self) -> Raw {
        Raw::connect(&self.node.addr)
    }
}

impl Drop for Standalone {
    fn drop(&mut self) {
        if thread::panicking() {
            let log = self.node.log_path();
            eprintln!(
                "--- standalone {} ({}), last 20 lines ---\n{}",
                self.node.addr,
                log.display(),
                tail(&log, 20)
            );
        }
        self.node.kill();
    }
}
