//! Train a DePT adapter from Rust code, on a tiny random T5 and a small synthetic task: no downloads, a minute
//! or so on a laptop CPU.
//!
//! The model folder has the real Hugging Face layout (`config.json`, `model.safetensors`, `tokenizer.json`) and
//! the data the real GLUE RTE file layout, so the same code trains on a real checkpoint and real data: change
//! `model` and `data_dir` in the config below (for example to a T5-base folder and `../shared/data`).
//!
//! Run: `cargo run -p dept --example train_adapter [-- OUT_DIR]` (default `runs/examples/train_adapter`).
//! Then try `cargo run -p dept --example predict`, which loads the adapter saved here.

use std::path::PathBuf;

use dept_train::{train, ExperimentConfig, TrainOptions};

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).map_or_else(
        || PathBuf::from("runs/examples/train_adapter"),
        PathBuf::from,
    );
    // A folder this project created carries a marker; only such a folder (or an empty one) is ever replaced.
    dept_train::run_dir::remove_marked(&out)?;
    dept_train::run_dir::create_marked(&out)?;

    // 1. A tiny T5 (d_model 32, 2 layers per stack, random weights) whose word-level vocabulary covers the task.
    let model = out.join("tiny-t5");
    dept_models::tiny::write_tiny_t5(
        &model,
        &dept_data::synthetic::vocabulary(),
        32,
        "gated-gelu",
        1,
    )?;
    // 2. The task: "the cat sees the ball ." entails itself and not "the cat sees the tree .".
    let data = out.join("data");
    dept_data::synthetic::write_rte_like(&data, 256, 64, 42)?;

    // 3. The experiment, in the YAML that `dept train --config` reads (see configs/ for full examples); every key
    //    left out keeps the paper's default. DePT with m = 8 prompt tokens and a rank-4 pair A (32×4), B (4×32).
    //    Dropout is off: in a 32-wide random model it would drown what 300 steps can learn.
    let yaml = format!(
        "task: rte
model: {model:?}
data_dir: {data:?}
output_dir: {run:?}
method: dept
prompt_len: 8
rank: 4
max_len: 32
prompt_init: random
lr_prompt: 0.3
lr_pair: 0.05
warmup_steps: 10
max_steps: 300
batch_size: 16
eval_every: 50
save_every: 100
decode_max_tokens: 3
backbone_dropout: false
device: cpu
seed: 42
",
        model = model.display().to_string(),
        data = data.display().to_string(),
        run = out.join("run").display().to_string(),
    );
    // `from_yaml` checks the keys and values (the path only names the config in error messages).
    let config = ExperimentConfig::from_yaml(&yaml, &out.join("experiment.yaml"), &[])?;

    // 4. Train: the validation split is scored every 50 steps and the best adapter kept in `<run>/best`; at the
    //    end the test split is scored with it. Accuracy stays near chance (50) for the first ~150 steps, then climbs.
    let outcome = train(
        &config,
        &TrainOptions {
            quiet: true,
            ..TrainOptions::default()
        },
    )?;

    println!(
        "trained {} steps in {}",
        outcome.steps,
        outcome.run_dir.display()
    );
    match (outcome.best_validation, outcome.best_step) {
        (Some(score), Some(step)) => println!("best validation accuracy: {score:.1} (step {step})"),
        _ => println!("no validation score was recorded"),
    }
    for (metric, value) in &outcome.test {
        println!("test {metric} with the best adapter: {value:.1}");
    }
    println!("adapter folder: {}", outcome.run_dir.join("best").display());
    Ok(())
}
