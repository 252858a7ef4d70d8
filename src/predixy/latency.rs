//! predixy's `LatencyMonitor name { Commands { + cmd; - cmd }; TimeSpan { + µs } }` blocks as
//! meridian's `latency_monitors` (same names, commands, exclusions and bucket bounds, so
//! `INFO latency <name>` reads as it did).

use super::PredixyError;
use super::auth::Line;
use super::parse::Directive;

/// Bounds given to a monitor that lists no TimeSpan (predixy then counted every request
/// past an empty list): predixy's example bounds.
const FALLBACK_US: [u64; 10] = [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000];

/// One converted monitor.
#[derive(Debug, Clone)]
pub(super) struct Monitor {
    at: String,
    name: String,
    commands: Vec<String>,
    exclude: Vec<String>,
    buckets_us: Vec<u64>,
    notes: Vec<String>,
}

impl Monitor {
    /// The monitor's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }
}

/// Reads one `LatencyMonitor` block.
pub(super) fn monitor(d: &Directive) -> Result<Monitor, PredixyError> {
    let mut m = Monitor {
        at: d.at.clone(),
        name: d.value.clone(),
        commands: Vec::new(),
        exclude: Vec::new(),
        buckets_us: Vec::new(),
        notes: Vec::new(),
    };
    if m.name.is_empty() || m.name.contains(char::is_whitespace) {
        return Err(invalid(d, "LatencyMonitor needs a name without spaces"));
    }
    for item in d.block.iter().flatten() {
        if item.is("Commands") {
            for c in item.block.iter().flatten() {
                let name = c.value.trim().to_ascii_lowercase();
                match c.key.as_str() {
                    "+" if !name.is_empty() => m.commands.push(name),
                    "-" if !name.is_empty() => m.exclude.push(name),
                    _ => return Err(invalid(c, "Commands holds `+ cmd` and `- cmd` lines")),
                }
            }
        } else if item.is("TimeSpan") {
            for t in item.block.iter().flatten() {
                match (t.key.as_str(), t.value.trim().parse::<u64>()) {
                    ("+", Ok(us)) if us > 0 => m.buckets_us.push(us),
                    _ => return Err(invalid(t, "TimeSpan holds `+ microseconds` lines")),
                }
            }
        } else {
            m.notes.push(format!(
                "{} ({}) is not a LatencyMonitor setting and was left out",
                item.key, item.at
            ));
        }
    }
    // predixy sorts its bounds; meridian wants them increasing and distinct.
    m.buckets_us.sort_unstable();
    m.buckets_us.dedup();
    if m.buckets_us.is_empty() {
        m.buckets_us = FALLBACK_US.to_vec();
        m.notes.push(format!(
            "LatencyMonitor {} lists no TimeSpan: given predixy's example bounds (100..1000 µs)",
            m.name
        ));
    }
    if m.commands.is_empty() {
        m.notes.push(format!(
            "LatencyMonitor {} counts no command (none added with `+`)",
            m.name
        ));
    }
    Ok(m)
}

fn invalid(d: &Directive, message: &str) -> PredixyError {
    PredixyError::Invalid {
        at: d.at.clone(),
        message: message.to_string(),
    }
}

/// The `latency_monitors` section for `monitors` (empty: a comment on meridian's defaults).
pub(super) fn lines(monitors: &[Monitor]) -> Vec<Line> {
    if monitors.is_empty() {
        return vec![Line::Comment(
            0,
            "predixy had no LatencyMonitor: meridian keeps predixy's example monitors (all, get, \
             set, blist; see INFO latency); `latency_monitors: []` turns them off."
                .to_string(),
        )];
    }
    let mut out = vec![Line::Yaml(0, "latency_monitors:".to_string())];
    for m in monitors {
        out.push(Line::Comment(2, format!("LatencyMonitor at {}", m.at)));
        for note in &m.notes {
            out.push(Line::Comment(2, format!("NOTE: {note}")));
        }
        out.push(Line::Item(2, "name", m.name.clone()));
        // An empty list keeps the monitor valid; it then counts nothing, as in predixy.
        let commands = if m.commands.is_empty() {
            vec!["none".to_string()]
        } else {
            m.commands.clone()
        };
        out.push(Line::List(4, "commands", commands));
        if !m.exclude.is_empty() {
            out.push(Line::List(4, "exclude", m.exclude.clone()));
        }
        let bounds: Vec<String> = m.buckets_us.iter().map(u64::to_string).collect();
        out.push(Line::Yaml(
            4,
            format!("buckets_us: [{}]", bounds.join(", ")),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const CONF: &str = "\
ClusterServerPool {
    Servers {
        + 127.0.0.1:7001
    }
}
LatencyMonitor all {
    Commands {
        + all
        - blpop
        - BRPOP
    }
    TimeSpan {
        + 1000
        + 100
        + 500
    }
}
LatencyMonitor writes {
    Commands {
        + set
        + setex
    }
}
";

    /// The `latency_monitors` section of the conversion, byte for byte.
    const GOLDEN: &str = r#"latency_monitors:
  # LatencyMonitor at predixy.conf:6
  - name: "all"
    commands: ["all"]
    exclude: ["blpop", "brpop"]
    buckets_us: [100, 500, 1000]
  # LatencyMonitor at predixy.conf:18
  # NOTE: LatencyMonitor writes lists no TimeSpan: given predixy's example bounds (100..1000 µs)
  - name: "writes"
    commands: ["set", "setex"]
    buckets_us: [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]
"#;

    #[test]
    fn monitors_convert_golden() {
        let yaml = crate::predixy::convert(CONF, &|_| None).expect("converts");
        let at = yaml.find("latency_monitors:").expect("a section");
        assert_eq!(&yaml[at..], GOLDEN);
        let c = Config::parse(&yaml, "t").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let m = c.latency_monitors();
        assert!(m[0].counts("get") && !m[0].counts("brpop") && m[1].counts("setex"));
        let twice = CONF.replace("LatencyMonitor writes", "LatencyMonitor all");
        let err = crate::predixy::convert(&twice, &|_| None).unwrap_err();
        assert!(err.to_string().contains("defined twice"), "{err}");
    }

    #[test]
    fn without_monitors_the_defaults_are_said() {
        let plain = &CONF[..CONF.find("LatencyMonitor").expect("monitors")];
        let yaml = crate::predixy::convert(plain, &|_| None).expect("converts");
        assert!(
            yaml.contains("meridian keeps predixy's example monitors"),
            "{yaml}"
        );
        assert!(!yaml.contains("\nlatency_monitors:"));
    }
}
