//! The Hugging Face checkpoint folder: `config.json`, `model.safetensors` (or a sharded index), `tokenizer.json`.
//!
//! Weights are read from safetensors only: pickle (`pytorch_model.bin`) can run arbitrary code and is refused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use dept_core::atomic::{write_atomically, write_safetensors_atomically};
use tch::{nn::VarStore, Tensor};

use crate::{ConfigIssue, ModelError};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const WEIGHTS_INDEX_FILE: &str = "model.safetensors.index.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Reads `<dir>/config.json` as JSON; the caller turns it into a typed config.
pub fn read_config(dir: &Path) -> Result<(PathBuf, serde_json::Value), ModelError> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        cause: source,
    })?;
    let value = serde_json::from_str(&text).map_err(|e| ModelError::Config {
        path: path.clone(),
        message: format!("not valid JSON: {e}"),
    })?;
    Ok((path, value))
}

/// The safetensors files holding a model's weights: `model.safetensors`, or the shards a
/// `model.safetensors.index.json` names.
pub fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let single = dir.join(WEIGHTS_FILE);
    if single.is_file() {
        return Ok(vec![single]);
    }
    let index = dir.join(WEIGHTS_INDEX_FILE);
    if index.is_file() {
        return shard_files(&index);
    }
    let pickles = ["pytorch_model.bin", "pytorch_model.bin.index.json"];
    let message = if pickles.iter().any(|f| dir.join(f).exists()) {
        format!(
            "only a pickle checkpoint (pytorch_model.bin) is here, and pickle is never loaded (it can run code). \
             Convert it once in Python: `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`, \
             which writes {WEIGHTS_FILE}"
        )
    } else {
        format!("no {WEIGHTS_FILE} or {WEIGHTS_INDEX_FILE} in this folder")
    };
    Err(ModelError::Checkpoint {
        path: dir.to_path_buf(),
        message,
    })
}

fn shard_files(index: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let text = std::fs::read_to_string(index).map_err(|source| ModelError::Io {
        path: index.to_path_buf(),
        cause: source,
    })?;
    let bad = |message: String| ModelError::Checkpoint {
        path: index.to_path_buf(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let map = value
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            bad("expected an object `weight_map` of tensor name to shard file".into())
        })?;
    let dir = index.parent().unwrap_or(Path::new("."));
    let mut files = BTreeSet::new();
    for (name, file) in map {
        let file = file
            .as_str()
            .ok_or_else(|| bad(format!("weight_map[{name:?}] is not a file name")))?;
        files.insert(dir.join(file));
    }
    Ok(files.into_iter().collect())
}

/// `Err` naming the first of `fields` (config key, value) that is not positive: the sizes a model is built from.
pub fn check_positive(fields: &[(&str, i64)]) -> Result<(), ConfigIssue> {
    match fields.iter().find(|(_, v)| *v <= 0) {
        Some(&(field, value)) => Err(ConfigIssue::NotPositive {
            field: field.to_string(),
            value,
        }),
        None => Ok(()),
    }
}

/// `Err` unless `value` (config key `name`) is a multiple of `divisor` (key `divisor_name`), e.g. a width that
/// heads split evenly.
pub fn check_multiple(
    (name, value): (&str, i64),
    (divisor_name, divisor): (&str, i64),
) -> Result<(), ConfigIssue> {
    if value % divisor != 0 {
        return Err(ConfigIssue::NotMultiple {
            field: name.to_string(),
            value,
            divisor_field: divisor_name.to_string(),
            divisor,
        });
    }
    Ok(())
}

/// Casts a model's frozen weights to a floating-point kind (`Kind::BFloat16` on CUDA, `Kind::Double` for exactness
/// checks); any other kind is refused.
pub fn set_float_kind(vs: &mut VarStore, kind: tch::Kind) -> Result<(), ModelError> {
    use tch::Kind;
    match kind {
        Kind::Float => vs.float(),
        Kind::Double => vs.double(),
        Kind::BFloat16 => vs.bfloat16(),
        Kind::Half => vs.half(),
        other => {
            return Err(ModelError::Input(format!(
                "{other:?} is not a floating-point kind for model weights"
            )))
        }
    }
    Ok(())
}

/// How to match checkpoint tensors to a model's variables.
pub struct LoadPlan<'a> {
    /// `(variable, alternative name in the file)`: tied weights that a checkpoint stores under another name.
    pub aliases: &'a [(&'a str, &'a str)],
    /// Variables the model keeps that checkpoints never hold (e.g. GPT-2's causal-mask buffers).
    pub not_in_checkpoints: fn(&str) -> bool,
}

impl Default for LoadPlan<'_> {
    fn default() -> Self {
        LoadPlan {
            aliases: &[],
            not_in_checkpoints: |_| false,
        }
    }
}

/// Copies every variable of `vs` from the folder's safetensors files, converting dtype to the variable's.
/// Missing and misshapen tensors are all named in one error; nothing is half-loaded on error.
pub fn load_weights(vs: &mut VarStore, dir: &Path, plan: &LoadPlan) -> Result<(), ModelError> {
    let files = weight_files(dir)?;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for file in &files {
        let named = Tensor::read_safetensors(file).map_err(|e| ModelError::Checkpoint {
            path: file.clone(),
            message: format!("not a readable safetensors file: {e}"),
        })?;
        tensors.extend(named);
    }
    let variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    let mismatches = Mismatches::of(&variables, &tensors, plan);
    if !mismatches.is_empty() {
        return Err(ModelError::Checkpoint {
            path: dir.to_path_buf(),
            message: format!(
                "{} tensor(s) do not match the model that config.json describes:\n{mismatches}",
                mismatches.len()
            ),
        });
    }
    copy_named(&variables, &tensors, plan)
}

/// The variables a set of tensors does not fit: name → `missing` or `shape …, expected …`.
#[derive(Debug, Default)]
pub struct Mismatches(BTreeMap<String, String>);

impl Mismatches {
    /// Checks `sources` against `variables` by name (or an alias of `plan`) and shape.
    pub fn of(
        variables: &[(String, Tensor)],
        sources: &HashMap<String, Tensor>,
        plan: &LoadPlan,
    ) -> Self {
        let mut problems = BTreeMap::new();
        for (name, var) in variables {
            match source_of(name, sources, plan) {
                Some(src) if src.size() == var.size() => {}
                Some(src) => {
                    problems.insert(
                        name.clone(),
                        format!("shape {:?}, expected {:?}", src.size(), var.size()),
                    );
                }
                None if (plan.not_in_checkpoints)(name) => {}
                None => {
                    problems.insert(name.clone(), "missing".to_string());
                }
            }
        }
        Mismatches(problems)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// One `  name: why` line per mismatch, the first 12 of them.
impl std::fmt::Display for Mismatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let listed: Vec<String> = self
            .0
            .iter()
            .take(12)
            .map(|(name, why)| format!("  {name}: {why}"))
            .collect();
        write!(f, "{}", listed.join("\n"))?;
        if self.0.len() > 12 {
            write!(f, "\n  … and {} more", self.0.len() - 12)?;
        }
        Ok(())
    }
}

fn source_of<'a>(
    name: &str,
    sources: &'a HashMap<String, Tensor>,
    plan: &LoadPlan,
) -> Option<&'a Tensor> {
    sources.get(name).or_else(|| {
        plan.aliases
            .iter()
            .filter(|(var_name, _)| *var_name == name)
            .find_map(|(_, alias)| sources.get(*alias))
    })
}

/// Copies `sources` into the `variables` of the same name (or an alias of `plan`), converting dtype, without
/// gradients. Check [`Mismatches::of`] first: variables without a fitting source are left as they are.
pub fn copy_named(
    variables: &[(String, Tensor)],
    sources: &HashMap<String, Tensor>,
    plan: &LoadPlan,
) -> Result<(), ModelError> {
    tch::no_grad(|| -> Result<(), ModelError> {
        for (name, var) in variables {
            if let Some(src) = source_of(name, sources, plan).filter(|s| s.size() == var.size()) {
                let mut var = var.shallow_clone();
                var.f_copy_(&src.to_kind(var.kind()))?;
            }
        }
        Ok(())
    })
}

/// Writes `config.json` and `model.safetensors` (each atomically) into `dir`, creating it.
pub fn save_folder(
    dir: &Path,
    config: &serde_json::Value,
    vs: &VarStore,
) -> Result<(), ModelError> {
    let io_error = |path: PathBuf| {
        move |source| ModelError::Io {
            path,
            cause: source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io_error(dir.to_path_buf()))?;
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let weights = dir.join(WEIGHTS_FILE);
    write_safetensors_atomically(&weights, &named).map_err(io_error(weights.clone()))?;
    write_json(&dir.join(CONFIG_FILE), config)
}

/// Writes `contents` to `path` atomically (a reader never sees half a file).
pub fn write_file(path: &Path, contents: &[u8]) -> Result<(), ModelError> {
    write_atomically(path, |tmp| std::fs::write(tmp, contents)).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        cause: source,
    })
}

/// Writes `value` to `path` as pretty-printed JSON, atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), ModelError> {
    let text = serde_json::to_string_pretty(value).unwrap_or_default();
    write_file(path, text.as_bytes())
}

/// `<dir>/tokenizer.json`, a copy of `tokenizer_json` written atomically (with the folder's usual permissions,
/// not those of the source, which may be a read-only shared file).
pub fn copy_tokenizer(tokenizer_json: &Path, dir: &Path) -> Result<(), ModelError> {
    let text = std::fs::read(tokenizer_json).map_err(|source| ModelError::Io {
        path: tokenizer_json.to_path_buf(),
        cause: source,
    })?;
    write_file(&dir.join(TOKENIZER_FILE), &text)
}
