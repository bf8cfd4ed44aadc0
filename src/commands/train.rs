//! `dept train`: one experiment from a YAML config, resumable.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use dept_train::{train, ExperimentConfig, TrainOptions};

#[derive(Args)]
pub struct TrainArgs {
    /// Experiment config (YAML); see configs/README.md for every key.
    config: PathBuf,
    /// Hugging Face model folder (overrides `model:`).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Data folder holding `<TASK>/…` files (overrides `data_dir:`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run folder (overrides `output_dir:`).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Override any config key, e.g. `--set max_steps=200 --set lr_pair=5e-3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Require a checkpoint to resume from (a run folder with `last/` is resumed even without this flag).
    #[arg(long, conflicts_with = "overwrite")]
    resume: bool,
    /// Delete an existing run folder and start again.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: &TrainArgs, quiet: bool) -> Result<()> {
    let mut overrides = args.set.clone();
    for (key, value) in [
        ("model", &args.model),
        ("data_dir", &args.data_dir),
        ("output_dir", &args.output_dir),
    ] {
        if let Some(value) = value {
            overrides.push(format!(
                "{key}={}",
                yaml_string(&value.display().to_string())
            ));
        }
    }
    // From here on SIGTERM, SIGINT and SIGUSR1 end the run with a saved checkpoint and status 75
    // (`dept_train::stop`); a second SIGINT aborts with 130.
    dept_train::stop::install().context("cannot install the SIGTERM/SIGINT/SIGUSR1 handlers")?;
    let config = ExperimentConfig::load(&args.config, &overrides)?;
    if config.model.as_os_str().is_empty() {
        bail!(
            "no model given: pass --model <folder> or set `model:` in {}",
            args.config.display()
        );
    }
    let outcome = train(
        &config,
        &TrainOptions {
            quiet,
            overwrite: args.overwrite,
            require_checkpoint: args.resume,
        },
    )?;
    if let Some(step) = outcome.resumed_from {
        println!("resumed from step {step}");
    }
    println!(
        "finished {} steps; best validation {} at step {}",
        outcome.steps,
        outcome
            .best_validation
            .map_or("n/a".to_string(), |v| format!("{v:.2}")),
        outcome
            .best_step
            .map_or("n/a".to_string(), |s| s.to_string())
    );
    let test: Vec<String> = outcome
        .test
        .iter()
        .map(|(k, v)| format!("{k} {v:.2}"))
        .collect();
    println!("test (best adapter): {}", test.join(", "));
    println!("run folder: {}", outcome.run_dir.display());
    Ok(())
}

/// A YAML string literal for a path given on the command line (so `--model 1e5` stays a path).
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| s.to_string())
}
