//! The drill report written out: the readable table printed by `meridian drill` and the JSON
//! document of `--json`.

use std::collections::BTreeMap;

use super::json::Json;
use super::report::{BUCKET_MS, Bucket, GatewayReport, PHASES, Report};
use super::scrape::GatewayMetrics;
use super::table::table;

fn secs(ms: u32) -> String {
    format!("{:.1}s", f64::from(ms) / 1000.0)
}

fn shares(share: &BTreeMap<String, f64>, dcs: &[String]) -> String {
    if share.values().all(|v| *v == 0.0) {
        return "-".into();
    }
    dcs.iter()
        .map(|dc| format!("{dc} {:.0}%", share.get(dc).copied().unwrap_or(0.0) * 100.0))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    /// The report as readable text.
    pub fn to_table(&self) -> String {
        let i = &self.info;
        let mut out = format!(
            "drill {} on {}: {}\nfault at {}, heal at {}, settle until {}, end at {}; {} req/s per gateway\n\nevents:\n",
            i.scenario,
            i.topology,
            i.target,
            secs(i.fault_ms),
            secs(i.heal_ms),
            secs(i.settle_ms),
            secs(i.end_ms),
            i.rate
        );
        for (at, what) in &i.events {
            out += &format!("  {:>6}  {what}\n", secs(*at));
        }
        let rows: Vec<Vec<String>> = self
            .gateways
            .iter()
            .map(|g| {
                let errors = if g.errors.is_empty() {
                    "0".to_string()
                } else {
                    let kinds: Vec<String> =
                        g.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
                    format!("{} ({})", g.error_count(), kinds.join(", "))
                };
                let window = match g.write_window_ms() {
                    None => "none".to_string(),
                    Some(Some(ms)) => format!("{ms} ms"),
                    Some(None) => "never recovered".to_string(),
                };
                let lat =
                    |p: usize| format!("{:.1}/{:.1}", g.latency[p].p50_ms, g.latency[p].p99_ms);
                vec![
                    g.dc.clone(),
                    g.requests.to_string(),
                    errors,
                    g.stale_reads.to_string(),
                    window,
                    lat(0),
                    lat(1),
                    lat(2),
                ]
            })
            .collect();
        out += "\n";
        out += &table(
            &[
                "GATEWAY",
                "REQUESTS",
                "ERRORS",
                "STALE",
                "WRITES DOWN",
                "p50/p99 ms before",
                "during",
                "after",
            ],
            &rows,
        );
        let share_rows: Vec<Vec<String>> = self
            .gateways
            .iter()
            .map(|g| {
                let mut row = vec![g.dc.clone(), g.read_command.clone()];
                row.extend(g.read_share.iter().map(|s| shares(s, &i.dcs)));
                row
            })
            .collect();
        out += "\nreads served per DC (nodes' INFO commandstats):\n";
        out += &table(
            &["GATEWAY", "READ CMD", "before", "during", "after"],
            &share_rows,
        );
        out += "\nas each gateway counted it (its /metrics, over the drill):\n";
        out += &table(
            &[
                "GATEWAY",
                "REQUESTS",
                "ERRORS",
                "READS BY DC",
                "BREAKER CHANGES",
                "DASHBOARD",
            ],
            &self.gateways.iter().map(metrics_row).collect::<Vec<_>>(),
        );
        let texts: Vec<String> = self
            .gateways
            .iter()
            .flat_map(|g| {
                g.error_texts
                    .iter()
                    .map(move |(k, t)| format!("  {} {k}: {t}\n", g.dc))
            })
            .collect();
        if !texts.is_empty() {
            out += "\nfirst error of each kind:\n";
            out += &texts.concat();
        }
        out += "\ninvariants:\n";
        for inv in &self.invariants {
            out += &format!(
                "  {:<4}  {:<30}  {}\n",
                if inv.ok { "ok" } else { "FAIL" },
                inv.name,
                inv.detail
            );
        }
        for g in &self.gateways {
            for (at, what) in &g.examples {
                out += &format!("  gateway {} at {}: {what}\n", g.dc, secs(*at));
            }
        }
        out += if self.ok() {
            "\nresult: every invariant held\n"
        } else {
            "\nresult: INVARIANT BROKEN\n"
        };
        out
    }

    /// The report as JSON.
    pub fn to_json(&self) -> Json {
        let i = &self.info;
        let events = i
            .events
            .iter()
            .map(|(at, what)| Json::obj([("at_ms", Json::int(*at)), ("what", Json::str(what))]));
        let slots = i
            .affected_slots
            .iter()
            .map(|(lo, hi)| Json::Arr(vec![Json::int(*lo), Json::int(*hi)]));
        let gateways = self.gateways.iter().map(|g| gateway_json(g, &i.dcs));
        let dc_reads = i.dcs.iter().zip(&self.dc_reads).map(|(dc, series)| {
            (
                dc.clone(),
                Json::Arr(series.iter().map(|n| Json::int(*n)).collect()),
            )
        });
        let invariants = self.invariants.iter().map(|inv| {
            Json::obj([
                ("name", Json::str(inv.name)),
                ("ok", Json::Bool(inv.ok)),
                ("detail", Json::str(&inv.detail)),
            ])
        });
        Json::obj([
            ("scenario", Json::str(&i.scenario)),
            ("topology", Json::str(&i.topology)),
            ("target", Json::str(&i.target)),
            ("ok", Json::Bool(self.ok())),
            ("bucket_ms", Json::int(BUCKET_MS)),
            ("fault_ms", Json::int(i.fault_ms)),
            ("heal_ms", Json::int(i.heal_ms)),
            ("settle_ms", Json::int(i.settle_ms)),
            ("end_ms", Json::int(i.end_ms)),
            ("rate", Json::int(i.rate)),
            (
                "datacenters",
                Json::Arr(i.dcs.iter().map(Json::str).collect()),
            ),
            ("affected_slots", Json::Arr(slots.collect())),
            ("events", Json::Arr(events.collect())),
            ("writes_on_replicas", Json::int(self.writes_on_replicas)),
            ("invariants", Json::Arr(invariants.collect())),
            ("reads_by_dc", Json::obj(dc_reads)),
            ("gateways", Json::Arr(gateways.collect())),
        ])
    }
}

/// One gateway's `/metrics` figures as a table row.
fn metrics_row(g: &GatewayReport) -> Vec<String> {
    let mut row = vec![g.dc.clone()];
    match &g.metrics {
        Some(Ok(m)) => {
            let reads: Vec<String> = m
                .reads_by_dc
                .iter()
                .map(|(d, n)| format!("{d} {n}"))
                .collect();
            row.extend([
                m.requests.to_string(),
                m.error_count().to_string(),
                reads.join(" "),
                m.transitions().to_string(),
            ]);
        }
        Some(Err(e)) => row.extend([format!("unavailable: {e}"), "".into(), "".into(), "".into()]),
        None => row.extend(["-".to_string(), "".into(), "".into(), "".into()]),
    }
    row.push(g.dashboard.clone());
    row
}

/// One gateway's `/metrics` figures as JSON: counts, or `{"error": why}`.
fn metrics_json(m: &Option<Result<GatewayMetrics, String>>) -> Json {
    let counts = |map: &BTreeMap<String, u64>| {
        Json::obj(map.iter().map(|(k, n)| (k.clone(), Json::int(*n))))
    };
    match m {
        Some(Ok(m)) => Json::obj([
            ("requests", Json::int(m.requests)),
            ("errors", Json::int(m.error_count())),
            ("errors_by_kind", counts(&m.errors)),
            ("reads_by_dc", counts(&m.reads_by_dc)),
            ("breaker_transitions", Json::int(m.transitions())),
            (
                "breaker_transitions_by_node",
                counts(&m.breaker_transitions),
            ),
        ]),
        Some(Err(e)) => Json::obj([("error", Json::str(e))]),
        None => Json::Null,
    }
}

fn gateway_json(g: &GatewayReport, dcs: &[String]) -> Json {
    let errors = g.errors.iter().map(|(k, n)| (k.clone(), Json::int(*n)));
    let phases = |f: &dyn Fn(usize) -> Json| {
        Json::obj(PHASES.iter().enumerate().map(|(p, name)| (*name, f(p))))
    };
    let window = match g.write_window_ms() {
        None => Json::int(0u32),
        Some(Some(ms)) => Json::int(ms),
        Some(None) => Json::Null,
    };
    let series = |f: &dyn Fn(&Bucket) -> Json| Json::Arr(g.timeline.iter().map(f).collect());
    let reads_by_dc = dcs.iter().enumerate().map(|(d, dc)| {
        (
            dc.clone(),
            series(&|b: &Bucket| Json::int(b.reads_by_dc.get(d).copied().unwrap_or(0))),
        )
    });
    Json::obj([
        ("dc", Json::str(&g.dc)),
        ("addr", Json::str(&g.addr)),
        ("read_command", Json::str(&g.read_command)),
        ("dashboard", Json::str(&g.dashboard)),
        ("metrics", metrics_json(&g.metrics)),
        ("requests", Json::int(g.requests)),
        ("reads", Json::int(g.reads)),
        ("writes", Json::int(g.writes)),
        ("errors", Json::int(g.error_count())),
        ("errors_by_kind", Json::obj(errors)),
        (
            "error_texts",
            Json::obj(g.error_texts.iter().map(|(k, t)| (k.clone(), Json::str(t)))),
        ),
        ("stale_reads", Json::int(g.stale_reads)),
        ("crossed_replies", Json::int(g.crossed_replies)),
        ("wrong_values", Json::int(g.wrong_values)),
        ("errors_after_settle", Json::int(g.errors_after_settle)),
        ("skipped", Json::int(g.skipped)),
        ("write_unavailable_ms", window),
        (
            "first_failed_write_ms",
            Json::opt(g.write_fail_ms.map(Json::int)),
        ),
        (
            "first_write_back_ms",
            Json::opt(g.write_back_ms.map(Json::int)),
        ),
        (
            "read_share",
            phases(&|p| {
                Json::obj(
                    g.read_share[p]
                        .iter()
                        .map(|(dc, v)| (dc.clone(), Json::num(*v))),
                )
            }),
        ),
        (
            "latency_ms",
            phases(&|p| {
                let l = g.latency[p];
                Json::obj([
                    ("count", Json::int(l.count)),
                    ("p50", Json::num(l.p50_ms)),
                    ("p99", Json::num(l.p99_ms)),
                ])
            }),
        ),
        (
            "timeline",
            Json::obj([
                ("requests", series(&|b| Json::int(b.requests))),
                ("errors", series(&|b| Json::int(b.errors))),
                ("p50_ms", series(&|b| Json::num(b.p50_ms))),
                ("p99_ms", series(&|b| Json::num(b.p99_ms))),
                ("reads_by_dc", Json::obj(reads_by_dc)),
            ]),
        ),
        (
            "examples",
            Json::Arr(
                g.examples
                    .iter()
                    .map(|(at, w)| Json::obj([("at_ms", Json::int(*at)), ("what", Json::str(w))]))
                    .collect(),
            ),
        ),
    ])
}
