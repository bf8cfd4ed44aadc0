//! The offline demo behind `dept quickstart` and the examples: a tiny random T5 in the Hugging Face folder layout,
//! a small learnable task in the RTE file format, and an experiment config that trains a DePT adapter on them with
//! the real trainer in a couple of minutes on a CPU. Nothing is downloaded.

use std::path::{Path, PathBuf};

use crate::{ExperimentConfig, TrainError};

/// Where the demo's pieces are, once written.
pub struct Demo {
    pub model: PathBuf,
    pub data: PathBuf,
    pub config_path: PathBuf,
    pub config: ExperimentConfig,
}

/// Rows of the synthetic task: (train, validation).
pub const DEMO_ROWS: (usize, usize) = (256, 64);

impl Demo {
    /// Writes the model, the data and the config under `dir` (which must be empty or an earlier demo's folder:
    /// only a folder carrying the run marker is replaced).
    pub fn prepare(dir: &Path, steps: u64, seed: u64) -> Result<Self, TrainError> {
        crate::run_dir::remove_marked(dir)?;
        crate::run_dir::create_marked(dir)?;
        let model = dir.join("tiny-t5");
        let data = dir.join("data");
        dept_models::tiny::write_tiny_t5(
            &model,
            &dept_data::synthetic::vocabulary(),
            32,
            "gated-gelu",
            1,
        )?;
        dept_data::synthetic::write_rte_like(&data, DEMO_ROWS.0, DEMO_ROWS.1, seed)?;
        let config_path = dir.join("quickstart.yaml");
        let yaml = demo_yaml(&model, &data, &dir.join("run"), steps, seed);
        std::fs::write(&config_path, yaml).map_err(|error| TrainError::Write {
            path: config_path.clone(),
            error,
        })?;
        let config = ExperimentConfig::load(&config_path, &[])?;
        Ok(Demo {
            model,
            data,
            config_path,
            config,
        })
    }
}

/// The demo's experiment. Dropout off: in a 32-wide random model the official 0.1 dropout drowns what a 120-step
/// demo can learn.
fn demo_yaml(model: &Path, data: &Path, run_dir: &Path, steps: u64, seed: u64) -> String {
    format!(
        "task: rte\nmodel: {model:?}\ndata_dir: {data:?}\noutput_dir: {run_dir:?}\nprompt_len: 8\nrank: 4\n\
         max_len: 32\nlr_prompt: 0.3\nlr_pair: 0.05\nwarmup_steps: 10\nmax_steps: {steps}\nbatch_size: 16\n\
         eval_every: 40\nsave_every: 40\neval_batch_size: 32\ndecode_max_tokens: 3\nseed: {seed}\n\
         device: cpu\nlog_every: 20\nprompt_init: random\nbackbone_dropout: false\n",
        model = model.display().to_string(),
        data = data.display().to_string(),
        run_dir = run_dir.display().to_string(),
    )
}

/// Mean training loss over the first and the last tenth of the logged steps of a run's `metrics.jsonl` (so that
/// one noisy batch does not decide whether training learned).
pub fn loss_at_start_and_end(metrics: &Path) -> Result<(f64, f64), TrainError> {
    let text = std::fs::read_to_string(metrics)
        .map_err(|e| TrainError::Run(format!("{}: {e}", metrics.display())))?;
    let losses: Vec<f64> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v.get("loss").and_then(|x| x.as_f64()))
        .collect();
    if losses.is_empty() {
        return Err(TrainError::Run(format!(
            "{} has no training losses",
            metrics.display()
        )));
    }
    let tenth = (losses.len() / 10).max(1);
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    Ok((
        mean(&losses[..tenth]),
        mean(&losses[losses.len() - tenth..]),
    ))
}
