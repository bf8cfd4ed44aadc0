//! `dept bench decode` on the tiny model: dept and transformers decode the same batches, greedy and with beams,
//! to the same tokens (the bench stops otherwise), and the table, CSV and JSON lines are written.

mod common;

use std::process::Command;

#[test]
fn the_decoding_bench_runs_greedy_and_beams_against_transformers() {
    if common::bench_python().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let stdout = common::cli::succeeds(
        Command::new(env!("CARGO_BIN_EXE_dept"))
            .args([
                "bench",
                "decode",
                "--shape",
                "tiny",
                "--batch-sizes",
                "1,3",
                "--beams",
                "1,2",
            ])
            .args([
                "--max-new-tokens",
                "5",
                "--batches",
                "2",
                "--rounds",
                "2",
                "--threads",
                "1",
            ])
            .args(["--out", common::cli::path(&out)]),
    );
    let rows = common::cli::json_lines_file(&out.join("decode.jsonl"));
    assert_eq!(rows.len(), 4, "{stdout}");
    for row in &rows {
        assert_eq!(row["dept_round_ms"].as_array().unwrap().len(), 2, "{row}");
        for side in ["dept", "transformers"] {
            let (median, low, high) = (
                row[format!("{side}_ms")].as_f64().unwrap(),
                row[format!("{side}_ms_min")].as_f64().unwrap(),
                row[format!("{side}_ms_max")].as_f64().unwrap(),
            );
            assert!(0.0 < low && low <= median && median <= high, "{row}");
        }
        let speedup = row["speedup"].as_f64().unwrap();
        let ratio = row["dept_samples_per_s"].as_f64().unwrap()
            / row["transformers_samples_per_s"].as_f64().unwrap();
        assert!((speedup - ratio).abs() < 1e-9 * ratio.max(1.0), "{row}");
    }
    let csv = std::fs::read_to_string(out.join("decode.csv")).unwrap();
    assert_eq!(csv.lines().count(), rows.len() + 1);
    assert!(stdout.contains("per-round medians"), "{stdout}");
}
