//! TLS (issue 9, items 4 and 5): a real Redis Cluster that speaks TLS only (`port 0`,
//! `tls-port`, `tls-cluster yes`) behind meridian with `cluster.tls`; clients reaching meridian
//! over TLS with redis-cli, redis-py and rustls, with and without client certificates; bad
//! handshakes that cost only their own connection; certificates reloaded on SIGHUP and on
//! file change while connections already up keep working.

mod common;

use common::http;
use common::tls::{TlsCluster, call, client_config, connect, peer_cert, redis_cli};
use common::{Gateway, GatewayOptions, key_in_slot, run, text};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Bound on a certificate reload being seen by a new connection (a hang guard).
const RELOAD_GUARD: Duration = Duration::from_secs(30);

/// Keys on three different masters (slots 0, 8000, 16000).
fn spread_keys(tag: &str) -> [String; 3] {
    [0, 8000, 16000].map(|slot| key_in_slot(slot, &format!("{tag}{slot}")))
}

/// The `tls:` listener section for a gateway.
fn listener_yaml(cert: &Path, key: &Path, extra: &str) -> String {
    format!(
        "tls:\n  listen: 127.0.0.1:0\n  cert: {}\n  key: {}\n  handshake_timeout: 3s\n{extra}",
        cert.display(),
        key.display()
    )
}

/// Runs a redis-py script (argv[1] = port, argv[2..] = file paths); returns its stdout.
fn python(script: &str, args: &[String]) -> Result<String, String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .map_err(|e| format!("run python3: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.success() {
        true => Ok(stdout),
        false => Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        )),
    }
}

/// The value of one sample of `/metrics`, e.g. `meridian_tls_handshakes_total{result="ok"}`.
fn metric(gw: &Gateway, sample: &str) -> u64 {
    let body = http::get(&gw.admin_addr(), "/metrics").body;
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no `{sample}` in /metrics:\n{body}"))
}

/// Polls new TLS connections until one is served with the certificate `der`.
fn wait_for_cert(addr: &str, config: &std::sync::Arc<rustls::ClientConfig>, der: &[u8]) {
    let deadline = Instant::now() + RELOAD_GUARD;
    loop {
        if let Ok(conn) = connect(addr, config)
            && peer_cert(&conn) == der
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "new connections still get the old certificate after {RELOAD_GUARD:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_tls_cluster_served_to_plain_and_tls_clients() {
    let cluster = TlsCluster::start(3);
    let pki = &cluster.pki;
    // Two workers: clients are handed between them to keep them even, so some TLS clients are
    // accepted by one worker and shaken hands with by the other.
    let opts = GatewayOptions {
        workers: 2,
        cluster_yaml: cluster.gateway_cluster_yaml(),
        extra_yaml: listener_yaml(&pki.server.cert, &pki.server.key, ""),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with_seeds(&cluster.seeds(), opts);
    let tls_addr = gw.tls_addr();
    let tls_port = tls_addr.rsplit(':').next().unwrap().to_string();

    // Plain client, TLS backends: SET/GET/MGET over three masters.
    let keys = spread_keys("plain");
    let mut plain = gw.client();
    for k in &keys {
        assert_eq!(text(&run(&mut plain, &["SET", k, k])), "OK");
    }
    let got = run(&mut plain, &["MGET", &keys[0], &keys[1], &keys[2]]);
    assert_eq!(common::strings(&got), keys.to_vec());
    // The data is on the TLS nodes themselves.
    let on_node = cluster.cli(
        cluster.seeds()[2]
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap(),
        &["GET", &keys[2]],
    );
    assert_eq!(on_node.unwrap().trim(), keys[2]);

    // Client-owned connections to the nodes run TLS too: a transaction, a blocking command,
    // a subscription.
    let tx_key = &key_in_slot(9000, "tx");
    let tx = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg(tx_key)
        .arg(1)
        .cmd("INCR")
        .arg(tx_key)
        .query::<(String, i64)>(&mut plain)
        .expect("MULTI/EXEC");
    assert_eq!(tx, ("OK".to_string(), 2));
    let empty = key_in_slot(12000, "emptylist");
    let popped = run(&mut plain, &["BLPOP", &empty, "0.1"]);
    assert_eq!(popped, redis::Value::Nil);
    let mut sub_conn = gw.client();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("tls-news").expect("SUBSCRIBE");
    sub.set_read_timeout(Some(common::tls::IO_TIMEOUT)).unwrap();
    assert_eq!(
        common::int(&run(&mut plain, &["PUBLISH", "tls-news", "hello"])),
        1
    );
    let msg = sub.get_message().expect("the published message");
    assert_eq!(msg.get_payload::<String>().unwrap(), "hello");
    drop(sub);
    // The prober measures every node over TLS.
    let deadline = Instant::now() + RELOAD_GUARD;
    for seed in cluster.seeds() {
        let series = format!("meridian_probe_rtt_seconds{{node=\"{seed}\"");
        while !http::get(&gw.admin_addr(), "/metrics")
            .body
            .contains(&series)
        {
            assert!(Instant::now() < deadline, "no probe RTT of {seed}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // A rustls client over the TLS listener.
    let config = client_config(&pki.ca_path, None);
    let mut tls = connect(&tls_addr, &config).expect("TLS connect");
    assert_eq!(peer_cert(&tls), pki.server_der);
    for k in spread_keys("tls") {
        assert_eq!(call(&mut tls, &["SET", &k, "v"]).unwrap(), "+OK\r\n");
        assert_eq!(call(&mut tls, &["GET", &k]).unwrap(), "$1\r\nv\r\n");
    }
    let mget = call(&mut tls, &["MGET", &keys[0], &keys[1], &keys[2]]).unwrap();
    assert_eq!(
        mget,
        format!(
            "*3\r\n${}\r\n{}\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
            keys[0].len(),
            keys[0],
            keys[1].len(),
            keys[1],
            keys[2].len(),
            keys[2]
        )
    );

    // redis-cli --tls.
    let ca = pki.ca_path.to_string_lossy().into_owned();
    let cli = |cmd: &[&str]| {
        let mut args: Vec<String> = ["--tls", "--cacert", &ca, "-h", "127.0.0.1", "-p", &tls_port]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(cmd.iter().map(|s| s.to_string()));
        redis_cli(&args)
    };
    assert_eq!(cli(&["SET", "cli:k", "cli-v"]).unwrap().trim(), "OK");
    assert_eq!(cli(&["GET", "cli:k"]).unwrap().trim(), "cli-v");

    // redis-py with ssl=True.
    let script = "import sys, redis\n\
        r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), ssl=True, ssl_ca_certs=sys.argv[2])\n\
        r.set('py:k', 'py-v')\n\
        print(r.get('py:k').decode(), r.mget(sys.argv[3], sys.argv[4], sys.argv[5]))\n";
    let out = python(
        script,
        &[
            tls_port.clone(),
            ca.clone(),
            keys[0].clone(),
            keys[1].clone(),
            keys[2].clone(),
        ],
    )
    .expect("redis-py over TLS");
    assert!(out.starts_with("py-v ["), "{out}");
    assert!(out.contains(&keys[2]), "{out}");

    // A plain-text client on the TLS port is closed; the TLS client does not notice.
    let mut wrong = TcpStream::connect(&tls_addr).expect("connect");
    wrong
        .set_read_timeout(Some(common::tls::IO_TIMEOUT))
        .unwrap();
    wrong.write_all(b"PING\r\n").expect("write");
    let mut buf = [0u8; 64];
    let n = wrong.read(&mut buf).unwrap_or(0);
    assert!(!buf[..n].starts_with(b"+PONG"), "{:?}", &buf[..n]);
    let n2 = wrong.read(&mut buf).unwrap_or(0);
    assert_eq!(n2, 0, "the plain client must be closed");
    assert_eq!(call(&mut tls, &["PING"]).unwrap(), "+PONG\r\n");

    // A handshake that never finishes is cut after tls.handshake_timeout (3s: long enough for
    // a real client's handshake on a loaded machine).
    let mut silent = TcpStream::connect(&tls_addr).expect("connect");
    silent
        .set_read_timeout(Some(common::tls::IO_TIMEOUT))
        .unwrap();
    match silent.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("a silent client got {n} bytes"),
        Err(e) => assert_eq!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset,
            "the silent client must be closed, not left open: {e}"
        ),
    }
    assert_eq!(call(&mut tls, &["PING"]).unwrap(), "+PONG\r\n");
    assert_eq!(
        metric(&gw, "meridian_tls_handshakes_total{result=\"timeout\"}"),
        1
    );
    assert!(metric(&gw, "meridian_tls_handshakes_total{result=\"failed\"}") >= 1);
    assert!(metric(&gw, "meridian_tls_handshakes_total{result=\"ok\"}") >= 3);

    // A client that writes 24 MB of SETs before reading a reply gets every reply over TLS.
    big_pipeline_over_tls(&tls_addr, &config);

    // Certificate files replaced on disk: new connections get the new certificate, the
    // connection already up keeps working.
    let next = pki.issue("server-2");
    std::fs::write(&pki.server.key, &next.key_pem).unwrap();
    std::fs::write(&pki.server.cert, &next.cert_pem).unwrap();
    wait_for_cert(&tls_addr, &config, &next.der);
    assert_eq!(
        call(&mut tls, &["GET", &keys[1]]).unwrap().lines().nth(1),
        Some(keys[1].as_str())
    );
}

/// Writes `SET`s until 24 MB went out before reading anything, from one task, while another
/// reads; every reply must arrive in order.
fn big_pipeline_over_tls(addr: &str, config: &std::sync::Arc<rustls::ClientConfig>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let value = "v".repeat(1000);
    let per_batch = 1000;
    let mut batch = Vec::new();
    for i in 0..per_batch {
        batch.extend(common::raw::encode(&["SET", &format!("big:{i}"), &value]));
    }
    let rounds = (24 << 20) / batch.len() + 1;
    let total = rounds * per_batch;
    let (config, addr) = (config.clone(), addr.to_string());
    rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let stream = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let (mut rd, mut wr) = tokio::io::split(stream);
        let writer = async move {
            for _ in 0..rounds {
                wr.write_all(&batch).await.expect("meridian keeps reading");
            }
            wr.write_all(&common::raw::encode(&["PING"])).await.unwrap();
            wr.flush().await.unwrap();
            wr
        };
        let want = "+OK\r\n".repeat(total) + "+PONG\r\n";
        let reader = async move {
            let mut got = vec![0u8; want.len()];
            rd.read_exact(&mut got).await.expect("every reply");
            assert!(
                got == want.as_bytes(),
                "replies differ from {total} +OK and a +PONG"
            );
            rd
        };
        let guard = Duration::from_secs(300);
        let both = async { tokio::join!(writer, reader) };
        let (mut wr, rd) = tokio::time::timeout(guard, both)
            .await
            .expect("the pipeline over TLS hangs");
        // Then 24 MB of replies asked for before reading any, and time for meridian to gather
        // them: the socket fills, rustls holds records, and every byte must still leave once
        // the client reads (the sleep makes that case likely; it bounds nothing).
        let mut rd = rd;
        let big = "b".repeat(1 << 20);
        let mut asks = common::raw::encode(&["SET", "big:value", &big]);
        for _ in 0..24 {
            asks.extend(common::raw::encode(&["GET", "big:value"]));
        }
        wr.write_all(&asks).await.unwrap();
        wr.flush().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let one = format!("${}\r\n{big}\r\n", big.len());
        let want = "+OK\r\n".to_string() + &one.repeat(24);
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(guard, rd.read_exact(&mut got))
            .await
            .expect("replies held in TLS buffers never left")
            .expect("every reply");
        assert!(got == want.as_bytes(), "big replies differ");

        // One request at a time: its reply is written through rustls from where it arrives,
        // and 8 MB do not fit the socket while the client sleeps, so records wait and the
        // session finishes the write. In even rounds a GET sent meanwhile comes after it; in
        // odd rounds nothing else is sent until the reply is whole, so nothing but the
        // hand-over from the direct write can wake the session to push the rest.
        let huge = "h".repeat(8 << 20);
        wr.write_all(&common::raw::encode(&["SET", "big:huge", &huge]))
            .await
            .unwrap();
        wr.flush().await.unwrap();
        let mut ok = [0u8; 5];
        rd.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"+OK\r\n");
        let huge_reply = format!("${}\r\n{huge}\r\n", huge.len());
        for round in 0..4 {
            wr.write_all(&common::raw::encode(&["GET", "big:huge"]))
                .await
                .unwrap();
            wr.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut got = Vec::new();
            if round % 2 == 1 {
                got.resize(huge_reply.len(), 0);
                tokio::time::timeout(guard, rd.read_exact(&mut got))
                    .await
                    .expect("a lone reply over TLS never left")
                    .expect("the whole reply");
            }
            wr.write_all(&common::raw::encode(&["GET", "big:value"]))
                .await
                .unwrap();
            wr.flush().await.unwrap();
            let start = got.len();
            got.resize(huge_reply.len() + one.len(), 0);
            tokio::time::timeout(guard, rd.read_exact(&mut got[start..]))
                .await
                .expect("a lone reply over TLS never left")
                .expect("every reply");
            let want = huge_reply.clone() + &one;
            assert!(got == want.as_bytes(), "round {round}: replies differ");
        }
    });
}

#[test]
fn mutual_tls_refuses_clients_without_a_certificate_and_reloads_on_sighup() {
    let cluster = TlsCluster::start(3);
    let pki = &cluster.pki;
    let extra = format!(
        "  client_ca: {}\n  watch: false\n  min_version: \"1.3\"\nlisten: \"\"\n",
        pki.ca_path.display()
    );
    let opts = GatewayOptions {
        cluster_yaml: cluster.gateway_cluster_yaml(),
        extra_yaml: listener_yaml(&pki.server.cert, &pki.server.key, &extra),
        ..GatewayOptions::default()
    };
    let gw = Gateway::start_with_seeds(&cluster.seeds(), opts);
    let tls_addr = gw.tls_addr();
    let tls_port = tls_addr.rsplit(':').next().unwrap().to_string();
    // TLS only: the address the harness read is the TLS one.
    assert_eq!(gw.addr(), tls_addr);

    let with_cert = client_config(&pki.ca_path, Some(&pki.client));
    let mut good = connect(&tls_addr, &with_cert).expect("client with a certificate");
    let [a, b, c] = spread_keys("mtls");
    for k in [&a, &b, &c] {
        assert_eq!(call(&mut good, &["SET", k, "1"]).unwrap(), "+OK\r\n");
    }

    // Without a certificate: refused (TLS 1.3 reports it at the first read).
    let without = client_config(&pki.ca_path, None);
    let refused = connect(&tls_addr, &without).and_then(|mut conn| call(&mut conn, &["PING"]));
    assert!(
        refused.is_err(),
        "a client without a certificate was served: {refused:?}"
    );
    assert_eq!(call(&mut good, &["GET", &b]).unwrap(), "$1\r\n1\r\n");

    // redis-py with and without a client certificate.
    let ca = pki.ca_path.to_string_lossy().into_owned();
    let (cert, key) = (
        pki.client.cert.to_string_lossy().into_owned(),
        pki.client.key.to_string_lossy().into_owned(),
    );
    let with = "import sys, redis\n\
        r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), ssl=True, ssl_ca_certs=sys.argv[2], ssl_certfile=sys.argv[3], ssl_keyfile=sys.argv[4])\n\
        print(r.get(sys.argv[5]).decode())\n";
    let out = python(with, &[tls_port.clone(), ca.clone(), cert, key, c.clone()]);
    assert_eq!(out.expect("redis-py with a certificate").trim(), "1");
    let without_py = "import sys, redis\n\
        r = redis.Redis(host='127.0.0.1', port=int(sys.argv[1]), ssl=True, ssl_ca_certs=sys.argv[2])\n\
        r.ping()\n";
    let out = python(without_py, &[tls_port.clone(), ca.clone()]);
    assert!(
        out.is_err(),
        "redis-py without a certificate was served: {out:?}"
    );
    assert_eq!(call(&mut good, &["PING"]).unwrap(), "+PONG\r\n");

    // New files on disk are not watched here (watch: false): only SIGHUP puts them in force.
    assert_eq!(peer_cert(&good), pki.server_der);
    let next = pki.issue("server-2");
    std::fs::write(&pki.server.key, &next.key_pem).unwrap();
    std::fs::write(&pki.server.cert, &next.cert_pem).unwrap();
    let still_old = connect(&tls_addr, &with_cert).expect("connect");
    assert_eq!(peer_cert(&still_old), pki.server_der);
    common::signal(gw.pid(), libc::SIGHUP);
    wait_for_cert(&tls_addr, &with_cert, &next.der);
    assert_eq!(call(&mut good, &["GET", &a]).unwrap(), "$1\r\n1\r\n");
    let mut fresh = connect(&tls_addr, &with_cert).expect("connect");
    assert_eq!(call(&mut fresh, &["GET", &c]).unwrap(), "$1\r\n1\r\n");

    // A reload whose files do not load keeps the certificates in force.
    std::fs::write(&pki.server.cert, "not a certificate\n").unwrap();
    common::signal(gw.pid(), libc::SIGHUP);
    let deadline = Instant::now() + RELOAD_GUARD;
    while !gw.stderr().contains("TLS certificates not reloaded") {
        assert!(
            Instant::now() < deadline,
            "no log of the failed reload:\n{}",
            gw.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut after = connect(&tls_addr, &with_cert).expect("connect after a failed reload");
    assert_eq!(peer_cert(&after), next.der);
    assert_eq!(call(&mut after, &["PING"]).unwrap(), "+PONG\r\n");
}

#[test]
fn check_loads_every_certificate_file_the_config_names() {
    let pki = common::tls::Pki::new();
    let dir = pki.dir();
    let check = |name: &str, yaml: &str| {
        let path = dir.join(name);
        std::fs::write(&path, yaml).unwrap();
        let out = Command::new(common::binary())
            .args(["check", "-c"])
            .arg(&path)
            .output()
            .expect("run meridian check");
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let base = "listen: 127.0.0.1:7617\ncluster:\n  seeds: [127.0.0.1:7001]\n";
    let ca = pki.ca_path.display();
    let good = format!(
        "{base}  tls:\n    enabled: true\n    ca: {ca}\n    cert: {cert}\n    key: {key}\n{}",
        listener_yaml(
            &pki.server.cert,
            &pki.server.key,
            &format!("  client_ca: {ca}\n")
        ),
        cert = pki.client.cert.display(),
        key = pki.client.key.display(),
    );
    let (ok, text) = check("good.yaml", &good);
    assert!(ok, "{text}");
    // A key that does not go with its certificate, and a missing CA file: named, not shown.
    let swapped = good.replacen(
        &format!("key: {}", pki.server.key.display()),
        &format!("key: {}", pki.client.key.display()),
        1,
    );
    let (ok, text) = check("swapped.yaml", &swapped);
    assert!(!ok && text.contains("tls.key"), "{text}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
    let missing = good.replace(&pki.ca_path.display().to_string(), "/nonexistent/ca.crt");
    let (ok, text) = check("missing.yaml", &missing);
    assert!(!ok && text.contains("/nonexistent/ca.crt"), "{text}");
}
