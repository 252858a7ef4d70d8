//! How a client's connection ends other than by the client: CLIENT KILL from another client
//! (on either worker), the idle timeout (`client.timeout`, also after a reload changes it), and
//! what neither may touch (a client waiting for a reply is not idle; other clients stay).
//! (Stopping the gateway with clients connected is in core_cli.rs.)

mod common;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use common::gateway::GatewayOptions;
use common::raw::{Raw, show};
use common::{Cluster, Gateway, signal, wait_until};

#[test]
fn client_kill_closes_exactly_the_named_clients_on_either_worker() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start_with(&cluster, GatewayOptions::with_workers(2));
    let addr = gw.addr();
    let mut killer = Raw::connect(&addr);
    let mut others: Vec<(Raw, u64)> = (0..6)
        .map(|_| {
            let mut c = Raw::connect(&addr);
            let id = c.client_id();
            (c, id)
        })
        .collect();
    // Both workers serve some of them (hand-over balances new clients between workers).
    let workers = killer.call_text(&["INFO", "workers"]);
    assert!(
        workers.matches("clients=").count() >= 2,
        "INFO workers: {workers}"
    );
    // Kill every other one; the rest keep working.
    for (i, (_, id)) in others.iter().enumerate() {
        if i % 2 == 0 {
            let reply = killer.call(&["CLIENT", "KILL", "ID", &id.to_string()]);
            assert_eq!(reply, b":1\r\n", "CLIENT KILL ID {id}: {}", show(&reply));
        }
    }
    for (i, (c, id)) in others.iter_mut().enumerate() {
        if i % 2 == 0 {
            c.expect_closed();
        } else {
            assert_eq!(c.call(&["PING"]), b"+PONG\r\n", "client {id} survived");
        }
    }
    let ids: Vec<u64> = others.iter().map(|(_, id)| *id).collect();
    let list = killer.call_text(&["CLIENT", "LIST"]);
    for (i, id) in ids.iter().enumerate() {
        let listed = list.contains(&format!("id={id} "));
        assert_eq!(listed, i % 2 == 1, "client {id} in CLIENT LIST:\n{list}");
    }
    // Killing a client that is gone kills nothing.
    let again = killer.call(&["CLIENT", "KILL", "ID", &ids[0].to_string()]);
    assert_eq!(again, b":0\r\n", "{}", show(&again));
}

#[test]
fn idle_clients_are_closed_and_a_reload_changes_the_timeout() {
    let cluster = Cluster::start(3, 0);
    let gw = Gateway::start(&cluster, "client: { timeout: 1s }\n");
    let addr = gw.addr();
    let mut busy = Raw::connect(&addr);
    let mut idle = Raw::connect(&addr);
    assert_eq!(idle.call(&["PING"]), b"+PONG\r\n");
    let started = Instant::now();
    // `busy` sends something every 200 ms for 3 s: never idle for 1 s.
    for _ in 0..15 {
        assert_eq!(busy.call(&["PING"]), b"+PONG\r\n");
        thread::sleep(Duration::from_millis(200));
    }
    idle.expect_closed();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(busy.call(&["PING"]), b"+PONG\r\n", "an active client stays");

    // A client waiting for its reply is not idle, however long the wait (BLPOP 2 s).
    let mut waiting = Raw::connect(&addr);
    let reply = waiting.call(&["BLPOP", "lifecycle:nothing", "2"]);
    assert_eq!(reply, b"*-1\r\n", "{}", show(&reply));

    // A reload to 0 (never): a client idle for 2 s stays.
    let config = gw.config_path().to_path_buf();
    let text = fs::read_to_string(&config).expect("read config");
    let never = text.replace("client: { timeout: 1s }", "client: { timeout: 0 }");
    assert_ne!(never, text, "the test's config line is in the file");
    fs::write(&config, &never).expect("write config");
    let mut watcher = Raw::connect(&addr);
    signal(gw.pid(), libc::SIGHUP);
    wait_until("the reload", Duration::from_secs(10), || {
        let now = watcher.call_text(&["CONFIG", "GET", "meridian.client.timeout"]);
        if now.ends_with("\r\n0\r\n") {
            Ok(())
        } else {
            Err(format!("{now:?}"))
        }
    });
    let mut lingering = Raw::connect(&addr);
    assert_eq!(lingering.call(&["PING"]), b"+PONG\r\n");
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        lingering.call(&["PING"]),
        b"+PONG\r\n",
        "no idle timeout after the reload"
    );
}
