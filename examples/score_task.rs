//! Load a task from `dept-data` and score predictions with its official metric (no model involved).
//!
//! `dept_data::task("rte")` is the registry entry that knows RTE's files, labels and metric; `load_split` reads
//! the files under a data folder (`<data_dir>/RTE/train.tsv`, `dev.tsv`, ...) and formats the examples exactly as
//! the official code does; `score` compares predictions with the examples' targets, in percent.
//!
//! Run with real GLUE RTE files: `cargo run -p dept --example score_task -- ../shared/data`
//! or without any data (a small synthetic task in the RTE file format is written to a temporary folder):
//! `cargo run -p dept --example score_task`

use std::path::PathBuf;

use dept_data::{load_split, score, task, Split, TextExample, OFFICIAL_SPLIT_SEED};

fn main() -> anyhow::Result<()> {
    // Keep the temporary folder alive until the end of main: dropping it deletes the synthetic data.
    let synthetic = tempfile::tempdir()?;
    let data_dir = match std::env::args().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => {
            dept_data::synthetic::write_rte_like(synthetic.path(), 64, 200, 7)?;
            println!("no data folder given: wrote the synthetic RTE-format task");
            synthetic.path().to_path_buf()
        }
    };

    let rte = task("rte")?;
    // RTE's test labels are not public, so the official split halves the GLUE dev set into validation and test,
    // shuffled with seed 42.
    let validation = load_split(rte, &data_dir, Split::Validation, OFFICIAL_SPLIT_SEED)?;
    let labels: Vec<String> = rte
        .labels
        .unwrap_or_default()
        .iter()
        .map(|label| format!("{label} = {}", rte.label_name(label).unwrap_or("?")))
        .collect();
    println!(
        "task {}: {} validation examples from {}; labels {}; metric {}",
        rte.name,
        validation.len(),
        data_dir.display(),
        labels.join(", "),
        rte.best_metric.name()
    );
    let first = &validation[0];
    println!(
        "first example: input {:?}, target {:?} ({})",
        shorten(&first.input),
        first.target,
        rte.label_name(&first.target).unwrap_or("?")
    );

    // Three sets of predictions, scored by the task's metric. Targets are label ids as strings: "0" = entailment.
    let always_entailment = vec!["0".to_string(); validation.len()];
    let overlap: Vec<String> = validation.iter().map(word_overlap_guess).collect();
    let gold: Vec<String> = validation.iter().map(|e| e.target.clone()).collect();
    for (name, predictions) in [
        ("always \"0\" (entailment)", &always_entailment),
        ("word-overlap heuristic", &overlap),
        ("the targets themselves", &gold),
    ] {
        let scores = score(rte, predictions, &validation)?;
        let shown: Vec<String> = scores
            .iter()
            .map(|(metric, value)| format!("{metric} {value:.1}"))
            .collect();
        println!("{name:<26} {}", shown.join(", "));
    }
    Ok(())
}

/// A baseline without any model: "entailment" when nearly every word of the hypothesis occurs in the premise.
/// The input is formatted as `sentence1: <premise> sentence2: <hypothesis>`.
fn word_overlap_guess(example: &TextExample) -> String {
    let Some((premise, hypothesis)) = example.input.split_once(" sentence2: ") else {
        return "1".into();
    };
    let premise: Vec<String> = premise.split_whitespace().map(str::to_lowercase).collect();
    let words: Vec<String> = hypothesis
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let found = words.iter().filter(|w| premise.contains(w)).count();
    let entailed = found * 10 >= words.len() * 9;
    if entailed { "0" } else { "1" }.into()
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(90) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}
