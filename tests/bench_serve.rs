//! `dept bench serve` on the tiny model: every phase runs, transformers' side answers the same tokens as dept's
//! engine request by request (the bench stops otherwise), and the table, CSV, JSON lines and figure are written.

mod common;

use std::process::Command;

#[test]
fn the_serving_bench_runs_every_phase_and_transformers_answers_the_same_tokens() {
    if common::bench_python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let stdout = common::cli::succeeds(
        Command::new(env!("CARGO_BIN_EXE_dept"))
            .args([
                "bench",
                "serve",
                "--shape",
                "tiny",
                "--adapters",
                "1,4",
                "--requests",
                "12",
            ])
            .args([
                "--concurrency",
                "4",
                "--max-batch",
                "4",
                "--outputs",
                "label,mrqa",
                "--threads",
                "1",
            ])
            .args(["--memory", "50", "--out", common::cli::path(&out)]),
    );
    let rows = common::cli::json_lines_file(&out.join("serve.jsonl"));
    // Per answer length and adapter count: (a), (b), (c), (d); and the open-loop phase for labels.
    assert_eq!(rows.len(), 2 * 2 * 4 + 1, "{stdout}");
    for row in &rows {
        assert_eq!(row["requests"], 12, "{row}");
        assert!(row["requests_per_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(
            row["p99_ms"].as_f64().unwrap() >= row["p50_ms"].as_f64().unwrap(),
            "{row}"
        );
    }
    assert!(stdout.contains("(a) / (d) = "), "{stdout}");
    assert!(
        stdout.contains("(a) 4 adapters / (a) 1 adapter = "),
        "{stdout}"
    );
    assert!(stdout.contains("memory: 50 adapters"), "{stdout}");
    let csv = std::fs::read_to_string(out.join("serve.csv")).unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    let svg = std::fs::read_to_string(out.join("serve.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "{svg}");
    // --replot redraws the same files from the JSON lines alone, measuring nothing.
    let again = dir.path().join("again");
    let replot = Command::new(env!("CARGO_BIN_EXE_dept"))
        .args([
            "bench",
            "serve",
            "--replot",
            common::cli::path(&out.join("serve.jsonl")),
        ])
        .args(["--out", common::cli::path(&again)])
        .output()
        .unwrap();
    let replotted = String::from_utf8_lossy(&replot.stdout);
    assert!(replot.status.success(), "{replotted}");
    assert!(replotted.contains("(a) / (d) = "), "{replotted}");
    let svg_again = std::fs::read_to_string(again.join("serve.svg")).unwrap();
    assert_eq!(svg_again, svg);
    for answers in [
        "label answers: requests / s",
        "mrqa answers: p99 latency (ms)",
    ] {
        assert!(svg.contains(answers), "{svg}");
    }
}
