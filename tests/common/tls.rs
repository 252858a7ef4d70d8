//! TLS for the tests: certificates made by the test (meridian's own `tls::mint`), a Redis
//! Cluster whose nodes listen on `tls-port` only (`port 0`, `tls-cluster yes`), formed and
//! queried with `redis-cli --tls`, and a small blocking TLS client for meridian.

use super::{INSTALL, TempDir, next_port, require_binary, spawn, wait_until};
use meridian::tls::mint::{Authority, Files, Issued};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Bound on a node answering PING after spawn, and on the cluster forming.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Read/write timeout of the test clients: a hang guard, never a speed limit.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A CA with a certificate for the nodes and the gateway (127.0.0.1, localhost) and one for
/// clients, written under a temp dir.
pub struct Pki {
    pub ca: Authority,
    pub ca_path: PathBuf,
    /// Node and gateway certificate.
    pub server: Files,
    /// The DER of `server`'s certificate.
    pub server_der: Vec<u8>,
    /// A client certificate signed by the same CA.
    pub client: Files,
    dir: TempDir,
}

impl Pki {
    /// Makes the CA and both certificates.
    pub fn new() -> Pki {
        let dir = TempDir::new();
        let ca = Authority::new("meridian test CA").expect("CA");
        let ca_path = dir.path().join("ca.crt");
        ca.write_cert(&ca_path).expect("write CA");
        let server = ca
            .issue("server-1", &["127.0.0.1", "localhost"])
            .expect("cert");
        let server_der = server.der.clone();
        let server = server.write(dir.path(), "server").expect("write");
        let client = ca.issue("client", &["client"]).expect("client cert");
        let client = client.write(dir.path(), "client").expect("write");
        Pki {
            ca,
            ca_path,
            server,
            server_der,
            client,
            dir,
        }
    }

    /// A fresh certificate for 127.0.0.1 named `cn`.
    pub fn issue(&self, cn: &str) -> Issued {
        self.ca
            .issue(cn, &["127.0.0.1", "localhost"])
            .expect("cert")
    }

    /// The temp dir holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `redis-cli` TLS arguments (CA and the client certificate).
    pub fn cli_args(&self) -> Vec<String> {
        let p = |p: &Path| p.to_string_lossy().into_owned();
        vec![
            "--tls".into(),
            "--cacert".into(),
            p(&self.ca_path),
            "--cert".into(),
            p(&self.client.cert),
            "--key".into(),
            p(&self.client.key),
        ]
    }
}

/// Runs `redis-cli` with `args` and returns its stdout (stderr appended on failure).
pub fn redis_cli(args: &[String]) -> Result<String, String> {
    let out = Command::new("redis-cli")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("run redis-cli: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// A Redis Cluster of masters listening on TLS ports only; killed on drop.
pub struct TlsCluster {
    pub pki: Pki,
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: TempDir,
}

impl TlsCluster {
    /// Starts `masters` nodes and forms the cluster with `redis-cli --cluster create --tls`.
    pub fn start(masters: usize) -> TlsCluster {
        require_binary("redis-server", INSTALL);
        require_binary("redis-cli", INSTALL);
        let mut cluster = TlsCluster {
            pki: Pki::new(),
            ports: Vec::new(),
            children: Vec::new(),
            dir: TempDir::new(),
        };
        for _ in 0..masters {
            cluster.launch();
        }
        let mut args = cluster.pki.cli_args();
        args.push("--cluster".into());
        args.push("create".into());
        args.extend(cluster.seeds());
        args.push("--cluster-yes".into());
        redis_cli(&args).unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
        for port in cluster.ports.clone() {
            wait_until(
                &format!("node {port} to see cluster_state:ok"),
                START_TIMEOUT,
                || {
                    let info = cluster.cli(port, &["CLUSTER", "INFO"])?;
                    match info.contains("cluster_state:ok") {
                        true => Ok(()),
                        false => Err(info),
                    }
                },
            );
        }
        cluster
    }

    fn launch(&mut self) {
        let mut failures = Vec::new();
        for attempt in 0..20 {
            let port = next_port(if attempt == 0 { 1 } else { 97 });
            let dir = self.dir.path().join(port.to_string());
            std::fs::create_dir_all(&dir).expect("node dir");
            let log = std::fs::File::create(dir.join("redis.log")).expect("log");
            let p = |p: &Path| p.to_string_lossy().into_owned();
            let pki = &self.pki;
            #[rustfmt::skip]
            let args: Vec<String> = [
                "--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1",
                "--dir", &p(&dir), "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
                "--save", "", "--appendonly", "no", "--protected-mode", "no",
                "--tls-cluster", "yes", "--tls-replication", "yes",
                "--tls-cert-file", &p(&pki.server.cert), "--tls-key-file", &p(&pki.server.key),
                "--tls-ca-cert-file", &p(&pki.ca_path), "--tls-auth-clients", "optional",
            ].iter().map(|s| s.to_string()).collect();
            let mut cmd = Command::new("redis-server");
            cmd.args(&args).current_dir(&dir).stdin(Stdio::null());
            cmd.stdout(log.try_clone().expect("log")).stderr(log);
            let mut child = spawn(cmd).expect("spawn redis-server");
            let up = (0..100).any(|_| {
                if child.try_wait().ok().flatten().is_some() {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
                self.cli(port, &["PING"]).is_ok_and(|r| r.contains("PONG"))
            });
            if up && child.try_wait().ok().flatten().is_none() {
                self.ports.push(port);
                self.children.push(child);
                return;
            }
            let _ = child.kill();
            let _ = child.wait();
            failures.push(format!(
                "port {port}: {}",
                super::tail(&dir.join("redis.log"), 5)
            ));
        }
        panic!("could not start a TLS redis-server: {failures:#?}");
    }

    /// `host:port` of every node.
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// Runs one command on the node at `port` over TLS.
    pub fn cli(&self, port: u16, command: &[&str]) -> Result<String, String> {
        let mut args = self.pki.cli_args();
        args.extend([
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ]);
        args.extend(command.iter().map(|s| s.to_string()));
        redis_cli(&args)
    }

    /// The `cluster.tls` YAML lines for a gateway in front of this cluster.
    pub fn gateway_cluster_yaml(&self) -> String {
        format!(
            "tls:\n  enabled: true\n  ca: {}\n  cert: {}\n  key: {}\n",
            self.pki.ca_path.display(),
            self.pki.client.cert.display(),
            self.pki.client.key.display()
        )
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A blocking TLS connection to meridian.
pub type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// The rustls client config: trusts `ca`, presents `client` when given.
pub fn client_config(ca: &Path, client: Option<&Files>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = meridian::tls::files::roots("ca", ca).expect("CA");
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        Some(files) => builder
            .with_client_auth_cert(
                meridian::tls::files::certs("cert", &files.cert).expect("cert"),
                meridian::tls::files::private_key("key", &files.key).expect("key"),
            )
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Connects to `addr` and runs the handshake to its end (a refused client sees an error).
pub fn connect(addr: &str, config: &Arc<rustls::ClientConfig>) -> std::io::Result<TlsConn> {
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(IO_TIMEOUT))?;
    tcp.set_write_timeout(Some(IO_TIMEOUT))?;
    let name = rustls_pki_types::ServerName::try_from("127.0.0.1")
        .map_err(std::io::Error::other)?
        .to_owned();
    let conn =
        rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).map(|_| ())?;
    }
    Ok(stream)
}

/// The certificate the server presented, in DER.
pub fn peer_cert(conn: &TlsConn) -> Vec<u8> {
    conn.conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .expect("the server presented a certificate")
}

/// Sends one command and reads one reply, returned as its raw RESP bytes.
pub fn call(conn: &mut TlsConn, args: &[&str]) -> std::io::Result<String> {
    conn.write_all(&super::raw::encode(args))?;
    conn.flush()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(len) = reply_len(&buf) {
            buf.truncate(len);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The length of the first whole RESP2 reply in `buf`, if it is complete.
pub fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[1..line_end]).ok()?;
    match buf.first()? {
        b'+' | b'-' | b':' => Some(line_end + 2),
        b'$' => {
            let n: i64 = head.parse().ok()?;
            let total = line_end + 2 + if n < 0 { 0 } else { n as usize + 2 };
            (buf.len() >= total).then_some(total)
        }
        b'*' => {
            let n: i64 = head.parse().ok()?;
            let mut at = line_end + 2;
            for _ in 0..n.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}
