//! The adapters a server holds: found in a folder tree, loaded and checked against the backbone, named, hashed,
//! and described for `GET /v1/models`.
//!
//! An adapter is any folder holding `adapter_config.json` (and `adapter_model.safetensors`) under the adapter
//! root; its name is its path relative to the root (`rte`, or `rte-run/best` for a run folder's best checkpoint).
//! A run's own copies (`last.previous`, `*.partial-*`, `*.damaged`) and hidden folders are skipped. Its task and
//! target length come from the run's `config.yaml` beside it or one folder up, when there is one.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use dept_core::{DecomposedPrompt, DeptConfig};
use dept_models::Backbone;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::ServeError;

/// How deep below the root adapter folders are looked for (a run folder's `best/` is two levels down).
const MAX_DEPTH: usize = 4;

/// What a client may know about a loaded adapter (`GET /v1/models`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AdapterInfo {
    pub name: String,
    /// `dept` (a prompt and a low-rank pair) or `prompt_tuning` (r = 0).
    pub method: &'static str,
    pub m: i64,
    pub r: i64,
    /// Maximum input tokens (the rows of `A`); `None` for a prompt-tuning adapter saved without one.
    pub s: Option<i64>,
    pub d: i64,
    /// The task of the run that trained it, when its `config.yaml` is at hand.
    pub task: Option<String>,
    /// Tokens `/v1/predict` generates (the run's `max_target_len`).
    pub max_target_len: usize,
    /// The longest input a request may have, in tokens: `s` for DePT (the rows of `A`), else `s` or the server's
    /// limit, whichever is smaller.
    pub max_input_tokens: usize,
    /// First 16 hex digits of the SHA-256 of its two files: a reload that changes them changes this.
    pub version: String,
    /// The model the adapter says it was trained on, for the record.
    pub base_model: Option<String>,
}

/// A loaded adapter: its tensors and its description. Requests hold a reference-counted handle of the version they started with.
pub struct ServedAdapter {
    pub info: AdapterInfo,
    pub prompt: DecomposedPrompt,
}

/// The names and descriptions of the loaded adapters, shared by the HTTP side (the engine thread writes it).
pub type Catalog = Arc<RwLock<BTreeMap<String, AdapterInfo>>>;

/// Loads the adapter in `dir` for `backbone`, refusing one whose width or model kind does not match it.
pub fn load(
    name: &str,
    dir: &Path,
    backbone: &dyn Backbone,
    default_max_input: usize,
) -> Result<ServedAdapter, ServeError> {
    let fail = |message: String| ServeError::Adapter {
        path: dir.to_path_buf(),
        message,
    };
    let config = DeptConfig::load(dir).map_err(|e| fail(e.to_string()))?;
    let d = backbone.hidden_size();
    if config.d != d {
        return Err(fail(format!(
            "the adapter's token_dim is {}, the backbone's hidden size {d}: it was trained on another model",
            config.d
        )));
    }
    let wanted = backbone.architecture().peft_task_type();
    if config.task_type != wanted {
        return Err(fail(format!(
            "the adapter's task_type is {}, this backbone takes {wanted} adapters",
            config.task_type
        )));
    }
    let prompt = DecomposedPrompt::load(dir, backbone.device()).map_err(|e| fail(e.to_string()))?;
    let (task, max_target_len) = run_settings(dir)?;
    let s = config.s;
    let max_input_tokens = match (s, config.r) {
        (Some(s), r) if r > 0 => s as usize,
        (Some(s), _) => (s as usize).min(default_max_input),
        (None, _) => default_max_input,
    };
    let info = AdapterInfo {
        name: name.to_string(),
        method: if config.r > 0 {
            "dept"
        } else {
            "prompt_tuning"
        },
        m: config.m,
        r: config.r,
        s,
        d: config.d,
        task,
        max_target_len,
        max_input_tokens,
        version: content_hash(dir)?,
        base_model: config.base_model_name_or_path.clone(),
    };
    Ok(ServedAdapter { info, prompt })
}

/// The task and target length of the run that trained the adapter in `dir` (its `config.yaml` beside it or one
/// folder up), else no task and the default target length.
fn run_settings(dir: &Path) -> Result<(Option<String>, usize), ServeError> {
    let defaults = dept_train::ExperimentConfig::default();
    let found = [dir.join("config.yaml"), dir.join("..").join("config.yaml")]
        .into_iter()
        .find(|p| p.is_file());
    let Some(path) = found else {
        return Ok((None, defaults.max_target_len));
    };
    let config =
        dept_train::ExperimentConfig::load(&path, &[]).map_err(|e| ServeError::Adapter {
            path: path.clone(),
            message: format!("the run's config cannot be read: {e}"),
        })?;
    let task = (!config.task.is_empty()).then_some(config.task);
    Ok((task, config.max_target_len))
}

/// First 16 hex digits of the SHA-256 over `adapter_config.json` then `adapter_model.safetensors`.
fn content_hash(dir: &Path) -> Result<String, ServeError> {
    let mut hasher = Sha256::new();
    for file in ["adapter_config.json", "adapter_model.safetensors"] {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).map_err(|e| ServeError::Adapter {
            path: path.clone(),
            message: format!("cannot read: {e}"),
        })?;
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let digest = hasher.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// Every adapter folder under `root`, by name (its path relative to `root`, `/`-separated), sorted.
pub fn discover(root: &Path) -> Result<Vec<(String, PathBuf)>, ServeError> {
    let mut found = Vec::new();
    walk(root, root, 0, &mut found)?;
    found.sort();
    Ok(found)
}

fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    found: &mut Vec<(String, PathBuf)>,
) -> Result<(), ServeError> {
    if dir.join("adapter_config.json").is_file() && dir != root {
        found.push((relative_name(root, dir), dir.to_path_buf()));
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let entries = std::fs::read_dir(dir).map_err(|e| ServeError::Adapter {
        path: dir.to_path_buf(),
        message: format!("cannot list the adapter folder: {e}"),
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let skipped = name.starts_with('.')
            || name.contains(".partial-")
            || name.ends_with(".previous")
            || name.ends_with(".damaged");
        if !skipped && entry.path().is_dir() {
            walk(root, &entry.path(), depth + 1, found)?;
        }
    }
    Ok(())
}

fn relative_name(root: &Path, dir: &Path) -> String {
    let relative = dir.strip_prefix(root).unwrap_or(dir);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// `requested` (relative to `root`, or absolute) as a folder inside `root`: no `..`, and no symbolic link that
/// leads out of it (both sides resolved before comparing).
pub fn resolve_under(root: &Path, requested: &str) -> Result<PathBuf, ServeError> {
    let path = Path::new(requested);
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(ServeError::BadRequest(format!(
            "path {requested:?} may not contain `..`: adapters are loaded from under the adapter root only"
        )));
    }
    let root = root.canonicalize().map_err(|e| {
        ServeError::Startup(format!(
            "the adapter root {} cannot be resolved: {e}",
            root.display()
        ))
    })?;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    let resolved = joined.canonicalize().map_err(|e| {
        ServeError::BadRequest(format!("adapter path {requested:?} cannot be opened: {e}"))
    })?;
    if !resolved.starts_with(&root) {
        return Err(ServeError::BadRequest(format!(
            "adapter path {requested:?} resolves to {}, outside the adapter root {}",
            resolved.display(),
            root.display()
        )));
    }
    Ok(resolved)
}

/// A name a client may give an adapter: letters, digits, `._-/`, not empty, no `..`, at most 200 bytes.
pub fn check_name(name: &str) -> Result<(), ServeError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-/".contains(c);
    if name.is_empty()
        || name.len() > 200
        || !name.chars().all(allowed)
        || name.split('/').any(|part| part.is_empty() || part == "..")
    {
        return Err(ServeError::BadRequest(format!(
            "adapter name {name:?} is not valid: use 1 to 200 letters, digits, `.`, `_`, `-` and `/`"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_stay_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/best")).unwrap();
        std::fs::write(root.path().join("a/best/adapter_config.json"), "{}").unwrap();
        std::fs::create_dir_all(root.path().join("a/last.previous")).unwrap();
        std::fs::write(
            root.path().join("a/last.previous/adapter_config.json"),
            "{}",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("b")).unwrap();
        std::fs::write(root.path().join("b/adapter_config.json"), "{}").unwrap();
        let found: Vec<String> = discover(root.path())
            .unwrap()
            .into_iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(found, ["a/best", "b"]);

        assert!(resolve_under(root.path(), "a/best").is_ok());
        assert!(resolve_under(root.path(), "../x")
            .unwrap_err()
            .to_string()
            .contains(".."));
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
        let escaped = resolve_under(root.path(), "escape")
            .unwrap_err()
            .to_string();
        assert!(escaped.contains("outside the adapter root"), "{escaped}");
        let absolute = resolve_under(root.path(), &outside.path().to_string_lossy()).unwrap_err();
        assert!(absolute.to_string().contains("outside"), "{absolute}");

        assert!(check_name("rte-run/best").is_ok());
        for bad in ["", "a/../b", "a b", "/abs", "x\n"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
