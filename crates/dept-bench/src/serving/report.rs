//! The serving bench's rows: printed as a table with the ratios the goals are stated in, written as CSV and JSON
//! lines, and drawn (throughput and p99 latency against the number of adapters, one line per policy).

use std::path::Path;

use dept_chart::{
    bounds, Axis, Figure, LegendEntry, Line, Mark, Marker, Page, Panel, Stroke, Title, XAxis,
};
use serde::{Deserialize, Serialize};

use super::Measured;
use crate::error::{BenchError, Result};

/// One phase: a policy on one workload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Phase {
    pub policy: String,
    pub shape: String,
    pub output: String,
    pub adapters: usize,
    /// Closed-loop clients; 0 for the open-loop phase.
    pub concurrency: usize,
    pub requests: usize,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub tokens_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The `q`-quantile (nearest rank) of `values`.
fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

impl Phase {
    pub fn new(
        policy: &str,
        shape: &str,
        output: &str,
        adapters: usize,
        concurrency: usize,
        measured: &Measured,
    ) -> Phase {
        Phase {
            policy: policy.to_string(),
            shape: shape.to_string(),
            output: output.to_string(),
            adapters,
            concurrency,
            requests: measured.tokens.len(),
            seconds: measured.seconds,
            requests_per_s: measured.requests_per_s(),
            tokens_per_s: measured.tokens_per_s(),
            p50_ms: quantile(&measured.latencies_ms, 0.5),
            p99_ms: quantile(&measured.latencies_ms, 0.99),
        }
    }

    pub fn line(&self) -> String {
        format!(
            "{:<52} {:>6} {:>5} {:>4} {:>9.2} {:>9.1} {:>9.0} {:>9.0}",
            self.policy,
            self.output,
            self.adapters,
            self.concurrency,
            self.requests_per_s,
            self.tokens_per_s,
            self.p50_ms,
            self.p99_ms
        )
    }

    fn key(&self) -> (&str, usize) {
        (self.output.as_str(), self.adapters)
    }
}

fn find<'a>(phases: &'a [Phase], prefix: &str, output: &str, adapters: usize) -> Option<&'a Phase> {
    phases
        .iter()
        .find(|p| p.policy.starts_with(prefix) && p.key() == (output, adapters))
}

/// The table, then the goals' ratios.
pub fn print(phases: &[Phase]) {
    println!(
        "{:<52} {:>6} {:>5} {:>4} {:>9} {:>9} {:>9} {:>9}",
        "policy", "answer", "adapt", "C", "req/s", "tok/s", "p50 ms", "p99 ms"
    );
    for phase in phases {
        println!("{}", phase.line());
    }
    let outputs: std::collections::BTreeSet<&str> =
        phases.iter().map(|p| p.output.as_str()).collect();
    for output in outputs {
        let one = find(phases, "a:", output, 1);
        for phase in phases
            .iter()
            .filter(|p| p.output == output && p.policy.starts_with("a: continuous"))
        {
            let n = phase.adapters;
            let mut parts = Vec::new();
            if let Some(one) = one.filter(|_| n > 1) {
                parts.push(format!(
                    "(a) {n} adapters / (a) 1 adapter = {:.3}",
                    phase.requests_per_s / one.requests_per_s
                ));
            }
            for (prefix, name) in [("b:", "(b)"), ("c:", "(c)"), ("d:", "(d)")] {
                if let Some(other) = find(phases, prefix, output, n) {
                    parts.push(format!(
                        "(a) / {name} = {:.2}",
                        phase.requests_per_s / other.requests_per_s
                    ));
                }
            }
            if !parts.is_empty() {
                println!("{output}, {n} adapters: {}", parts.join("; "));
            }
        }
        for phase in phases
            .iter()
            .filter(|p| p.output == output && p.policy.contains("open loop"))
        {
            println!(
                "{output}, {} adapters, {}: p99 / p50 = {:.2}",
                phase.adapters,
                phase.policy,
                phase.p99_ms / phase.p50_ms
            );
        }
    }
}

/// `serve.csv`, `serve.jsonl` and `serve.svg` in `dir`.
/// The phases of a `serve.jsonl` written by an earlier run.
pub fn read(path: &Path) -> Result<Vec<Phase>> {
    let text = std::fs::read_to_string(path).map_err(|e| BenchError::io("reading", path, e))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                BenchError::Invalid(format!(
                    "{} line {}: not a phase of dept bench serve: {e}",
                    path.display(),
                    i + 1
                ))
            })
        })
        .collect()
}

pub fn write(dir: &Path, phases: &[Phase]) -> Result<()> {
    let mut csv = String::from("policy,shape,output,adapters,concurrency,requests,seconds,requests_per_s,tokens_per_s,p50_ms,p99_ms\n");
    for p in phases {
        csv.push_str(&format!(
            "\"{}\",{},{},{},{},{},{:.4},{:.4},{:.3},{:.2},{:.2}\n",
            p.policy,
            p.shape,
            p.output,
            p.adapters,
            p.concurrency,
            p.requests,
            p.seconds,
            p.requests_per_s,
            p.tokens_per_s,
            p.p50_ms,
            p.p99_ms
        ));
    }
    crate::output::write_files(
        dir,
        &[
            ("serve.csv", csv),
            ("serve.jsonl", crate::output::json_lines(phases)?),
            ("serve.svg", figure(phases)),
        ],
    )?;
    println!(
        "wrote {}/serve.csv, serve.jsonl and serve.svg",
        dir.display()
    );
    Ok(())
}

const COLOURS: [&str; 4] = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"];
const POLICIES: [&str; 4] = ["a:", "b:", "c:", "d:"];
const NAMES: [&str; 4] = [
    "(a) continuous, mixed",
    "(b) per-adapter batches",
    "(c) one at a time",
    "(d) transformers, per adapter",
];

/// Requests/s and p99 latency against the adapter count (log scale), two panels per answer length.
fn figure(phases: &[Phase]) -> String {
    let closed: Vec<&Phase> = phases.iter().filter(|p| p.concurrency > 0).collect();
    let mut outputs: Vec<&str> = Vec::new();
    for p in &closed {
        if !outputs.contains(&p.output.as_str()) {
            outputs.push(&p.output);
        }
    }
    let counts: Vec<f64> = closed.iter().map(|p| (p.adapters as f64).log10()).collect();
    let (x_lo, x_hi) = bounds(counts.iter().copied()).unwrap_or((0.0, 1.0));
    let x_axis = Axis::nice(x_lo, x_hi.max(x_lo + 1.0), 4);
    let panel = |output: &str, title: &str, value: fn(&Phase) -> f64| {
        let of_output: Vec<&&Phase> = closed.iter().filter(|p| p.output == output).collect();
        let values: Vec<f64> = of_output
            .iter()
            .map(|p| value(p))
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = bounds(values.iter().copied()).unwrap_or((0.0, 1.0));
        let marks = (0..POLICIES.len())
            .map(|k| {
                Mark::Line(Line {
                    points: of_output
                        .iter()
                        .filter(|p| p.policy.starts_with(POLICIES[k]))
                        .map(|p| ((p.adapters as f64).log10(), value(p)))
                        .collect(),
                    stroke: Some(Stroke::solid(COLOURS[k], 1.8)),
                    marker: Some(Marker {
                        colour: COLOURS[k].to_string(),
                        radius: 3.0,
                        hollow: false,
                    }),
                })
            })
            .collect();
        Panel {
            title: format!("{output} answers: {title}"),
            y: Some(Axis::nice(lo.min(0.0), hi, 5)),
            x: Some(XAxis::from_axis(&x_axis, "adapters (log10)")),
            marks,
            ..Panel::default()
        }
    };
    let panels: Vec<Panel> = outputs
        .iter()
        .flat_map(|&output| {
            [
                panel(output, "requests / s", |p| p.requests_per_s),
                panel(output, "p99 latency (ms)", |p| p.p99_ms),
            ]
        })
        .collect();
    let page = Page {
        width: 230.0 + 340.0 * panels.len().max(1) as f64,
        height: 400.0,
        font_size: 11.0,
        legend_width: 230.0,
        panels: panels.len().max(1),
        // Room for the panel titles under the page's subtitle.
        frame_top: 90.0,
        frame_bottom: 340.0,
        inset_left: 64.0,
        inset_right: 14.0,
    };
    let shape = phases.first().map(|p| p.shape.clone()).unwrap_or_default();
    Figure {
        page,
        title: Some(Title {
            text: format!("dept serve on {shape}"),
            subtitle: "closed loop; each point one phase of dept bench serve".into(),
        }),
        panels,
        legend: (0..POLICIES.len())
            .map(|k| LegendEntry::Line {
                label: NAMES[k].to_string(),
                stroke: Stroke::solid(COLOURS[k], 1.8),
                marker: None,
            })
            .collect(),
    }
    .to_svg()
}
