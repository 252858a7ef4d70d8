//! A gateway's own figures, read from its admin endpoint's `/metrics` (Prometheus text): the
//! few families a drill report shows, parsed by a small reader of our own, and the URL of its
//! live dashboard.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound on one scrape (connect, request, whole answer).
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest answer read; the lab's expositions are a few tens of KiB.
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// What a drill report takes from a gateway's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayMetrics {
    /// `meridian_requests_total`, all commands.
    pub requests: u64,
    /// `meridian_errors_total` by `kind` (kinds with a count only).
    pub errors: BTreeMap<String, u64>,
    /// `meridian_reads_total` by `dc`.
    pub reads_by_dc: BTreeMap<String, u64>,
    /// `meridian_breaker_transitions_total` by `node`.
    pub breaker_transitions: BTreeMap<String, u64>,
}

/// The URL of the dashboard served on `admin`.
pub fn dashboard_url(admin: SocketAddr) -> String {
    format!("http://{admin}/")
}

/// One sample line: metric name, labels (name, unescaped value), value.
type Sample<'a> = (&'a str, Vec<(&'a str, String)>, f64);

/// `name{labels} value` split into its parts; `None` for comments, blanks and other forms.
fn sample(line: &str) -> Option<Sample<'_>> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.trim().parse().ok()?;
    let Some((name, labels)) = series.split_once('{') else {
        return Some((series.trim(), Vec::new(), value));
    };
    let mut out = Vec::new();
    let mut rest = labels.strip_suffix('}')?;
    while let Some((key, after)) = rest.split_once("=\"") {
        // The value runs to the first quote not escaped by a backslash.
        let mut text = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, other)) => text.push(other),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => text.push(c),
            }
        }
        let end = end?;
        out.push((key.trim_start_matches(',').trim(), text));
        rest = &after[end + 1..];
    }
    Some((name, out, value))
}

fn label<'a>(labels: &'a [(&str, String)], key: &str) -> &'a str {
    labels
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, v)| v.as_str())
}

impl GatewayMetrics {
    /// Reads the families it needs from an exposition; an error when the text is not
    /// meridian's (no `meridian_build_info`).
    pub fn parse(text: &str) -> Result<GatewayMetrics, String> {
        let mut m = GatewayMetrics::default();
        let mut ours = false;
        for (name, labels, value) in text.lines().filter_map(sample) {
            // Counters are whole numbers; a negative or NaN one is not ours to trust.
            let n = if value.is_finite() && value >= 0.0 {
                value as u64
            } else {
                0
            };
            let add = |map: &mut BTreeMap<String, u64>, key: &str| {
                *map.entry(key.to_string()).or_default() += n;
            };
            match name {
                "meridian_build_info" => ours = true,
                "meridian_requests_total" => m.requests += n,
                "meridian_errors_total" if n > 0 => add(&mut m.errors, label(&labels, "kind")),
                "meridian_reads_total" => add(&mut m.reads_by_dc, label(&labels, "dc")),
                "meridian_breaker_transitions_total" => {
                    add(&mut m.breaker_transitions, label(&labels, "node"))
                }
                _ => {}
            }
        }
        if ours {
            Ok(m)
        } else {
            Err("not a meridian exposition (no meridian_build_info)".into())
        }
    }

    /// What was counted since `before` (counters only grow; a restart reads as from zero).
    pub fn since(&self, before: &GatewayMetrics) -> GatewayMetrics {
        let diff = |now: &BTreeMap<String, u64>, then: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, &n)| {
                    let old = then.get(k).copied().unwrap_or(0);
                    (k.clone(), if n >= old { n - old } else { n })
                })
                .filter(|(_, n)| *n > 0)
                .collect::<BTreeMap<_, _>>()
        };
        let mut reads = diff(&self.reads_by_dc, &before.reads_by_dc);
        // Every DC stays listed, with zero when it served nothing.
        for dc in self.reads_by_dc.keys() {
            reads.entry(dc.clone()).or_default();
        }
        GatewayMetrics {
            requests: if self.requests >= before.requests {
                self.requests - before.requests
            } else {
                self.requests
            },
            errors: diff(&self.errors, &before.errors),
            reads_by_dc: reads,
            breaker_transitions: diff(&self.breaker_transitions, &before.breaker_transitions),
        }
    }

    /// All errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// All breaker transitions.
    pub fn transitions(&self) -> u64 {
        self.breaker_transitions.values().sum()
    }
}

/// GETs `/metrics` from the admin endpoint `admin` and parses it.
pub async fn fetch(admin: SocketAddr) -> Result<GatewayMetrics, String> {
    let get = async {
        let mut s = tokio::net::TcpStream::connect(admin)
            .await
            .map_err(|e| format!("connect {admin}: {e}"))?;
        let req = format!("GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send to {admin}: {e}"))?;
        let mut raw = Vec::new();
        s.take(MAX_BODY)
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read from {admin}: {e}"))?;
        Ok::<_, String>(raw)
    };
    let raw = tokio::time::timeout(SCRAPE_TIMEOUT, get)
        .await
        .map_err(|_| format!("{admin}/metrics did not answer within {SCRAPE_TIMEOUT:?}"))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{admin}/metrics: not an HTTP answer"))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let line = head.lines().next().unwrap_or("");
        return Err(format!("{admin}/metrics: {line}"));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(format!("{admin}/metrics: chunked answers are not read"));
    }
    GatewayMetrics::parse(body).map_err(|e| format!("{admin}/metrics: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP meridian_requests Requests received.
# TYPE meridian_requests counter
meridian_requests_total{command="get"} 70
meridian_requests_total{command="set"} 30
meridian_request_duration_seconds_bucket{command="get",le="0.0001"} 3
meridian_errors_total{kind="tryagain"} 4
meridian_errors_total{kind="other"} 0
meridian_reads_total{dc="east"} 50
meridian_reads_total{dc="west"} 20
meridian_breaker_transitions_total{node="127.0.1.1:7000",dc="east"} 2
meridian_breaker_transitions_total{node="we\"ird\\",dc="west"} 1
meridian_build_info{version="0.1.0"} 1
"#;

    #[test]
    fn reads_the_families_a_report_needs() {
        let m = GatewayMetrics::parse(TEXT).unwrap();
        assert_eq!(m.requests, 100);
        assert_eq!(m.errors, BTreeMap::from([("tryagain".to_string(), 4)]));
        assert_eq!(m.reads_by_dc["east"], 50);
        assert_eq!(m.reads_by_dc["west"], 20);
        assert_eq!(m.breaker_transitions["127.0.1.1:7000"], 2);
        assert_eq!(m.breaker_transitions["we\"ird\\"], 1);
        assert_eq!(m.transitions(), 3);
        assert!(GatewayMetrics::parse("up 1\n").is_err());
        assert!(GatewayMetrics::parse("").is_err());
        // Garbage lines are skipped, not fatal.
        let odd = "meridian_build_info 1\nmeridian_reads_total{dc=\"x 1\nnonsense\n";
        assert_eq!(
            GatewayMetrics::parse(odd).unwrap(),
            GatewayMetrics::default()
        );
    }

    #[test]
    fn since_subtracts_and_keeps_every_dc() {
        let before = GatewayMetrics::parse(TEXT).unwrap();
        let mut after = before.clone();
        after.requests += 10;
        *after.reads_by_dc.get_mut("east").unwrap() += 7;
        after.errors.insert("backend".into(), 2);
        let d = after.since(&before);
        assert_eq!(d.requests, 10);
        assert_eq!(d.reads_by_dc["east"], 7);
        assert_eq!(d.reads_by_dc["west"], 0);
        assert_eq!(d.errors, BTreeMap::from([("backend".to_string(), 2)]));
        assert_eq!(d.transitions(), 0);
        // A restarted gateway counts from zero again.
        let restarted = GatewayMetrics {
            requests: 5,
            ..GatewayMetrics::default()
        };
        assert_eq!(restarted.since(&before).requests, 5);
        assert_eq!(
            dashboard_url("127.0.0.1:7619".parse().unwrap()),
            "http://127.0.0.1:7619/"
        );
    }
}
