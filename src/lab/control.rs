//! The supervisor's control port: a line protocol on 127.0.0.1 through which drills (in any
//! process) change link latency, partition a DC, and kill, stop, continue or restart nodes.
//!
//! One request per line, one reply line: `OK …` or `ERR …`. Requests:
//! `ping`, `latency A B MS`, `partition DC`, `heal`, `kill NODE`, `stop NODE`, `cont NODE`,
//! `restart NODE`, `shutdown`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use super::LabError;

/// Bound on one control request (a restart waits for the node to answer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest request line accepted.
const MAX_LINE: usize = 1024;

/// A parsed request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Liveness check.
    Ping,
    /// Set the round-trip latency between two DCs.
    Latency(String, String, f64),
    /// Cut a DC off from the others.
    Partition(String),
    /// Restore the topology's latencies and lift partitions.
    Heal,
    /// SIGKILL a node.
    Kill(String),
    /// SIGSTOP a node.
    Stop(String),
    /// SIGCONT a node.
    Cont(String),
    /// Start a killed node again (same dir, so it rejoins the cluster).
    Restart(String),
    /// Tear the lab down.
    Shutdown,
}

impl Request {
    /// Parses one request line.
    pub fn parse(line: &str) -> Result<Request, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let node = |w: &[&str]| match w {
            [_, name] => Ok(name.to_string()),
            _ => Err(format!(
                "`{}` takes one node name",
                w.first().unwrap_or(&"")
            )),
        };
        match words.as_slice() {
            ["ping"] => Ok(Request::Ping),
            ["heal"] => Ok(Request::Heal),
            ["shutdown"] => Ok(Request::Shutdown),
            ["latency", a, b, ms] => {
                let ms: f64 = ms
                    .parse()
                    .map_err(|_| format!("`{ms}` is not a number of ms"))?;
                if !(0.0..=super::spec::MAX_LATENCY_MS).contains(&ms) {
                    return Err(format!("latency {ms} out of range"));
                }
                Ok(Request::Latency(a.to_string(), b.to_string(), ms))
            }
            ["partition", dc] => Ok(Request::Partition(dc.to_string())),
            ["kill", ..] => node(&words).map(Request::Kill),
            ["stop", ..] => node(&words).map(Request::Stop),
            ["cont", ..] => node(&words).map(Request::Cont),
            ["restart", ..] => node(&words).map(Request::Restart),
            _ => Err(format!("unknown request `{line}`")),
        }
    }

    /// The request as a line.
    pub fn line(&self) -> String {
        match self {
            Request::Ping => "ping".into(),
            Request::Latency(a, b, ms) => format!("latency {a} {b} {ms}"),
            Request::Partition(dc) => format!("partition {dc}"),
            Request::Heal => "heal".into(),
            Request::Kill(n) => format!("kill {n}"),
            Request::Stop(n) => format!("stop {n}"),
            Request::Cont(n) => format!("cont {n}"),
            Request::Restart(n) => format!("restart {n}"),
            Request::Shutdown => "shutdown".into(),
        }
    }
}

/// A request with the channel its answer goes back on.
pub type Job = (Request, oneshot::Sender<Result<String, String>>);

/// Binds the control port on 127.0.0.1 (port chosen by the kernel).
pub async fn bind() -> Result<TcpListener, LabError> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| LabError::io("bind the control port on 127.0.0.1", e))
}

/// Serves the control port, handing each request to `jobs`; ends when `jobs` is closed.
pub async fn serve(listener: TcpListener, jobs: mpsc::Sender<Job>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        if jobs.is_closed() {
            return;
        }
        tokio::spawn(serve_one(stream, jobs.clone()));
    }
}

async fn serve_one(stream: TcpStream, jobs: mpsc::Sender<Job>) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd.take(64 * MAX_LINE as u64)).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let answer = match Request::parse(&line) {
            Err(e) => Err(e),
            Ok(request) => {
                let (tx, rx) = oneshot::channel();
                if jobs.send((request, tx)).await.is_err() {
                    Err("the lab is shutting down".to_string())
                } else {
                    rx.await
                        .unwrap_or_else(|_| Err("the lab is shutting down".into()))
                }
            }
        };
        let reply = match answer {
            Ok(text) => format!("OK {text}\n"),
            Err(text) => format!("ERR {}\n", text.replace('\n', " ")),
        };
        if wr.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Sends one request to the control port at `addr` and returns the text after `OK`.
pub async fn send(addr: &str, request: &Request) -> Result<String, LabError> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| LabError::Control(format!("bad control address `{addr}`")))?;
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(format!("{}\n", request.line()).as_bytes())
            .await?;
        let mut lines = BufReader::new(stream).lines();
        lines.next_line().await
    };
    let line = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| LabError::Control(format!("`{}` got no answer", request.line())))?
        .map_err(|e| LabError::Control(format!("{addr}: {e}")))?
        .ok_or_else(|| LabError::Control("the lab closed the control connection".into()))?;
    match line.split_once(' ').unwrap_or((line.as_str(), "")) {
        ("OK", rest) => Ok(rest.to_string()),
        (_, rest) => Err(LabError::Control(format!("`{}`: {rest}", request.line()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_requests() {
        for line in [
            "ping",
            "latency east west 250",
            "partition eu",
            "heal",
            "kill east-1",
            "stop west-2",
            "cont west-2",
            "restart east-1",
            "shutdown",
        ] {
            let request = Request::parse(line).unwrap();
            assert_eq!(request.line(), line);
        }
        assert!(Request::parse("latency a b x").is_err());
        assert!(Request::parse("latency a b -1").is_err());
        assert!(Request::parse("kill").is_err());
        assert!(Request::parse("reboot").is_err());
    }

    #[tokio::test]
    async fn answers_over_tcp() {
        let listener = bind().await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, mut rx) = mpsc::channel::<Job>(4);
        tokio::spawn(serve(listener, tx));
        tokio::spawn(async move {
            while let Some((request, answer)) = rx.recv().await {
                let _ = answer.send(match request {
                    Request::Ping => Ok("pong".into()),
                    other => Err(format!("no {}", other.line())),
                });
            }
        });
        assert_eq!(send(&addr, &Request::Ping).await.unwrap(), "pong");
        let err = send(&addr, &Request::Heal).await.unwrap_err();
        assert!(err.to_string().contains("no heal"), "{err}");
    }
}
