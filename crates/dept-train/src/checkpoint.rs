//! Checkpoints: a folder holding the adapter (PEFT format), the optimiser moments, the trainer's position and a
//! manifest of them all.
//!
//! A checkpoint is written whole under a temporary name (`X.partial-<pid>`), every file synced, its manifest
//! (each file's size and SHA-256, the step, the config's fingerprint) written last; then the previous checkpoint
//! is renamed `X.previous`, the new one renamed `X`, and the parent folder synced. So the last two checkpoints are
//! kept, and a kill, a power cut or a full disk at any moment leaves at least one complete one. Before a resume
//! each candidate is checked against its manifest ([`resumable`]): a truncated file, a flipped byte, a missing file
//! or a config that changed under the run is named, and the run falls back to `X.previous` (the damaged one is
//! moved aside to `X.damaged`); when neither is valid the run stops with the reasons (it never silently starts
//! again from step 0).

pub mod manifest;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use dept_core::atomic::{sync_dir, sync_parent, write_atomically, write_safetensors_atomically};
use dept_core::DecomposedPrompt;
use dept_models::checkpoint::{copy_named, LoadPlan, Mismatches};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::optim::AdamW;
use crate::retry::retrying;
use crate::TrainError;
use manifest::{Manifest, Problem};

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
    /// A stop signal came during the evaluation due after `step` (the step itself is applied): the resumed run
    /// evaluates first. Left out of the file when false, and false in files written before it existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub evaluation_owed: bool,
}

/// What goes into one checkpoint.
pub struct Contents<'a> {
    pub adapter: &'a DecomposedPrompt,
    /// The backbone's trained parameters (CLIP-T5's visual embedding); empty for text-only backbones.
    pub trained: &'a [(String, Tensor)],
    /// `None` for `best/`, which is for using the adapter, not for resuming.
    pub optimizer: Option<&'a AdamW>,
    pub state: &'a TrainState,
    /// [`crate::config::ExperimentConfig::fingerprint`] of the run's config.
    pub config_sha256: &'a str,
}

/// Writes a checkpoint into `dir` as the module header says, retrying a few times when the disk fails (see
/// [`crate::retry`]); on failure the previous checkpoint is untouched.
pub fn save(dir: &Path, contents: &Contents) -> Result<(), TrainError> {
    retrying(dir, Some(estimated_bytes(contents)), || {
        save_once(dir, contents)
    })
}

fn save_once(dir: &Path, contents: &Contents) -> Result<(), TrainError> {
    let partial = sibling(dir, &format!("partial-{}", std::process::id()));
    let result = write_partial(&partial, contents).and_then(|()| swap_in(&partial, dir));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&partial);
    }
    result
}

fn write_partial(partial: &Path, contents: &Contents) -> Result<(), TrainError> {
    let write_err = |path: PathBuf| move |error| TrainError::Write { path, error };
    let _ = std::fs::remove_dir_all(partial);
    std::fs::create_dir_all(partial).map_err(write_err(partial.to_path_buf()))?;
    contents.adapter.save(partial)?;
    if !contents.trained.is_empty() {
        let named: Vec<(&str, Tensor)> = contents
            .trained
            .iter()
            .map(|(n, t)| (n.as_str(), t.detach().to_device(Device::Cpu)))
            .collect();
        let path = partial.join(VISUAL_FILE);
        write_safetensors_atomically(&path, &named).map_err(write_err(path))?;
    }
    if let Some(optimizer) = contents.optimizer {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (i, (m, v, step)) in optimizer.state().into_iter().enumerate() {
            named.push((format!("exp_avg.{i}"), m.to_device(Device::Cpu)));
            named.push((format!("exp_avg_sq.{i}"), v.to_device(Device::Cpu)));
            named.push((format!("step.{i}"), Tensor::from_slice(&[step])));
        }
        let path = partial.join(OPTIMIZER_FILE);
        write_safetensors_atomically(&path, &named).map_err(write_err(path))?;
    }
    let state_json = serde_json::to_string_pretty(contents.state)
        .map_err(|e| TrainError::Run(format!("cannot serialise the trainer state: {e}")))?;
    let path = partial.join(STATE_FILE);
    write_atomically(&path, |tmp| std::fs::write(tmp, state_json.as_bytes()))
        .map_err(write_err(path))?;
    let path = partial.join(manifest::MANIFEST_FILE);
    Manifest::write(partial, contents.state.step, contents.config_sha256)
        .map_err(write_err(path))?;
    sync_dir(partial).map_err(write_err(partial.to_path_buf()))
}

/// `dir` → `dir.previous` (replacing the older one), `partial` → `dir`, then the parent synced: at every moment
/// `dir` or `dir.previous` is a complete checkpoint.
fn swap_in(partial: &Path, dir: &Path) -> Result<(), TrainError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |error| TrainError::Write { path, error }
    };
    let era = manifests_marker(dir);
    if !era.exists() {
        write_atomically(&era, |tmp| {
            std::fs::write(
                tmp,
                "Checkpoints in this folder carry a manifest.json: one without it is damaged, not old.\n",
            )
        })
        .map_err(write_err(&era))?;
    }
    let previous = sibling(dir, "previous");
    if dir.exists() {
        if previous.exists() {
            std::fs::remove_dir_all(&previous).map_err(write_err(&previous))?;
        }
        std::fs::rename(dir, &previous).map_err(write_err(dir))?;
    }
    std::fs::rename(partial, dir).map_err(write_err(dir))?;
    sync_parent(dir).map_err(write_err(dir))
}

/// About how many bytes one checkpoint takes: four bytes a value for the adapter and the trained parameters,
/// three times over with the optimiser's two moments, plus a little for the small files.
pub fn estimated_bytes(contents: &Contents) -> u64 {
    let values = |tensors: &mut dyn Iterator<Item = &Tensor>| -> u64 {
        tensors.map(|t| t.numel() as u64 * 4).sum()
    };
    let adapter = values(&mut contents.adapter.parameters().iter());
    let trained = values(&mut contents.trained.iter().map(|(_, t)| t));
    let copies = if contents.optimizer.is_some() { 3 } else { 1 };
    (adapter + trained) * copies + 16 * 1024
}

/// The complete-looking checkpoint at `dir`, or at `dir.previous`; `None` when neither has a trainer state.
/// Unfinished `dir.partial-*` folders are removed. [`resumable`] is the one that verifies.
pub fn existing(dir: &Path) -> Option<PathBuf> {
    remove_partials(dir);
    let previous = sibling(dir, "previous");
    if dir.join(STATE_FILE).is_file() {
        Some(dir.to_path_buf())
    } else if previous.join(STATE_FILE).is_file() {
        Some(previous)
    } else {
        None
    }
}

/// The checkpoint a run should resume from: `dir` if it matches its manifest and the run's config fingerprint,
/// else `dir.previous` (with a warning naming what is wrong with `dir`, which is moved aside to `dir.damaged`);
/// `None` when there is no checkpoint at all. An error, naming every problem, when checkpoints exist but none is
/// valid (then nothing is moved).
pub fn resumable(dir: &Path, config_sha256: &str) -> Result<Option<PathBuf>, TrainError> {
    remove_partials(dir);
    let candidates: Vec<PathBuf> = [dir.to_path_buf(), sibling(dir, "previous")]
        .into_iter()
        .filter(|c| c.is_dir())
        .collect();
    let mut rejected: Vec<(PathBuf, Vec<Problem>)> = Vec::new();
    for candidate in candidates {
        match check(&candidate, config_sha256) {
            Ok(()) => {
                for (path, problems) in &rejected {
                    // Out of the rotation (the next save would otherwise make it the fallback), kept to look at.
                    let aside = sibling(path, "damaged");
                    let _ = std::fs::remove_dir_all(&aside);
                    let moved = std::fs::rename(path, &aside).is_ok();
                    tracing::warn!(
                        "checkpoint {} is not usable ({}); falling back to {}{}",
                        path.display(),
                        listed(problems),
                        candidate.display(),
                        if moved {
                            format!(" (the damaged one is kept as {})", aside.display())
                        } else {
                            String::new()
                        }
                    );
                }
                return Ok(Some(candidate));
            }
            Err(problems) => rejected.push((candidate, problems)),
        }
    }
    if rejected.is_empty() {
        return Ok(None);
    }
    let reasons: Vec<String> = rejected
        .iter()
        .map(|(path, problems)| format!("{}: {}", path.display(), listed(problems)))
        .collect();
    Err(TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message: format!(
            "no valid checkpoint to resume from ({}). Not starting again from step 0 on my own: restore the \
             files, or pass --overwrite to start the run again",
            reasons.join("; ")
        ),
    })
}

/// `.dept-manifests-<family>` beside the checkpoints (`last` for `last` and `last.previous`, `best` for `best`
/// and `best.previous`): written with the family's first checkpoint that has a manifest, so that from then on one
/// without it (its manifest deleted) counts as damaged rather than as an older dept's.
fn manifests_marker(dir: &Path) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let family = name.split('.').next().unwrap_or_default();
    dir.with_file_name(format!(".dept-manifests-{family}"))
}

/// The checkpoint the test split is scored on: `best` (or `last`, for a run that never evaluated), checked against
/// its manifest first. A damaged one is an error naming what is wrong: scoring another adapter instead would
/// write test scores that are not the best step's.
pub fn for_testing(best: &Path, last: &Path, config_sha256: &str) -> Result<PathBuf, TrainError> {
    let dir = if best.is_dir() { best } else { last };
    check(dir, config_sha256).map_err(|problems| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message: format!(
            "cannot score the test split on it: {}. Restore the files, or pass --overwrite to train again",
            listed(&problems)
        ),
    })?;
    Ok(dir.to_path_buf())
}

/// A candidate is valid when it matches its manifest; one written before manifests existed (no manifest, in a
/// folder where no checkpoint ever had one) is accepted with a warning when its trainer state is there, since it
/// cannot be checked.
pub(crate) fn check(candidate: &Path, config_sha256: &str) -> Result<(), Vec<Problem>> {
    match manifest::verify(candidate, Some(config_sha256)) {
        Ok(_) => Ok(()),
        Err(problems)
            if problems == [Problem::NoManifest] && !manifests_marker(candidate).exists() =>
        {
            if candidate.join(STATE_FILE).is_file() {
                tracing::warn!(
                    "checkpoint {} has no manifest (an older dept wrote it): resuming without verifying it",
                    candidate.display()
                );
                Ok(())
            } else {
                Err(vec![
                    Problem::NoManifest,
                    Problem::Missing(STATE_FILE.into()),
                ])
            }
        }
        Err(problems) => Err(problems),
    }
}

fn listed(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn remove_partials(dir: &Path) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::AdamWConfig;
    use dept_core::DeptConfig;

    fn adapter(fill: f64) -> DecomposedPrompt {
        let config = DeptConfig::new(2, 1, 4, 3).unwrap();
        let prompt = Tensor::full([2, 3], fill, (tch::Kind::Float, Device::Cpu));
        let pair = (
            Tensor::full([4, 1], fill, (tch::Kind::Float, Device::Cpu)),
            Tensor::full([1, 3], fill, (tch::Kind::Float, Device::Cpu)),
        );
        DecomposedPrompt::from_tensors(config, &prompt, Some(&pair), Device::Cpu).unwrap()
    }

    fn saved(dir: &Path, fill: f64, step: u64, config_sha256: &str) -> DecomposedPrompt {
        let adapter = adapter(fill);
        let optimizer = AdamW::new(
            adapter.param_groups(),
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        let state = TrainState {
            step,
            ..TrainState::default()
        };
        let contents = Contents {
            adapter: &adapter,
            trained: &[],
            optimizer: Some(&optimizer),
            state: &state,
            config_sha256,
        };
        save(dir, &contents).unwrap();
        adapter
    }

    fn step_of(dir: &Path) -> u64 {
        manifest::Manifest::read(dir).unwrap().step
    }

    #[test]
    fn the_last_two_checkpoints_are_kept_and_each_verifies() {
        let root = tempfile::tempdir().unwrap();
        let last = root.path().join("last");
        saved(&last, 0.1, 1, "cfg");
        assert!(!sibling(&last, "previous").exists());
        saved(&last, 0.2, 2, "cfg");
        saved(&last, 0.3, 3, "cfg");
        let previous = sibling(&last, "previous");
        assert_eq!((step_of(&last), step_of(&previous)), (3, 2));
        for dir in [&last, &previous] {
            let manifest = manifest::verify(dir, Some("cfg")).unwrap();
            let names: Vec<&str> = manifest.files.keys().map(String::as_str).collect();
            assert_eq!(
                names,
                [
                    "adapter_config.json",
                    "adapter_model.safetensors",
                    OPTIMIZER_FILE,
                    STATE_FILE
                ]
            );
        }
        assert_eq!(resumable(&last, "cfg").unwrap(), Some(last.clone()));
        // No temporary folder or file is left behind.
        let names: Vec<String> = std::fs::read_dir(root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(
            names.contains(&".dept-manifests-last".to_string()),
            "{names:?}"
        );
    }

    #[test]
    fn a_damaged_checkpoint_falls_back_and_two_stop_the_run() {
        let root = tempfile::tempdir().unwrap();
        let last = root.path().join("last");
        saved(&last, 0.1, 1, "cfg");
        saved(&last, 0.2, 2, "cfg");
        let previous = sibling(&last, "previous");
        // A flipped byte in the newest: the previous one is used.
        let weights = last.join("adapter_model.safetensors");
        let mut bytes = std::fs::read(&weights).unwrap();
        let at = bytes.len() - 1;
        bytes[at] ^= 0x01;
        std::fs::write(&weights, &bytes).unwrap();
        // A config that changed under the run disqualifies both.
        let err = resumable(&last, "other").unwrap_err().to_string();
        assert!(err.contains("another config"), "{err}");
        assert_eq!(resumable(&last, "cfg").unwrap(), Some(previous.clone()));
        // The damaged one is out of the rotation, kept aside; the previous one is still the fallback.
        assert!(!last.exists() && sibling(&last, "damaged").join(STATE_FILE).is_file());
        std::fs::rename(sibling(&last, "damaged"), &last).unwrap();
        // The previous one truncated as well: no valid checkpoint, an error naming both, never a fresh start.
        let optimizer = previous.join(OPTIMIZER_FILE);
        let len = std::fs::metadata(&optimizer).unwrap().len();
        std::fs::File::options()
            .write(true)
            .open(&optimizer)
            .unwrap()
            .set_len(len / 2)
            .unwrap();
        let err = resumable(&last, "cfg").unwrap_err().to_string();
        assert!(
            err.contains("no valid checkpoint")
                && err.contains("adapter_model.safetensors changed after it was written")
                && err.contains(&format!("{OPTIMIZER_FILE} is truncated")),
            "{err}"
        );
        // A deleted manifest is damage too (the folder's checkpoints have had manifests), not an old checkpoint.
        let kept = std::fs::read(last.join(manifest::MANIFEST_FILE)).unwrap();
        std::fs::remove_file(last.join(manifest::MANIFEST_FILE)).unwrap();
        let err = resumable(&last, "cfg").unwrap_err().to_string();
        assert!(err.contains("no manifest.json"), "{err}");
        std::fs::write(last.join(manifest::MANIFEST_FILE), kept).unwrap();
        // A missing file is named too.
        std::fs::remove_file(last.join(STATE_FILE)).unwrap();
        let err = resumable(&last, "cfg").unwrap_err().to_string();
        assert!(err.contains("trainer_state.json is missing"), "{err}");
    }

    #[test]
    fn a_kill_between_the_renames_leaves_the_previous_checkpoint() {
        let root = tempfile::tempdir().unwrap();
        let last = root.path().join("last");
        saved(&last, 0.1, 1, "cfg");
        saved(&last, 0.2, 2, "cfg");
        // As if killed after `last` → `last.previous` and before the new one was renamed in.
        std::fs::remove_dir_all(&last).unwrap();
        std::fs::create_dir_all(sibling(&last, "partial-99999")).unwrap();
        let previous = sibling(&last, "previous");
        assert_eq!(resumable(&last, "cfg").unwrap(), Some(previous));
        assert!(!sibling(&last, "partial-99999").exists());
        assert_eq!(resumable(&root.path().join("none"), "cfg").unwrap(), None);
    }
}
