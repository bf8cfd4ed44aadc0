//! The backbone registry: each kind of backbone declares, in one [`BackboneKind`] beside its model code, the
//! `model_type`s it loads, its loader, its architecture, its tiny random model and its benchmark shapes.
//! [`crate::BACKBONES`] lists the kinds, one line each; everything that loads, builds or names a backbone goes
//! through the functions here, so nothing outside this crate matches on a `model_type`.

use std::path::Path;

use tch::Device;

use crate::{Architecture, Backbone, ModelError, BACKBONES};

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
    pub architecture: Architecture,
    /// Loads a Hugging Face folder of this kind.
    pub load: LoadFn,
    /// The backbone reading visual features (CLIP-T5 on T5), for kinds that can.
    pub vision_language: Option<VisionLanguageFn>,
    pub tiny: TinyRecipe,
    /// The released sizes benchmarks build with random weights, by name ("t5-small", "llama-2-7b").
    pub shapes: &'static [&'static str],
    /// The config of one of `shapes`.
    pub shape: fn(&str) -> Result<Box<dyn ModelShape>, ModelError>,
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

/// The kind of the Hugging Face folder `dir` (`model_type` in its `config.json`; a config without one is T5's,
/// as early T5 exports wrote none).
pub fn kind_of(dir: &Path) -> Result<&'static BackboneKind, ModelError> {
    let (path, config) = crate::checkpoint::read_config(dir)?;
    let model_type = config.get("model_type").and_then(|v| v.as_str());
    let model_type = model_type.unwrap_or(crate::t5::MODEL_TYPE);
    BACKBONES
        .iter()
        .copied()
        .find(|k| k.model_types.contains(&model_type))
        .ok_or_else(|| ModelError::UnknownModelType {
            path,
            model_type: model_type.to_string(),
            supported: supported(),
            hint: " (CLIP-T5 is a T5 folder plus a feature file: the `features` key of an experiment config)",
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
    let kind = kind_of(dir)?;
    let Some(load) = kind.vision_language else {
        let readers: Vec<&str> = BACKBONES
            .iter()
            .filter(|k| k.vision_language.is_some())
            .map(|k| k.label)
            .collect();
        return Err(ModelError::Config {
            path: dir.join(crate::checkpoint::CONFIG_FILE),
            message: format!(
                "a vision-language run (`features` set) needs a {} model folder for CLIP-T5, got model_type {:?}",
                readers.join(" or "),
                kind.model_types.first().copied().unwrap_or(kind.name)
            ),
        });
    };
    load(dir, device, visual)
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
    }
}
