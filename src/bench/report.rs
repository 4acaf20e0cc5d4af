//! Results: the plain-text table, JSON (via serde) and an SVG bar chart.

use std::fmt::Write as _;

use serde::Serialize;

use super::load::LoadResult;

/// The machine the run happened on.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// CPU model (first `model name` of `/proc/cpuinfo`).
    pub cpu: String,
    /// Logical CPUs available.
    pub cpus: usize,
    /// Total memory (bytes).
    pub mem_total: u64,
    /// `/proc/loadavg` at the start and at the end.
    pub loadavg: Vec<String>,
}

impl Machine {
    /// Reads `/proc` (best effort).
    pub fn probe() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|r| r.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_default();
        let mem_total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
            })
            .unwrap_or(0)
            * 1024;
        Self {
            cpu,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            mem_total,
            loadavg: vec![loadavg()],
        }
    }
}

/// The first three fields of `/proc/loadavg`.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One measured figure of one subject (gateway, direct, a peer).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured, e.g. `GET 1 GiB`.
    pub metric: String,
    /// Who: `gateway`, `direct`, or a peer's name.
    pub who: String,
    /// Unit of the values.
    pub unit: String,
    /// Median of the runs (`None`: not measured, see `note`).
    pub median: Option<f64>,
    /// Every measured run.
    pub runs: Vec<f64>,
    /// Free text (e.g. "not installed").
    pub note: String,
    /// Whether the SVG chart shows it.
    pub chart: bool,
}

/// A concurrent-load result.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// What the load was.
    pub name: String,
    /// Against whom.
    pub who: String,
    /// The outcome.
    pub result: LoadResult,
}

/// A peak-memory reading.
#[derive(Debug, Clone, Serialize)]
pub struct MemRow {
    /// During what.
    pub during: String,
    /// Whose memory.
    pub who: String,
    /// RSS when the measurement started (bytes).
    pub start: Option<u64>,
    /// Peak RSS in bytes (`None`: not measurable).
    pub peak: Option<u64>,
    /// CPU seconds the process used meanwhile (all runs of the figure,
    /// warm-up excluded).
    pub cpu_secs: Option<f64>,
}

impl MemRow {
    /// A row from a sampler's reading.
    pub fn new(during: &str, who: &str, p: super::gwproc::Peak) -> Self {
        Self {
            during: during.into(),
            who: who.into(),
            start: Some(p.start),
            peak: Some(p.peak),
            cpu_secs: p.cpu_secs,
        }
    }
}

/// A target of the issue and whether it was met.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The figure.
    pub name: String,
    /// The goal, e.g. `>= 0.90`.
    pub goal: String,
    /// The measured value, formatted.
    pub measured: String,
    /// Met (`None`: not measured).
    pub met: Option<bool>,
}

/// The gateway's figure divided by Cloudreve's own `/dav` (external mode).
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    /// The figure or load.
    pub figure: String,
    /// Unit of both values.
    pub unit: String,
    /// Gateway / `/dav`.
    pub ratio: f64,
    /// Whether a ratio above 1 means the gateway is better (throughput,
    /// request rates) rather than worse (times).
    pub higher_is_better: bool,
}

impl Ratio {
    /// A ratio of `figure` in `unit`.
    pub fn new(figure: &str, unit: &str, ratio: f64, higher_is_better: bool) -> Self {
        Self {
            figure: figure.into(),
            unit: unit.into(),
            ratio,
            higher_is_better,
        }
    }
}

/// Everything a run produced.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The machine.
    pub machine: Machine,
    /// Settings, as text.
    pub settings: String,
    /// Figures.
    pub rows: Vec<Row>,
    /// Concurrent loads.
    pub loads: Vec<LoadRow>,
    /// Peak memory.
    pub memory: Vec<MemRow>,
    /// Targets.
    pub targets: Vec<Target>,
    /// Gateway / Cloudreve `/dav` (external mode only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    /// Harness errors (failed transfers, digest mismatches); empty on success.
    pub errors: Vec<String>,
}

fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v >= 1000.0 {
        format!("{v:.0}")
    } else if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

impl Report {
    /// The median of `metric` for `who`, if measured.
    pub fn median(&self, metric: &str, who: &str) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.metric == metric && r.who == who)
            .and_then(|r| r.median)
    }

    /// The plain-text table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let m = &self.machine;
        let _ = writeln!(
            s,
            "machine: {} cpus, {}, {} RAM; load {}",
            m.cpus,
            m.cpu,
            mib(m.mem_total),
            m.loadavg.join(" -> ")
        );
        let _ = writeln!(s, "settings: {}", self.settings);
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<30} {:<20} {:>10} {:<6} {:>10} {:>10}  note",
            "figure", "who", "median", "unit", "min", "max"
        );
        let _ = writeln!(s, "{}", "-".repeat(96));
        for r in &self.rows {
            let min = r.runs.iter().copied().fold(f64::INFINITY, f64::min);
            let max = r.runs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let _ = writeln!(
                s,
                "{:<30} {:<20} {:>10} {:<6} {:>10} {:>10}  {}",
                r.metric,
                r.who,
                r.median.map_or("-".into(), fmt_num),
                r.unit,
                fmt_num(min),
                fmt_num(max),
                r.note
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<40} {:<8} {:>9} {:>7} {:>9} {:>9} {:>9}",
            "load", "who", "requests", "errors", "req/s", "p50 ms", "p99 ms"
        );
        let _ = writeln!(s, "{}", "-".repeat(96));
        for l in &self.loads {
            let r = &l.result;
            let _ = writeln!(
                s,
                "{:<40} {:<8} {:>9} {:>7} {:>9} {:>9} {:>9}{}",
                l.name,
                l.who,
                r.requests,
                r.errors,
                fmt_num(r.rps),
                fmt_num(r.p50_ms),
                fmt_num(r.p99_ms),
                r.first_error
                    .as_ref()
                    .map_or(String::new(), |e| format!("  first error: {e}"))
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:<40} {:<20} {:>12} {:>12} {:>8}",
            "peak RSS during", "of", "at start", "peak", "CPU s"
        );
        let _ = writeln!(s, "{}", "-".repeat(96));
        for mrow in &self.memory {
            let _ = writeln!(
                s,
                "{:<40} {:<20} {:>12} {:>12} {:>8}",
                mrow.during,
                mrow.who,
                mrow.start.map_or("n/a".into(), mib),
                mrow.peak.map_or("n/a".into(), mib),
                mrow.cpu_secs.map_or("n/a".into(), |c| format!("{c:.2}"))
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "{:<52} {:<10} {:>14}  met", "target", "goal", "measured");
        let _ = writeln!(s, "{}", "-".repeat(96));
        for t in &self.targets {
            let _ = writeln!(
                s,
                "{:<52} {:<10} {:>14}  {}",
                t.name,
                t.goal,
                t.measured,
                match t.met {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "n/a",
                }
            );
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "{:<52} {:<6} {:>14}  gateway is",
                "gateway / Cloudreve /dav", "unit", "ratio"
            );
            let _ = writeln!(s, "{}", "-".repeat(96));
            for r in &self.ratios {
                let better = if r.higher_is_better {
                    r.ratio >= 1.0
                } else {
                    r.ratio <= 1.0
                };
                let _ = writeln!(
                    s,
                    "{:<52} {:<6} {:>14}  {}",
                    r.figure,
                    r.unit,
                    format!("{:.3}", r.ratio),
                    if better { "faster" } else { "slower" }
                );
            }
        }
        for e in &self.errors {
            let _ = writeln!(s, "ERROR: {e}");
        }
        s
    }

    /// A horizontal bar chart, one panel per charted figure, each bar
    /// scaled to the largest value of its panel.
    pub fn svg(&self) -> String {
        let mut metrics: Vec<&str> = Vec::new();
        for r in self.rows.iter().filter(|r| r.chart) {
            if !metrics.contains(&r.metric.as_str()) {
                metrics.push(&r.metric);
            }
        }
        let colors = |who: &str| match who {
            "gateway" => "#2b6cb0",
            "direct" => "#718096",
            "/dav" => "#805ad5",
            w if w.starts_with("rclone") => "#dd6b20",
            _ => "#38a169",
        };
        let (w, label_w, bar_h, gap) = (820.0, 170.0, 20.0, 6.0);
        let bar_max = w - label_w - 130.0;
        let mut y = 40.0;
        let mut body = String::new();
        for m in &metrics {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.metric == *m).collect();
            let max = rows
                .iter()
                .filter_map(|r| r.median)
                .fold(0.0f64, f64::max)
                .max(f64::MIN_POSITIVE);
            let unit = rows.first().map_or("", |r| r.unit.as_str());
            let better = if unit == "s" {
                "shorter is better"
            } else {
                "longer is better"
            };
            let _ = writeln!(
                body,
                r#"<text x="10" y="{:.0}" font-weight="bold">{} ({unit}, {better})</text>"#,
                y + 14.0,
                xml_escape(m)
            );
            y += 22.0;
            for r in rows {
                let _ = writeln!(
                    body,
                    r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text>"#,
                    label_w - 8.0,
                    y + 15.0,
                    xml_escape(&r.who)
                );
                match r.median {
                    Some(v) => {
                        let len = (v / max * bar_max).max(1.0);
                        let _ = writeln!(
                            body,
                            r#"<rect x="{label_w:.0}" y="{y:.0}" width="{len:.1}" height="{bar_h:.0}" fill="{}"/><text x="{:.1}" y="{:.0}">{} {unit}</text>"#,
                            colors(&r.who),
                            label_w + len + 6.0,
                            y + 15.0,
                            fmt_num(v)
                        );
                    }
                    None => {
                        let _ = writeln!(
                            body,
                            r##"<text x="{label_w:.0}" y="{:.0}" fill="#888">{}</text>"##,
                            y + 15.0,
                            xml_escape(&r.note)
                        );
                    }
                }
                y += bar_h + gap;
            }
            y += 14.0;
        }
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="15" font-weight="bold">cloudreve-dav bench: gateway vs direct upstream vs peers (medians)</text>
{body}</svg>
"#,
            h = y + 10.0
        )
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
