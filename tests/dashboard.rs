//! The admin dashboard (`/`) in a real browser: Debian's chromium, headless, loads the page
//! from a gateway in front of a real two-DC cluster; the DOM it renders after the page's polls
//! must show every DC and every node with its role, then mark a SIGSTOPped node down. The page
//! also asks for the admin token when the gateway wants one, and takes it from `?token=`.
//!
//! Set `MERIDIAN_DASHBOARD_SCREENSHOT=path.png` to keep the screenshot the first test takes
//! (on virtual time; docs/dashboard.png is taken in real time by
//! scripts/dashboard_screenshot.mjs).

mod common;

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::http;
use common::raw::{Raw, encode};
use common::{ClusterBuilder, Gateway, GatewayOptions, TempDir, require_binary, wait_until};

const EAST: [&str; 3] = ["127.0.1.1", "127.0.1.2", "127.0.1.3"];
const WEST: [&str; 3] = ["127.0.2.1", "127.0.2.2", "127.0.2.3"];
/// Guard on one chromium run (it normally takes a few seconds); past it, it is killed.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);
/// Page time chromium lets pass before it dumps: a few of the page's 1.5 s polls.
const VIRTUAL_TIME_MS: u32 = 5000;
/// Page time before the screenshot: enough polls for the read-share chart to fill.
const SCREENSHOT_TIME_MS: u32 = 90_000;
/// The cluster's node timeout: long, so a stopped node stays in the cluster map (and on the
/// page, marked) while the gateway's breaker opens.
const NODE_TIMEOUT_MS: u64 = 30_000;
/// Bound on the gateway's breaker noticing a stopped node.
const BREAKER_WAIT: Duration = Duration::from_secs(30);

fn chromium() -> PathBuf {
    require_binary(
        "chromium",
        "scripts/install-deps.sh (Debian package `chromium`)",
    )
}

/// Runs headless chromium on `url` with `extra` arguments (`--dump-dom` or `--screenshot=…`)
/// in a fresh profile; returns its stdout. Killed, with its whole process group, past
/// [`BROWSER_TIMEOUT`].
fn browse(url: &str, virtual_ms: u32, extra: &[String]) -> String {
    let profile = TempDir::new();
    let out_path = profile.path().join("stdout");
    let err_path = profile.path().join("stderr");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .arg(format!("--virtual-time-budget={virtual_ms}"))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .process_group(0)
        .spawn()
        .expect("run chromium");
    let deadline = Instant::now() + BROWSER_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            // The group is the one chromium leads (process_group(0) above): its helpers too.
            kill_group(child.id());
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?}:\n{}",
                common::tail(&err_path, 20)
            );
        }
        thread::sleep(common::POLL);
    };
    let out = std::fs::read_to_string(&out_path).unwrap_or_default();
    assert!(
        status.success(),
        "chromium failed ({status}):\n{}",
        common::tail(&err_path, 20)
    );
    out
}

/// SIGKILLs the process group `pgid` leads (a chromium this test started in its own group).
fn kill_group(pgid: u32) {
    let target = libc::pid_t::try_from(pgid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; the group is led by our own child,
    // not yet reaped, so its id cannot name anyone else's processes.
    unsafe { libc::kill(-target, libc::SIGKILL) };
}

fn dump_dom(url: &str) -> String {
    let dom = browse(url, VIRTUAL_TIME_MS, &["--dump-dom".to_string()]);
    assert!(dom.contains("id=\"dc-map\""), "not the dashboard:\n{dom}");
    dom
}

/// The attributes of the first start tag carrying `attr="value"`.
fn tag_with(dom: &str, attr: &str, value: &str) -> Option<HashMap<String, String>> {
    let needle = format!("{attr}=\"{value}\"");
    let at = dom.find(&needle)?;
    let start = dom[..at].rfind('<')?;
    let end = at + dom[at..].find('>')?;
    let mut attrs = HashMap::new();
    let mut rest = &dom[start + 1..end];
    while let Some(eq) = rest.find("=\"") {
        let name = rest[..eq].rsplit(' ').next().unwrap_or("").to_string();
        let after = &rest[eq + 2..];
        let close = after.find('"')?;
        attrs.insert(name, after[..close].to_string());
        rest = &after[close + 1..];
    }
    Some(attrs)
}

/// The text of the element `<… id="id" …>` up to its first closing tag of `tag`.
fn element_text<'a>(dom: &'a str, id: &str, tag: &str) -> &'a str {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the DOM"));
    let end = dom[at..]
        .find(&format!("</{tag}>"))
        .unwrap_or_else(|| panic!("#{id} is not closed"));
    &dom[at..at + end]
}

fn dc_yaml() -> String {
    "local_dc: east
datacenters:
  east: { cidrs: [127.0.1.0/24] }
  west: { cidrs: [127.0.2.0/24] }
latency_ms:
  east: { east: 0.3, west: 40 }
  west: { east: 40, west: 0.3 }
breaker: { failure_limit: 2, retry_timeout: 1s, server_timeout: 300ms, connect_timeout: 200ms }
health: { probe_interval: 200ms }
"
    .to_string()
}

fn node_breaker(admin: &str, addr: &str) -> Result<String, String> {
    let r = http::get(admin, "/api/state");
    let state: serde_json::Value =
        serde_json::from_str(&r.body).map_err(|e| format!("{e}: {}", r.body))?;
    let nodes = state["nodes"].as_array().ok_or("no nodes")?;
    let node = nodes
        .iter()
        .find(|n| n["addr"] == addr)
        .ok_or(format!("{addr} not in /api/state"))?;
    Ok(node["breaker"].as_str().unwrap_or("").to_string())
}

/// Sends GETs and SETs through the gateway until `stop` (at most `max` requests).
fn traffic(addr: String, stop: Arc<AtomicBool>, max: usize) -> thread::JoinHandle<usize> {
    thread::spawn(move || {
        let mut c = Raw::connect(&addr);
        let mut sent = 0;
        while sent < max && !stop.load(Ordering::Relaxed) {
            let key = format!("dash:{}", sent % 64);
            let request = if sent % 4 == 0 {
                encode(&["SET", &key, "v"])
            } else {
                encode(&["GET", &key])
            };
            // The load is scenery for the page; a failed request is not what this tests.
            if c.try_request(&request).is_err() {
                c = Raw::connect(&addr);
            }
            sent += 1;
        }
        sent
    })
}

fn screenshot(url: &str, dir: &Path) -> PathBuf {
    let path = dir.join("dashboard.png");
    browse(
        url,
        SCREENSHOT_TIME_MS,
        &[format!("--screenshot={}", path.display())],
    );
    let png = std::fs::read(&path).expect("chromium wrote no screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "not a picture of the page ({} bytes)",
        png.len()
    );
    path
}

#[test]
fn dashboard_draws_every_node_and_marks_a_stopped_one_down() {
    let mut b = ClusterBuilder::new().node_timeout_ms(NODE_TIMEOUT_MS);
    for ip in EAST {
        b = b.master(ip);
    }
    for (m, ip) in WEST.iter().enumerate() {
        b = b.replica(ip, m);
    }
    let cluster = b.start();
    let opts = GatewayOptions {
        workers: 2,
        extra_yaml: dc_yaml(),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with(&cluster, opts);
    let admin = gw.admin_addr();
    wait_until("/readyz to say ready", Duration::from_secs(30), || {
        let r = http::get(&admin, "/readyz");
        (r.status == 200).then_some(()).ok_or(r.body)
    });
    let page = http::get(&admin, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header("content-security-policy")
            .is_some_and(|c| c.contains("default-src 'none'"))
    );
    let url = format!("http://{admin}/");
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(gw.addr(), stop.clone(), 1_000_000);
    wait_until("traffic to show up", Duration::from_secs(30), || {
        let body = http::get(&admin, "/api/state").body;
        (body.contains("\"command\": \"get\"") && body.contains("\"command\": \"set\""))
            .then_some(())
            .ok_or(body)
    });

    let dom = dump_dom(&url);
    let status = tag_with(&dom, "id", "status").expect("status");
    assert_eq!(status["data-status"], "ok", "{dom}");
    for dc in ["east", "west"] {
        let card = tag_with(&dom, "data-dc", dc).unwrap_or_else(|| panic!("no DC {dc}:\n{dom}"));
        assert_eq!(card["class"], "dc");
    }
    for (i, node) in cluster.nodes().iter().enumerate() {
        let (role, dc) = if i < 3 {
            ("master", "east")
        } else {
            ("replica", "west")
        };
        let tag = tag_with(&dom, "data-node", &node.addr)
            .unwrap_or_else(|| panic!("node {} not drawn:\n{dom}", node.addr));
        assert_eq!(
            (tag["data-role"].as_str(), tag["data-dc"].as_str()),
            (role, dc),
            "{}",
            node.addr
        );
        assert_eq!(tag["data-breaker"], "closed", "{}", node.addr);
        assert!(
            dom.contains(&format!(">{}</span>", node.addr)),
            "address shown as text"
        );
    }
    for cmd in ["get", "set"] {
        assert!(
            tag_with(&dom, "data-command", cmd).is_some(),
            "no {cmd} row:\n{dom}"
        );
    }
    let latency = element_text(&dom, "latency", "table");
    assert!(
        latency.contains(">40.0<") && latency.contains(">0.3<"),
        "{latency}"
    );
    assert!(latency.contains("measured from east"), "{latency}");
    // Today /api/state has no events: the timeline says so instead of breaking.
    assert!(element_text(&dom, "events", "table").contains("no events"));
    // No DC is placed by host names here: their section stays hidden.
    let hosts = tag_with(&dom, "id", "dc-hosts-section").expect("the DC host names section");
    assert!(hosts.contains_key("hidden"), "{hosts:?}");
    // Reads flowed between polls: the chart draws a line for the DC that served them.
    assert!(
        element_text(&dom, "share-chart", "svg").contains("<polyline"),
        "no read-share line:\n{dom}"
    );

    // Stop a west replica: the prober's failures open its breaker, and the page marks it.
    let victim = &cluster.nodes()[3];
    victim.stop();
    wait_until(
        "the breaker of the stopped node to open",
        BREAKER_WAIT,
        || {
            let b = node_breaker(&admin, &victim.addr)?;
            (b == "open").then_some(()).ok_or(b)
        },
    );
    let dom = dump_dom(&url);
    let tag = tag_with(&dom, "data-node", &victim.addr).expect("stopped node still drawn");
    // Open, or half-open when the page polled just as a trial probe was due.
    assert!(
        ["open", "half-open"].contains(&tag["data-breaker"].as_str()),
        "{tag:?}"
    );
    assert_eq!(tag["data-state"], "down", "{dom}");
    assert!(dom.contains("DOWN</span>"), "the node's line says DOWN");
    for node in &cluster.nodes()[..3] {
        let tag = tag_with(&dom, "data-node", &node.addr).expect("master drawn");
        assert_ne!(tag["data-state"], "down", "{}", node.addr);
    }

    let shots = TempDir::new();
    let shot = screenshot(&url, shots.path());
    if let Some(keep) = std::env::var_os("MERIDIAN_DASHBOARD_SCREENSHOT") {
        std::fs::copy(&shot, &keep).expect("copy the screenshot");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(load.join().unwrap() > 0);
    victim.cont();
}

#[test]
fn dashboard_asks_for_the_token_and_takes_it_from_the_address() {
    let dir = TempDir::new();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, "dash-t0ken\n").unwrap();
    let opts = GatewayOptions {
        extra_yaml: format!(
            "admin:\n  listen: 127.0.0.1:0\n  require_token: true\n  token_file: {}\n",
            token_file.display()
        ),
        ..GatewayOptions::default()
    };
    // No cluster needed: the page and the token check work before any slot map.
    let gw = Gateway::start_with_seeds(&["127.0.0.1:1".to_string()], opts);
    let admin = gw.admin_addr();
    assert_eq!(
        http::get(&admin, "/").status,
        200,
        "the page itself is public"
    );
    assert_eq!(http::get(&admin, "/api/state").status, 401);

    let dom = dump_dom(&format!("http://{admin}/"));
    assert_eq!(
        tag_with(&dom, "id", "status").unwrap()["data-status"],
        "auth"
    );
    let form = tag_with(&dom, "id", "auth").expect("token form");
    assert!(!form.contains_key("hidden"), "the token form is shown");
    assert!(dom.contains("this gateway needs its admin token"));

    let dom = dump_dom(&format!("http://{admin}/?token=dash-t0ken"));
    assert_eq!(
        tag_with(&dom, "id", "status").unwrap()["data-status"],
        "ok",
        "{dom}"
    );
    assert!(element_text(&dom, "facts", "span").contains("the slot map covers 0"));

    let dom = dump_dom(&format!("http://{admin}/?token=wrong"));
    assert_eq!(
        tag_with(&dom, "id", "status").unwrap()["data-status"],
        "auth"
    );
    assert!(dom.contains("the gateway refused this token"));
}

/// The page's drawing code on states no gateway sends yet: events of every kind (another part
/// of the gateway fills them in), hostile text in addresses, names and messages, and a node
/// that leaves the map between polls. The page is loaded from a file with `fetch` answering
/// those states, so only the renderer is under test (the tests above use a real gateway).
#[test]
fn page_draws_events_and_shows_hostile_text_as_text() {
    let hostile = "<img src=x onerror=\"document.title='pwned'\">";
    let state = serde_json::json!({
        "version": "0.1.0",
        "local_dc": "east",
        "ready": true,
        "uptime_seconds": 12.5,
        "config": {"version": 3},
        "workers": {"configured": 1, "listening": 1},
        "slots_covered": 16384,
        "nodes": [
            {"addr": "127.0.1.1:7000", "dc": "east", "role": "master", "shard": 0,
             "breaker": "closed", "consecutive_failures": 0, "rtt_ms": {"configured": 0.3,
             "measured": 0.2, "measured_fresh": true}, "loading": false, "master_link_up": true},
            {"addr": hostile, "dc": "<b>west</b>", "role": "replica", "shard": 0,
             "breaker": "open", "consecutive_failures": 7, "retry_in_ms": 800,
             "rtt_ms": {"configured": null, "measured": null, "measured_fresh": false},
             "lag_bytes": 12, "loading": false, "master_link_up": false}
        ],
        "latency_ms": {"east": {"east": 0.3, "<b>west</b>": 40}},
        "latency_source": "map",
        "reads": [{"dc": "east", "reads": 10, "share": 1.0}],
        "commands": [{"command": "get", "requests": 10, "replies": 10, "p50_ms": 0.05,
                      "p99_ms": 0.099, "mean_ms": 0.06,
                      "buckets": [10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]}],
        "latency_buckets_ms": [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000,
                               2500, 5000, 10000],
        "dc_hosts": [
            {"name": hostile, "dc": "east", "addresses": ["127.0.1.1"], "expires_in_ms": 4000,
             "resolving": false, "failures": 3, "last_error": "<b>request timed out</b>"},
            {"name": "west.example", "dc": "west", "addresses": [], "expires_in_ms": 0,
             "resolving": true, "failures": 0, "last_error": null},
            7
        ],
        "events": [
            {"ts_ms": 1_764_633_600_000u64, "kind": "breaker_open", "node": hostile,
             "dc": "west", "slot": null, "message": "<script>document.title='pwned'</script>"},
            42,
            {"ts_ms": "not a time", "kind": "moved_storm", "node": null, "dc": null,
             "slot": 1234, "message": "many MOVED"},
            {"ts_ms": 1_764_633_601_000u64, "kind": "dc_resolved", "node": "127.0.1.1:7000",
             "dc": "east", "slot": null, "message": "east resolved"}
        ]
    });
    // The first poll also lists a node the cluster then drops: later polls must keep it, "gone".
    let mut first = state.clone();
    first["nodes"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(
            {"addr": "127.0.1.9:7000", "dc": "east", "role": "replica", "shard": 0,
             "breaker": "closed", "rtt_ms": {}}
        ));
    // `</` would end the script element early (the state holds a `</script>`).
    let literal = |v: &serde_json::Value| {
        serde_json::to_string(&v.to_string())
            .unwrap()
            .replace("</", "<\\/")
    };
    let page = include_str!("../src/admin/dashboard.html");
    // Poll k > 0 answers the second state with 100 more `get`s, 2.5 s later, every one of
    // them in the (1 ms, 2.5 ms] bucket.
    let fake_fetch = format!(
        "<script>let polls = 0; const first = {}, later = {};\n\
         window.fetch = async () => {{\n\
           const k = polls++;\n\
           const s = JSON.parse(k === 0 ? first : later);\n\
           s.uptime_seconds = 10 + 2.5 * k;\n\
           s.commands[0].requests = 10 + 100 * k;\n\
           s.commands[0].buckets[4] = 100 * k;\n\
           return new Response(JSON.stringify(s), \
             {{status: 200, headers: {{\"content-type\": \"application/json\"}}}});\n\
         }};</script>\n<script>",
        literal(&first),
        literal(&state)
    );
    let page = page.replacen("<script>", &fake_fetch, 1);
    let dir = TempDir::new();
    let file = dir.path().join("dashboard.html");
    std::fs::write(&file, page).unwrap();
    let dom = dump_dom(&format!("file://{}", file.display()));

    assert_eq!(
        tag_with(&dom, "id", "status").unwrap()["data-status"],
        "ok",
        "{dom}"
    );
    assert!(
        dom.contains("<title>meridian dashboard</title>"),
        "title changed: {dom}"
    );
    // Hostile text is text: escaped in what the page drew, no element made of it (the state
    // itself sits raw in the fake fetch script, outside <main>).
    let drawn = &dom[dom.find("<main>").unwrap()..dom.find("</main>").unwrap()];
    assert!(!drawn.contains("<img") && !drawn.contains("<b>"), "{drawn}");
    assert!(
        drawn.contains("&lt;img src=x onerror=\"document.title='pwned'\"&gt;</span>"),
        "{drawn}"
    );
    assert!(drawn.contains("<td>&lt;script&gt;document.title='pwned'&lt;/script&gt;</td>"));
    let down = tag_with(drawn, "data-breaker", "open").expect("the open node");
    assert_eq!(down["data-state"], "down");
    assert_eq!(down["data-dc"], "&lt;b&gt;west&lt;/b&gt;");
    let gone = tag_with(drawn, "data-node", "127.0.1.9:7000").expect("the dropped node");
    assert_eq!(gone["data-state"], "gone");
    assert!(drawn.contains("dropped from the cluster map"));
    // Rate and quantiles of the last interval (100 requests in 2.5 s, all in (1, 2.5] ms),
    // next to the since-start figures the gateway sent.
    let commands = element_text(drawn, "commands", "table");
    let row = &commands[commands.find("data-command=\"get\"").expect("a get row")..];
    let cells: Vec<&str> = row
        .split("<td")
        .skip(1)
        .take(7)
        .map(|c| &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()])
        .collect();
    assert_eq!(
        cells[..6],
        ["get", "40.0", "1.750", "2.485", "0.050", "0.099"],
        "{commands}"
    );
    let requests: u64 = cells[6].parse().expect("a request count");
    assert_eq!(requests % 100, 10, "10 + 100 per later poll");
    // DC host names: the failing one marked, with its kept address and its error as text.
    let hosts = tag_with(drawn, "id", "dc-hosts-section").expect("the DC host names section");
    assert!(!hosts.contains_key("hidden"), "{hosts:?}");
    let table = element_text(drawn, "dc-hosts", "table");
    assert_eq!(table.matches("data-failing=\"yes\"").count(), 1, "{table}");
    for cell in [
        "<td>127.0.1.1</td>",
        "<td>4.0 s</td>",
        "<td>3</td>",
        "<td>&lt;b&gt;request timed out&lt;/b&gt;</td>",
        "<td>west.example</td>",
        "<td>none</td>",
        "<td>resolving…</td>",
    ] {
        assert!(table.contains(cell), "no {cell} in {table}");
    }
    // Events newest first, whatever their shape.
    let events = element_text(&dom, "events", "table");
    let kinds: Vec<&str> = events
        .match_indices("data-kind=\"")
        .map(|(i, m)| {
            let rest = &events[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(kinds, ["dc_resolved", "moved_storm", "", "breaker_open"]);
    assert!(events.contains("2025-12-02 00:00:01.000"), "{events}");
    assert!(events.contains(">1234<") && events.contains("many MOVED"));
    assert!(!events.contains("no events"));
}
