//! `dept bench reference` on the tiny shape: the rounds (each side alone in its block, a fresh PyTorch process per
//! round), the whole-epoch mode on real CB rows, the same first loss on both sides with dropout off, the kept inputs
//! for the official code's own step, and the CSV and JSON lines.

mod common;

use std::process::Command;

#[test]
fn the_reference_bench_times_an_epoch_in_rounds_on_both_sides() {
    let (Some(_python), Some(shared)) = (common::bench_python(), common::shared_dir()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (out, kept) = (dir.path().join("bench"), dir.path().join("kept"));
    let data = shared.join("data");
    let tokenizer = shared.join("tokenizers").join("t5").join("tokenizer.json");
    let stdout = common::cli::succeeds(
        Command::new(env!("CARGO_BIN_EXE_dept"))
            .args(["bench", "reference", "--shape", "tiny", "--task", "cb"])
            .args(["--data-dir", common::cli::path(&data)])
            .args(["--tokenizer", common::cli::path(&tokenizer)])
            .args([
                "--epoch",
                "--rounds",
                "2",
                "--warmup",
                "1",
                "--batch-size",
                "32",
            ])
            .args([
                "--max-len",
                "256",
                "--threads",
                "1",
                "--no-dropout",
                "--check-loss",
                "1e-5",
            ])
            .args(["--keep-inputs", common::cli::path(&kept)])
            .args(["--out", common::cli::path(&out)]),
    );
    let lines = common::cli::json_lines_file(&out.join("reference.jsonl"));
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["implementation"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "PyTorch eager, padded to s",
            "dept, padded to s",
            "dept, padded to longest",
            "dept, length-grouped"
        ],
        "{stdout}"
    );
    // CB's 250 training rows in batches of 32: an epoch is 8 steps, the last one partial.
    for line in &lines {
        assert_eq!(line["timed_steps"], 8, "{line}");
        assert_eq!(line["round_ms"].as_array().unwrap().len(), 2, "{line}");
        let epochs = line["epoch_s"].as_array().unwrap();
        assert_eq!(epochs.len(), 2, "{line}");
        let (median, low, high) = (
            line["ms"].as_f64().unwrap(),
            line["ms_min"].as_f64().unwrap(),
            line["ms_max"].as_f64().unwrap(),
        );
        assert!(0.0 < low && low <= median && median <= high, "{line}");
        // An epoch takes at least its 8 fastest steps' worth.
        for epoch in epochs {
            assert!(epoch.as_f64().unwrap() * 1e3 >= 8.0 * low, "{line}");
        }
        let width = line["tokens_wide"].as_f64().unwrap();
        assert!(0.0 < width && width <= 256.0, "{line}");
    }
    // Padded to s means 256 tokens wide on both padded lines; padding to the longest leaves fewer.
    assert_eq!(lines[0]["tokens_wide"], 256.0);
    assert_eq!(lines[1]["tokens_wide"], 256.0);
    assert!(lines[2]["tokens_wide"].as_f64().unwrap() < 256.0);
    assert!(stdout.contains("first-step loss"), "{stdout}");
    // What the official code's own step reads: the model in the Hugging Face layout and the batches.
    let shape = kept.join("tiny");
    assert!(shape.join("model").join("config.json").is_file());
    assert!(shape.join("model").join("model.safetensors").is_file());
    assert!(shape.join("inputs.safetensors").is_file());
    let csv = std::fs::read_to_string(out.join("reference.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
}
