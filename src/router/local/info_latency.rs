//! `INFO latency [name]` and `INFO LatencyMonitor [name]`: predixy's latency monitor text,
//! per monitor overall (`# LatencyMonitor`, `LatencyMonitorName:<name>`) and per backend node
//! (`# ServerLatencyMonitor`, `ServerLatencyMonitorName:<addr> <name>`), summed over workers
//! at the time of the INFO (the workers' cells are only read).

use crate::stats::StatsRegistry;
use crate::stats::latency::Snapshot;
use crate::stats::monitors::MonitorSet;

/// What an INFO asked of the monitors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// One monitor by name, or all of them.
    pub name: Option<String>,
    /// With the per-node sections (`INFO latency`, or any request naming a monitor).
    pub per_node: bool,
}

/// Reads INFO's arguments (lower case): `latency [name]`, `latencymonitor [name]`; `None`
/// when the INFO is not about the monitors.
pub fn ask(args: &[String]) -> Option<Ask> {
    let (first, rest) = args.split_first()?;
    let name = rest.first().cloned();
    match first.as_str() {
        "latency" => Some(Ask {
            name,
            per_node: true,
        }),
        "latencymonitor" => Some(Ask {
            per_node: name.is_some(),
            name,
        }),
        _ => None,
    }
}

/// The text, or predixy's error for a monitor that does not exist. `set` is the monitor set
/// in force (monitors in config order), `nodes` the cluster's node addresses.
pub fn render(
    stats: &StatsRegistry,
    set: &MonitorSet,
    nodes: &[&str],
    ask: &Ask,
) -> Result<String, String> {
    let names = set.names();
    let chosen: Vec<usize> = match &ask.name {
        Some(want) => match names.iter().position(|n| n.eq_ignore_ascii_case(want)) {
            Some(i) => vec![i],
            None => return Err(format!("ERR latency \"{want}\" no exists")),
        },
        None => (0..names.len()).collect(),
    };
    let mut out = String::from("# LatencyMonitor\r\n");
    for &i in &chosen {
        out.push_str(&format!("LatencyMonitorName:{}\r\n", names[i]));
        section(&mut out, stats.latency_overall(set, i));
    }
    if ask.per_node {
        out.push_str("# ServerLatencyMonitor\r\n");
        for node in nodes {
            for &i in &chosen {
                out.push_str(&format!("ServerLatencyMonitorName:{node} {}\r\n", names[i]));
                section(&mut out, stats.latency_node(set, node, i));
            }
        }
    }
    Ok(out)
}

/// One histogram's lines and the blank line predixy ends each with.
fn section(out: &mut String, snapshot: Option<Snapshot>) {
    if let Some(s) = snapshot {
        s.render(out);
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::LatencyMonitorConfig;
    use crate::stats::monitors::MonitorCells;

    #[test]
    fn asks_and_layout() {
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(ask(&s(&["stats"])), None);
        assert_eq!(
            ask(&s(&["latency", "get"])),
            Some(Ask {
                name: Some("get".into()),
                per_node: true
            })
        );
        assert_eq!(
            ask(&s(&["latencymonitor"])),
            Some(Ask {
                name: None,
                per_node: false
            })
        );
        let monitor = |name: &str, buckets_us: &[u64]| LatencyMonitorConfig {
            name: name.into(),
            commands: vec![name.into()],
            exclude: Vec::new(),
            buckets_us: buckets_us.to_vec(),
        };
        let reg = StatsRegistry::default()
            .with_latency_monitors(vec![monitor("all", &[100, 200]), monitor("get", &[5])]);
        let w = reg.add_worker();
        let addr: Arc<str> = Arc::from("127.0.0.1:7001");
        w.latency.load().overall[0].add(150);
        w.latency.load().node(&addr)[0].add(150);
        let all = Ask {
            name: None,
            per_node: true,
        };
        let set = reg.latency_set();
        let text = render(&reg, &set, &["127.0.0.1:7001"], &all).unwrap();
        let want = "# LatencyMonitor\r\n\
                    LatencyMonitorName:all\r\n\
                    <=          200                  150                1 100.00%\r\n\
                    T           150                  150                1\r\n\
                    \r\n\
                    LatencyMonitorName:get\r\n\
                    \r\n\
                    # ServerLatencyMonitor\r\n\
                    ServerLatencyMonitorName:127.0.0.1:7001 all\r\n\
                    <=          200                  150                1 100.00%\r\n\
                    T           150                  150                1\r\n\
                    \r\n\
                    ServerLatencyMonitorName:127.0.0.1:7001 get\r\n\
                    \r\n";
        assert_eq!(text, want);
        let none = Ask {
            name: Some("nope".into()),
            per_node: true,
        };
        assert_eq!(
            render(&reg, &set, &[], &none).unwrap_err(),
            "ERR latency \"nope\" no exists"
        );
        // RESETSTAT starts the monitors again.
        reg.reset();
        let text = render(&reg, &set, &["127.0.0.1:7001"], &all).unwrap();
        assert!(!text.contains("T "), "{text}");

        // A reload with other monitors: INFO names the new set, whose histograms are fresh;
        // a worker that has not taken the new set yet adds nothing to it.
        assert!(reg.set_latency_monitors(vec![monitor("reads", &[7])]));
        assert!(!reg.set_latency_monitors(vec![monitor("reads", &[7])]));
        let set = reg.latency_set();
        w.latency.load().overall[0].add(150);
        let text = render(&reg, &set, &["127.0.0.1:7001"], &all).unwrap();
        assert_eq!(
            text,
            "# LatencyMonitor\r\nLatencyMonitorName:reads\r\n\r\n# ServerLatencyMonitor\r\n\
             ServerLatencyMonitorName:127.0.0.1:7001 reads\r\n\r\n"
        );
        w.latency.store(Arc::new(MonitorCells::new(set.clone())));
        w.latency.load().overall[0].add(9);
        let text = render(&reg, &set, &[], &all).unwrap();
        assert!(
            text.contains(">             7                    9                1 100.00%"),
            "{text}"
        );
        // `[]`: no monitors.
        assert!(reg.set_latency_monitors(Vec::new()));
        let text = render(&reg, &reg.latency_set(), &["127.0.0.1:7001"], &all).unwrap();
        assert_eq!(text, "# LatencyMonitor\r\n# ServerLatencyMonitor\r\n");
    }
}
