//! `dept quickstart`: the main job end to end, fully offline. It writes a tiny random T5 (Hugging Face folder
//! layout) and a small learnable task in the RTE file format, trains a DePT adapter on it with the real trainer,
//! then evaluates and predicts with the saved adapter, exactly as with a real checkpoint and real data.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use dept_data::Split;
use dept_train::{train, ExperimentConfig, Inference, InferenceOverrides, TrainOptions};

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
    // Only a folder an earlier quickstart made (it carries the run marker) is replaced.
    dept_train::run_dir::remove_marked(&args.dir)?;
    dept_train::run_dir::create_marked(&args.dir)?;
    let model = args.dir.join("tiny-t5");
    let data = args.dir.join("data");
    let run_dir = args.dir.join("run");
    dept_models::tiny::write_tiny_t5(
        &model,
        &dept_data::synthetic::vocabulary(),
        32,
        "gated-gelu",
        1,
    )?;
    dept_data::synthetic::write_rte_like(&data, 256, 64, args.seed)?;
    println!(
        "tiny T5 (gated-gelu, d_model 32, random weights): {}",
        model.display()
    );
    println!(
        "synthetic RTE-format data (256 train, 64 dev rows): {}",
        data.display()
    );

    // Dropout off: in a 32-wide random model the official 0.1 dropout drowns what a 120-step demo can learn.
    let yaml = format!(
        "task: rte\nmodel: {model:?}\ndata_dir: {data:?}\noutput_dir: {run_dir:?}\nprompt_len: 8\nrank: 4\n\
         max_len: 32\nlr_prompt: 0.3\nlr_pair: 0.05\nwarmup_steps: 10\nmax_steps: {steps}\nbatch_size: 16\n\
         eval_every: 40\nsave_every: 40\neval_batch_size: 32\ndecode_max_tokens: 3\nseed: {seed}\n\
         device: cpu\nlog_every: 20\nprompt_init: random\nbackbone_dropout: false\n",
        model = model.display().to_string(),
        data = data.display().to_string(),
        run_dir = run_dir.display().to_string(),
        steps = args.steps,
        seed = args.seed,
    );
    let config_path = args.dir.join("quickstart.yaml");
    std::fs::write(&config_path, &yaml)?;
    println!("experiment config: {}", config_path.display());
    let config = ExperimentConfig::load(&config_path, &[])?;
    let outcome = train(
        &config,
        &TrainOptions {
            quiet,
            ..TrainOptions::default()
        },
    )?;

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

fn loss_at_start_and_end(metrics: &std::path::Path) -> Result<(f64, f64)> {
    let text = std::fs::read_to_string(metrics)?;
    let losses: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("loss").and_then(|x| x.as_f64()))
        .collect();
    // Averages over the first and last tenth, so one noisy batch does not decide.
    let tenth = (losses.len() / 10).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    match (losses.first(), losses.last()) {
        (Some(_), Some(_)) => Ok((
            mean(&losses[..tenth]),
            mean(&losses[losses.len() - tenth..]),
        )),
        _ => anyhow::bail!("{} has no training losses", metrics.display()),
    }
}
