//! Exercises the integration-test harness itself against real redis-server processes.

mod common;

use common::gateway::{GatewayOptions, parse_admin, parse_listening, render_config};
use common::raw::{frame_len, show};
use common::{Cluster, ClusterBuilder, Role, err, key_in_slot, key_slot, text};
use redis::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const FAILOVER: Duration = Duration::from_secs(60);

#[test]
fn three_by_one_cluster_forms_with_every_slot_covered() {
    let started = Instant::now();
    let cluster = Cluster::start(3, 1);
    eprintln!("3 masters + 3 replicas ready in {:?}", started.elapsed());

    let nodes = cluster.nodes();
    assert_eq!(nodes.len(), 6);
    assert_eq!(
        cluster.seeds(),
        nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>()
    );
    let roles: Vec<Role> = nodes.iter().map(|n| n.role()).collect();
    assert_eq!(
        roles,
        [
            Role::Master,
            Role::Master,
            Role::Master,
            Role::Replica,
            Role::Replica,
            Role::Replica
        ]
    );
    for node in nodes {
        assert!(node.is_alive() && node.is_running());
        assert_eq!(node.addr, format!("{}:{}", node.ip, node.port));
        assert_eq!(node.cluster_info()["cluster_state"], "ok");
        assert_eq!(node.id().len(), 40);
    }
    // Slots split evenly, in planned order; each master has its planned replica.
    for (k, (lo, hi)) in [(0, 5460), (5461, 10922), (10923, 16383)]
        .into_iter()
        .enumerate()
    {
        assert_eq!(cluster.master_of_slot(lo), nodes[k].addr);
        assert_eq!(cluster.master_of_slot(hi), nodes[k].addr);
        assert_eq!(
            cluster.replicas_of(&nodes[k].addr),
            vec![nodes[3 + k].addr.clone()]
        );
    }
    let mut masters: Vec<String> = nodes[..3].iter().map(|n| n.addr.clone()).collect();
    masters.sort();
    assert_eq!(cluster.masters(), masters);
    for slot in [0u16, 1, 5460, 5461, 9999, 16383] {
        let key = key_in_slot(slot, "key");
        let owner = cluster.master_of_slot(slot);
        assert_eq!(cluster.query(&owner, &["SET", &key, "v"]), Value::Okay);
        assert_eq!(text(&cluster.query(&owner, &["GET", &key])), "v");
    }
}

#[test]
fn killing_a_master_promotes_its_replica_and_restart_rejoins_as_replica() {
    let cluster = Cluster::start(3, 1);
    let old = cluster.master_of_slot(0);
    let replicas = cluster.replicas_of(&old);
    assert_eq!(replicas.len(), 1);
    let key = key_in_slot(0, "survivor");
    assert_eq!(cluster.query(&old, &["SET", &key, "v1"]), Value::Okay);
    assert_eq!(cluster.query(&old, &["WAIT", "1", "5000"]), Value::Int(1));

    let old_node = cluster.node(&old);
    let old_id = old_node.id().to_string();
    old_node.kill();
    assert!(!old_node.is_alive());
    assert_eq!(old_node.pid(), None);
    let new = cluster.wait_for_master_of_slot_change(0, &old, FAILOVER);
    assert_eq!(new, replicas[0]);
    assert_eq!(cluster.node(&new).role(), Role::Master);
    assert_eq!(text(&cluster.query(&new, &["GET", &key])), "v1");
    assert_eq!(cluster.query(&new, &["SET", &key, "v2"]), Value::Okay);

    old_node.restart();
    assert!(old_node.is_alive());
    cluster.wait_healthy(FAILOVER);
    assert_eq!(old_node.role(), Role::Replica);
    assert_eq!(old_node.id(), old_id);
    assert_eq!(text(&cluster.query(&old, &["CLUSTER", "MYID"])), old_id);
    assert_eq!(cluster.replicas_of(&new), vec![old.clone()]);
    assert_eq!(cluster.master_of_slot(0), new);
}

#[test]
fn sigstop_of_a_replica_is_survived_and_of_a_master_fails_over() {
    let cluster = ClusterBuilder::new()
        .node_timeout_ms(1000)
        .master("127.0.0.1")
        .master("127.0.0.1")
        .master("127.0.0.1")
        .replica("127.0.0.1", 0)
        .replica("127.0.0.1", 1)
        .replica("127.0.0.1", 2)
        .start();
    assert_eq!(cluster.node_timeout(), Duration::from_millis(1000));
    let replica = &cluster.nodes()[4];
    replica.stop();
    assert!(replica.is_alive() && replica.is_stopped() && !replica.is_running());
    let owner = cluster.master_of_slot(6000);
    assert_eq!(owner, cluster.nodes()[1].addr);
    assert_eq!(
        cluster.query(&owner, &["SET", &key_in_slot(6000, "k"), "v"]),
        Value::Okay
    );
    replica.cont();
    assert!(replica.is_running());
    cluster.wait_healthy(FAILOVER);

    let master = &cluster.nodes()[0];
    master.stop();
    let new = cluster.wait_for_master_of_slot_change(100, &master.addr, FAILOVER);
    assert_eq!(new, cluster.nodes()[3].addr);
    master.cont();
    cluster.wait_healthy(FAILOVER);
    assert_eq!(master.role(), Role::Replica);
    assert_eq!(cluster.replicas_of(&new), vec![master.addr.clone()]);
}

/// A master of `cluster` other than `than`.
fn other_master(cluster: &Cluster, than: &str) -> String {
    let masters = cluster.masters();
    masters
        .into_iter()
        .find(|m| m != than)
        .expect("another master")
}

#[test]
fn migrate_slot_moves_every_key_and_the_ownership() {
    let cluster = Cluster::start(3, 1);
    let slot = 777;
    let from = cluster.master_of_slot(slot);
    let to = other_master(&cluster, &from);
    // More keys than one GETKEYSINSLOT batch, so the copy loop runs several rounds.
    let keys: Vec<String> = (0..250)
        .map(|i| key_in_slot(slot, &format!("k{i}")))
        .collect();
    for key in &keys {
        assert_eq!(cluster.query(&from, &["SET", key, key]), Value::Okay);
    }
    cluster.migrate_slot(slot, &from, &to);
    assert_eq!(cluster.master_of_slot(slot), to);
    for key in &keys {
        assert_eq!(text(&cluster.query(&to, &["GET", key])), *key);
    }
    assert_eq!(
        cluster.query(&from, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]),
        Value::Int(0)
    );
    assert_eq!(
        err(&cluster.query(&from, &["GET", &keys[0]])),
        format!("MOVED {slot} {to}")
    );
    cluster.wait_healthy(FAILOVER);
}

#[test]
fn half_finished_migration_answers_ask_until_finished() {
    let cluster = Cluster::start(3, 1);
    let slot = 12345;
    let from = cluster.master_of_slot(slot);
    let to = other_master(&cluster, &from);
    let (moved, stays) = (key_in_slot(slot, "moved"), key_in_slot(slot, "stays"));
    assert_eq!(cluster.query(&from, &["SET", &moved, "m"]), Value::Okay);
    assert_eq!(cluster.query(&from, &["SET", &stays, "s"]), Value::Okay);

    cluster.begin_migration(slot, &from, &to);
    cluster.migrate_key(slot, &moved, &from, &to);
    assert_eq!(
        err(&cluster.query(&from, &["GET", &moved])),
        format!("ASK {slot} {to}")
    );
    assert_eq!(text(&cluster.query(&from, &["GET", &stays])), "s");
    assert_eq!(
        err(&cluster.query(&to, &["GET", &moved])),
        format!("MOVED {slot} {from}")
    );
    let asked = cluster.query_many(&to, &[&["ASKING"], &["GET", &moved]]);
    assert_eq!(asked[0], Value::Okay);
    assert_eq!(text(&asked[1]), "m");
    assert_eq!(cluster.master_of_slot(slot), from);

    cluster.finish_migration(slot, &from, &to);
    assert_eq!(cluster.master_of_slot(slot), to);
    assert_eq!(
        err(&cluster.query(&from, &["GET", &stays])),
        format!("MOVED {slot} {to}")
    );
    assert_eq!(text(&cluster.query(&to, &["GET", &stays])), "s");
}

#[test]
fn nodes_on_distinct_loopback_ips_form_a_cluster() {
    let ips = [
        "127.0.1.1",
        "127.0.1.2",
        "127.0.1.3",
        "127.0.2.1",
        "127.0.2.2",
        "127.0.2.3",
    ];
    let cluster = ClusterBuilder::new()
        .master(ips[0])
        .master(ips[1])
        .master(ips[2])
        .replica(ips[3], 0)
        .replica(ips[4], 1)
        .replica(ips[5], 2)
        .start();
    for (node, ip) in cluster.nodes().iter().zip(ips) {
        assert_eq!(node.ip, ip);
        assert!(node.addr.starts_with(&format!("{ip}:")));
    }
    assert!(cluster.master_of_slot(0).starts_with("127.0.1.1:"));
    assert!(cluster.master_of_slot(16383).starts_with("127.0.1.3:"));
    assert_eq!(
        cluster.replicas_of(&cluster.nodes()[1].addr),
        vec![cluster.nodes()[4].addr.clone()]
    );
    let nodes = text(&cluster.query(&cluster.nodes()[0].addr, &["CLUSTER", "NODES"]));
    assert!(
        !nodes.contains("127.0.0.1"),
        "a node announced 127.0.0.1:\n{nodes}"
    );
}

#[test]
fn clusters_started_in_parallel_do_not_collide() {
    // Tests may share a cluster between threads (one kills nodes while another sends load).
    fn shareable<T: Send + Sync>() {}
    shareable::<Cluster>();
    let clusters: Vec<Cluster> = thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(|| Cluster::start(2, 0))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("cluster start"))
            .collect()
    });
    let (a, b) = (&clusters[0], &clusters[1]);
    assert_ne!(a.dir(), b.dir());
    for node in a.nodes() {
        assert!(b.nodes().iter().all(|other| other.port != node.port));
    }
    for cluster in &clusters {
        let slots = cluster.query(&cluster.nodes()[0].addr, &["CLUSTER", "SLOTS"]);
        let Value::Array(ranges) = slots else {
            panic!("CLUSTER SLOTS: {slots:?}")
        };
        assert_eq!(ranges.len(), 2);
    }
}

#[test]
fn drop_kills_every_node_and_removes_the_dir() {
    let cluster = Cluster::start(1, 1);
    let pids: Vec<u32> = cluster
        .nodes()
        .iter()
        .map(|n| n.pid().expect("running"))
        .collect();
    let dir = cluster.dir().to_path_buf();
    assert!(
        dir.join(cluster.nodes()[0].port.to_string())
            .join("nodes.conf")
            .exists()
    );
    assert!(cluster.nodes()[0].log_path().exists());
    drop(cluster);
    assert!(!dir.exists(), "{} still exists", dir.display());
    for pid in pids {
        assert!(!process_lives(pid), "redis-server {pid} survived the drop");
    }
}

/// Whether `pid` exists and is not a zombie.
fn process_lives(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Format: "pid (comm) S …"; the state follows the last ')'.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
}

const CHILD_ENV: &str = "MERIDIAN_HARNESS_CHILD";

#[test]
fn redis_servers_die_with_a_killed_test_process() {
    if std::env::var_os(CHILD_ENV).is_some() {
        // Child role: start a cluster, report it, and wait to be SIGKILLed.
        let cluster = Cluster::start(1, 1);
        let pids: Vec<String> = cluster
            .nodes()
            .iter()
            .map(|n| n.pid().expect("running").to_string())
            .collect();
        println!("PIDS {}", pids.join(" "));
        println!("DIR {}", cluster.dir().display());
        thread::sleep(Duration::from_secs(120));
        panic!("the parent test should have killed this process");
    }
    let mut cmd = Command::new(std::env::current_exe().expect("test binary path"));
    cmd.args([
        "--exact",
        "redis_servers_die_with_a_killed_test_process",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    cmd.env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = common::spawn(cmd).expect("spawn the test binary");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut pids, mut dir) = (Vec::new(), None);
    while pids.is_empty() || dir.is_none() {
        let line = rx
            .recv_timeout(FAILOVER)
            .expect("the child test printed its cluster");
        // libtest prints `test NAME ... ` without a newline before the test's own output.
        if let Some((_, list)) = line.split_once("PIDS ") {
            pids = list
                .split(' ')
                .map(|p| p.parse::<u32>().expect("pid"))
                .collect();
        } else if let Some(path) = line.strip_prefix("DIR ") {
            dir = Some(path.to_string());
        }
    }
    assert!(pids.iter().all(|&pid| process_lives(pid)));
    child.kill().expect("SIGKILL the child test process");
    child.wait().expect("reap the child test process");
    common::wait_until(
        "the orphaned redis-servers to die",
        Duration::from_secs(10),
        || {
            let alive: Vec<&u32> = pids.iter().filter(|&&pid| process_lives(pid)).collect();
            if alive.is_empty() {
                Ok(())
            } else {
                Err(format!("still alive: {alive:?}"))
            }
        },
    );
    // The killed process could not clean up; its dir would otherwise wait for a later run.
    let _ = std::fs::remove_dir_all(Path::new(&dir.expect("dir")));
}

#[test]
fn local_key_slot_agrees_with_redis_and_reaches_every_slot() {
    let cluster = Cluster::start(1, 0);
    let addr = cluster.nodes()[0].addr.clone();
    for key in [
        "",
        "foo",
        "{user1000}.following",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "foo{bar}{zap}",
        "a{b",
    ] {
        let redis_slot = cluster.query(&addr, &["CLUSTER", "KEYSLOT", key]);
        assert_eq!(
            redis_slot,
            Value::Int(i64::from(key_slot(key.as_bytes()))),
            "key {key:?}"
        );
    }
    let key = key_in_slot(4242, "x");
    assert_eq!(
        cluster.query(&addr, &["CLUSTER", "KEYSLOT", &key]),
        Value::Int(4242)
    );
    let mut seen = vec![false; 16384];
    for n in 0..2_000_000u32 {
        seen[usize::from(key_slot(n.to_string().as_bytes()))] = true;
    }
    assert!(
        seen.iter().all(|&s| s),
        "key_in_slot's numeric tags miss a slot"
    );
}

#[test]
fn missing_binary_fails_with_install_hint() {
    let err = std::panic::catch_unwind(|| {
        common::require_binary("no-such-redis-server-xyz", "apt-get install redis-server")
    })
    .expect_err("must panic");
    let msg = err
        .downcast_ref::<String>()
        .expect("formatted panic message");
    assert!(msg.contains("apt-get install redis-server"), "{msg}");
}

#[test]
fn gateway_config_and_listening_line() {
    let opts = GatewayOptions {
        workers: 2,
        cluster_yaml: "password: secret\n".to_string(),
        extra_yaml: "limits: { max_args: 8 }".to_string(),
        args: Vec::new(),
    };
    let yaml = render_config(
        &["127.0.0.1:1".to_string(), "127.0.0.1:2".to_string()],
        &opts,
    );
    assert_eq!(
        yaml,
        "listen: 127.0.0.1:0\nworkers: 2\ncluster:\n  seeds: [\"127.0.0.1:1\", \"127.0.0.1:2\"]\n  \
         refresh_interval: 1s\n  password: secret\nadmin:\n  listen: 127.0.0.1:0\n\
         limits: { max_args: 8 }\n"
    );
    // A test's own admin section replaces the ephemeral one.
    let own = GatewayOptions {
        extra_yaml: "admin:\n  listen: \"\"\n".to_string(),
        ..GatewayOptions::default()
    };
    let yaml = render_config(&["127.0.0.1:1".to_string()], &own);
    assert_eq!(yaml.matches("admin:").count(), 1, "{yaml}");
    assert_eq!(
        parse_admin("meridian: admin on http://127.0.0.1:40124"),
        Some("127.0.0.1:40124".to_string())
    );
    assert_eq!(parse_admin("meridian: listening on 127.0.0.1:40123"), None);
    assert_eq!(
        parse_listening("meridian: admin on http://127.0.0.1:40124"),
        None,
        "the admin line is never taken for the client address"
    );
    assert_eq!(
        parse_listening("meridian: listening on 127.0.0.1:40123"),
        Some("127.0.0.1:40123".to_string())
    );
    assert_eq!(
        parse_listening("meridian: listening on 127.0.0.1:40123 (2 workers)"),
        Some("127.0.0.1:40123".to_string())
    );
    assert_eq!(parse_listening("meridian: starting"), None);
    assert_eq!(parse_listening("listening on nowhere"), None);
}

/// The raw client finds where each kind of RESP2/RESP3 reply ends, and waits for the rest of one
/// that is cut short.
#[test]
fn frames_of_every_type() {
    let cases: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR x\r\n",
        b":12\r\n",
        b"$-1\r\n",
        b"$3\r\nabc\r\n",
        b"*2\r\n$1\r\na\r\n*-1\r\n",
        b"%1\r\n+k\r\n:1\r\n",
        b"_\r\n",
        b"|1\r\n+a\r\n+b\r\n:3\r\n",
    ];
    for case in cases {
        let mut buf = case.to_vec();
        buf.extend_from_slice(b"+next\r\n");
        assert_eq!(frame_len(&buf), Ok(Some(case.len())), "{}", show(case));
        assert_eq!(frame_len(&case[..case.len() - 1]), Ok(None));
    }
}
