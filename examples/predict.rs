//! Load a saved DePT adapter and predict on new inputs with `dept_train::Inference`.
//!
//! An adapter folder (`adapter_config.json` + `adapter_model.safetensors`, the official DePT/PEFT format) sits
//! in a run folder whose `config.yaml` names the backbone and the task; `Inference::open` reads both and loads
//! the frozen backbone with the trained prompt on top.
//!
//! Run `cargo run -p dept --example train_adapter` first, then `cargo run -p dept --example predict`.
//! Or point it at any adapter folder, followed by your own inputs:
//! `cargo run -p dept --example predict -- runs/<run>/best "sentence1: ... sentence2: ..."`

use std::path::PathBuf;

use dept_train::{Inference, InferenceOverrides};

/// Where the train_adapter example saves its best adapter.
const TRAIN_ADAPTER_BEST: &str = "runs/examples/train_adapter/run/best";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let adapter = PathBuf::from(args.next().unwrap_or_else(|| TRAIN_ADAPTER_BEST.into()));
    if !adapter.is_dir() {
        anyhow::bail!(
            "no adapter folder at {}: run `cargo run -p dept --example train_adapter` first, or pass an adapter \
             folder (e.g. runs/<run>/best)",
            adapter.display()
        );
    }
    let mut inputs: Vec<String> = args.collect();
    if inputs.is_empty() {
        // Inputs in the format the task was trained on (RTE: `sentence1: <premise> sentence2: <hypothesis>`).
        inputs = [
            "sentence1: the cat sees the ball . sentence2: the cat sees the ball .",
            "sentence1: the cat sees the ball . sentence2: the cat sees the tree .",
            "sentence1: the fox chases the horse . sentence2: the fox chases the horse .",
            "sentence1: the dog finds the apple . sentence2: the dog finds the stone .",
        ]
        .map(String::from)
        .to_vec();
    }

    // No overrides: the model, task and device come from the run's config.yaml next to the adapter.
    let inference = Inference::open(&adapter, &InferenceOverrides::default())?;
    println!(
        "adapter {} on model {} (task {})",
        adapter.display(),
        inference.config.model.display(),
        inference.config.task
    );

    // Greedy decoding, in batches; a classification task's predictions are its label ids ("0", "1").
    let predictions = inference.predict(&inputs)?;
    let task = dept_data::task(&inference.config.task)?;
    for (input, prediction) in inputs.iter().zip(&predictions) {
        let label = task.label_name(prediction).unwrap_or("not a label");
        println!("{input:?} -> {prediction:?} ({label})");
    }
    Ok(())
}
