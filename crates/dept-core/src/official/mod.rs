//! Adapters in the official DePT code's files: `adapter_config.json` (its PEFT fork's `PromptTuningLoRAConfig`,
//! which [`DeptConfig`] already reads) and `adapter_model.bin`, the state dict `torch.save` wrote (a zip archive
//! holding a pickle, [`archive`]).
//!
//! The pickle is read by a restricted reader ([`unpickle`]) that accepts only what a plain tensor state dict
//! contains and refuses any other global or opcode by name: no code in a file can run. [`import`] turns such a
//! folder into a dept adapter folder (safetensors); [`export`] writes one back in the official layout, which
//! `torch.load(..., weights_only=True)` and the official code's `PeftModel.from_pretrained` read.

pub mod archive;
mod pickle;
mod unpickle;

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::atomic::write_atomically;
use crate::prompt::{LORA_A_KEY, LORA_B_KEY, PROMPT_KEY};
use crate::{CoreError, DecomposedPrompt, DeptConfig, ADAPTER_CONFIG_FILE};

/// The weights file of the official code (and of PEFT before safetensors).
pub const OFFICIAL_WEIGHTS_FILE: &str = "adapter_model.bin";

/// Reads the named tensors of a `torch.save`d state dict without unpickling it (see [`unpickle`]).
pub fn read_state_dict(path: &Path) -> Result<Vec<(String, Tensor)>, CoreError> {
    archive::read(path).map_err(|message| CoreError::File {
        path: path.to_path_buf(),
        message,
    })
}

/// Writes named tensors as `torch.save(dict)` does, atomically (a temporary file renamed over `path`).
pub fn write_state_dict(path: &Path, tensors: &[(&str, Tensor)]) -> Result<(), CoreError> {
    let prepared = archive::prepare(tensors).map_err(|message| CoreError::File {
        path: path.to_path_buf(),
        message,
    })?;
    // torch names the archive's folder after the file it writes.
    let archive_name = path
        .file_stem()
        .and_then(|stem| stem.to_str())
        .filter(|stem| !stem.is_empty() && !stem.contains('/'))
        .unwrap_or("archive");
    write_atomically(path, |tmp| {
        let file = std::fs::File::create(tmp)?;
        archive::write(std::io::BufWriter::new(file), archive_name, &prepared)
    })
    .map_err(|error| CoreError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// What to do with an official DePT adapter whose file holds its prompt but not its pair `A`, `B`.
///
/// The official code saves `A` and `B` only since its `save_lora_embeddings` option (2023-09); adapters saved
/// before it, such as three of the five its repository released (WiC, NQ, HotpotQA), hold `prompt_embeddings`
/// alone although their config says `PROMPT_TUNING_LORA` with r > 0. The official code itself stops with a
/// `KeyError` loading them, unless told `load_lora_embeddings = False`: then `A` keeps its initialisation and `B`
/// its zeros, so `A·B = 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPair {
    /// Refuse, naming the cause and the option (the official code's default, which fails).
    #[default]
    Refuse,
    /// Initialise the pair as the official code does (`A` kaiming-uniform, `B = 0`): the adapter is its prompt
    /// alone, as the official code with `load_lora_embeddings = False` runs it.
    Initialise,
}

/// Reads an official adapter folder (`adapter_config.json` and `adapter_model.bin`).
pub fn load(
    dir: &Path,
    device: Device,
    missing: MissingPair,
) -> Result<DecomposedPrompt, CoreError> {
    let config = DeptConfig::load(dir)?;
    let weights = dir.join(OFFICIAL_WEIGHTS_FILE);
    let bad = |message: String| CoreError::File {
        path: weights.clone(),
        message,
    };
    if !weights.is_file() {
        return Err(bad(
            "file not found (an official adapter folder holds adapter_model.bin)".into(),
        ));
    }
    let tensors = read_state_dict(&weights)?;
    let mut floats = Vec::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        if !matches!(
            tensor.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            return Err(bad(format!(
                "`{name}` holds {:?}; an adapter's tensors are floating point",
                tensor.kind()
            )));
        }
        floats.push((name, tensor.to_kind(Kind::Float)));
    }
    let config_path = dir.join(ADAPTER_CONFIG_FILE);
    let prompt_only = floats.len() == 1 && floats[0].0 == PROMPT_KEY;
    if config.r > 0 && prompt_only {
        return match missing {
            MissingPair::Refuse => Err(bad(format!(
                "holds `{PROMPT_KEY}` only, but {} says PROMPT_TUNING_LORA with r = {}: A and B were not saved \
                 (the official code saves them only since its save_lora_embeddings option, and stops with a \
                 KeyError loading this file). `--missing-pair init` imports it with A initialised as the official \
                 code does and B = 0, so that A·B = 0 and the adapter is its prompt alone",
                config_path.display(),
                config.r
            ))),
            MissingPair::Initialise => {
                let (_, prompt) = floats.remove(0);
                DecomposedPrompt::new(config, Some(&prompt), device)
                    .map_err(|e| bad(format!("does not match {}: {e}", config_path.display())))
            }
        };
    }
    DecomposedPrompt::from_named(config, floats, device, &config_path).map_err(bad)
}

/// `dept import official`: reads the official adapter folder `dir` and writes a dept adapter folder at `out`
/// (`adapter_config.json`, `adapter_model.safetensors`).
pub fn import(dir: &Path, out: &Path, missing: MissingPair) -> Result<DecomposedPrompt, CoreError> {
    let adapter = load(dir, Device::Cpu, missing)?;
    adapter.save(out)?;
    Ok(adapter)
}

/// `dept export official`: writes `adapter`'s files in the official layout into `out`: `adapter_model.bin` (the
/// state dict as `torch.save` writes it, with the official tensor names) and `adapter_config.json` with the
/// fields the official `PromptTuningLoRAConfig` reads.
pub fn export(adapter: &DecomposedPrompt, out: &Path) -> Result<(), CoreError> {
    std::fs::create_dir_all(out).map_err(|error| CoreError::Write {
        path: out.to_path_buf(),
        error,
    })?;
    let config = adapter.config();
    let mut tensors: Vec<(&str, Tensor)> = vec![(PROMPT_KEY, adapter.prompt().detach())];
    if let Some((a, b)) = adapter.pair() {
        tensors.push((LORA_A_KEY, a.detach()));
        tensors.push((LORA_B_KEY, b.detach()));
    }
    write_state_dict(&out.join(OFFICIAL_WEIGHTS_FILE), &tensors)?;
    let text = serde_json::to_string_pretty(&official_config(config)?)
        .map_err(|e| CoreError::Config(format!("cannot serialise the adapter config: {e}")))?;
    let path = out.join(ADAPTER_CONFIG_FILE);
    write_atomically(&path, |tmp| std::fs::write(tmp, text.as_bytes())).map_err(|error| {
        CoreError::Write {
            path: path.clone(),
            error,
        }
    })
}

/// The config as the official code writes it: dept's fields (already the official names) plus the ones its
/// `PromptTuningLoRAConfig` adds, at the values its runs used.
fn official_config(config: &DeptConfig) -> Result<serde_json::Value, CoreError> {
    let mut json = serde_json::to_value(config)
        .map_err(|e| CoreError::Config(format!("cannot serialise the adapter config: {e}")))?;
    if let Some(fields) = json.as_object_mut() {
        fields.insert("peft_type".into(), config.peft_type().into());
        fields.insert("inference_mode".into(), true.into());
        if config.r > 0 {
            fields.insert("hidden_size".into(), config.d.into());
            fields.insert("bias".into(), "none".into());
            fields.insert("init_lora_weights".into(), true.into());
            for flag in [
                "save_lora_embeddings",
                "load_lora_embeddings",
                "load_lora_embedding_B",
            ] {
                fields.insert(flag.into(), true.into());
            }
        }
    }
    Ok(json)
}
