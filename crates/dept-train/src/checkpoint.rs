//! Checkpoints: a folder holding the adapter (PEFT format), the optimiser moments and the trainer's position.
//!
//! A checkpoint folder is written under a temporary name and swapped in with renames, so a kill at any moment
//! leaves either the previous checkpoint or the new one, never a mixture: `X.partial-*` folders are ignored and
//! removed, and if a kill fell between the two renames, `X.previous` is still complete and is used.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dept_core::DecomposedPrompt;
use dept_models::checkpoint::{copy_named, LoadPlan, Mismatches};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::optim::AdamW;
use crate::TrainError;

pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The backbone's own trained parameters (CLIP-T5's visual embedding), next to the adapter they were trained with.
pub const VISUAL_FILE: &str = "visual_embedding.safetensors";
pub const STATE_FILE: &str = "trainer_state.json";

/// Where training stands; with the seed this fixes the data order and dropout of everything that follows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps taken.
    pub step: u64,
    /// Passes over the training set started, and the position in the current pass.
    pub epoch: u64,
    pub cursor: usize,
    pub best_metric: Option<f64>,
    pub best_step: Option<u64>,
    pub evals_without_improvement: u32,
}

/// Writes adapter, the backbone's trained parameters (`trained`, if any), optimiser state and trainer state into
/// `dir`, replacing any previous checkpoint atomically.
pub fn save(
    dir: &Path,
    adapter: &DecomposedPrompt,
    trained: &[(String, Tensor)],
    optimizer: Option<&AdamW>,
    state: &TrainState,
) -> Result<(), TrainError> {
    let partial = sibling(dir, &format!("partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&partial);
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| TrainError::Write { path, error }
    };
    std::fs::create_dir_all(&partial).map_err(write_err(&partial))?;
    adapter.save(&partial)?;
    if !trained.is_empty() {
        let named: Vec<(String, Tensor)> = trained
            .iter()
            .map(|(n, t)| (n.clone(), t.detach().to_device(Device::Cpu)))
            .collect();
        Tensor::write_safetensors(&named, partial.join(VISUAL_FILE))?;
    }
    if let Some(optimizer) = optimizer {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (i, (m, v, step)) in optimizer.state().into_iter().enumerate() {
            named.push((format!("exp_avg.{i}"), m.to_device(Device::Cpu)));
            named.push((format!("exp_avg_sq.{i}"), v.to_device(Device::Cpu)));
            named.push((format!("step.{i}"), Tensor::from_slice(&[step])));
        }
        Tensor::write_safetensors(&named, partial.join(OPTIMIZER_FILE))?;
    }
    let state_json = serde_json::to_string_pretty(state).unwrap_or_default();
    std::fs::write(partial.join(STATE_FILE), state_json).map_err(write_err(&partial))?;
    sync_dir_files(&partial).map_err(write_err(&partial))?;

    let previous = sibling(dir, "previous");
    let _ = std::fs::remove_dir_all(&previous);
    if dir.exists() {
        std::fs::rename(dir, &previous).map_err(write_err(dir))?;
    }
    std::fs::rename(&partial, dir).map_err(write_err(dir))?;
    let _ = std::fs::remove_dir_all(&previous);
    Ok(())
}

/// The complete checkpoint at `dir`, or the one a kill left at `dir.previous`; `None` when neither exists.
/// Unfinished `dir.partial-*` folders are removed.
pub fn existing(dir: &Path) -> Option<PathBuf> {
    if let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) {
        let prefix = format!("{}.partial-", name.to_string_lossy());
        if let Ok(entries) = std::fs::read_dir(parent) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
    let previous = sibling(dir, "previous");
    if dir.join(STATE_FILE).is_file() {
        Some(dir.to_path_buf())
    } else if previous.join(STATE_FILE).is_file() {
        Some(previous)
    } else {
        None
    }
}

/// Copies the backbone's trained parameters saved in `dir` into `trained` (the backbone's own tensors, by name).
/// Nothing to do for a text-only backbone; a missing file, a missing name or another shape is an error naming
/// the folder.
pub fn load_trained(dir: &Path, trained: &[(String, Tensor)]) -> Result<(), TrainError> {
    if trained.is_empty() {
        return Ok(());
    }
    let path = dir.join(VISUAL_FILE);
    let bad = |message: String| TrainError::Checkpoint {
        path: path.clone(),
        message,
    };
    if !path.is_file() {
        return Err(bad(
            "missing: this adapter was not trained with a visual embedding (CLIP-T5), or the folder is incomplete"
                .into(),
        ));
    }
    let saved: HashMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .collect();
    let plan = LoadPlan::default();
    let mismatches = Mismatches::of(trained, &saved, &plan);
    if !mismatches.is_empty() {
        return Err(bad(format!(
            "{} tensor(s) do not match this model's visual embedding:\n{mismatches}\n(are the visual features of \
             another width or token count than the ones it was trained on, from another CLIP model?)",
            mismatches.len()
        )));
    }
    Ok(copy_named(trained, &saved, &plan)?)
}

/// Restores the adapter's values, the backbone's trained parameters, the optimiser's moments and the trainer
/// state from a checkpoint folder.
pub fn restore(
    dir: &Path,
    adapter: &mut DecomposedPrompt,
    trained: &[(String, Tensor)],
    optimizer: &mut AdamW,
) -> Result<TrainState, TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message,
    };
    let saved = DecomposedPrompt::load(dir, adapter.device())?;
    if saved.config() != adapter.config() {
        return Err(bad(format!(
            "the checkpoint's adapter ({:?}) differs from the configured one ({:?})",
            saved.config(),
            adapter.config()
        )));
    }
    adapter.copy_from(&saved)?;
    load_trained(dir, trained)?;
    let tensors = Tensor::read_safetensors(dir.join(OPTIMIZER_FILE))
        .map_err(|e| bad(format!("{OPTIMIZER_FILE}: {e}")))?;
    let get = |name: String| -> Result<Tensor, TrainError> {
        tensors
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.shallow_clone())
            .ok_or_else(|| bad(format!("{OPTIMIZER_FILE} has no `{name}`")))
    };
    let count = tensors.len() / 3;
    let mut state = Vec::with_capacity(count);
    for i in 0..count {
        let step = get(format!("step.{i}"))?.int64_value(&[0]);
        state.push((
            get(format!("exp_avg.{i}"))?.to_device(adapter.device()),
            get(format!("exp_avg_sq.{i}"))?.to_device(adapter.device()),
            step,
        ));
    }
    optimizer
        .load_state(state)
        .map_err(|e| bad(e.to_string()))?;
    let text = std::fs::read_to_string(dir.join(STATE_FILE))
        .map_err(|e| bad(format!("{STATE_FILE}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| bad(format!("{STATE_FILE}: {e}")))
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    dir.with_file_name(format!("{name}.{suffix}"))
}

fn sync_dir_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        std::fs::File::open(entry?.path())?.sync_all()?;
    }
    Ok(())
}
