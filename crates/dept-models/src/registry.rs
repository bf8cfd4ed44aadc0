//! The backbone registry: each kind of backbone declares, in one [`BackboneKind`] beside its model code, the
//! `model_type`s it loads, its loader, its architecture, its tiny random model and its benchmark shapes; a backbone
//! that reads visual features after a kind's text (CLIP-T5) declares a [`VisionLanguageKind`] the same way.
//! [`crate::BACKBONES`] and [`crate::VISION_LANGUAGE_BACKBONES`] list them, one line each; everything that loads,
//! builds or names a backbone goes through the functions here, so nothing outside this crate matches on a
//! `model_type`. This module names no kind: the kinds depend on it, not it on them.

use std::path::Path;

use tch::Device;

use crate::checkpoint;
use crate::{Architecture, Backbone, ModelError, BACKBONES, VISION_LANGUAGE_BACKBONES};

/// Loads a Hugging Face folder as a backbone.
pub type LoadFn = fn(&Path, Device) -> Result<Box<dyn Backbone>, ModelError>;

/// Loads a Hugging Face folder as a backbone that reads visual features after the text.
pub type VisionLanguageFn = fn(&Path, Device, VisualInput) -> Result<Box<dyn Backbone>, ModelError>;

/// One kind of backbone (T5, GPT-2, Llama), everything the rest of the project needs to know of it.
pub struct BackboneKind {
    /// Its name on the command line (`dept tiny-model --arch`): "t5", "gpt2", "llama".
    pub name: &'static str,
    /// How people call it ("T5", "GPT-2").
    pub label: &'static str,
    /// What it covers, for messages that list what is supported ("T5 (v1, v1.1, Flan)").
    pub supported: &'static str,
    /// The `model_type`s of `config.json` it loads.
    pub model_types: &'static [&'static str],
    /// A `config.json` without a `model_type` is this kind's (early T5 exports wrote none); one kind at most says
    /// so.
    pub reads_untyped_configs: bool,
    /// The `config.json` key of the model's width d ("d_model", "n_embd", "hidden_size"), for [`hidden_size_of`].
    pub hidden_size_key: &'static str,
    pub architecture: Architecture,
    /// Loads a Hugging Face folder of this kind.
    pub load: LoadFn,
    pub tiny: TinyRecipe,
    /// The released sizes benchmarks build with random weights, by name ("t5-small", "llama-2-7b").
    pub shapes: &'static [&'static str],
    /// The config of one of `shapes`.
    pub shape: fn(&str) -> Result<Box<dyn ModelShape>, ModelError>,
}

/// A backbone that reads visual features after the text of a [`BackboneKind`]'s folder (CLIP-T5 on T5).
pub struct VisionLanguageKind {
    /// How people call it ("CLIP-T5").
    pub label: &'static str,
    /// The [`BackboneKind::name`] of the folders it loads ("t5").
    pub text_kind: &'static str,
    /// How people call that kind ("T5"), for messages.
    pub text_label: &'static str,
    /// Loads such a folder as this backbone.
    pub load: VisionLanguageFn,
}

/// The visual features a vision-language backbone will read: `tokens` per image, each `width` wide. Its visual
/// embedding is initialised under `seed`, so that a run and its resumption start from the same weights.
#[derive(Debug, Clone, Copy)]
pub struct VisualInput {
    pub width: i64,
    pub tokens: i64,
    pub seed: i64,
}

/// How a kind writes a tiny random model in the real folder layout (tests, the offline quickstart).
pub struct TinyRecipe {
    /// A real `tokenizer.json` must be given (vocabulary size and end-of-sequence id come from it); kinds that do
    /// not need one write a word-level tokenizer over [`TinyModel::words`].
    pub needs_tokenizer: bool,
    /// The feed-forward layouts it can take, its default first (T5: gated-gelu, relu); empty where there is no
    /// choice.
    pub variants: &'static [&'static str],
    pub write: fn(&TinyModel) -> Result<(), ModelError>,
}

/// What a tiny model is asked to be.
pub struct TinyModel<'a> {
    /// The folder to write (`config.json`, `model.safetensors`, `tokenizer.json`).
    pub dir: &'a Path,
    pub tokenizer: Option<&'a Path>,
    /// The vocabulary of the word-level tokenizer written when there is no `tokenizer`.
    pub words: &'a [&'a str],
    pub d_model: i64,
    /// One of [`TinyRecipe::variants`]; `None` takes the default.
    pub variant: Option<&'a str>,
    pub seed: i64,
}

impl<'a> TinyModel<'a> {
    /// The `tokenizer.json` asked for, refused when absent (decoder-only models have no vocabulary of their own:
    /// its size and end-of-sequence id come from the tokenizer).
    pub fn required_tokenizer(&self) -> Result<&'a Path, ModelError> {
        self.tokenizer.ok_or_else(|| {
            ModelError::Input(
                "a tiny decoder-only model needs a tokenizer.json: its vocabulary size and end-of-sequence id come \
                 from it"
                    .into(),
            )
        })
    }
}

/// `initializer_range` of the tiny decoder-only models, ten times transformers' 0.02. Their output layer is a
/// `[vocab, d]` matrix of that standard deviation applied to a normalised state of norm √d, so one logit can move by
/// about `std · d` at most: 0.6 at d = 32 and std 0.02, which keeps the loss near ln 50 257 ≈ 10.8 whatever the
/// adapter learns; at 0.2 a short test run shows the loss falling (≈ 12 to 9 in 30 steps on RTE).
pub const TINY_INITIALIZER_RANGE: f64 = 0.2;

/// A model's config as a benchmark needs it: enough to size the adapter and draw inputs before anything is
/// built, then the model with random weights (time and memory do not depend on the weights).
pub trait ModelShape {
    /// Width d of the token embeddings (what the budget is counted in).
    fn hidden_size(&self) -> i64;
    fn vocab_size(&self) -> i64;
    /// The model with transformers' random initialisation, frozen.
    fn build_random(&self, device: Device) -> Result<Box<dyn Backbone>, ModelError>;
}

/// The kind named `name` (as [`BackboneKind::name`]).
pub fn by_name(name: &str) -> Result<&'static BackboneKind, ModelError> {
    BACKBONES
        .iter()
        .copied()
        .find(|k| k.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = BACKBONES.iter().map(|k| k.name).collect();
            ModelError::Input(format!(
                "unknown backbone {name:?}: expected one of {}",
                names.join(", ")
            ))
        })
}

/// The kind of the Hugging Face folder `dir` (`model_type` in its `config.json`; a config without one is the kind
/// that [`BackboneKind::reads_untyped_configs`], T5).
pub fn kind_of(dir: &Path) -> Result<&'static BackboneKind, ModelError> {
    let (path, config) = checkpoint::read_config(dir)?;
    kind_of_config(path, &config)
}

/// The kind a `config.json` (read from `path`) describes.
fn kind_of_config(
    path: std::path::PathBuf,
    config: &serde_json::Value,
) -> Result<&'static BackboneKind, ModelError> {
    let model_type = config.get("model_type").and_then(|v| v.as_str());
    let found = match model_type {
        Some(model_type) => BACKBONES
            .iter()
            .find(|k| k.model_types.contains(&model_type)),
        None => BACKBONES.iter().find(|k| k.reads_untyped_configs),
    };
    found.copied().ok_or_else(|| ModelError::UnknownModelType {
        path,
        model_type: model_type.unwrap_or_default().to_string(),
        supported: supported(),
        hint: " (CLIP-T5 is a T5 folder plus a feature file: the `features` key of an experiment config)",
    })
}

/// The width d of the model in the Hugging Face folder `dir`, read from its `config.json` under the key its kind
/// names ([`BackboneKind::hidden_size_key`]) without loading any weights (the budget arithmetic needs it).
pub fn hidden_size_of(dir: &Path) -> Result<i64, ModelError> {
    let (path, config) = checkpoint::read_config(dir)?;
    let kind = kind_of_config(path.clone(), &config)?;
    let key = kind.hidden_size_key;
    config
        .get(key)
        .and_then(|v| v.as_i64())
        .ok_or_else(|| ModelError::Config {
            path,
            message: format!(
                "`{key}` (the width of a {} model) is missing or not an integer",
                kind.label
            ),
        })
}

/// Loads the backbone a Hugging Face folder describes.
///
/// ```
/// use dept_models::{load_backbone, Architecture};
///
/// // A tiny random T5 in the real folder layout (config.json, model.safetensors, tokenizer.json).
/// let dir = tempfile::tempdir()?;
/// dept_models::tiny::write_tiny_t5(dir.path(), &["the", "cat"], 32, "gated-gelu", 1)?;
/// let t5 = load_backbone(dir.path(), tch::Device::Cpu)?;
/// assert_eq!((t5.hidden_size(), t5.architecture()), (32, Architecture::EncoderDecoder));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn load_backbone(dir: &Path, device: Device) -> Result<Box<dyn Backbone>, ModelError> {
    (kind_of(dir)?.load)(dir, device)
}

/// Loads the folder as a backbone that reads `visual` features after the text (CLIP-T5 on a T5 folder).
pub fn load_vision_language(
    dir: &Path,
    device: Device,
    visual: VisualInput,
) -> Result<Box<dyn Backbone>, ModelError> {
    let (path, config) = checkpoint::read_config(dir)?;
    // Any folder no vision-language kind reads (an unknown model_type included) gets the same message, naming the
    // folder's own model_type.
    let reader = kind_of_config(path.clone(), &config).ok().and_then(|kind| {
        VISION_LANGUAGE_BACKBONES
            .iter()
            .find(|vl| vl.text_kind == kind.name)
    });
    let Some(reader) = reader else {
        let readers: Vec<&str> = VISION_LANGUAGE_BACKBONES
            .iter()
            .map(|vl| vl.text_label)
            .collect();
        return Err(ModelError::Config {
            path,
            message: format!(
                "a vision-language run (`features` set) needs a {} model folder for CLIP-T5, got model_type {:?}",
                readers.join(" or "),
                config
                    .get("model_type")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
            ),
        });
    };
    (reader.load)(dir, device, visual)
}

/// Every benchmark shape's name, kind by kind.
pub fn shape_names() -> Vec<&'static str> {
    BACKBONES
        .iter()
        .flat_map(|k| k.shapes.iter().copied())
        .collect()
}

/// The benchmark shape `name` (one of [`shape_names`]).
pub fn shape(name: &str) -> Result<Box<dyn ModelShape>, ModelError> {
    match BACKBONES.iter().find(|k| k.shapes.contains(&name)) {
        Some(kind) => (kind.shape)(name),
        None => Err(ModelError::Input(format!(
            "unknown shape {name:?}: expected one of {}",
            shape_names().join(", ")
        ))),
    }
}

/// "T5 (v1, v1.1, Flan), GPT-2 and Llama": the kinds, for messages.
pub fn supported() -> String {
    let names: Vec<&str> = BACKBONES.iter().map(|k| k.supported).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_names_and_shapes() {
        for kind in BACKBONES {
            assert_eq!(by_name(kind.name).unwrap().name, kind.name);
            assert!(!kind.model_types.is_empty(), "{}", kind.name);
            for name in kind.shapes {
                let shape = shape(name).unwrap();
                assert!(shape.hidden_size() > 0 && shape.vocab_size() > 0, "{name}");
            }
        }
        assert_eq!(supported(), "T5 (v1, v1.1, Flan), GPT-2 and Llama");
        assert_eq!(shape("gpt2-medium").unwrap().hidden_size(), 1024);
        assert_eq!(shape("llama-2-7b").unwrap().hidden_size(), 4096);
        assert_eq!(shape("t5-base").unwrap().hidden_size(), 768);
        let err = shape("t5-huge")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("unknown shape") && err.contains("llama-2-13b"),
            "{err}"
        );
        assert!(by_name("bert").is_err());
    }

    #[test]
    fn no_model_type_is_claimed_twice() {
        let mut seen = std::collections::BTreeSet::new();
        for kind in BACKBONES {
            for model_type in kind.model_types {
                assert!(seen.insert(*model_type), "{model_type} claimed twice");
            }
        }
        let untyped: Vec<&str> = BACKBONES
            .iter()
            .filter(|k| k.reads_untyped_configs)
            .map(|k| k.name)
            .collect();
        assert_eq!(untyped, ["t5"], "configs without a model_type are T5's");
        for reader in VISION_LANGUAGE_BACKBONES {
            let text = by_name(reader.text_kind).unwrap();
            assert_eq!(reader.text_label, text.label, "{}", reader.label);
        }
    }

    /// A vision-language run on a folder that no vision-language kind reads (a known text kind or an unknown
    /// model_type alike) is refused naming that folder's own model_type, before any weight is read.
    #[test]
    fn vision_language_needs_a_folder_it_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let visual = VisualInput {
            width: 8,
            tokens: 2,
            seed: 0,
        };
        for model_type in ["gpt2", "bert"] {
            let folder = dir.path().join(model_type);
            std::fs::create_dir_all(&folder).unwrap();
            let config = serde_json::json!({ "model_type": model_type });
            std::fs::write(folder.join(checkpoint::CONFIG_FILE), config.to_string()).unwrap();
            let err = load_vision_language(&folder, Device::Cpu, visual)
                .err()
                .expect("refused")
                .to_string();
            let expected = format!(
                "a vision-language run (`features` set) needs a T5 model folder for CLIP-T5, got model_type \"{model_type}\""
            );
            assert!(err.contains(&expected), "{err}");
        }
    }

    /// Every kind's width is read from its own config key, and a folder without a readable one is an error
    /// (callers that may run before the folder exists treat it as "not known yet").
    #[test]
    fn hidden_size_is_read_under_each_kinds_key() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, config: serde_json::Value| {
            let folder = dir.path().join(name);
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(folder.join(checkpoint::CONFIG_FILE), config.to_string()).unwrap();
            folder
        };
        // Every other width key is present too, set wrong, so that only the kind's own key can give 48.
        let widths = |key: &str| {
            let mut config = serde_json::json!({"d_model": 1, "n_embd": 2, "hidden_size": 3});
            config[key] = 48.into();
            config
        };
        for kind in BACKBONES {
            let mut config = widths(kind.hidden_size_key);
            config["model_type"] = kind.model_types[0].into();
            assert_eq!(
                hidden_size_of(&write(kind.name, config)).unwrap(),
                48,
                "{}",
                kind.name
            );
        }
        let untyped = write("untyped", widths("d_model"));
        assert_eq!(hidden_size_of(&untyped).unwrap(), 48);
        let missing = write(
            "no-width",
            serde_json::json!({"model_type": "gpt2", "d_model": 8}),
        );
        let err = hidden_size_of(&missing).unwrap_err().to_string();
        assert!(err.contains("n_embd") && err.contains("GPT-2"), "{err}");
        assert!(hidden_size_of(&dir.path().join("absent")).is_err());
        let unknown = write(
            "bert",
            serde_json::json!({"model_type": "bert", "hidden_size": 8}),
        );
        assert!(hidden_size_of(&unknown).is_err());
    }
}
