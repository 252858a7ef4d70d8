//! End-to-end drills through the real binary: `kill-master` on topologies/two-dc.yaml and
//! `hang-node` on topologies/single-dc.yaml, each bringing up its own lab (own directory and
//! port offset, so both can run at once), checking the exit status, the invariants and the
//! fields of the JSON report, and that the lab is gone afterwards.
//!
//! `kill_master_through_a_users_lab` brings up topologies/single-dc-users.yaml itself, checks
//! that its gateway refuses clients that did not authenticate, and drills through it.
//!
//! They need `redis-server`; without it they fail, saying how to install it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;

/// Bound on one drill run, lab start and teardown included.
const DRILL_TIMEOUT: Duration = Duration::from_secs(300);

fn topology(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("topologies")
        .join(name)
}

fn meridian() -> Command {
    Command::new(common::binary())
}

/// Takes the lab down if a failed test left it running.
struct Cleanup {
    file: PathBuf,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.dir.exists() {
            let _ = meridian()
                .args(["lab", "down"])
                .arg(&self.file)
                .arg("--dir")
                .arg(&self.dir)
                .status();
        }
    }
}

/// A lab a test brings up itself (`lab up` on `file` at `--port-offset`), taken down on drop.
struct OwnLab {
    file: PathBuf,
    dir: PathBuf,
    offset: &'static str,
    _cleanup: Cleanup,
}

impl OwnLab {
    /// Takes down whatever an earlier, killed run left in `dir_name`, then runs `lab up`;
    /// returns the lab and what `lab up` printed (panics when it failed).
    fn up(topology_file: &str, dir_name: &str, offset: &'static str) -> (OwnLab, String) {
        common::require_binary("redis-server", common::INSTALL);
        let file = topology(topology_file);
        let dir = std::env::temp_dir().join(dir_name);
        let lab = OwnLab {
            _cleanup: Cleanup {
                file: file.clone(),
                dir: dir.clone(),
            },
            file,
            dir,
            offset,
        };
        let _ = lab.cmd("down").stdout(Stdio::null()).status();
        let child = lab
            .cmd("up")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start meridian lab up");
        let (ok, text) = wait_bounded(child, "lab up");
        assert!(ok, "lab up failed:\n{text}");
        (lab, text)
    }

    /// `meridian lab <sub> <file> --dir <dir> --port-offset <offset>`.
    fn cmd(&self, sub: &str) -> Command {
        let mut c = meridian();
        c.args(["lab", sub])
            .arg(&self.file)
            .arg("--dir")
            .arg(&self.dir)
            .args(["--port-offset", self.offset]);
        c
    }
}

fn wait_bounded(mut child: Child, what: &str) -> (bool, String) {
    let deadline = Instant::now() + DRILL_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the drill") {
            let out = child.wait_with_output().expect("drill output");
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return (status.success(), text);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("drill output");
            panic!(
                "{what} did not finish within {DRILL_TIMEOUT:?}:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The report of one drill: JSON (parsed), the printed text, the HTML page.
struct Drilled {
    json: Value,
    text: String,
    html: String,
}

/// Runs a drill on a fresh lab and returns its reports.
fn drill(file: &str, scenario: &str, port_offset: u16) -> Drilled {
    common::require_binary("redis-server", common::INSTALL);
    let stem = file.trim_end_matches(".yaml");
    let file = topology(file);
    // A fixed name: a run killed half-way leaves its lab here, and the next run finds it.
    let dir = std::env::temp_dir().join(format!("meridian-lab-test-{stem}-{scenario}"));
    // Whatever an earlier, killed run left there goes first: the drill must start its own lab.
    let _ = meridian()
        .args(["lab", "down"])
        .arg(&file)
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .status();
    let _cleanup = Cleanup {
        file: file.clone(),
        dir: dir.clone(),
    };
    let drilled = run_drill(&file, scenario, port_offset, &dir);
    assert!(
        !dir.exists(),
        "the drill left its lab dir {}",
        dir.display()
    );
    drilled
}

/// Runs `meridian drill` on the lab in `dir` (starting one there if none runs) and returns its
/// reports.
fn run_drill(file: &Path, scenario: &str, port_offset: u16, dir: &Path) -> Drilled {
    let stem = file.file_stem().unwrap_or_default().to_string_lossy();
    let json = std::env::temp_dir().join(format!(
        "meridian-drill-{stem}-{scenario}-{}.json",
        std::process::id()
    ));
    let html = json.with_extension("html");
    let child = meridian()
        .arg("drill")
        .arg(file)
        .args(["--scenario", scenario, "--duration", "15s", "--rate", "200"])
        .arg("--dir")
        .arg(dir)
        .args(["--port-offset", &port_offset.to_string()])
        .arg("--json")
        .arg(&json)
        .arg("--html")
        .arg(&html)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start meridian drill");
    let (ok, text) = wait_bounded(child, &format!("drill {scenario}"));
    assert!(ok, "drill {scenario} failed:\n{text}");
    let report: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(&json)
            .unwrap_or_else(|e| panic!("read {}: {e}\n{text}", json.display())),
    )
    .unwrap_or_else(|e| panic!("the JSON report does not parse: {e}"));
    let _ = std::fs::remove_file(&json);
    let page = std::fs::read_to_string(&html)
        .unwrap_or_else(|e| panic!("read {}: {e}\n{text}", html.display()));
    let _ = std::fs::remove_file(&html);
    Drilled {
        json: report,
        text,
        html: page,
    }
}

fn num(v: &Value, what: &str) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v:?}"))
}

/// The `what` of every event in the report, in order.
fn events(r: &Value) -> Vec<&str> {
    let events = r["events"].as_sequence().expect("events is a list");
    events.iter().filter_map(|e| e["what"].as_str()).collect()
}

/// Asserts that, for each prefix, some event starts with it.
fn assert_events(events: &[&str], prefixes: &[&str]) {
    for prefix in prefixes {
        assert!(
            events.iter().any(|e| e.starts_with(prefix)),
            "no event starting {prefix:?}: {events:?}"
        );
    }
}

/// The dashboard of the gateway serving clients on `addr`: its admin endpoint, one port up.
fn dashboard_of(addr: &str) -> String {
    let (ip, port) = addr.rsplit_once(':').expect("ip:port");
    let port: u16 = port.parse().expect("port");
    format!("http://{ip}:{}/", port + 1)
}

/// Checks the figures the report took from the gateway's own `/metrics`, and its dashboard
/// link (printed by the drill, in the JSON report).
fn check_gateway_metrics(g: &Value, dcs: &[&str], text: &str, html: &str) {
    let dc = g["dc"].as_str().unwrap_or("?");
    let dashboard = dashboard_of(g["addr"].as_str().expect("addr"));
    assert_eq!(g["dashboard"].as_str(), Some(dashboard.as_str()));
    assert!(
        text.contains(&format!("drill: gateway {dc} dashboard {dashboard}")),
        "the drill did not print {dashboard}:\n{text}"
    );
    let m = &g["metrics"];
    assert!(
        m["error"].is_null() && m.as_mapping().is_some(),
        "gateway {dc}: no /metrics figures: {m:?}"
    );
    // The gateway counted every request it received; the load sent them (plus the few it
    // sent and gave up on, which the gateway still received).
    let (counted, sent) = (
        num(&m["requests"], "requests"),
        num(&g["requests"], "requests"),
    );
    assert!(
        counted >= sent * 0.9 && counted <= sent * 1.1 + 100.0,
        "gateway {dc}: /metrics counted {counted} requests, the load sent {sent}"
    );
    let reads = m["reads_by_dc"].as_mapping().expect("reads_by_dc");
    for want in dcs {
        assert!(
            reads.contains_key(Value::from(*want)),
            "gateway {dc}: no reads figure for {want}: {reads:?}"
        );
    }
    let served: f64 = reads.values().map(|v| num(v, "reads")).sum();
    assert!(served > 0.0, "gateway {dc}: /metrics counted no reads");
    let by_kind: f64 = m["errors_by_kind"]
        .as_mapping()
        .unwrap()
        .values()
        .map(|v| num(v, "errors"))
        .sum();
    assert_eq!(by_kind, num(&m["errors"], "errors"));
    num(&m["breaker_transitions"], "breaker_transitions");
    assert!(
        text.contains(&dashboard) && text.contains("as each gateway counted it"),
        "the printed report has no /metrics table:\n{text}"
    );
    assert!(
        html.contains(&format!("<a href=\"{dashboard}\">")),
        "the HTML report does not link {dashboard}"
    );
    let requests = format!("<td>{counted}</td>");
    assert!(html.contains(&requests), "the HTML report lacks {requests}");
}

/// Checks what every report must hold, whatever the scenario.
fn check_report(d: &Drilled, scenario: &str, dcs: &[&str]) {
    let (r, text) = (&d.json, d.text.as_str());
    assert_eq!(r["scenario"].as_str(), Some(scenario));
    assert_eq!(r["ok"].as_bool(), Some(true), "{text}");
    let invariants = r["invariants"].as_sequence().expect("invariants");
    let names: Vec<&str> = invariants
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "no write reached a replica",
            "reads returned written values",
            "replies matched requests",
            "no errors after heal"
        ]
    );
    assert!(
        invariants.iter().all(|i| i["ok"].as_bool() == Some(true)),
        "{text}"
    );
    assert_eq!(num(&r["writes_on_replicas"], "writes_on_replicas"), 0.0);
    let (fault, heal, settle, end) = (
        num(&r["fault_ms"], "fault_ms"),
        num(&r["heal_ms"], "heal_ms"),
        num(&r["settle_ms"], "settle_ms"),
        num(&r["end_ms"], "end_ms"),
    );
    assert!(
        0.0 < fault && fault < heal && heal < settle && settle < end,
        "{fault} {heal} {settle} {end}"
    );
    let datacenters: Vec<&str> = r["datacenters"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(datacenters, dcs);
    let buckets = (end / num(&r["bucket_ms"], "bucket_ms")) as usize + 1;
    let gateways = r["gateways"].as_sequence().expect("gateways");
    assert_eq!(gateways.len(), dcs.len());
    for g in gateways {
        let dc = g["dc"].as_str().unwrap_or("?");
        let requests = num(&g["requests"], "requests");
        assert!(requests > 0.0, "gateway {dc} sent nothing");
        assert_eq!(
            num(&g["reads"], "reads") + num(&g["writes"], "writes"),
            requests
        );
        let by_kind: f64 = g["errors_by_kind"]
            .as_mapping()
            .unwrap()
            .values()
            .map(|v| num(v, "errors"))
            .sum();
        assert_eq!(by_kind, num(&g["errors"], "errors"));
        for field in ["wrong_values", "crossed_replies", "errors_after_settle"] {
            assert_eq!(num(&g[field], field), 0.0, "gateway {dc}: {field}");
        }
        for phase in ["before", "during", "after"] {
            let lat = &g["latency_ms"][phase];
            assert!(
                num(&lat["count"], "count") > 0.0,
                "gateway {dc} sent nothing {phase}"
            );
            assert!(num(&lat["p50"], "p50") <= num(&lat["p99"], "p99"));
            let share = g["read_share"][phase].as_mapping().expect("read_share");
            let total: f64 = share.values().map(|v| num(v, "share")).sum();
            assert!(
                (total - 1.0).abs() < 0.01,
                "gateway {dc}: read shares {phase} sum to {total}"
            );
        }
        let timeline = &g["timeline"];
        for series in ["requests", "errors", "p50_ms", "p99_ms"] {
            assert_eq!(
                timeline[series].as_sequence().unwrap().len(),
                buckets,
                "{series}"
            );
        }
        let by_dc = timeline["reads_by_dc"].as_mapping().unwrap();
        assert_eq!(by_dc.len(), dcs.len());
        let served: f64 = by_dc
            .values()
            .flat_map(|s| s.as_sequence().unwrap())
            .map(|v| num(v, "reads"))
            .sum();
        assert!(served > 0.0, "the nodes saw no reads of gateway {dc}");
        check_gateway_metrics(g, dcs, text, &d.html);
    }
}

#[test]
fn lab_up_prints_each_gateway_dashboard() {
    let (lab, text) = OwnLab::up("two-dc.yaml", "meridian-lab-test-up", "2000");
    let at = |cmd: &str| lab.cmd(cmd);
    assert!(text.contains("DASHBOARD"), "{text}");
    // One gateway per DC, each on its DC's .100 address; the dashboard one port above.
    let urls = ["http://127.0.1.100:9628/", "http://127.0.2.100:9628/"];
    for url in urls {
        assert!(text.contains(url), "lab up did not print {url}:\n{text}");
        let addr = url.trim_start_matches("http://").trim_end_matches('/');
        let page = common::http::get(addr, "/");
        assert_eq!(page.status, 200, "{url}");
        assert!(
            page.body.contains("<title>meridian dashboard</title>"),
            "{url}"
        );
        let state = common::http::get(addr, "/api/state");
        assert_eq!(state.status, 200, "{url}");
        assert!(state.body.contains("\"east\"") && state.body.contains("\"west\""));
    }
    let status = at("status").output().expect("lab status");
    let status_text = String::from_utf8_lossy(&status.stdout);
    for url in urls {
        assert!(status_text.contains(url), "lab status: {status_text}");
    }
    let down = at("down").output().expect("lab down");
    assert!(down.status.success());
}

#[test]
fn kill_master_on_two_dc() {
    let d = drill("two-dc.yaml", "kill-master", 1000);
    check_report(&d, "kill-master", &["east", "west"]);
    let (r, text) = (&d.json, &d.text);
    assert_events(
        &events(r),
        &[
            "fault: kill east-1",
            "failover done",
            "heal: restart east-1",
            "cluster healthy",
        ],
    );
    // The killed master's slots lost writes for a while, and got them back.
    let gateways = r["gateways"].as_sequence().unwrap();
    assert!(
        gateways
            .iter()
            .any(|g| g["first_failed_write_ms"].as_f64().is_some()),
        "{text}"
    );
    for g in gateways {
        if g["first_failed_write_ms"].as_f64().is_some() {
            assert!(
                num(&g["write_unavailable_ms"], "write_unavailable_ms") > 0.0,
                "{text}"
            );
        }
    }
}

#[test]
fn hang_node_on_single_dc() {
    let d = drill("single-dc.yaml", "hang-node", 1000);
    check_report(&d, "hang-node", &["local"]);
    let (r, text) = (&d.json, &d.text);
    assert_events(
        &events(r),
        &[
            "fault: stop local-1",
            "heal: cont local-1",
            "cluster healthy",
        ],
    );
    let g = &r["gateways"][0];
    assert_eq!(g["read_command"].as_str(), Some("get"));
    assert!(
        g["first_failed_write_ms"].as_f64().is_some(),
        "writes to a stopped master must fail: {text}"
    );
}

/// A `tls: true` lab: nodes on tls-port with tls-cluster and tls-replication, the gateway on
/// cluster.tls; a master killed and restarted fails over and heals through TLS.
#[test]
fn kill_master_on_single_dc_with_tls() {
    let d = drill("single-dc-tls.yaml", "kill-master", 4000);
    check_report(&d, "kill-master", &["local"]);
    assert_events(
        &events(&d.json),
        &[
            "fault: kill local-1",
            "failover done",
            "heal: restart local-1",
            "cluster healthy",
        ],
    );
}

/// The passwords of a users lab, from its `users.secret` (`NAME PASSWORD` lines).
fn lab_passwords(file: &Path) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect()
}

/// Sends one command on `raw` and returns its reply as text.
fn ask(raw: &mut common::raw::Raw, args: &[&str]) -> String {
    raw.send(args);
    raw.read_text()
}

/// A `users: true` lab: its gateway answers NOAUTH to a client that did not log in, the lab's
/// passwords are in a private file and nowhere in what the lab prints, the read-only user may
/// not write, and a `kill-master` drill through it (every load connection logged in as `lab`)
/// keeps every invariant.
#[test]
fn kill_master_through_a_users_lab() {
    use std::os::unix::fs::PermissionsExt as _;

    let (lab, up_text) = OwnLab::up(
        "single-dc-users.yaml",
        "meridian-lab-test-single-dc-users",
        "5000",
    );
    let at = |cmd: &str| lab.cmd(cmd);
    let (file, dir) = (&lab.file, &lab.dir);
    let secret = dir.join("users.secret");
    assert!(
        up_text.contains(&secret.display().to_string()),
        "lab up does not say where the passwords are:\n{up_text}"
    );
    let mode = std::fs::metadata(&secret)
        .expect("users.secret")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "users.secret is readable by others");
    let passwords = lab_passwords(&secret);
    let password = |user: &str| {
        let found = passwords.iter().find(|(u, _)| u == user);
        found
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no password of {user}"))
    };
    let status = at("status").output().expect("lab status");
    let status_text = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status_text.contains(&secret.display().to_string()),
        "{status_text}"
    );
    let config = std::fs::read_to_string(dir.join("gateway-local.yaml")).expect("gateway config");
    for (user, pw) in &passwords {
        for (what, text) in [
            ("lab up", &up_text),
            ("lab status", &status_text),
            ("config", &config),
        ] {
            assert!(
                !text.contains(pw.as_str()),
                "{what} shows the password of {user}"
            );
        }
    }

    let state: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(dir.join("state.yaml")).expect("state.yaml"),
    )
    .expect("state.yaml parses");
    let addr = state["gateways"][0]["addr"]
        .as_str()
        .expect("gateway addr")
        .to_string();
    let mut raw = common::raw::Raw::connect(&addr);
    let refused = ask(&mut raw, &["GET", "lab-users-probe"]);
    assert!(refused.starts_with("-NOAUTH"), "{refused}");
    let refused = ask(&mut raw, &["AUTH", "lab", "not-the-password"]);
    assert!(refused.starts_with("-WRONGPASS"), "{refused}");
    assert_eq!(
        ask(&mut raw, &["AUTH", "reader", &password("reader")]),
        "+OK\r\n"
    );
    let denied = ask(&mut raw, &["SET", "lab-users-probe", "x"]);
    assert!(denied.starts_with("-NOPERM"), "{denied}");
    assert_eq!(ask(&mut raw, &["GET", "lab-users-probe"]), "$-1\r\n");
    assert_eq!(ask(&mut raw, &["AUTH", "lab", &password("lab")]), "+OK\r\n");
    assert_eq!(
        ask(&mut raw, &["SET", "lab-users-probe", "x", "PX", "60000"]),
        "+OK\r\n"
    );

    // The drill reuses the running lab: its load logs in with the lab's password.
    let d = run_drill(file, "kill-master", 5000, dir);
    assert!(d.text.contains("reusing the lab"), "{}", d.text);
    check_report(&d, "kill-master", &["local"]);
    assert_events(
        &events(&d.json),
        &[
            "fault: kill local-1",
            "failover done",
            "heal: restart local-1",
            "cluster healthy",
        ],
    );
    let g = &d.json["gateways"][0];
    let kinds = g["errors_by_kind"].as_mapping().expect("errors_by_kind");
    for kind in kinds.keys().filter_map(Value::as_str) {
        assert!(
            !["auth", "NOAUTH", "WRONGPASS", "NOPERM"].contains(&kind),
            "the load was refused ({kind}): {}",
            d.text
        );
    }
    // Neither the drill's reports nor the gateway's log hold a password.
    let report = serde_yaml_ng::to_string(&d.json).expect("report as text");
    let log = std::fs::read_to_string(dir.join("gateway-local.log")).expect("gateway log");
    for (_, pw) in &passwords {
        for (what, text) in [
            ("drill output", &d.text),
            ("JSON report", &report),
            ("HTML report", &d.html),
            ("gateway log", &log),
        ] {
            assert!(!text.contains(pw.as_str()), "the {what} shows a password");
        }
    }
    let down = at("down").output().expect("lab down");
    assert!(down.status.success());
    assert!(!secret.exists(), "lab down left {}", secret.display());
}
