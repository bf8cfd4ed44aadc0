//! `dept bench efficiency` and `dept bench profile` end to end: every variant measured on both paddings with its
//! ratios, the CSV and both figures written; and the built-in length profiles are what the command measures on the
//! real data in ../shared (required in CI).

mod common;

use std::path::Path;
use std::process::Command;

fn dept() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dept"))
}

/// Runs `dept bench efficiency ARGS --out <temp>` and returns its stdout, the CSV it wrote and the output folder.
fn run_study(args: &[&str]) -> (String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let output = dept()
        .args(["bench", "efficiency"])
        .args(args)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let csv = std::fs::read_to_string(dir.path().join("efficiency.csv")).unwrap();
    (stdout, csv, dir)
}

#[test]
fn the_study_measures_every_variant_on_both_paddings() {
    let (stdout, csv, out) = run_study(&[
        "--shape",
        "t5-small",
        "--device",
        "cpu",
        "--batch-size",
        "2",
        "--max-len",
        "48",
        "--pt-len",
        "12",
        "--m",
        "4,8",
        "--uniform",
        "8:40",
        "--steps",
        "2",
        "--warmup",
        "0",
        "--inference-batches",
        "1",
        "--decode-tokens",
        "2",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    // floor, PT and DePT m = 4, 8 on each padding.
    assert_eq!(lines.len(), 1 + 8, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in &lines[1..] {
        let f: Vec<&str> = line.split(',').collect();
        let number = |name: &str| {
            f[col(name)]
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("{name} in {line}"))
        };
        assert!(
            number("step_ms_median") > 0.0 && number("inference_samples_per_s") > 0.0,
            "{line}"
        );
        assert!(number("peak_memory_mib") > 0.0, "{line}");
        match f[col("variant")] {
            v if v.starts_with("PT") => {
                assert_eq!(number("step_vs_pt"), 1.0);
                assert_eq!(number("params"), 12.0 * 512.0);
            }
            "backbone alone" => assert_eq!((number("step_vs_floor"), number("params")), (1.0, 0.0)),
            v => {
                // r solved from the budget: 12·512 = m·512 + (48 + 512)·r, to the nearest integer.
                let (m, r) = (number("m"), number("r"));
                assert!(v.starts_with("DePT") && (m == 4.0 || m == 8.0), "{line}");
                let exact = (12.0 - m) * 512.0 / 560.0;
                assert!((r - exact).abs() <= 0.5, "{line}");
                assert_eq!(number("params"), m * 512.0 + 560.0 * r);
            }
        }
    }
    for padding in ["max_length", "longest"] {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.contains(&format!(",{padding},")))
                .count(),
            4
        );
    }
    for figure in ["figure3.svg", "figure4.svg"] {
        let svg = std::fs::read_to_string(out.path().join(figure)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("PT"), "{figure}");
    }
    assert!(stdout.contains("÷ floor"), "{stdout}");
}

#[test]
fn bad_efficiency_arguments_are_refused_clearly() {
    let run = |args: &[&str]| {
        let output = dept()
            .args(["bench", "efficiency"])
            .args(args)
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    assert!(run(&["--shape", "t5-huge"]).contains("unknown shape"));
    assert!(run(&["--task", "no-such-task"]).contains("no-such-task"));
    assert!(run(&["--uniform", "8-40"]).contains("MIN:MAX"));
    assert!(run(&["--m", "120", "--device", "cpu"]).contains("must lie in 0..=100"));
}

#[test]
fn built_in_length_profiles_are_what_the_data_measures() {
    let Some(shared) = common::shared_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("profiles.json");
    let output = dept()
        .args([
            "bench",
            "profile",
            "--task",
            "rte",
            "--task",
            "cb",
            "--task",
            "boolq",
            "--data-dir",
        ])
        .arg(shared.join("data"))
        .arg("--tokenizer")
        .arg(shared.join("tokenizers/t5/tokenizer.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let measured = common::read_json(&out);
    let built_in = common::read_json(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/dept-bench/src/efficiency/length_profiles.json"),
    );
    for task in ["rte", "cb", "boolq"] {
        assert_eq!(measured["tasks"][task], built_in["tasks"][task], "{task}");
    }
    // BoolQ ships without its training file here: measured on the validation file, and said so.
    assert_eq!(measured["tasks"]["boolq"]["split"], "validation");
    assert_eq!(measured["tasks"]["rte"]["rows"], 2490);
}

#[test]
fn decoder_only_shapes_are_measured_the_same_way() {
    let (_, csv, _out) = run_study(&[
        "--shape",
        "gpt2",
        "--device",
        "cpu",
        "--batch-size",
        "2",
        "--max-len",
        "32",
        "--pt-len",
        "12",
        "--m",
        "4",
        "--uniform",
        "8:24",
        "--padding",
        "longest",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--inference-batches",
        "1",
        "--decode-tokens",
        "2",
    ]);
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{csv}");
    // gpt2: d = 768, s = 32: 12·768 = 4·768 + 800·r gives r = 7.68, rounded to 8.
    assert!(
        rows.iter()
            .any(|r| r.starts_with("gpt2,longest,DePT m=4 r=8,4,8,")),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("gpt2,longest,PT l=12,12,0,9216,")),
        "{csv}"
    );
}
