//! Train a DePT adapter from Rust code, on a tiny random T5 and a small synthetic task: no downloads, about a
//! minute of CPU time.
//!
//! The model folder has the real Hugging Face layout (`config.json`, `model.safetensors`, `tokenizer.json`) and
//! the data the real GLUE RTE file layout, so the same calls train on a real checkpoint and real data: point the
//! config's `model` and `data_dir` at them (for example a T5-base folder and `../shared/data`).
//!
//! Run: `cargo run -p dept --example train_adapter [-- OUT_DIR]` (default `runs/examples/train_adapter`).
//! Then try `cargo run -p dept --example predict`, which loads the adapter saved here.

use std::path::PathBuf;

use dept_train::demo::Demo;
use dept_train::{train, ExperimentConfig, TrainOptions};

fn main() -> anyhow::Result<()> {
    let out = std::env::args().nth(1).map_or_else(
        || PathBuf::from("runs/examples/train_adapter"),
        PathBuf::from,
    );

    // 1. What `dept quickstart` trains on: a tiny T5 (d_model 32, random weights) whose word-level vocabulary
    //    covers the task, and the task itself ("the cat sees the ball ." entails itself, not "the cat sees the
    //    tree ."), 256 training and 64 validation rows. Also an experiment config for them, in the YAML that
    //    `dept train` reads: DePT with m = 8 prompt tokens and a rank-4 pair A (32×4), B (4×32), 300 steps.
    //    Only a folder that an earlier run of this created (it carries a marker) is ever replaced.
    let demo = Demo::prepare(&out, 300, 42)?;
    println!(
        "model {}, data {}",
        demo.model.display(),
        demo.data.display()
    );

    // 2. Load the experiment from YAML. The second argument overrides keys as `dept train --set key=value`
    //    does; every key is checked (an unknown one is an error naming the nearest valid key).
    let config = ExperimentConfig::load(&demo.config_path, &["eval_every=50".to_string()])?;
    // prompt_len and rank are optional keys (a `budget` can solve one from the other), hence the Options.
    let key = |value: Option<i64>| value.map_or_else(|| "unset".to_string(), |v| v.to_string());
    println!(
        "experiment {}: task {}, prompt_len (m) {}, rank (r) {}, {} steps, learning rates {} (prompt) and {} (pair)",
        demo.config_path.display(),
        config.task,
        key(config.prompt_len),
        key(config.rank),
        config.max_steps,
        config.lr_prompt,
        config.lr_pair
    );

    // 3. Train: the validation split is scored every 50 steps and the best adapter kept in `<run>/best`; at the
    //    end the test split is scored with it. Accuracy stays near chance (50) for the first ~150 steps, then
    //    climbs.
    let options = TrainOptions {
        quiet: true,
        ..TrainOptions::default()
    };
    let outcome = train(&config, &options)?;

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
