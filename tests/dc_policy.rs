//! Multi-DC read policy and per-node breakers against a real cluster whose nodes bind to
//! per-DC loopback ranges (127.0.1.x east, 127.0.2.x west). Where a command ran is read from
//! the nodes' own `INFO commandstats`, never from meridian's counters.

mod common;

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use common::{Cluster, ClusterBuilder, Gateway, Node, error_text, key_in_slot};
use common::{key_slot, try_run, value_text};
use redis::Value;

/// Bound on a failover being visible in every node's CLUSTER SLOTS.
const FAILOVER: Duration = Duration::from_secs(60);

const EAST: [&str; 3] = ["127.0.1.1", "127.0.1.2", "127.0.1.3"];
const WEST: [&str; 3] = ["127.0.2.1", "127.0.2.2", "127.0.2.3"];

/// Three masters in east, one replica of each in west (nodes 0..3 masters, 3..6 replicas).
fn east_west_cluster(node_timeout_ms: u64, extra: &[&str]) -> Cluster {
    let mut b = ClusterBuilder::new().node_timeout_ms(node_timeout_ms);
    for ip in EAST {
        b = b.master(ip);
    }
    for (m, ip) in WEST.iter().enumerate() {
        b = b.replica(ip, m);
    }
    b.redis_args(extra).start()
}

fn dc_yaml(local_dc: &str, breaker: &str) -> String {
    format!(
        "local_dc: {local_dc}
datacenters:
  east: {{ cidrs: [127.0.1.0/24] }}
  west: {{ cidrs: [127.0.2.0/24] }}
latency_ms:
  east: {{ east: 0.3, west: 40 }}
  west: {{ east: 40, west: 0.3 }}
read_policy:
  latency_source: map
breaker: {breaker}
"
    )
}

/// One field (`calls`, `rejected_calls`, …) of `cmdstat_<cmd>` in the node's commandstats.
fn cmdstat(node: &Node, cmd: &str, field: &str) -> u64 {
    let info = node.info("commandstats");
    parse_cmdstat(&info, cmd, field)
}

fn parse_cmdstat(info: &HashMap<String, String>, cmd: &str, field: &str) -> u64 {
    let Some(line) = info.get(&format!("cmdstat_{cmd}")) else {
        return 0;
    };
    line.split(',')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == field)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn snapshot(nodes: &[&Node], cmd: &str, field: &str) -> Vec<u64> {
    nodes.iter().map(|n| cmdstat(n, cmd, field)).collect()
}

fn deltas(before: &[u64], after: &[u64]) -> Vec<u64> {
    before.iter().zip(after).map(|(b, a)| a - b).collect()
}

/// `Ok(text)` for a normal reply, `Err(text)` for an error reply or an I/O error.
fn outcome(r: redis::RedisResult<Value>) -> Result<String, String> {
    match r {
        Ok(v) => match error_text(&v) {
            Some(e) => Err(e),
            None => Ok(value_text(&v).unwrap_or_else(|| format!("{v:?}"))),
        },
        Err(e) => Err(format!("client error: {e}")),
    }
}

#[test]
fn reads_land_in_the_local_dc_and_survive_a_stopped_local_replica() {
    // A long node timeout: the stopped replica stays in CLUSTER SLOTS, so the breaker (not a
    // topology change) is what keeps reads away from it.
    let cluster = east_west_cluster(15000, &[]);
    let nodes = cluster.nodes();
    let masters: Vec<&Node> = nodes[..3].iter().collect();
    let replicas: Vec<&Node> = nodes[3..].iter().collect();
    for r in &replicas {
        assert!(
            r.addr.starts_with("127.0.2."),
            "{} should be in west",
            r.addr
        );
    }
    let yaml = dc_yaml(
        "west",
        "{ server_timeout: 300ms, failure_limit: 2, retry_timeout: 500ms }",
    );
    let gw = Gateway::start(&cluster, &yaml);
    let mut conn = gw.client();

    // Writes: all on the masters, none tried on a replica.
    let keys: Vec<String> = (0..200).map(|i| format!("dc:key:{i}")).collect();
    let set_m0 = snapshot(&masters, "set", "calls");
    let rej_r0 = snapshot(&replicas, "set", "rejected_calls");
    let fail_r0 = snapshot(&replicas, "set", "failed_calls");
    for k in &keys {
        let r = outcome(try_run(&mut conn, &["SET", k, &format!("v-{k}")]));
        assert_eq!(r, Ok("OK".to_string()), "SET {k}");
    }
    let set_m = deltas(&set_m0, &snapshot(&masters, "set", "calls"));
    assert_eq!(
        set_m.iter().sum::<u64>(),
        keys.len() as u64,
        "masters' cmdstat_set deltas {set_m:?}"
    );
    assert_eq!(
        deltas(&rej_r0, &snapshot(&replicas, "set", "rejected_calls")),
        vec![0, 0, 0],
        "a replica rejected a SET"
    );
    assert_eq!(
        deltas(&fail_r0, &snapshot(&replicas, "set", "failed_calls")),
        vec![0, 0, 0],
        "a SET failed on a replica"
    );
    // Let the replicas catch up so the GETs below also return the values.
    for (m, r) in masters.iter().zip(&replicas) {
        let want = value_text(&m.query(&["DBSIZE"]));
        common::wait_until(
            &format!("{} to replicate {}", r.addr, m.addr),
            Duration::from_secs(20),
            || {
                let got = value_text(&r.query(&["DBSIZE"]));
                if got == want {
                    Ok(())
                } else {
                    Err(format!("{got:?} vs {want:?}"))
                }
            },
        );
    }

    // Reads: ≥ 99.5% on the west replicas.
    let get_m0 = snapshot(&masters, "get", "calls");
    let get_r0 = snapshot(&replicas, "get", "calls");
    for i in 0..2000 {
        let k = &keys[i % keys.len()];
        let r = outcome(try_run(&mut conn, &["GET", k]));
        assert_eq!(r, Ok(format!("v-{k}")), "GET {k} (#{i})");
    }
    let get_m = deltas(&get_m0, &snapshot(&masters, "get", "calls"));
    let get_r = deltas(&get_r0, &snapshot(&replicas, "get", "calls"));
    let (on_m, on_r): (u64, u64) = (get_m.iter().sum(), get_r.iter().sum());
    assert_eq!(
        on_m + on_r,
        2000,
        "GETs seen: masters {get_m:?}, replicas {get_r:?}"
    );
    assert!(
        on_r * 1000 >= 2000 * 995,
        "only {on_r}/2000 GETs served in west: masters {get_m:?}, replicas {get_r:?}"
    );

    // SIGSTOP the west replica of shard 0: its reads move to the east master.
    let (master0, replica0) = (masters[0], replicas[0]);
    let slot0_master = cluster.master_of_slot(key_slot(keys[0].as_bytes()));
    let shard0_keys: Vec<&String> = keys
        .iter()
        .filter(|k| cluster.master_of_slot(key_slot(k.as_bytes())) == master0.addr)
        .collect();
    assert!(
        !shard0_keys.is_empty(),
        "no key of shard 0 ({slot0_master})"
    );
    let m0_before = cmdstat(master0, "get", "calls");
    let r0_before = cmdstat(replica0, "get", "calls");
    replica0.stop();
    let mut results: Vec<Result<String, String>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(4);
    for i in 0..400 {
        if Instant::now() >= deadline {
            break;
        }
        let k = shard0_keys[i % shard0_keys.len()];
        let r = outcome(try_run(&mut conn, &["GET", k]));
        if matches!(&r, Err(e) if e.starts_with("client error")) {
            conn = gw.client();
        }
        if let Ok(v) = &r {
            assert_eq!(
                v,
                &format!("v-{k}"),
                "GET {k} while {} is stopped",
                replica0.addr
            );
        }
        results.push(r);
    }
    let first_ok = results.iter().position(Result::is_ok);
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let Some(first_ok) = first_ok else {
        panic!(
            "no GET succeeded while {} was stopped: {errors:?}",
            replica0.addr
        );
    };
    let late_errors: Vec<&String> = results[first_ok..]
        .iter()
        .filter_map(|r| r.as_ref().err())
        .collect();
    assert!(
        late_errors.is_empty(),
        "GETs failed after reads had moved off the stopped replica {}: {late_errors:?} \
         (of {} GETs, first success #{first_ok})",
        replica0.addr,
        results.len()
    );
    assert!(
        errors.len() <= 3,
        "more GETs failed than the breaker's failure_limit allows: {errors:?}"
    );
    let oks = results.iter().filter(|r| r.is_ok()).count() as u64;
    eprintln!(
        "while {} was stopped: {} GETs, {} failed {errors:?}",
        replica0.addr,
        results.len(),
        errors.len()
    );
    let m0_served = cmdstat(master0, "get", "calls") - m0_before;
    assert!(
        m0_served >= oks,
        "{oks} GETs succeeded while {} was stopped but its east master {} served only {m0_served}",
        replica0.addr,
        master0.addr
    );

    // SIGCONT: reads come back to the west replica.
    replica0.cont();
    let back = Instant::now() + Duration::from_secs(30);
    let mut rounds = 0;
    loop {
        rounds += 1;
        let r_before = cmdstat(replica0, "get", "calls");
        for i in 0..100 {
            let k = shard0_keys[i % shard0_keys.len()];
            let r = outcome(try_run(&mut conn, &["GET", k]));
            if matches!(&r, Err(e) if e.starts_with("client error")) {
                conn = gw.client();
            }
            if let Ok(v) = &r {
                assert_eq!(v, &format!("v-{k}"), "GET {k} after SIGCONT");
            }
        }
        let served = cmdstat(replica0, "get", "calls") - r_before;
        if served >= 99 {
            break;
        }
        if Instant::now() >= back || rounds >= 300 {
            let info = outcome(try_run(&mut conn, &["INFO"])).unwrap_or_else(|e| e);
            panic!(
                "reads did not come back to {} after SIGCONT: last round it served {served}/100 \
                 (it had served {r0_before} before the stop); meridian INFO:\n{info}",
                replica0.addr
            );
        }
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn killed_master_fails_writes_fast_until_the_failover() {
    let cluster = east_west_cluster(1000, &["--cluster-require-full-coverage", "no"]);
    let nodes = cluster.nodes();
    let yaml = dc_yaml("east", "{ failure_limit: 3, retry_timeout: 1s }");
    let gw = Gateway::start(&cluster, &yaml);
    let mut conn = gw.client();
    let victim = &nodes[0];
    let slot: u16 = 100; // shard 0: 0..=5460
    assert_eq!(cluster.master_of_slot(slot), victim.addr);
    let key = key_in_slot(slot, "w");
    let others = [key_in_slot(6000, "o1"), key_in_slot(12000, "o2")];
    assert_ne!(cluster.master_of_slot(6000), victim.addr);
    assert_ne!(cluster.master_of_slot(12000), victim.addr);
    assert_eq!(
        outcome(try_run(&mut conn, &["SET", &key, "before"])),
        Ok("OK".into())
    );

    victim.kill();
    let prefix = format!(
        "TRYAGAIN meridian: master {} for slot {slot} unavailable (circuit open, retry in ",
        victim.addr
    );
    let mut refused = 0usize;
    let mut not_sent = 0usize;
    let mut other_errors: Vec<String> = Vec::new();
    let mut ok_before_refusal = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..3000 {
        if refused >= 10 || Instant::now() >= deadline {
            break;
        }
        match outcome(try_run(&mut conn, &["SET", &key, &format!("during-{i}")])) {
            Ok(v) => {
                // Only possible once the failover is done; then the test cannot see the breaker.
                assert_eq!(v, "OK");
                ok_before_refusal += 1;
                break;
            }
            // Before the breaker opens, a write that could not be sent (connection refused)
            // is a TRYAGAIN too, saying so.
            Err(e) if e.starts_with("TRYAGAIN") && e.ends_with("(request not sent)") => {
                assert!(
                    e.contains(&format!("cannot connect to {}", victim.addr)),
                    "{e:?}"
                );
                not_sent += 1;
            }
            Err(e) if e.starts_with("TRYAGAIN") => {
                assert!(
                    e.starts_with(&prefix) && e.ends_with("ms)"),
                    "refusal text {e:?}, want {prefix}…ms)"
                );
                refused += 1;
            }
            Err(e) => {
                if e.starts_with("client error") {
                    conn = gw.client();
                }
                other_errors.push(e);
            }
        }
        for o in &others {
            assert_eq!(
                outcome(try_run(&mut conn, &["SET", o, &format!("x{i}")])),
                Ok("OK".into()),
                "write to {o} (another master) while {} is down",
                victim.addr
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "after killing {}: {refused} writes refused, {not_sent} not sent, other errors {other_errors:?}",
        victim.addr
    );
    assert!(
        refused > 0 && ok_before_refusal == 0,
        "no write was refused with {prefix}…: other errors {other_errors:?}, OKs {ok_before_refusal}"
    );
    // failure_limit (3) failures open the breaker (health probes count too); the loop above
    // stops well before retry_timeout lets a half-open probe through.
    assert!(
        other_errors.len() + not_sent <= 3,
        "too many failures before the breaker opened: {not_sent} not sent, {other_errors:?}"
    );

    let new_master = cluster.wait_for_master_of_slot_change(slot, &victim.addr, FAILOVER);
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut done = false;
    for i in 0..1000 {
        if Instant::now() >= deadline {
            break;
        }
        match outcome(try_run(&mut conn, &["SET", &key, "after"])) {
            Ok(v) => {
                assert_eq!(v, "OK");
                done = true;
                break;
            }
            Err(e) => {
                if e.starts_with("client error") {
                    conn = gw.client();
                }
                last = format!("#{i}: {e}");
            }
        }
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        done,
        "writes to slot {slot} never succeeded on {new_master}; last {last}"
    );
    assert_eq!(
        outcome(try_run(&mut conn, &["GET", &key])),
        Ok("after".into())
    );
    let on_new = cluster.node(&new_master).query(&["GET", &key]);
    assert_eq!(value_text(&on_new).as_deref(), Some("after"));
}
