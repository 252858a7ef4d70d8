//! The process around the gateway: graceful shutdown on SIGTERM, `--log-format json`, and
//! `meridian check` reporting config errors as `file:line: key: message`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use common::raw::{Raw, encode, show};
use common::{Cluster, Gateway, TempDir, binary};

#[test]
fn sigterm_lets_in_flight_requests_finish_and_exits_0() {
    let cluster = Cluster::start(3, 1);
    let opts = common::GatewayOptions {
        args: vec!["--log-format".into(), "json".into()],
        ..common::GatewayOptions::default()
    };
    let mut gw = Gateway::start_with(&cluster, opts);
    let addr = gw.addr();
    // A blocking request that will only be answered (nil) after its 2 s timeout, and a deep
    // pipeline, both in flight when SIGTERM arrives.
    let mut blocked = Raw::connect(&addr);
    blocked.send(&["BLPOP", "sigterm:empty", "2"]);
    let mut piped = Raw::connect(&addr);
    let mut wire = Vec::new();
    for i in 0..3000 {
        wire.extend(encode(&["SET", format!("sigterm:{i}").as_str(), "v"]));
    }
    piped.write(&wire);
    let mut idle = Raw::connect(&addr);
    assert_eq!(idle.call(&["PING"]), b"+PONG\r\n");
    // The BLPOP must have reached its node before the signal (its own connection).
    common::wait_until(
        "BLPOP to be blocked on its node",
        Duration::from_secs(10),
        || {
            let blocked_clients = cluster
                .masters()
                .iter()
                .map(|m| {
                    cluster.node(m).info("clients")["blocked_clients"]
                        .parse::<u64>()
                        .unwrap()
                })
                .sum::<u64>();
            if blocked_clients == 1 {
                Ok(())
            } else {
                Err(format!("blocked_clients:{blocked_clients}"))
            }
        },
    );

    let stopper = thread::spawn(move || {
        let status = gw.stop();
        (status, gw)
    });
    assert_eq!(
        show(&blocked.read()),
        show(b"*-1\r\n"),
        "the in-flight BLPOP was answered"
    );
    let rest = blocked.expect_closed();
    assert!(rest.is_empty(), "{}", show(&rest));
    for i in 0..3000 {
        let reply = piped
            .try_read()
            .unwrap_or_else(|e| panic!("pipelined reply {i}: {e}"));
        assert_eq!(reply, b"+OK\r\n", "pipelined reply {i}");
    }
    piped.expect_closed();
    idle.expect_closed();
    let (status, gw) = stopper.join().unwrap();
    assert!(
        status.success(),
        "meridian exit status after SIGTERM: {status:?}\n{}",
        gw.stderr()
    );
    let logs = gw.stderr();
    assert!(
        logs.lines().count() > 0 && logs.lines().all(|l| l.starts_with('{') && l.ends_with('}')),
        "--log-format json writes one JSON object per line:\n{logs}"
    );
    // Everything pipelined was really written.
    assert_eq!(cluster.dbsize(), 3000);
    assert!(
        Raw::try_connect(&addr).is_err(),
        "still accepting after exit"
    );
}

/// Runs `meridian check -c PATH`.
fn check(path: &Path) -> Output {
    let out = Command::new(binary())
        .args(["check", "-c"])
        .arg(path)
        .output();
    out.unwrap_or_else(|e| panic!("run meridian check: {e}"))
}

/// Writes `yaml` to the file `name` in `dir` and runs `meridian check -c` on it.
fn check_yaml(dir: &TempDir, name: &str, yaml: &str) -> (PathBuf, Output) {
    let path = dir.path().join(name);
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let out = check(&path);
    (path, out)
}

#[test]
fn check_prints_file_line_key_message_and_fails_on_a_broken_file() {
    let dir = TempDir::new();
    let (broken, out) = check_yaml(
        &dir,
        "broken.yaml",
        "listen: nowhere\nworkers: 1\ncluster:\n  seeds: []\n  refresh_interval: 0\nlimits: { max_bulk: 1tb, max_args: 0 }\n",
    );
    assert!(!out.status.success(), "check accepted a broken file");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let file = broken.display().to_string();
    let mut found: Vec<(usize, String)> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // <file>:<line>: <key>: <message>
        let rest = line
            .strip_prefix(&format!("{file}:"))
            .unwrap_or_else(|| panic!("not `file:line: key: message`: {line:?}"));
        let (num, rest) = rest.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        let (key, message) = rest.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
        assert!(!message.is_empty(), "{line:?}");
        found.push((
            num.parse()
                .unwrap_or_else(|_| panic!("line number in {line:?}")),
            key.to_string(),
        ));
    }
    for (line, key) in [
        (1, "listen"),
        (4, "cluster.seeds"),
        (5, "cluster.refresh_interval"),
        (6, "limits.max_bulk"),
        (6, "limits.max_args"),
    ] {
        assert!(
            found.contains(&(line, key.to_string())),
            "no error for {key} at line {line}:\n{text}"
        );
    }

    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/meridian.yaml");
    let out = check(&conf);
    assert!(
        out.status.success(),
        "conf/meridian.yaml: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_names_the_key_of_unknown_fields() {
    let dir = TempDir::new();
    for (yaml, line, key) in [
        (
            "listen: 127.0.0.1:7617\ncluster:\n  seeds: [127.0.0.1:7001]\nbogus: 1\n",
            4,
            "bogus",
        ),
        (
            "cluster:\n  seeds: [127.0.0.1:7001]\n  refresh_intervall: 1s\n",
            3,
            "cluster.refresh_intervall",
        ),
    ] {
        let (path, out) = check_yaml(&dir, "unknown.yaml", yaml);
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stderr).into_owned();
        let want = format!("{}:{line}: {key}: ", path.display());
        assert!(
            text.starts_with(&want),
            "want a line starting {want:?}, got:\n{text}"
        );
    }
}

#[test]
fn check_reports_every_error_even_after_a_value_that_does_not_parse() {
    // A value that does not parse (a duration without unit) must not hide the other problems.
    let dir = TempDir::new();
    let (path, out) = check_yaml(
        &dir,
        "two.yaml",
        "listen: nowhere\ncluster:\n  seeds: [127.0.0.1:7001]\n  refresh_interval: 5\n",
    );
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    for want in [
        format!("{}:1: listen: ", path.display()),
        format!("{}:4: cluster.refresh_interval: ", path.display()),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&want)),
            "no line starting {want:?} in:\n{text}"
        );
    }
}

#[test]
fn check_warns_about_an_open_gateway_holding_backend_credentials() {
    let dir = TempDir::new();
    let open = "listen: 0.0.0.0:7617\ncluster:\n  seeds: [127.0.0.1:7001]\n  password: hunter2\n";
    let (_, out) = check_yaml(&dir, "open.yaml", open);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning:") && stderr.contains("no `users`"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    let with_users = format!("{open}users:\n  - name: default\n");
    let (_, out) = check_yaml(&dir, "users.yaml", &with_users);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
    let local = open.replace("0.0.0.0", "127.0.0.1");
    let (_, out) = check_yaml(&dir, "local.yaml", &local);
    assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn check_reads_password_env_and_never_prints_it() {
    let dir = TempDir::new();
    let yaml = "cluster:\n  seeds: [127.0.0.1:7001]\nusers:\n  - name: app\n    password_env: MERIDIAN_TEST_APP_PW\n";
    let path = dir.path().join("env.yaml");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    let run = |value: Option<&str>| {
        let mut cmd = Command::new(binary());
        cmd.args(["check", "-c"]).arg(&path);
        match value {
            Some(v) => cmd.env("MERIDIAN_TEST_APP_PW", v),
            None => cmd.env_remove("MERIDIAN_TEST_APP_PW"),
        };
        cmd.output()
            .unwrap_or_else(|e| panic!("run meridian check: {e}"))
    };
    let out = run(Some("s3cret-value"));
    assert!(out.status.success(), "{out:?}");
    let out = run(None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("users[0].password_env") && stderr.contains("MERIDIAN_TEST_APP_PW"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
