//! `dept quickstart`: the main job end to end, fully offline. It writes a tiny random T5 (Hugging Face folder
//! layout) and a small learnable task in the RTE file format, trains a DePT adapter on it with the real trainer,
//! then evaluates and predicts with the saved adapter, exactly as with a real checkpoint and real data.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use dept_data::Split;
use dept_train::demo::{loss_at_start_and_end, Demo, DEMO_ROWS};
use dept_train::{train, Inference, InferenceOverrides, TrainOptions};

#[derive(Args)]
pub struct QuickstartArgs {
    /// Folder for the tiny model, the data and the run (replaced if an earlier quickstart made it; any other
    /// existing folder is refused).
    #[arg(long, default_value = "runs/quickstart")]
    dir: PathBuf,
    /// Optimiser steps.
    #[arg(long, default_value_t = 120)]
    steps: u64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

pub fn run(args: &QuickstartArgs, quiet: bool) -> Result<()> {
    let demo = Demo::prepare(&args.dir, args.steps, args.seed)?;
    println!(
        "tiny T5 (gated-gelu, d_model 32, random weights): {}",
        demo.model.display()
    );
    println!(
        "synthetic RTE-format data ({} train, {} dev rows): {}",
        DEMO_ROWS.0,
        DEMO_ROWS.1,
        demo.data.display()
    );
    println!("experiment config: {}", demo.config_path.display());
    let options = TrainOptions {
        quiet,
        ..TrainOptions::default()
    };
    let outcome = train(&demo.config, &options)?;

    let loss = loss_at_start_and_end(&outcome.run_dir.join("metrics.jsonl"))?;
    println!(
        "training loss {:.4} -> {:.4} over {} steps; best validation accuracy {:.1} at step {}",
        loss.0,
        loss.1,
        outcome.steps,
        outcome.best_validation.unwrap_or(f64::NAN),
        outcome.best_step.unwrap_or(0)
    );
    anyhow::ensure!(
        loss.1 < loss.0,
        "the training loss did not decrease: training is broken"
    );

    let best = outcome.run_dir.join("best");
    let inference = Inference::open(&best, &InferenceOverrides::default())?;
    let evaluation = inference.evaluate(Split::Test)?;
    println!(
        "dept eval --adapter {} --split test: accuracy {:.1} on {} examples",
        best.display(),
        evaluation.scores[0].1,
        evaluation.examples.len()
    );
    let text = "sentence1: the cat sees the ball . sentence2: the cat sees the tree .".to_string();
    let prediction = inference.predict(std::slice::from_ref(&text))?;
    println!("dept predict: {text:?} -> {:?}", prediction[0]);
    println!(
        "run folder: {} (config.yaml, metrics.jsonl, best/, last/, results.csv, curves.svg)",
        outcome.run_dir.display()
    );
    println!("quickstart OK");
    Ok(())
}
