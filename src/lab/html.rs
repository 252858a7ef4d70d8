//! The drill report as one self-contained HTML page: the summary tables and, per gateway, an
//! inline SVG time line (requests and errors, p50/p99 latency, share of reads per DC) with the
//! fault, heal and settle moments marked. No scripts, no external files.

use std::fmt::Write as _;

use super::report::{BUCKET_MS, PHASES, Report};

const WIDTH: f64 = 900.0;
const PANEL: f64 = 110.0;
const GAP: f64 = 28.0;
const LEFT: f64 = 60.0;
const PALETTE: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page.
pub fn render(report: &Report) -> String {
    let i = &report.info;
    let mut out = String::new();
    let verdict = if report.ok() {
        "every invariant held"
    } else {
        "INVARIANT BROKEN"
    };
    let _ = write!(
        out,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>drill {} on {}</title>\n<style>\
         body{{font:14px system-ui,sans-serif;margin:24px;color:#222}}\
         table{{border-collapse:collapse;margin:8px 0 16px}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}\
         .ok{{color:#2a7d2a}}.fail{{color:#c62828;font-weight:bold}}svg{{background:#fafafa;border:1px solid #ddd}}\
         </style></head><body>\n<h1>drill {} on {}</h1>\n<p>{}</p>\n<p class=\"{}\">{}</p>\n",
        esc(&i.scenario),
        esc(&i.topology),
        esc(&i.scenario),
        esc(&i.topology),
        esc(&i.target),
        if report.ok() { "ok" } else { "fail" },
        verdict
    );
    out += "<h2>Events</h2><table><tr><th>time</th><th>what</th></tr>";
    for (at, what) in &i.events {
        let _ = write!(
            out,
            "<tr><td>{:.1}s</td><td>{}</td></tr>",
            f64::from(*at) / 1000.0,
            esc(what)
        );
    }
    out += "</table>\n<h2>Invariants</h2><table>";
    for inv in &report.invariants {
        let (class, word) = if inv.ok {
            ("ok", "ok")
        } else {
            ("fail", "FAIL")
        };
        let _ = write!(
            out,
            "<tr><td class=\"{class}\">{word}</td><td>{}</td><td>{}</td></tr>",
            inv.name,
            esc(&inv.detail)
        );
    }
    out += "</table>\n<h2>Gateways</h2><table><tr><th>gateway</th><th>requests</th><th>errors</th>\
            <th>stale reads</th><th>writes unavailable</th>";
    for p in PHASES {
        let _ = write!(out, "<th>p50/p99 ms {p}</th>");
    }
    for p in PHASES {
        let _ = write!(out, "<th>reads by DC {p}</th>");
    }
    out += "</tr>";
    for g in &report.gateways {
        let kinds: Vec<String> = g.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let window = match g.write_window_ms() {
            None => "none".to_string(),
            Some(Some(ms)) => format!("{ms} ms"),
            Some(None) => "never recovered".to_string(),
        };
        let _ = write!(
            out,
            "<tr><td>{} ({})</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td>",
            esc(&g.dc),
            esc(&g.addr),
            g.requests,
            g.error_count(),
            esc(&kinds.join(", ")),
            g.stale_reads,
            window
        );
        for l in &g.latency {
            let _ = write!(out, "<td>{:.1} / {:.1}</td>", l.p50_ms, l.p99_ms);
        }
        for share in &g.read_share {
            let text: Vec<String> = i
                .dcs
                .iter()
                .map(|dc| format!("{dc} {:.0}%", share.get(dc).copied().unwrap_or(0.0) * 100.0))
                .collect();
            let _ = write!(out, "<td>{}</td>", esc(&text.join(" ")));
        }
        out += "</tr>";
    }
    out += "</table>\n<h2>As each gateway counted it</h2>\n<p>From the gateway's own \
            <code>/metrics</code>, over the drill; its live dashboard is linked.</p>\n<table><tr>\
            <th>gateway</th><th>requests</th><th>errors</th><th>reads by DC</th>\
            <th>breaker changes</th><th>dashboard</th></tr>";
    for g in &report.gateways {
        let figures = match &g.metrics {
            Some(Ok(m)) => {
                let kinds: Vec<String> = m.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                let reads: Vec<String> = m
                    .reads_by_dc
                    .iter()
                    .map(|(d, n)| format!("{d} {n}"))
                    .collect();
                format!(
                    "<td>{}</td><td>{} {}</td><td>{}</td><td>{}</td>",
                    m.requests,
                    m.error_count(),
                    esc(&kinds.join(", ")),
                    esc(&reads.join(" ")),
                    m.transitions()
                )
            }
            Some(Err(e)) => format!("<td colspan=\"4\">unavailable: {}</td>", esc(e)),
            None => "<td colspan=\"4\">not read</td>".to_string(),
        };
        let link = if g.dashboard.is_empty() {
            String::new()
        } else {
            format!("<a href=\"{0}\">{0}</a>", esc(&g.dashboard))
        };
        let _ = write!(
            out,
            "<tr><td>{} ({})</td>{figures}<td>{link}</td></tr>",
            esc(&g.dc),
            esc(&g.addr)
        );
    }
    out += "</table>\n<h2>Time lines</h2>\n<p>";
    for (d, dc) in i.dcs.iter().enumerate() {
        let _ = write!(
            out,
            "<span style=\"color:{}\">&#9632; reads served in {}</span> &nbsp; ",
            PALETTE[d % PALETTE.len()],
            esc(dc)
        );
    }
    out += "<span style=\"color:#c62828\">&#9632; errors</span> &nbsp; <span style=\"color:#999\">&#9632; requests</span>\
            &nbsp; <span style=\"color:#555\">&#9472; p50</span> &nbsp; <span style=\"color:#000\">&#9472; p99</span></p>\n";
    for g in 0..report.gateways.len() {
        out += &timeline_svg(report, g);
    }
    out += "</body></html>\n";
    out
}

/// The SVG time line of gateway `g`.
fn timeline_svg(report: &Report, g: usize) -> String {
    let i = &report.info;
    let gw = &report.gateways[g];
    let n = gw.timeline.len().max(1);
    let height = 3.0 * PANEL + 3.0 * GAP + 20.0;
    let plot = WIDTH - LEFT - 10.0;
    let x = |b: f64| LEFT + plot * b / n as f64;
    let bw = (plot / n as f64).max(0.5);
    let mut s = String::new();
    let _ = write!(
        s,
        "<h3>gateway {} ({}), reads with {}</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\">\n",
        esc(&gw.dc),
        esc(&gw.addr),
        esc(&gw.read_command)
    );
    let top = |panel: usize| GAP + panel as f64 * (PANEL + GAP);
    let titles = [
        "requests / errors per 100 ms",
        "latency (ms, log scale), p50 and p99",
        "reads served per DC (share)",
    ];
    for (p, title) in titles.iter().enumerate() {
        let y0 = top(p);
        let _ = write!(
            s,
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"12\">{title}</text><rect x=\"{LEFT}\" y=\"{y0:.1}\" width=\"{plot:.1}\" height=\"{PANEL}\" fill=\"#fff\" stroke=\"#ccc\"/>",
            y0 - 6.0
        );
    }
    // Panel 1: requests (grey) with errors (red) over them.
    let max_req = gw
        .timeline
        .iter()
        .map(|b| b.requests)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y1 = top(0) + PANEL;
    for (b, bucket) in gw.timeline.iter().enumerate() {
        let h = PANEL * bucket.requests as f64 / max_req;
        let e = PANEL * bucket.errors as f64 / max_req;
        let _ = write!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{h:.1}\" fill=\"#bbb\"/>",
            x(b as f64),
            y1 - h
        );
        if bucket.errors > 0 {
            let _ = write!(
                s,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{e:.1}\" fill=\"#c62828\"/>",
                x(b as f64),
                y1 - e
            );
        }
    }
    let _ = write!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{max_req:.0}</text>",
        LEFT - 4.0,
        top(0) + 10.0
    );
    // Panel 2: latency lines on a log scale (local and cross-DC requests differ 100-fold),
    // from 0.1 ms to the decade above the worst p99.
    let worst = gw.timeline.iter().map(|b| b.p99_ms).fold(1.0, f64::max);
    let decades = (worst.log10().ceil() + 1.0).clamp(1.0, 6.0);
    let y2 = top(1) + PANEL;
    let y_of = |ms: f64| y2 - PANEL * ((ms.max(0.1).log10() + 1.0) / decades).min(1.0);
    for d in 0..=decades as i32 {
        let ms = 10f64.powi(d - 1);
        let y = y_of(ms);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\">{ms}</text>",
            LEFT + plot,
            LEFT - 4.0,
            y + 3.0
        );
    }
    for (color, pick) in [("#555", 0), ("#000", 1)] {
        let points: Vec<String> = gw
            .timeline
            .iter()
            .enumerate()
            .filter(|(_, b)| b.requests > 0)
            .map(|(b, bucket)| {
                let v = if pick == 0 {
                    bucket.p50_ms
                } else {
                    bucket.p99_ms
                };
                format!("{:.1},{:.1}", x(b as f64 + 0.5), y_of(v))
            })
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    s += "\n";
    // Panel 3: stacked read shares.
    let y3 = top(2) + PANEL;
    for (b, bucket) in gw.timeline.iter().enumerate() {
        let total: u64 = bucket.reads_by_dc.iter().sum();
        if total == 0 {
            continue;
        }
        let mut acc = 0.0;
        for (d, reads) in bucket.reads_by_dc.iter().enumerate() {
            let h = PANEL * *reads as f64 / total as f64;
            if h > 0.0 {
                let _ = write!(
                    s,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                    x(b as f64),
                    y3 - acc - h,
                    PALETTE[d % PALETTE.len()]
                );
            }
            acc += h;
        }
    }
    s += "\n";
    // Markers and the time axis.
    let bottom = y3;
    for (at, label, color) in [
        (i.fault_ms, "fault", "#c62828"),
        (i.heal_ms, "heal", "#2a7d2a"),
        (i.settle_ms, "settled", "#777"),
    ] {
        let px = x(f64::from(at) / f64::from(BUCKET_MS));
        let _ = write!(
            s,
            "<line x1=\"{px:.1}\" y1=\"{:.1}\" x2=\"{px:.1}\" y2=\"{bottom:.1}\" stroke=\"{color}\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{color}\">{label}</text>",
            top(0),
            px + 3.0,
            top(0) + 12.0
        );
    }
    let seconds = (n as u32 * BUCKET_MS).div_ceil(1000);
    let step = (seconds / 15).max(1);
    for sec in (0..=seconds).step_by(step as usize) {
        let px = x(f64::from(sec * 1000) / f64::from(BUCKET_MS));
        let _ = write!(
            s,
            "<text x=\"{px:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{sec}s</text>",
            bottom + 14.0
        );
    }
    s += "\n</svg>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::report::{Bucket, DrillInfo, GatewayReport};

    #[test]
    fn page_is_self_contained_and_escaped() {
        let mut report = Report {
            info: DrillInfo {
                scenario: "kill-master".into(),
                topology: "t<x>".into(),
                target: "a & b".into(),
                fault_ms: 100,
                heal_ms: 200,
                settle_ms: 250,
                end_ms: 300,
                dcs: vec!["east".into(), "west".into()],
                ..DrillInfo::default()
            },
            ..Report::default()
        };
        let bucket = Bucket {
            requests: 4,
            errors: 1,
            p50_ms: 1.0,
            p99_ms: 3.0,
            reads_by_dc: vec![1, 3],
        };
        let metrics = crate::lab::scrape::GatewayMetrics {
            requests: 1234,
            reads_by_dc: [("east".to_string(), 800), ("w<st".to_string(), 5)].into(),
            breaker_transitions: [("127.0.1.1:7000".to_string(), 3)].into(),
            ..Default::default()
        };
        report.gateways.push(GatewayReport {
            dc: "east".into(),
            timeline: vec![bucket.clone(); 4],
            dashboard: "http://127.0.1.100:7619/".into(),
            metrics: Some(Ok(metrics)),
            ..GatewayReport::default()
        });
        report.gateways.push(GatewayReport {
            dc: "west".into(),
            timeline: vec![bucket; 4],
            dashboard: "http://127.0.2.100:7619/".into(),
            metrics: Some(Err("connect <refused>".into())),
            ..GatewayReport::default()
        });
        let page = render(&report);
        assert!(page.contains(
            "<td>1234</td><td>0 </td><td>east 800 w&lt;st 5</td><td>3</td>\
             <td><a href=\"http://127.0.1.100:7619/\">http://127.0.1.100:7619/</a></td>"
        ));
        assert!(page.contains("unavailable: connect &lt;refused&gt;"));
        assert!(page.contains("<a href=\"http://127.0.2.100:7619/\">"));
        assert!(page.contains("t&lt;x&gt;") && page.contains("a &amp; b"));
        assert!(page.contains("<svg") && page.contains("<polyline"));
        assert!(
            !page.contains("<script") && !page.contains("http-equiv") && !page.contains("src=")
        );
        assert_eq!(page.matches("<svg").count(), 2);
    }
}
