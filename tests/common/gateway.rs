//! The meridian binary as a child process in front of a test cluster.

use super::raw::Raw;
use super::{Cluster, TempDir, signal, spawn, tail};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Bound on meridian printing its `listening on` line.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on meridian exiting after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Read/write timeout of the clients handed to tests.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start meridian; `GatewayOptions::default()` is one worker and nothing extra.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    /// Top-level `workers:` value.
    pub workers: usize,
    /// YAML lines placed inside the `cluster:` mapping (e.g. `"password: secret"`).
    pub cluster_yaml: String,
    /// Top-level YAML appended after the generated keys (e.g. `"limits: { max_args: 8 }"`).
    pub extra_yaml: String,
    /// Extra command-line arguments after `serve -c FILE`.
    pub args: Vec<String>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            workers: 1,
            cluster_yaml: String::new(),
            extra_yaml: String::new(),
            args: Vec::new(),
        }
    }
}

impl GatewayOptions {
    /// The defaults with `workers` workers.
    pub fn with_workers(workers: usize) -> GatewayOptions {
        GatewayOptions {
            workers,
            ..GatewayOptions::default()
        }
    }
}

/// A running `meridian serve`; dropping it kills the process (printing its logs if panicking).
pub struct Gateway {
    child: Option<Child>,
    pid: u32,
    addr: String,
    config: PathBuf,
    dir: TempDir,
}

impl Gateway {
    /// Starts meridian (one worker) in front of `cluster`, with `extra_yaml` as extra top-level keys.
    pub fn start(cluster: &Cluster, extra_yaml: &str) -> Gateway {
        let opts = GatewayOptions {
            extra_yaml: extra_yaml.to_string(),
            ..GatewayOptions::default()
        };
        Self::start_with(cluster, opts)
    }

    /// Starts meridian in front of `cluster` with every node as a seed.
    pub fn start_with(cluster: &Cluster, opts: GatewayOptions) -> Gateway {
        Self::start_with_seeds(&cluster.seeds(), opts)
    }

    /// Starts meridian with explicit seeds (which need not be reachable).
    pub fn start_with_seeds(seeds: &[String], opts: GatewayOptions) -> Gateway {
        Self::start_config(&render_config(seeds, &opts), &opts.args)
    }

    /// Starts meridian with `yaml` as its whole config file (which must listen on port 0) and
    /// `args` after `serve -c FILE`.
    pub fn start_config(yaml: &str, args: &[String]) -> Gateway {
        let dir = TempDir::new();
        let config = dir.path().join("meridian.yaml");
        fs::write(&config, yaml).unwrap_or_else(|e| panic!("write {}: {e}", config.display()));
        let stderr_path = dir.path().join("stderr.log");
        let stderr = File::create(&stderr_path)
            .unwrap_or_else(|e| panic!("create {}: {e}", stderr_path.display()));
        let mut cmd = Command::new(binary());
        cmd.arg("serve").arg("-c").arg(&config).args(args);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = spawn(cmd).unwrap_or_else(|e| panic!("spawn meridian: {e}"));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        let stdout_path = dir.path().join("stdout.log");
        thread::spawn(move || pump_stdout(stdout, &stdout_path, &lines_tx));
        // Built before waiting so that a failed start still kills the child and prints its logs.
        let mut gateway = Gateway {
            pid: child.id(),
            child: Some(child),
            addr: String::new(),
            config,
            dir,
        };
        gateway.addr = gateway.await_listening(&lines_rx);
        gateway
    }

    fn await_listening(&mut self, lines: &mpsc::Receiver<String>) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(addr) = parse_listening(&line) {
                        return addr;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "meridian did not print `listening on ADDR` on stdout within {START_TIMEOUT:?}"
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().map(Child::wait);
                    panic!("meridian closed stdout before `listening on ADDR` (exit: {status:?})");
                }
            }
        }
    }

    /// The address meridian listens on, `"127.0.0.1:PORT"`.
    pub fn addr(&self) -> String {
        self.addr.clone()
    }

    /// A plain (non-cluster) sync client connected to meridian, with 10 s read/write timeouts.
    pub fn client(&self) -> redis::Connection {
        let client =
            redis::Client::open(format!("redis://{}/", self.addr)).expect("valid redis URL");
        let conn = client
            .get_connection_with_timeout(CLIENT_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect a client to meridian at {}: {e}", self.addr));
        conn.set_read_timeout(Some(CLIENT_TIMEOUT))
            .expect("set read timeout");
        conn.set_write_timeout(Some(CLIENT_TIMEOUT))
            .expect("set write timeout");
        conn
    }

    /// A raw RESP client connected to meridian, for byte-exact and malformed-input tests.
    pub fn raw(&self) -> Raw {
        Raw::connect(&self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self
            .child
            .take()
            .expect("stop(): meridian was already stopped");
        if matches!(child.try_wait(), Ok(None)) {
            signal(self.pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(super::POLL),
                other => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "meridian did not exit within {STOP_TIMEOUT:?} after SIGTERM ({other:?})"
                    );
                }
            }
        }
    }

    /// The admin endpoint's address, from meridian's `admin on http://ADDR` line (printed right
    /// after `listening on`); panics when it does not come.
    pub fn admin_addr(&self) -> String {
        let path = self.dir.path().join("stdout.log");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = fs::read_to_string(&path).unwrap_or_default();
            if let Some(addr) = out.lines().find_map(parse_admin) {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "meridian printed no `admin on http://ADDR` line:\n{out}"
            );
            thread::sleep(super::POLL);
        }
    }

    /// The TLS listener's address, from meridian's `tls listening on ADDR` line (printed right
    /// after the plain one); panics when it does not come.
    pub fn tls_addr(&self) -> String {
        let path = self.dir.path().join("stdout.log");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = fs::read_to_string(&path).unwrap_or_default();
            let line = out.lines().find(|l| l.contains("tls listening on "));
            if let Some(addr) = line.and_then(parse_listening) {
                return addr;
            }
            assert!(
                Instant::now() < deadline,
                "meridian printed no `tls listening on ADDR` line:\n{out}"
            );
            thread::sleep(super::POLL);
        }
    }

    /// Everything meridian wrote to stderr so far (its logs).
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&fs::read(self.dir.path().join("stderr.log")).unwrap_or_default())
            .into_owned()
    }

    /// The generated config file.
    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            let (out, err) = (
                self.dir.path().join("stdout.log"),
                self.dir.path().join("stderr.log"),
            );
            eprintln!(
                "--- meridian stdout, last 100 lines ---\n{}",
                tail(&out, 100)
            );
            eprintln!(
                "--- meridian stderr, last 100 lines ---\n{}",
                tail(&err, 100)
            );
        }
    }
}

/// The meridian binary built by cargo for this test target.
pub fn binary() -> &'static str {
    // option_env! (not env!) keeps this module compiling in a crate without the binary; the
    // tests that use it then fail here instead of being skipped.
    match option_env!("CARGO_BIN_EXE_meridian") {
        Some(path) => path,
        None => panic!(
            "CARGO_BIN_EXE_meridian is not set: run the tests with cargo in the meridian crate"
        ),
    }
}

/// The config file for `seeds` and `opts`.
pub fn render_config(seeds: &[String], opts: &GatewayOptions) -> String {
    let seeds: Vec<String> = seeds.iter().map(|s| format!("\"{s}\"")).collect();
    // A test may set its own `listen` (e.g. "" for a TLS-only gateway).
    let listen = match opts.extra_yaml.lines().any(|l| l.starts_with("listen:")) {
        true => "",
        false => "listen: 127.0.0.1:0\n",
    };
    let mut yaml = format!(
        "{listen}workers: {}\ncluster:\n  seeds: [{}]\n  refresh_interval: 1s\n",
        opts.workers,
        seeds.join(", ")
    );
    for line in opts.cluster_yaml.lines().filter(|l| !l.trim().is_empty()) {
        yaml.push_str(&format!("  {line}\n"));
    }
    // An admin endpoint on an ephemeral port unless the test configures its own: the
    // default port would collide between gateways running at once.
    if !opts.extra_yaml.lines().any(|l| l.starts_with("admin:")) {
        yaml.push_str("admin:\n  listen: 127.0.0.1:0\n");
    }
    yaml.push_str(&opts.extra_yaml);
    if !yaml.ends_with('\n') {
        yaml.push('\n');
    }
    yaml
}

/// The address in a `… listening on 127.0.0.1:PORT` line, if the line is one.
pub fn parse_listening(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("listening on ")?;
    let token = rest.split_whitespace().next()?;
    token
        .parse::<SocketAddr>()
        .ok()
        .map(|addr| addr.to_string())
}

/// The address in a `meridian: admin on http://127.0.0.1:PORT` line, if the line is one.
pub fn parse_admin(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("admin on http://")?;
    let addr: SocketAddr = rest.trim().parse().ok()?;
    Some(addr.to_string())
}

/// Copies meridian's stdout to a log file and forwards each line until the receiver is gone.
fn pump_stdout(stdout: ChildStdout, log_path: &Path, lines: &mpsc::Sender<String>) {
    let mut log = File::create(log_path).ok();
    let mut reader = BufReader::new(stdout);
    let mut buf = Vec::new();
    // Ends at EOF, i.e. when meridian exits.
    while matches!(reader.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
        if let Some(log) = log.as_mut() {
            let _ = log.write_all(&buf);
        }
        let _ = lines.send(String::from_utf8_lossy(&buf).trim_end().to_string());
        buf.clear();
    }
}
