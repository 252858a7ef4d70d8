//! Hot reload through the real binary in front of real clusters: SIGHUP, `POST /reload`,
//! `meridian reload` and the file watch; under a pipelined load nothing is lost and no
//! connection closes; reads follow a new DC preference; a bad file changes nothing; restart-only
//! keys are reported; users, events and logs.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::gateway::render_config;
use common::http;
use common::reload::{
    WEST, base64, east_west_cluster, events_of, meridian_reload, reads, rewrite, state, token_file,
    version,
};
use common::{Cluster, Gateway, GatewayOptions, TempDir, signal};
use common::{try_run, value_text, wait_until};
use serde_json::Value as Json;

/// Bound on a reload (or an event) showing in `/api/state`.
const SEEN: Duration = Duration::from_secs(20);

/// The DC part of a config: reads prefer `local_dc` (by the map only, so probes cannot move
/// them).
fn dc_yaml(local_dc: &str) -> String {
    dc_yaml_with(local_dc, "east: { east: 0.3, west: 40 }")
}

/// [`dc_yaml`] with east's row of the latency map given.
fn dc_yaml_with(local_dc: &str, east_row: &str) -> String {
    format!(
        "local_dc: {local_dc}
datacenters:
  east: {{ cidrs: [127.0.1.0/24] }}
  west: {{ cidrs: [127.0.2.0/24] }}
latency_ms:
  {east_row}
  west: {{ east: 40, west: 0.3 }}
read_policy:
  latency_source: map
"
    )
}

/// Sends `n` GETs of distinct keys; returns how many went to east and west.
fn read_split(gw: &Gateway, admin: &str, n: usize) -> (u64, u64) {
    let before = state(admin, &[]);
    let mut conn = gw.client();
    for i in 0..n {
        let r = try_run(&mut conn, &["GET", &format!("split:{i}")]).expect("GET");
        assert!(
            value_text(&r).is_none_or(|t| !t.starts_with("ERR")),
            "{r:?}"
        );
    }
    let after = state(admin, &[]);
    (
        reads(&after, "east") - reads(&before, "east"),
        reads(&after, "west") - reads(&before, "west"),
    )
}

/// Keys every client reads during the load: written before it and replicated, so a read
/// served by a replica in either DC must return exactly this value.
fn static_value(id: usize, k: usize) -> String {
    format!("static-{id}-{k}")
}

/// Writes the static keys and waits until every replica holds them.
fn write_static_keys(gw: &Gateway, cluster: &Cluster, clients: usize) {
    let mut conn = gw.client();
    for id in 0..clients {
        for k in 0..20 {
            let r = try_run(
                &mut conn,
                &["SET", &format!("static:{id}:{k}"), &static_value(id, k)],
            );
            assert_eq!(value_text(&r.unwrap()).as_deref(), Some("OK"));
        }
    }
    let total = (clients * 20) as i64;
    wait_until("replicas holding the static keys", SEEN, || {
        let on_replicas: i64 = WEST
            .iter()
            .filter_map(|ip| cluster.nodes().iter().find(|n| n.ip == *ip))
            .map(|n| common::int(&n.query(&["DBSIZE"])))
            .sum();
        if on_replicas >= total {
            Ok(())
        } else {
            Err(format!("{on_replicas} of {total}"))
        }
    });
}

/// One client's pipelined load: each round writes 20 keys of its own and reads 20 static
/// keys in one pipeline and checks every reply; stops when `stop` is set. Returns the
/// rounds run.
fn pipelined_load(gw: &Gateway, id: usize, stop: &AtomicBool) -> usize {
    let mut conn = gw.client();
    let mut rounds = 0;
    // Bounded in count as well as by the flag.
    while !stop.load(Ordering::Relaxed) && rounds < 100_000 {
        let mut pipe = redis::pipe();
        for k in 0..20 {
            pipe.cmd("SET")
                .arg(format!("load:{id}:{k}"))
                .arg(format!("{rounds}-{k}"));
            pipe.cmd("GET").arg(format!("static:{id}:{k}"));
        }
        let replies: Vec<redis::Value> = pipe
            .query(&mut conn)
            .unwrap_or_else(|e| panic!("client {id} round {rounds}: {e}"));
        assert_eq!(replies.len(), 40, "client {id} round {rounds}");
        for (k, pair) in replies.chunks(2).enumerate() {
            assert_eq!(value_text(&pair[0]).as_deref(), Some("OK"), "SET {id}:{k}");
            assert_eq!(
                value_text(&pair[1]),
                Some(static_value(id, k)),
                "GET static:{id}:{k} in round {rounds}"
            );
        }
        rounds += 1;
    }
    rounds
}

#[test]
fn reloads_under_pipelined_load_lose_nothing_and_move_reads_to_the_new_dc() {
    let cluster = east_west_cluster();
    let mut opts = GatewayOptions {
        workers: 2,
        extra_yaml: dc_yaml("west"),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts.clone());
    let admin = gw.admin_addr();
    let path = gw.config_path().to_path_buf();

    // (b) reads go to west, then right after a reload that makes east local, to east.
    let (east, west) = read_split(&gw, &admin, 200);
    assert_eq!((east, west), (0, 200), "reads with local_dc west");
    opts.extra_yaml = dc_yaml("east");
    rewrite(&path, &render_config(&cluster.seeds(), &opts));
    signal(gw.pid(), libc::SIGHUP);
    wait_until("config version 2", SEEN, || {
        let v = version(&state(&admin, &[]));
        if v == 2 {
            Ok(())
        } else {
            Err(format!("version {v}"))
        }
    });
    // Workers check the config version on every request: the very next reads follow it.
    let (east, west) = read_split(&gw, &admin, 200);
    assert_eq!((east, west), (200, 0), "reads after local_dc became east");
    // Then the latency map alone: west is nearer to east than east itself now.
    opts.extra_yaml = dc_yaml_with("east", "east: { east: 40, west: 0.3 }");
    rewrite(&path, &render_config(&cluster.seeds(), &opts));
    signal(gw.pid(), libc::SIGHUP);
    wait_until("config version 3", SEEN, || {
        let v = version(&state(&admin, &[]));
        if v == 3 {
            Ok(())
        } else {
            Err(format!("version {v}"))
        }
    });
    let (east, west) = read_split(&gw, &admin, 200);
    assert_eq!(
        (east, west),
        (0, 200),
        "reads after the latency map changed"
    );

    // (a) a reload every 100 ms during a pipelined load from four clients.
    write_static_keys(&gw, &cluster, 4);
    let stop = Arc::new(AtomicBool::new(false));
    let gw = Arc::new(gw);
    let loaders: Vec<_> = (0..4)
        .map(|id| {
            let (gw, stop) = (gw.clone(), stop.clone());
            thread::spawn(move || pipelined_load(&gw, id, &stop))
        })
        .collect();
    let rounds_of_reload = 30;
    for round in 0..rounds_of_reload {
        let dc = if round % 2 == 0 { "west" } else { "east" };
        opts.extra_yaml = dc_yaml(dc);
        rewrite(&path, &render_config(&cluster.seeds(), &opts));
        signal(gw.pid(), libc::SIGHUP);
        thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for (id, l) in loaders.into_iter().enumerate() {
        let rounds = l.join().unwrap_or_else(|_| panic!("client {id} failed"));
        assert!(rounds > 0, "client {id} ran no round");
    }
    let s = state(&admin, &[]);
    // Signals sent close together may be delivered as one: at least some reloads happened,
    // every one succeeded.
    assert!(version(&s) > 3, "{}", s["config"]);
    assert_eq!(s["config"]["reloads_failed"], 0, "{}", s["config"]);
    assert!(s["config"]["last_error"].is_null(), "{}", s["config"]);
    let reload_events = events_of(&s, "reload");
    assert!(
        !reload_events.is_empty(),
        "no reload event: {}",
        s["events"]
    );
    let e = reload_events[0];
    assert!(e["ts_ms"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(e["node"].is_null() && e["dc"].is_null() && e["slot"].is_null());
    assert!(e["message"].as_str().unwrap().contains("SIGHUP"), "{e}");
    // The process stayed up and every connection of the load saw every reply (checked above).
    assert!(gw.stderr().contains("config version"), "no reload log line");

    // A manual failover: the refresher sees a replica promoted and records it.
    let replica = cluster
        .nodes()
        .iter()
        .find(|n| n.ip == WEST[0])
        .expect("a west replica");
    let r = replica.query(&["CLUSTER", "FAILOVER"]);
    assert_eq!(value_text(&r).as_deref(), Some("OK"), "{r:?}");
    let s = wait_until("a failover event", SEEN, || {
        let s = state(&admin, &[]);
        if events_of(&s, "failover")
            .iter()
            .any(|e| e["node"] == replica.addr.as_str())
        {
            Ok(s)
        } else {
            Err(s["events"].to_string())
        }
    });
    let e = events_of(&s, "failover")[0];
    assert_eq!(e["dc"], "west", "{e}");
    assert!(e["slot"].is_u64(), "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("replica promoted"),
        "{e}"
    );
}

#[test]
fn bad_files_are_refused_restart_only_keys_are_reported_and_breakers_are_events() {
    let cluster = Cluster::start(3, 0);
    let dir = TempDir::new();
    let (token, token_path) = token_file(&dir);
    let base = format!(
        "admin: {{ listen: 127.0.0.1:0, token_file: {token_path} }}\nhealth: {{ probe_interval: 500ms }}\nbreaker: {{ failure_limit: 2 }}\n"
    );
    let mut opts = GatewayOptions {
        extra_yaml: base.clone(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts.clone());
    let admin = gw.admin_addr();
    let path = gw.config_path().to_path_buf();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];
    let mut conn = gw.client();
    assert_eq!(
        value_text(&try_run(&mut conn, &["SET", "k", "v1"]).unwrap()).as_deref(),
        Some("OK")
    );

    // (c) an invalid file: refused, the old config stays, the error is visible everywhere.
    rewrite(
        &path,
        &format!("{}workers: lots\n", render_config(&cluster.seeds(), &opts)),
    );
    signal(gw.pid(), libc::SIGHUP);
    let s = wait_until("a refused reload", SEEN, || {
        let s = state(&admin, &auth);
        if s["config"]["reloads_failed"] == 1 {
            Ok(s)
        } else {
            Err(s["config"].to_string())
        }
    });
    assert_eq!(version(&s), 1);
    let error = s["config"]["last_error"].as_str().expect("last_error");
    assert!(error.contains("workers"), "{error}");
    let failed = events_of(&s, "reload_failed");
    assert_eq!(failed.len(), 1, "{}", s["events"]);
    let metrics = http::get(&admin, "/metrics").body;
    assert!(
        metrics.contains("meridian_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
    assert!(gw.stderr().contains("refused, the running config stays"));
    assert_eq!(
        value_text(&try_run(&mut conn, &["GET", "k"]).unwrap()).as_deref(),
        Some("v1"),
        "the connection and the running config survive a refused reload"
    );

    // (d) listen and workers need a restart; the rest (local_dc, the DC map, limits)
    // applies, to connections already open too.
    let mut open_before = gw.client();
    assert_eq!(
        value_text(&try_run(&mut open_before, &["SET", "a", "b"]).unwrap()).as_deref(),
        Some("OK")
    );
    opts.workers = 3;
    opts.extra_yaml = format!(
        "{base}local_dc: east\ndatacenters:\n  east: {{ cidrs: [127.0.0.0/8] }}\nlatency_ms:\n  east: {{ east: 0.3 }}\nlimits: {{ max_args: 4 }}\n"
    );
    let text = render_config(&cluster.seeds(), &opts)
        .replace("127.0.0.1:0\nworkers", "127.0.0.1:1\nworkers");
    rewrite(&path, &text);
    let r = http::request(&admin, "POST", "/reload", &auth);
    assert_eq!(r.status, 200, "{}", r.body);
    let outcome: Json = serde_json::from_str(&r.body).unwrap();
    assert_eq!(outcome["ok"], true);
    assert_eq!(
        outcome["needs_restart"],
        serde_json::json!(["listen", "workers"])
    );
    let s = state(&admin, &auth);
    assert_eq!(version(&s), 2);
    assert_eq!(s["local_dc"], "east");
    assert_eq!(
        s["config"]["needs_restart"],
        serde_json::json!(["listen", "workers"])
    );
    assert!(s["config"]["last_error"].is_null());
    assert!(gw.stderr().contains("needs restart"));
    // Still one worker on the old address: a new connection works.
    assert_eq!(
        value_text(&try_run(&mut gw.client(), &["GET", "k"]).unwrap()).as_deref(),
        Some("v1")
    );
    // The connection opened before the reload now has the new argument limit.
    let r = try_run(&mut open_before, &["MSET", "{a}1", "1", "{a}2", "2"]);
    assert!(
        format!("{r:?}").contains("too many arguments (limit 4)"),
        "{r:?}"
    );

    // (e) `meridian reload`: with the token (from the config's admin.token_file) it reloads;
    // without a credential it is refused.
    let cfg = path.display().to_string();
    let (ok, out) = meridian_reload(&["-c", &cfg, "--admin", &admin], &[]);
    assert!(ok, "{out}");
    assert!(out.contains("\"ok\":true"), "{out}");
    assert_eq!(version(&state(&admin, &auth)), 3);
    let bare = dir.path().join("bare.yaml");
    fs::write(&bare, "cluster: { seeds: [127.0.0.1:1] }\n").unwrap();
    let bare = bare.display().to_string();
    let (ok, out) = meridian_reload(&["-c", &bare, "--admin", &admin], &[]);
    assert!(!ok, "{out}");
    assert!(out.contains("401"), "{out}");
    let (ok, out) = meridian_reload(
        &["-c", &bare, "--admin", &admin, "--token-file", &token_path],
        &[],
    );
    assert!(ok, "{out}");
    assert_eq!(version(&state(&admin, &auth)), 4);
    let r = http::request(&admin, "GET", "/reload", &auth);
    assert_eq!(r.status, 405);

    // A stopped master: the prober's failures open its breaker, an event names the node.
    let victim = cluster.masters()[0].clone();
    cluster.node(&victim).stop();
    let s = wait_until("a breaker_open event", SEEN, || {
        let s = state(&admin, &auth);
        if events_of(&s, "breaker_open")
            .iter()
            .any(|e| e["node"] == victim.as_str())
        {
            Ok(s)
        } else {
            Err(s["events"].to_string())
        }
    });
    cluster.node(&victim).cont();
    let opened = events_of(&s, "breaker_open");
    let e = opened
        .iter()
        .find(|e| e["node"] == victim.as_str())
        .expect("the victim's event");
    assert_eq!(e["dc"], "east", "{e}");
    assert!(e["slot"].is_null());
    assert!(
        gw.stderr().contains("event=\"breaker_open\"")
            || gw.stderr().contains("event=breaker_open")
    );
    wait_until("a breaker_close event", SEEN, || {
        let s = state(&admin, &auth);
        let closed = events_of(&s, "breaker_close");
        if closed.iter().any(|e| e["node"] == victim.as_str()) {
            Ok(())
        } else {
            Err(s["events"].to_string())
        }
    });
}

#[test]
fn users_reload_the_file_watch_and_json_logs_to_a_file() {
    let cluster = Cluster::start(3, 0);
    let dir = TempDir::new();
    let log_file = dir.path().join("meridian.log");
    let digest = |pw: &str| {
        use sha2::Digest as _;
        sha2::Sha256::digest(pw.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let users = |app_pw: &str| {
        format!(
            "users:\n  - {{ name: ops, role: admin, passwords: [{}] }}\n  - {{ name: app, role: write, passwords: [{}] }}\n",
            digest("ops-pw"),
            digest(app_pw)
        )
    };
    let extra = |app_pw: &str| {
        format!(
            "{}reload: {{ watch: true, debounce: 50ms }}\nlog: {{ format: json, file: {}, rotation: never }}\n",
            users(app_pw),
            log_file.display()
        )
    };
    let mut opts = GatewayOptions {
        extra_yaml: extra("old-pw"),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts.clone());
    let admin = gw.admin_addr();
    let path = gw.config_path().to_path_buf();
    let basic = format!("Basic {}", base64(b"ops:ops-pw"));
    let auth = [("Authorization", basic.as_str())];
    let mut old_session = gw.client();
    let r = try_run(&mut old_session, &["AUTH", "app", "old-pw"]);
    assert_eq!(
        value_text(r.as_ref().unwrap()).as_deref(),
        Some("OK"),
        "{r:?}"
    );

    // (f) + (g): the new password, put in place by an atomic rename the watch picks up.
    opts.extra_yaml = extra("new-pw");
    rewrite(&path, &render_config(&cluster.seeds(), &opts));
    wait_until("the watch's reload", SEEN, || {
        let s = state(&admin, &auth);
        if version(&s) == 2 {
            Ok(())
        } else {
            Err(s["config"].to_string())
        }
    });
    let s = state(&admin, &auth);
    assert!(
        events_of(&s, "reload")[0]["message"]
            .as_str()
            .unwrap()
            .contains("watch")
    );
    // ConfigMap style: the file becomes a symlink through `..data`, which an update repoints
    // at a new directory (an atomic rename of a symlink).
    let dir_of = |name: &str, text: &str| {
        let d = path.with_file_name(name);
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("meridian.yaml"), text).unwrap();
    };
    let data_link = |target: &str| {
        let tmp = path.with_file_name("..data_tmp");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).unwrap();
        fs::rename(&tmp, path.with_file_name("..data")).unwrap();
    };
    let text = render_config(&cluster.seeds(), &opts);
    dir_of("..v1", &format!("{text}client: {{ max_clients: 5000 }}\n"));
    data_link("..v1");
    let link = path.with_file_name("meridian.yaml.link");
    std::os::unix::fs::symlink("..data/meridian.yaml", &link).unwrap();
    fs::rename(&link, &path).unwrap();
    wait_until("the reload of the symlinked file", SEEN, || {
        let s = state(&admin, &auth);
        if version(&s) == 3 {
            Ok(())
        } else {
            Err(s["config"].to_string())
        }
    });
    dir_of("..v2", &format!("{text}client: {{ max_clients: 4000 }}\n"));
    data_link("..v2");
    wait_until("the reload after ..data moved", SEEN, || {
        let s = state(&admin, &auth);
        if version(&s) == 4 {
            Ok(())
        } else {
            Err(s["config"].to_string())
        }
    });
    let mut ops = gw.client();
    try_run(&mut ops, &["AUTH", "ops", "ops-pw"]).unwrap();
    let info = try_run(&mut ops, &["INFO", "clients"]).unwrap();
    let info = value_text(&info).unwrap_or_else(|| format!("{info:?}"));
    assert!(info.contains("maxclients:4000"), "{info}");
    let mut fresh = gw.client();
    let refused = try_run(&mut fresh, &["AUTH", "app", "old-pw"]);
    assert!(
        format!("{refused:?}").contains("WRONGPASS"),
        "old password after reload: {refused:?}"
    );
    assert_eq!(
        value_text(&try_run(&mut fresh, &["AUTH", "app", "new-pw"]).unwrap()).as_deref(),
        Some("OK")
    );
    // The session authenticated before the reload keeps its connection and its user.
    assert_eq!(
        value_text(&try_run(&mut old_session, &["ACL", "WHOAMI"]).unwrap()).as_deref(),
        Some("app")
    );
    // An admin user's Basic credentials reload; a non-admin user's do not.
    let (ok, out) = meridian_reload(
        &[
            "-c",
            &path.display().to_string(),
            "--admin",
            &admin,
            "--user",
            "ops",
        ],
        &[("MERIDIAN_ADMIN_PASSWORD", "ops-pw")],
    );
    assert!(ok, "{out}");
    let (ok, out) = meridian_reload(
        &[
            "-c",
            &path.display().to_string(),
            "--admin",
            &admin,
            "--user",
            "app",
        ],
        &[("MERIDIAN_ADMIN_PASSWORD", "new-pw")],
    );
    assert!(!ok && out.contains("401"), "{out}");

    // JSON lines in the file, each with the standard fields; reload events carry theirs.
    let text = wait_until("reload events in the log file", SEEN, || {
        let text = fs::read_to_string(&log_file).unwrap_or_default();
        if text.matches("\"event\":\"reload\"").count() >= 2 {
            Ok(text)
        } else {
            Err(text)
        }
    });
    let mut saw_event = false;
    for line in text.lines() {
        let v: Json = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["fields"]["message"].is_string(), "{line}");
        if v["fields"]["event"] == "reload" {
            saw_event = true;
            for f in ["node", "dc", "slot"] {
                assert!(!v["fields"][f].is_null(), "{f} missing: {line}");
            }
        }
    }
    assert!(saw_event);
}
