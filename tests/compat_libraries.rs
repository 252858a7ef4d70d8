//! Real client libraries see meridian as a standalone Redis (issue 12): one app-like workload,
//! written once per language (tests/clients/workload.py for redis-py, workload.mjs for ioredis
//! and node-redis), runs against a standalone redis-server and against meridian in front of a
//! Redis Cluster. Each run prints a transcript, one normalised line per step ([`STEPS`]); the
//! transcript through meridian must equal the standalone one, per library and mode, and every
//! workload must print the same lines as the others against the standalone server.
//!
//! Needs python3 with redis-py and node >= 20 with tests/clients/node_modules, both installed by
//! scripts/install-deps.sh. `cargo test --test compat_libraries -- --nocapture` shows each run.

mod common;

use common::{Cluster, Gateway, GatewayOptions, Standalone, require_binary};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Hang guard of one workload run: it only turns a hang into a failure (runs take seconds).
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The steps every workload prints, in this order.
const STEPS: &[&str] = &[
    "connect",
    "strings.set",
    "strings.get",
    "strings.incr",
    "strings.append",
    "strings.getex",
    "strings.mset",
    "hash",
    "list",
    "set",
    "zset",
    "stream",
    "expiry",
    "pipeline",
    "transaction",
    "transaction.exec_error",
    "watch",
    "lua",
    "blocking",
    "pubsub",
    "scan",
    "errors",
    "delete",
];

/// The one list of steps known to differ through meridian because of a meridian bug that is
/// being fixed elsewhere: `(run, step, issue reference)`, `run` as in [`Run::name`] or `"*"` for
/// every run. Such a step is still compared and its difference printed, but does not fail the
/// test; a known difference that no longer shows is printed too, so it can be removed.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[];

/// One library in one mode.
struct Run {
    library: &'static str,
    mode: &'static str,
    /// `python3` or `node`.
    program: &'static str,
    /// The workload, relative to tests/clients.
    script: &'static str,
    /// The script's MODE argument.
    arg: &'static str,
}

impl Run {
    /// `"redis-py sync-resp2"`.
    fn name(&self) -> String {
        format!("{} {}", self.library, self.mode)
    }

    /// Start of every key and channel name of this run (the same against both servers).
    fn prefix(&self) -> String {
        format!("lib-{}-{}", self.library, self.mode)
    }

    /// The RESP version the run speaks (its mode ends in resp2 or resp3).
    fn protocol(&self) -> &str {
        &self.mode[self.mode.len() - 1..]
    }
}

const fn py(mode: &'static str) -> Run {
    Run {
        library: "redis-py",
        mode,
        program: "python3",
        script: "workload.py",
        arg: mode,
    }
}

const fn node(library: &'static str, mode: &'static str, arg: &'static str) -> Run {
    Run {
        library,
        mode,
        program: "node",
        script: "workload.mjs",
        arg,
    }
}

const RUNS: &[Run] = &[
    py("sync-resp2"),
    py("sync-resp3"),
    py("asyncio-resp2"),
    py("asyncio-resp3"),
    node("ioredis", "resp2", "ioredis-resp2"),
    node("ioredis", "resp3", "ioredis-resp3"),
    node("node-redis", "resp2", "node-redis-resp2"),
    node("node-redis", "resp3", "node-redis-resp3"),
];

fn clients_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients"))
}

/// Output of one finished (or killed) workload process.
struct Output {
    ok: bool,
    status: String,
    stdout: String,
    stderr: String,
}

impl Output {
    /// `step → line` of the transcript printed so far.
    fn transcript(&self) -> BTreeMap<String, String> {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(step, value)| (step.to_string(), value.to_string()))
            .collect()
    }

    /// `NAME VERSION` of the library, from the `library NAME VERSION` line the workload prints
    /// first on stderr.
    fn library(&self) -> &str {
        let first = self.stderr.lines().next().unwrap_or_default();
        first
            .strip_prefix("library ")
            .unwrap_or("library version unknown")
    }

    fn describe(&self) -> String {
        format!(
            "{}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `run`'s workload against `addr`, killing it after [`HANG_GUARD`].
fn run_workload(run: &Run, addr: &str) -> Output {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let mut cmd = Command::new(run.program);
    cmd.current_dir(clients_dir())
        .arg(run.script)
        .args([host, port, run.arg, &run.prefix()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = common::spawn(cmd).unwrap_or_else(|e| {
        panic!(
            "start {} {}: {e} (scripts/install-deps.sh installs what it needs)",
            run.program, run.script
        )
    });
    let pipe = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = pipe(Box::new(child.stdout.take().expect("piped")));
    let stderr = pipe(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(common::POLL),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!(
                    "killed: still running after {HANG_GUARD:?} (a hang)"
                ));
            }
            Err(e) => break Err(format!("wait: {e}")),
        }
    };
    let (stdout, stderr) = (
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default(),
    );
    let ok = matches!(&status, Ok(s) if s.success()) && stdout.lines().last() == Some("done");
    let status = match status {
        Ok(s) => format!("{} {} exited: {s}", run.program, run.script),
        Err(why) => why,
    };
    Output {
        ok,
        status,
        stdout,
        stderr,
    }
}

fn known_difference(run: &Run, step: &str) -> Option<&'static str> {
    KNOWN_DIFFERENCES
        .iter()
        .find(|(r, s, _)| (*r == "*" || *r == run.name()) && *s == step)
        .map(|(_, _, why)| *why)
}

/// Compares one run's transcripts; returns the failures and prints known differences.
fn compare(run: &Run, standalone: &Output, meridian: &Output) -> Vec<String> {
    let name = run.name();
    if !standalone.ok {
        return vec![format!(
            "{name}: the workload fails against a standalone redis-server (a broken workload or \
             a missing library: scripts/install-deps.sh): {}",
            standalone.describe()
        )];
    }
    let want = standalone.transcript();
    let steps: Vec<&str> = standalone
        .stdout
        .lines()
        .filter_map(|l| l.split_once(": ").map(|(s, _)| s))
        .collect();
    if steps != STEPS {
        return vec![format!(
            "{name}: the workload printed steps {steps:?}, this test expects {STEPS:?}"
        )];
    }
    let got = meridian.transcript();
    let mut failures = Vec::new();
    for step in STEPS {
        let expected = &want[*step];
        let actual = got.get(*step);
        let known = known_difference(run, step);
        match (actual, known) {
            (Some(actual), None) if actual == expected => {}
            (Some(actual), Some(why)) if actual == expected => {
                println!("{name}: known difference in step {step} ({why}) no longer shows");
            }
            (Some(actual), Some(why)) => println!(
                "{name}: step {step} differs, a known difference ({why}):\n  standalone: \
                 {expected}\n  meridian:   {actual}"
            ),
            (Some(actual), None) => failures.push(format!(
                "{name}: step {step} differs:\n  standalone: {expected}\n  meridian:   {actual}"
            )),
            (None, _) => failures.push(format!(
                "{name}: step {step} missing through meridian (standalone: {expected})"
            )),
        }
    }
    if !meridian.ok {
        failures.push(format!(
            "{name}: the workload fails through meridian: {}",
            meridian.describe()
        ));
    }
    failures
}

/// Every workload must print the same lines against the standalone server as the first one
/// (up to its key prefix): a self-check that the per-language scripts stay one workload.
/// `connect` shows the run's protocol, so it is compared only between runs of the same protocol.
fn compare_workloads(runs: &[(&Run, &Output)]) -> Vec<String> {
    let lines = |run: &Run, out: &Output| -> BTreeMap<String, String> {
        out.transcript()
            .into_iter()
            .map(|(step, line)| (step, line.replace(&run.prefix(), "PREFIX")))
            .collect()
    };
    let ok: Vec<_> = runs.iter().filter(|(_, out)| out.ok).collect();
    let mut failures = Vec::new();
    for (run, out) in &ok {
        let mine = lines(run, out);
        // The first run of the same protocol for `connect`, the first run for the others.
        let reference = |step: &str| {
            ok.iter()
                .find(|(r, _)| step != "connect" || r.protocol() == run.protocol())
                .expect("the run itself at least")
        };
        for step in STEPS {
            let (first_run, first_out) = reference(step);
            let theirs = lines(first_run, first_out);
            let none = String::from("(no line)");
            let (a, b) = (
                theirs.get(*step).unwrap_or(&none),
                mine.get(*step).unwrap_or(&none),
            );
            if a != b {
                failures.push(format!(
                    "the workloads disagree on step {step} against the standalone server:\n  \
                     {}: {a}\n  {}: {b}",
                    first_run.name(),
                    run.name()
                ));
            }
        }
    }
    failures
}

#[test]
fn real_client_libraries_get_the_same_transcript_through_meridian_as_from_redis() {
    let node_modules = clients_dir().join("node_modules");
    require_binary("node", "apt-get install nodejs npm");
    assert!(
        node_modules.is_dir(),
        "{} is missing: run scripts/install-deps.sh (npm ci in tests/clients)",
        node_modules.display()
    );
    let standalone = Standalone::start(&[]);
    let cluster = Cluster::start(3, 0);
    // Two workers, as a deployment has several: a run's second connection (the conflicting
    // write, the publisher, the push that wakes the blocked pop) may land on the other one.
    let opts = GatewayOptions::with_workers(2);
    let gw = Gateway::start_with(&cluster, opts);
    let mut outputs = Vec::new();
    let mut failures = Vec::new();
    for run in RUNS {
        let started = Instant::now();
        let reference = run_workload(run, &standalone.addr());
        let through = run_workload(run, &gw.addr());
        let found = compare(run, &reference, &through);
        println!(
            "{} ({}): {} ({:.1} s for both runs)",
            run.name(),
            reference.library(),
            if found.is_empty() {
                "same transcript"
            } else {
                "DIFFERS"
            },
            started.elapsed().as_secs_f64()
        );
        failures.extend(found);
        outputs.push((run, reference));
    }
    let pairs: Vec<(&Run, &Output)> = outputs.iter().map(|(r, o)| (*r, o)).collect();
    failures.extend(compare_workloads(&pairs));
    assert!(
        failures.is_empty(),
        "{} difference(s) between meridian and a standalone redis-server:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
