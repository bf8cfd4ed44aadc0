//! GPT-2 (small, medium, large, xl: one architecture in four sizes) as a DePT backbone, run by rust-bert's
//! `GPT2LMHeadModel` on input embeddings with explicit position ids and a key/value cache ([`CausalLm`]).
//!
//! What this module adds around rust-bert:
//!
//! - **Config**: rust-bert's `Gpt2Config` wants `n_ctx`, which transformers no longer writes to `config.json`; the
//!   [`Gpt2Config`] here is read from the Hugging Face file (every missing or wrong key named) and turned into
//!   rust-bert's with `n_ctx = n_positions`. Settings rust-bert's module cannot reproduce are refused rather than
//!   run differently: exact-erf `gelu` (rust-bert silently runs `gelu_new` instead), `n_inner` ≠ 4·`n_embd`,
//!   unscaled or layer-scaled attention, cross-attention, an untied output layer.
//! - **Weights**: checkpoints of `GPT2LMHeadModel` (`transformer.h.0.attn.c_attn.weight`, …) load as they are;
//!   those of a bare `GPT2Model` (`h.0.attn.c_attn.weight`, …, the layout of the original `gpt2` upload) through
//!   aliases. rust-bert keeps each layer's causal mask as a variable (`….attn.bias`, `[1, 1, n_ctx, n_ctx]`) that
//!   recent checkpoints do not hold; it is rebuilt after loading, whatever a checkpoint stored there.
//! - **Inputs**: rust-bert panics on bad shapes, on position ids past `n_positions` (an embedding lookup) and on
//!   sequences longer than its causal-mask buffer; [`Gpt2`] checks these first and answers with
//!   [`ModelError::Input`].
//! - **Cache**: rust-bert's per-layer `[2, batch, heads, positions, head_dim]` tensors ↔ [`KvCache`].
//!
//! Attention masking differs from transformers in the constant only: rust-bert adds −10 000 at padding and above
//! the diagonal where transformers uses the dtype's minimum. Both give zero weight in fp32 and bf16 (e^−10000
//! underflows), so logits at real positions agree (tested: within 5e-7 relative); rows of padding positions whose keys
//! are all masked differ, and nothing reads them.

use std::path::Path;

use rust_bert::gpt2::{GPT2LMHeadModel, Gpt2Config as RustBertGpt2Config};
use rust_bert::pipelines::generation_utils::Cache;
use rust_bert::Activation;
use serde::{Deserialize, Serialize};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::causal::{CausalLm, KvCache};
use crate::checkpoint::{self, LoadPlan};
use crate::decoder_only::DecoderOnly;
use crate::registry::{BackboneKind, ModelShape, TinyRecipe, TINY_INITIALIZER_RANGE};
use crate::tokenizer::end_of_text_id;
use crate::{Architecture, Backbone, ConfigIssue, ModelError};

/// The fields of a Hugging Face GPT-2 `config.json` that the model depends on. The five shape fields are required
/// (transformers always writes them); the others default as transformers' `GPT2Config` does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: i64,
    pub n_embd: i64,
    pub n_layer: i64,
    pub n_head: i64,
    /// Learned positions; also the longest sequence (prompt + input + generated) the model runs.
    pub n_positions: i64,
    /// Feed-forward width; `None` means 4·`n_embd`, the only width rust-bert's GPT-2 has.
    #[serde(default)]
    pub n_inner: Option<i64>,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_init")]
    pub initializer_range: f64,
    #[serde(default = "default_dropout")]
    pub resid_pdrop: f64,
    #[serde(default = "default_dropout")]
    pub embd_pdrop: f64,
    #[serde(default = "default_dropout")]
    pub attn_pdrop: f64,
    #[serde(default = "default_eos")]
    pub eos_token_id: i64,
    /// GPT-2 checkpoints have none; padding then uses `eos_token_id`.
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default)]
    pub add_cross_attention: bool,
}

fn default_activation() -> String {
    "gelu_new".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_init() -> f64 {
    0.02
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eos() -> i64 {
    50256
}
fn default_true() -> bool {
    true
}

/// GPT-2 in the backbone registry ([`crate::BACKBONES`]).
pub const KIND: BackboneKind = BackboneKind {
    name: "gpt2",
    label: "GPT-2",
    supported: "GPT-2",
    model_types: &["gpt2"],
    reads_untyped_configs: false,
    hidden_size_key: "n_embd",
    architecture: Architecture::DecoderOnly,
    load: |dir, device| Ok(DecoderOnly::boxed(Gpt2::load(dir, device)?)),
    tiny: TinyRecipe {
        needs_tokenizer: true,
        variants: &[],
        write: |m| write_tiny_gpt2(m.dir, m.required_tokenizer()?, m.d_model, m.seed),
    },
    shapes: &["gpt2", "gpt2-medium", "gpt2-large"],
    shape: |name| Ok(Box::new(gpt2_shape(name)?)),
};

impl ModelShape for Gpt2Config {
    fn hidden_size(&self) -> i64 {
        self.n_embd
    }

    fn vocab_size(&self) -> i64 {
        self.vocab_size
    }

    fn build_random(&self, device: Device) -> Result<Box<dyn Backbone>, ModelError> {
        Ok(DecoderOnly::boxed(Gpt2::new_random(self, device)?))
    }
}

/// A tiny random GPT-2 (`GPT2LMHeadModel` layout: `config.json`, `model.safetensors` with `transformer.*` names,
/// tied output layer) that uses an existing `tokenizer.json` (e.g. GPT-2's byte-level BPE), so real data can be
/// pushed through the decoder-only pipeline without pretrained weights. Width `d_model` (even), 2 layers, 2 heads,
/// 1 024 positions, the vocabulary exactly the tokenizer's, end of sequence (and padding) the tokenizer's
/// [`end_of_text_id`]; transformers' initialisation at [`TINY_INITIALIZER_RANGE`].
pub fn write_tiny_gpt2(
    dir: &Path,
    tokenizer_json: &Path,
    d_model: i64,
    seed: i64,
) -> Result<(), ModelError> {
    let model = tiny_gpt2(tokenizer_json, d_model, seed)?;
    model.save(dir)?;
    checkpoint::copy_tokenizer(tokenizer_json, dir)
}

/// The random GPT-2 [`write_tiny_gpt2`] saves (in memory, for tests that compare it with the folder).
pub(crate) fn tiny_gpt2(
    tokenizer_json: &Path,
    d_model: i64,
    seed: i64,
) -> Result<Gpt2, ModelError> {
    let vocab_size = crate::TextTokenizer::from_file(tokenizer_json)?.vocab_size() as i64;
    let eos = end_of_text_id(tokenizer_json)?;
    if d_model <= 0 || d_model % 2 != 0 {
        return Err(ModelError::Input(format!(
            "a tiny GPT-2 has 2 heads: d_model must be a positive even number, got {d_model}"
        )));
    }
    let config = Gpt2Config {
        vocab_size,
        n_embd: d_model,
        n_layer: 2,
        n_head: 2,
        eos_token_id: eos,
        pad_token_id: None,
        initializer_range: TINY_INITIALIZER_RANGE,
        ..gpt2_shape("gpt2")?
    };
    tch::manual_seed(seed);
    Gpt2::new_random(&config, Device::Cpu)
}

/// The released sizes, by their hub names (`openai-community/` prefix optional): `(n_embd, n_layer, n_head)`.
const SHAPES: &[(&str, i64, i64, i64)] = &[
    ("gpt2", 768, 12, 12),
    ("gpt2-medium", 1024, 24, 16),
    ("gpt2-large", 1280, 36, 20),
    ("gpt2-xl", 1600, 48, 25),
];

/// The config of a released GPT-2 size ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl"): vocabulary 50 257,
/// 1 024 positions, EOS 50 256, transformers' defaults otherwise. With [`Gpt2::new_random`], a model of that
/// shape for benchmarks without the weights.
pub fn gpt2_shape(name: &str) -> Result<Gpt2Config, ModelError> {
    let bare = name.strip_prefix("openai-community/").unwrap_or(name);
    SHAPES
        .iter()
        .find(|(n, ..)| *n == bare)
        .map(|&(_, n_embd, n_layer, n_head)| Gpt2Config {
            vocab_size: 50257,
            n_embd,
            n_layer,
            n_head,
            n_positions: 1024,
            n_inner: None,
            activation_function: default_activation(),
            layer_norm_epsilon: default_eps(),
            initializer_range: default_init(),
            resid_pdrop: default_dropout(),
            embd_pdrop: default_dropout(),
            attn_pdrop: default_dropout(),
            eos_token_id: default_eos(),
            pad_token_id: None,
            tie_word_embeddings: true,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            add_cross_attention: false,
        })
        .ok_or_else(|| {
            let known: Vec<&str> = SHAPES.iter().map(|s| s.0).collect();
            ModelError::Input(format!(
                "unknown GPT-2 size {name:?}; known: {}",
                known.join(", ")
            ))
        })
}

impl Gpt2Config {
    /// Parses and validates a `config.json` value; `path` is only used in messages. `model_type` must be "gpt2".
    pub fn from_json(path: &Path, mut value: serde_json::Value) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        let object = value
            .as_object_mut()
            .ok_or_else(|| bad("expected a JSON object".into()))?;
        match object.get("model_type").and_then(|v| v.as_str()) {
            Some("gpt2") => {}
            Some(other) => {
                return Err(bad(format!(
                    "`model_type` is {other:?}, but this is the GPT-2 loader (\"gpt2\")"
                )))
            }
            None => return Err(bad("no `model_type` (\"gpt2\" expected)".into())),
        }
        // transformers allows several end-of-sequence ids (a list) and writes `null` for unset ones; the first id
        // is the one generation pads with, and `null` means "unset", i.e. the default.
        for key in ["eos_token_id", "pad_token_id"] {
            match object.get(key) {
                Some(serde_json::Value::Array(ids)) => {
                    let first = ids.first().cloned().unwrap_or(serde_json::Value::Null);
                    object.insert(key.into(), first);
                }
                Some(serde_json::Value::Null) if key == "eos_token_id" => {
                    object.remove(key);
                }
                _ => {}
            }
        }
        let config: Gpt2Config =
            serde_json::from_value(value).map_err(|e| bad(format!("not a GPT-2 config: {e}")))?;
        config
            .validate()
            .map_err(|issue| ModelError::InvalidConfig {
                path: path.to_path_buf(),
                issue,
            })?;
        Ok(config)
    }

    /// Everything rust-bert's module would panic on or compute differently from transformers, as a message.
    fn validate(&self) -> Result<(), ConfigIssue> {
        checkpoint::check_positive(&[
            ("vocab_size", self.vocab_size),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_positions", self.n_positions),
        ])?;
        checkpoint::check_multiple(("n_embd", self.n_embd), ("n_head", self.n_head))?;
        if let Some(inner) = self.n_inner.filter(|&n| n != 4 * self.n_embd) {
            return Err(ConfigIssue::Unsupported(format!(
                "`n_inner` = {inner} is not supported: rust-bert's GPT-2 has a feed-forward width of 4·n_embd = {}",
                4 * self.n_embd
            )));
        }
        self.activation()?;
        let epsilon = self.layer_norm_epsilon;
        ConfigIssue::check_range("layer_norm_epsilon", epsilon, "positive", |e| e > 0.0)?;
        ConfigIssue::check_probability(&[
            ("resid_pdrop", self.resid_pdrop),
            ("embd_pdrop", self.embd_pdrop),
            ("attn_pdrop", self.attn_pdrop),
        ])?;
        for (field, id) in [
            ("eos_token_id", Some(self.eos_token_id)),
            ("pad_token_id", self.pad_token_id),
        ] {
            if let Some(id) = id.filter(|id| !(0..self.vocab_size).contains(id)) {
                return Err(ConfigIssue::OutsideVocabulary {
                    field: field.to_string(),
                    id,
                    vocab_size: self.vocab_size,
                });
            }
        }
        let unsupported = [
            (
                !self.tie_word_embeddings,
                "`tie_word_embeddings: false` (rust-bert's GPT-2 always uses the word embeddings as output layer)",
            ),
            (
                !self.scale_attn_weights,
                "`scale_attn_weights: false` (rust-bert's GPT-2 always scales attention by 1/√head_dim)",
            ),
            (
                self.scale_attn_by_inverse_layer_idx,
                "`scale_attn_by_inverse_layer_idx: true` (not in rust-bert's GPT-2)",
            ),
            (
                self.add_cross_attention,
                "`add_cross_attention: true` (an encoder-decoder GPT-2 is not a causal LM backbone)",
            ),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(bad, _)| *bad) {
            return Err(ConfigIssue::Unsupported(format!("{what} is not supported")));
        }
        Ok(())
    }

    /// transformers' `activation_function` as the rust-bert activation computing the same function.
    fn activation(&self) -> Result<Activation, ConfigIssue> {
        match self.activation_function.as_str() {
            // `gelu_pytorch_tanh` is transformers' fused kernel of the same tanh approximation as `gelu_new`.
            "gelu_new" | "gelu_pytorch_tanh" => Ok(Activation::gelu_new),
            "relu" => Ok(Activation::relu),
            "tanh" => Ok(Activation::tanh),
            "silu" | "swish" => Ok(Activation::swish),
            "mish" => Ok(Activation::mish),
            "linear" => Ok(Activation::identity),
            // rust-bert's GPT-2 MLP replaces `gelu` by `gelu_new` (models/gpt2/transformer.rs, `MLP::new`), so the
            // exact GELU a checkpoint was trained with would silently become the tanh approximation.
            "gelu" => Err(ConfigIssue::Unsupported(
                "`activation_function: \"gelu\"` (exact GELU) is not supported: rust-bert's GPT-2 would run the \
                 tanh approximation (\"gelu_new\") instead"
                    .into(),
            )),
            other => Err(ConfigIssue::Unsupported(format!(
                "`activation_function` {other:?} is not supported (gelu_new, gelu_pytorch_tanh, relu, tanh, silu, \
                 mish, linear are)"
            ))),
        }
    }

    fn head_dim(&self) -> i64 {
        self.n_embd / self.n_head
    }

    /// rust-bert's config: `n_ctx` (the side of its causal-mask buffers) is transformers' `n_positions`.
    fn to_rust_bert(&self) -> Result<RustBertGpt2Config, ConfigIssue> {
        Ok(RustBertGpt2Config {
            attn_pdrop: Some(self.attn_pdrop),
            embd_pdrop: Some(self.embd_pdrop),
            resid_pdrop: Some(self.resid_pdrop),
            afn: Some(self.activation()?),
            initializer_range: self.initializer_range,
            layer_norm_epsilon: self.layer_norm_epsilon,
            n_ctx: self.n_positions,
            n_embd: self.n_embd,
            n_head: self.n_head,
            n_layer: self.n_layer,
            n_positions: self.n_positions,
            output_past: Some(true),
            output_attentions: Some(false),
            output_hidden_states: Some(false),
            vocab_size: self.vocab_size,
            ..RustBertGpt2Config::default()
        })
    }
}

/// A frozen GPT-2 language model (rust-bert's `GPT2LMHeadModel`, output layer tied to the word embeddings). Its
/// variables live in their own [`VarStore`] with gradients switched off, named as in `GPT2LMHeadModel`
/// checkpoints.
pub struct Gpt2 {
    config: Gpt2Config,
    vs: VarStore,
    model: GPT2LMHeadModel,
    /// `transformer.wte.weight` (shares storage with the store's variable, so it follows casts).
    wte: Tensor,
    kind: Kind,
}

/// rust-bert's causal-mask buffers: variables of the model, absent from recent checkpoints.
fn is_causal_mask(name: &str) -> bool {
    name.ends_with(".attn.bias")
}

impl Gpt2 {
    /// Loads `config.json` and `model.safetensors` (or its shards) from a Hugging Face folder, saved from
    /// `GPT2LMHeadModel` or from a bare `GPT2Model`.
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (path, value) = checkpoint::read_config(dir)?;
        let config = Gpt2Config::from_json(&path, value)?;
        let mut gpt2 = Self::build(&config, device)?;
        // A bare `GPT2Model` stores `h.0.…` for our `transformer.h.0.…`; a tied head may be stored as `lm_head`.
        let names: Vec<String> = gpt2.vs.variables().into_keys().collect();
        let mut aliases: Vec<(&str, &str)> = names
            .iter()
            .filter_map(|name| Some((name.as_str(), name.strip_prefix("transformer.")?)))
            .collect();
        aliases.push(("transformer.wte.weight", "lm_head.weight"));
        let plan = LoadPlan {
            aliases: &aliases,
            not_in_checkpoints: is_causal_mask,
        };
        checkpoint::load_weights(&mut gpt2.vs, dir, &plan)?;
        // Whatever an older checkpoint stored as `attn.bias` (float, uint8 or bool), the mask is the lower
        // triangle of ones that rust-bert multiplies scores with.
        gpt2.reset_causal_masks()?;
        Ok(gpt2)
    }

    /// A model with transformers' random initialisation (`GPT2PreTrainedModel._init_weights`: weights and
    /// embeddings normal(0, initializer_range), the two `c_proj` of each layer normal(0, initializer_range /
    /// √(2·n_layer)), biases 0, layer norms 1 and 0): for tests and for benchmarks of the released shapes
    /// ([`gpt2_shape`]).
    pub fn new_random(config: &Gpt2Config, device: Device) -> Result<Self, ModelError> {
        let gpt2 = Self::build(config, device)?;
        let std = config.initializer_range;
        let proj_std = std / (2.0 * config.n_layer as f64).sqrt();
        tch::no_grad(|| -> Result<(), ModelError> {
            for (name, mut var) in gpt2.vs.variables() {
                // rust-bert draws its own (embeddings normal(0, 1), all projections 0.02); layer norms and biases
                // already start at transformers' values.
                if !name.ends_with(".weight") || name.contains(".ln_") {
                    continue;
                }
                let s = if name.ends_with(".c_proj.weight") {
                    proj_std
                } else {
                    std
                };
                // In place; the returned handle is the same tensor.
                let _ = var.f_normal_(0.0, s)?;
            }
            Ok(())
        })?;
        Ok(gpt2)
    }

    /// rust-bert's module in a frozen store, its weights as rust-bert draws them.
    fn build(config: &Gpt2Config, device: Device) -> Result<Self, ModelError> {
        // Checked again for configs built in code: rust-bert asserts (panics) where the config is inconsistent.
        let invalid = |issue| ModelError::InvalidShape {
            model: "GPT-2",
            issue,
        };
        config.validate().map_err(invalid)?;
        let rust_bert_config = config.to_rust_bert().map_err(invalid)?;
        let mut vs = VarStore::new(device);
        let model = GPT2LMHeadModel::new(vs.root(), &rust_bert_config);
        let wte =
            vs.variables()
                .remove("transformer.wte.weight")
                .ok_or_else(|| {
                    ModelError::Input(
                "rust-bert's GPT-2 has no variable transformer.wte.weight (changed naming?)".into(),
            )
                })?;
        vs.freeze();
        Ok(Gpt2 {
            config: config.clone(),
            vs,
            model,
            wte,
            kind: Kind::Float,
        })
    }

    fn reset_causal_masks(&mut self) -> Result<(), ModelError> {
        tch::no_grad(|| -> Result<(), ModelError> {
            for (name, mut var) in self.vs.variables() {
                if is_causal_mask(&name) {
                    let n = self.config.n_positions;
                    let tril = Tensor::ones([n, n], (var.kind(), var.device())).tril(0);
                    var.f_copy_(&tril.view([1, 1, n, n]))?;
                }
            }
            Ok(())
        })
    }

    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }

    /// Writes `config.json` (the keys transformers' `save_pretrained` writes for a `GPT2LMHeadModel`, less
    /// `dtype` and `transformers_version`) and `model.safetensors` (`transformer.*` names, in the weights' kind),
    /// each atomically, creating `dir`: what [`Gpt2::load`] and transformers read. rust-bert's causal-mask buffers
    /// (`….attn.bias`) are not written, and neither is the output layer (tied to `transformer.wte.weight`). For
    /// tiny test models ([`write_tiny_gpt2`]).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ModelError::Io {
                path,
                cause: source,
            }
        };
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .filter(|(name, _)| !is_causal_mask(name))
            .map(|(name, t)| (name, t.detach().to_device(Device::Cpu).contiguous()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let weights = dir.join(checkpoint::WEIGHTS_FILE);
        dept_core::atomic::write_safetensors_atomically(&weights, &named)
            .map_err(io_error(&weights))?;

        let to_json =
            |e: serde_json::Error| ModelError::Input(format!("GPT-2 config as JSON: {e}"));
        let mut config = serde_json::to_value(&self.config).map_err(to_json)?;
        let extra = serde_json::json!({
            "model_type": "gpt2",
            "architectures": ["GPT2LMHeadModel"],
            // GPT-2 begins and ends documents with the same token.
            "bos_token_id": self.config.eos_token_id,
            "reorder_and_upcast_attn": false,
            "summary_activation": null,
            "summary_first_dropout": 0.1,
            "summary_proj_to_labels": true,
            "summary_type": "cls_index",
            "summary_use_proj": true,
            "use_cache": true,
        });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        let text = serde_json::to_string_pretty(&config).map_err(to_json)?;
        let path = dir.join(checkpoint::CONFIG_FILE);
        dept_core::atomic::write_atomically(&path, |tmp| std::fs::write(tmp, text.as_bytes()))
            .map_err(io_error(&path))
    }

    /// The backbone's variables, named as in `GPT2LMHeadModel` checkpoints, plus rust-bert's `….attn.bias`
    /// causal-mask buffers (`[1, 1, n_positions, n_positions]` per layer: 4 MiB each in fp32 at 1 024 positions).
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    /// Positions held by `cache`, after checking that it is this model's (layers, batch, heads, kind).
    fn cache_len(&self, cache: &KvCache, batch: i64) -> Result<i64, ModelError> {
        let layers = self.config.n_layer as usize;
        if cache.layers.len() != layers {
            return Err(ModelError::Input(format!(
                "the key/value cache has {} layers, this GPT-2 has {layers} (KvCache::new(model.num_layers()))",
                cache.layers.len()
            )));
        }
        let filled = cache.layers.iter().filter(|l| l.is_some()).count();
        if filled == 0 {
            return Ok(0);
        }
        if filled != layers {
            return Err(ModelError::Input(format!(
                "the key/value cache holds {filled} of {layers} layers: it was not filled by this model"
            )));
        }
        let len = cache.len();
        let expected = [batch, self.config.n_head, len, self.config.head_dim()];
        for (i, (k, v)) in cache.layers.iter().flatten().enumerate() {
            if k.size() != expected || v.size() != expected {
                return Err(ModelError::Input(format!(
                    "key/value cache layer {i}: keys {:?} and values {:?}, expected {expected:?} each ([batch, \
                     heads, positions, head_dim])",
                    k.size(),
                    v.size()
                )));
            }
            if k.kind() != self.kind || v.kind() != self.kind {
                return Err(ModelError::Input(format!(
                    "key/value cache layer {i} is {:?}, the model {:?}",
                    k.kind(),
                    self.kind
                )));
            }
        }
        Ok(len)
    }

    /// Checks everything rust-bert would panic on; returns embeddings in the model's kind, the mask made
    /// contiguous (rust-bert `view`s it) and Int64 position ids.
    fn checked_inputs(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        past: i64,
    ) -> Result<(Tensor, Tensor, Tensor), ModelError> {
        let new_positions = self.check_shapes(embeds, attention_mask, position_ids, past)?;
        self.check_devices_and_kinds(embeds, attention_mask, position_ids)?;
        let positions = self.checked_positions(position_ids, past, new_positions)?;
        Ok((
            embeds.to_kind(self.kind),
            attention_mask.contiguous(),
            positions,
        ))
    }

    /// Embeddings `[batch, t > 0, n_embd]`, a mask over the `past` cached and `t` new positions, ids for the new
    /// ones; returns `t`.
    fn check_shapes(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        past: i64,
    ) -> Result<i64, ModelError> {
        let input = |message: String| Err(ModelError::Input(message));
        let e = embeds.size();
        if e.len() != 3 || e[2] != self.config.n_embd || e[1] == 0 {
            return input(format!(
                "input embeddings must be [batch, len > 0, {}], got {e:?}",
                self.config.n_embd
            ));
        }
        let (batch, t) = (e[0], e[1]);
        if attention_mask.size() != [batch, past + t] {
            return input(format!(
                "attention mask {:?} must be [batch, cached + new positions] = [{batch}, {}]",
                attention_mask.size(),
                past + t
            ));
        }
        if position_ids.size() != [batch, t] {
            return input(format!(
                "position ids {:?} must be [batch, new positions] = [{batch}, {t}]",
                position_ids.size()
            ));
        }
        Ok(t)
    }

    /// Every input on the model's device, the embeddings floating point, the position ids integers.
    fn check_devices_and_kinds(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
    ) -> Result<(), ModelError> {
        let input = |message: String| Err(ModelError::Input(message));
        let device = self.device();
        for (what, tensor) in [
            ("input embeddings", embeds),
            ("attention mask", attention_mask),
            ("position ids", position_ids),
        ] {
            if tensor.device() != device {
                return input(format!(
                    "{what} are on {:?}, the model on {device:?}",
                    tensor.device()
                ));
            }
        }
        if !embeds.is_floating_point() {
            return input(format!(
                "input embeddings must be floating point, got {:?}",
                embeds.kind()
            ));
        }
        if !matches!(
            position_ids.kind(),
            Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
        ) {
            return input(format!(
                "position ids must be integers, got {:?}",
                position_ids.kind()
            ));
        }
        Ok(())
    }

    /// The position ids as `Int64`, refused where the `past + t` positions or an id fall outside the learned table.
    fn checked_positions(
        &self,
        position_ids: &Tensor,
        past: i64,
        t: i64,
    ) -> Result<Tensor, ModelError> {
        let input = |message: String| Err(ModelError::Input(message));
        // rust-bert's causal mask is an [n_ctx, n_ctx] buffer it slices (n_ctx = n_positions here).
        let n = self.config.n_positions;
        if past + t > n {
            return input(format!(
                "{} positions ({past} cached + {t} new) exceed GPT-2's n_positions = {n}",
                past + t
            ));
        }
        let positions = position_ids.to_kind(Kind::Int64);
        // One device sync: the learned position table has n_positions rows, and an index past it aborts the
        // embedding lookup with a panic inside rust-bert.
        let range = Vec::<i64>::try_from(Tensor::stack(&[positions.min(), positions.max()], 0))?;
        if range[0] < 0 || range[1] >= n {
            return input(format!(
                "position ids must be in 0..{n} (n_positions), got {}..={}",
                range[0], range[1]
            ));
        }
        Ok(positions)
    }
}

/// One layer's cache as rust-bert takes it, `[2, batch, heads, positions, head_dim]`.
///
/// The keys and values a previous call stored are the two halves of the contiguous tensor rust-bert returned
/// (`present`); viewing that tensor again saves a copy of the whole cache per layer and step (rust-bert itself
/// copies it twice more: `layer_past.copy()` in `Gpt2Model::forward_t`, then `cat`). Anything else is stacked.
fn rust_bert_layer_past(keys: &Tensor, values: &Tensor) -> Tensor {
    let adjacent = keys.is_contiguous()
        && values.is_contiguous()
        && keys.size() == values.size()
        && keys.kind() == values.kind()
        && keys.device() == values.device()
        && (values.data_ptr() as usize).wrapping_sub(keys.data_ptr() as usize)
            == keys.numel() * keys.kind().elt_size_in_bytes();
    if adjacent {
        let mut size = vec![2];
        size.extend(keys.size());
        let mut stride = vec![keys.numel() as i64];
        stride.extend(keys.stride());
        // `as_strided` checks the view against the bounds of `keys`' storage: values that merely happen to sit
        // right after the keys in another allocation fail here and are stacked instead.
        if let Ok(both) = keys.f_as_strided(size, stride, None::<i64>) {
            return both;
        }
    }
    Tensor::stack(&[keys, values], 0)
}

impl CausalLm for Gpt2 {
    fn hidden_size(&self) -> i64 {
        self.config.n_embd
    }

    fn vocab_size(&self) -> i64 {
        self.config.vocab_size
    }

    fn num_layers(&self) -> usize {
        self.config.n_layer as usize
    }

    fn device(&self) -> Device {
        self.vs.device()
    }

    fn embed(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.wte, ids, -1, false, false)
    }

    fn forward_embeds(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        cache: Option<&mut KvCache>,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let batch = embeds.size().first().copied().unwrap_or(0);
        let past = match cache.as_deref() {
            Some(cache) => self.cache_len(cache, batch)?,
            None => 0,
        };
        let (embeds, mask, positions) =
            self.checked_inputs(embeds, attention_mask, position_ids, past)?;
        let layer_past: Option<Vec<Tensor>> = match cache.as_deref() {
            Some(cache) if past > 0 => Some(
                cache
                    .layers
                    .iter()
                    .flatten()
                    .map(|(k, v)| rust_bert_layer_past(k, v))
                    .collect(),
            ),
            _ => None,
        };
        let out = self
            .model
            .forward_t(
                None,
                layer_past.as_ref(),
                Some(&mask),
                None,
                Some(&positions),
                Some(&embeds),
                train,
            )
            .map_err(|e| ModelError::Input(format!("rust-bert's GPT-2: {e}")))?;
        if let Some(cache) = cache {
            // rust-bert returns every position's keys and values (the cached ones and this call's), so the cache
            // is replaced rather than appended to.
            let Cache::GPT2Cache(Some(presents)) = out.cache else {
                return Err(ModelError::Input(
                    "rust-bert's GPT-2 returned no key/value cache".into(),
                ));
            };
            for (slot, present) in cache.layers.iter_mut().zip(presents) {
                *slot = Some((present.get(0), present.get(1)));
            }
        }
        let logits = out.lm_logits;
        Ok(match logits.kind() {
            Kind::BFloat16 | Kind::Half => logits.to_kind(Kind::Float),
            _ => logits,
        })
    }

    /// Casts the weights (and rust-bert's 0/1 causal masks, exactly) to a floating-point kind. Input embeddings of
    /// another kind are cast to it in [`CausalLm::forward_embeds`]; logits come back in fp32 (fp64 for fp64).
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        checkpoint::set_float_kind(&mut self.vs, kind)?;
        self.kind = kind;
        Ok(())
    }

    fn max_positions(&self) -> Option<i64> {
        Some(self.config.n_positions)
    }

    fn eos_token_id(&self) -> i64 {
        self.config.eos_token_id
    }

    fn pad_token_id(&self) -> i64 {
        self.config.pad_token_id.unwrap_or(self.config.eos_token_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 40,
            n_embd: 8,
            n_layer: 2,
            n_head: 2,
            n_positions: 16,
            eos_token_id: 39,
            initializer_range: 0.3,
            ..gpt2_shape("gpt2").unwrap()
        }
    }

    fn json(config: &Gpt2Config) -> serde_json::Value {
        let mut value = serde_json::to_value(config).unwrap();
        value["model_type"] = "gpt2".into();
        value
    }

    fn parse(value: serde_json::Value) -> Result<Gpt2Config, ModelError> {
        Gpt2Config::from_json(Path::new("config.json"), value)
    }

    #[test]
    fn gpt2_shapes_of_released_sizes() {
        for (name, d, layers, heads) in [
            ("gpt2", 768, 12, 12),
            ("gpt2-medium", 1024, 24, 16),
            ("openai-community/gpt2-large", 1280, 36, 20),
        ] {
            let c = gpt2_shape(name).unwrap();
            assert_eq!((c.n_embd, c.n_layer, c.n_head), (d, layers, heads));
            assert_eq!(
                (c.vocab_size, c.n_positions, c.eos_token_id),
                (50257, 1024, 50256)
            );
            assert_eq!(parse(json(&c)).unwrap(), c, "round trip through JSON");
        }
        let err = gpt2_shape("gpt3").unwrap_err().to_string();
        assert!(err.contains("gpt2-medium"), "{err}");
    }

    #[test]
    fn gpt2_config_json_errors_name_the_key() {
        let mut v = json(&tiny());
        v.as_object_mut().unwrap().remove("n_embd");
        let err = parse(v).unwrap_err().to_string();
        assert!(
            err.contains("n_embd") && err.contains("config.json"),
            "{err}"
        );

        let mut v = json(&tiny());
        v["model_type"] = "llama".into();
        let err = parse(v).unwrap_err().to_string();
        assert!(err.contains("llama"), "{err}");

        let mut v = json(&tiny());
        v.as_object_mut().unwrap().remove("model_type");
        assert!(parse(v).unwrap_err().to_string().contains("model_type"));

        for (key, value, expect) in [
            ("activation_function", serde_json::json!("gelu"), "gelu_new"),
            ("n_head", serde_json::json!(3), "multiple"),
            ("n_inner", serde_json::json!(7), "n_inner"),
            ("eos_token_id", serde_json::json!(40), "eos_token_id"),
            (
                "tie_word_embeddings",
                serde_json::json!(false),
                "tie_word_embeddings",
            ),
            (
                "scale_attn_by_inverse_layer_idx",
                serde_json::json!(true),
                "inverse",
            ),
            ("attn_pdrop", serde_json::json!(1.5), "attn_pdrop"),
        ] {
            let mut v = json(&tiny());
            v[key] = value;
            let err = parse(v).unwrap_err().to_string();
            assert!(err.contains(expect), "{key}: {err}");
        }
    }

    #[test]
    fn gpt2_config_token_ids_lists_and_nulls() {
        let mut v = json(&tiny());
        v["eos_token_id"] = serde_json::json!([38, 39]);
        v["pad_token_id"] = serde_json::Value::Null;
        let c = parse(v).unwrap();
        assert_eq!((c.eos_token_id, c.pad_token_id), (38, None));
        let mut v = json(&tiny());
        v["vocab_size"] = 50257.into();
        v["eos_token_id"] = serde_json::Value::Null;
        assert_eq!(parse(v).unwrap().eos_token_id, 50256);
    }

    #[test]
    fn gpt2_new_random_is_frozen_and_initialised_as_transformers() {
        tch::manual_seed(0);
        let config = Gpt2Config {
            vocab_size: 500,
            n_embd: 64,
            n_layer: 8,
            initializer_range: 0.02,
            ..tiny()
        };
        let model = Gpt2::new_random(&config, Device::Cpu).unwrap();
        let vars = model.var_store().variables();
        assert!(vars.values().all(|v| !v.requires_grad()));
        let std = |name: &str| f64::try_from(vars[name].std(true)).unwrap();
        let close = |a: f64, b: f64| (a / b - 1.0).abs() < 0.1;
        assert!(close(std("transformer.wte.weight"), 0.02));
        assert!(close(std("transformer.wpe.weight"), 0.02));
        assert!(close(std("transformer.h.0.mlp.c_fc.weight"), 0.02));
        assert!(close(std("transformer.h.0.attn.c_proj.weight"), 0.02 / 4.0));
        assert!(close(std("transformer.h.3.mlp.c_proj.weight"), 0.02 / 4.0));
        assert_eq!(
            f64::try_from(vars["transformer.ln_f.weight"].mean(None)).unwrap(),
            1.0
        );
        assert_eq!(
            f64::try_from(vars["transformer.h.0.attn.c_attn.bias"].abs().sum(None)).unwrap(),
            0.0
        );
        let mask = &vars["transformer.h.1.attn.bias"];
        assert_eq!(mask.size(), [1, 1, 16, 16]);
        assert_eq!(f64::try_from(mask.sum(None)).unwrap(), (16 * 17 / 2) as f64);
    }

    /// Logits of a whole sequence equal those of its prefix followed by the rest through the cache, with and
    /// without left padding; the cache holds [batch, heads, positions, head_dim].
    #[test]
    fn gpt2_cache_continues_a_sequence() {
        tch::manual_seed(1);
        let model = Gpt2::new_random(&tiny(), Device::Cpu).unwrap();
        let ids = Tensor::from_slice(&[39i64, 39, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6, 7, 8])
            .view([2, 8]);
        let mask =
            Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]).view([2, 8]);
        let positions = (mask.cumsum(1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 1);
        let embeds = model.embed(&ids);
        let full = model
            .forward_embeds(&embeds, &mask, &positions, None, false)
            .unwrap();
        let mut cache = KvCache::new(model.num_layers());
        let head = model
            .forward_embeds(
                &embeds.narrow(1, 0, 5),
                &mask.narrow(1, 0, 5),
                &positions.narrow(1, 0, 5),
                Some(&mut cache),
                false,
            )
            .unwrap();
        assert_eq!(cache.len(), 5);
        let (k, v) = cache.layers[1].as_ref().unwrap();
        assert_eq!((k.size(), v.size()), (vec![2, 2, 5, 4], vec![2, 2, 5, 4]));
        // What rust-bert returned is handed back to it without a copy on the next step.
        assert_eq!(rust_bert_layer_past(k, v).data_ptr(), k.data_ptr());
        let mut pieces = vec![head];
        for step in 5..8 {
            pieces.push(
                model
                    .forward_embeds(
                        &embeds.narrow(1, step, 1),
                        &mask.narrow(1, 0, step + 1),
                        &positions.narrow(1, step, 1),
                        Some(&mut cache),
                        false,
                    )
                    .unwrap(),
            );
        }
        assert_eq!(cache.len(), 8);
        let stepwise = Tensor::cat(&pieces, 1);
        // Only real positions: the two left-padding positions of row 0 are not compared.
        let real = mask.ne(0);
        let diff = f64::try_from(
            (full.index(&[Some(&real)]) - stepwise.index(&[Some(&real)]))
                .abs()
                .max(),
        )
        .unwrap();
        assert!(diff < 1e-5, "cached vs whole: {diff}");
    }

    #[test]
    fn gpt2_layer_past_views_rust_bert_presents_and_stacks_the_rest() {
        let present = Tensor::randn([2, 3, 2, 5, 4], (Kind::Float, Device::Cpu));
        let (k, v) = (present.get(0), present.get(1));
        let view = rust_bert_layer_past(&k, &v);
        assert_eq!(view.data_ptr(), present.data_ptr(), "no copy");
        assert!(view.equal(&present));
        let (k2, v2) = (k.copy(), v.copy());
        let stacked = rust_bert_layer_past(&k2, &v2);
        assert!(stacked.equal(&present));
        // Keys that are not contiguous (a transposed view) are stacked too.
        let kt = k.transpose(2, 3).contiguous().transpose(2, 3);
        assert!(rust_bert_layer_past(&kt, &v).equal(&present));
    }

    #[test]
    fn gpt2_refuses_bad_inputs_instead_of_panicking() {
        let model = Gpt2::new_random(&tiny(), Device::Cpu).unwrap();
        let ids = Tensor::from_slice(&[1i64, 2, 3]).view([1, 3]);
        let embeds = model.embed(&ids);
        let mask = Tensor::ones([1, 3], (Kind::Int64, Device::Cpu));
        let positions = Tensor::arange(3, (Kind::Int64, Device::Cpu)).view([1, 3]);
        let err = |r: Result<Tensor, ModelError>| r.expect_err("an error").to_string();
        let run = |e: &Tensor, m: &Tensor, p: &Tensor| model.forward_embeds(e, m, p, None, false);
        assert!(err(run(&embeds, &mask.narrow(1, 0, 2), &positions)).contains("attention mask"));
        assert!(err(run(&embeds, &mask, &positions.narrow(1, 0, 2))).contains("position ids"));
        assert!(err(run(&embeds.narrow(2, 0, 4), &mask, &positions)).contains("input embeddings"));
        assert!(err(run(&embeds, &mask, &(&positions + 14))).contains("n_positions"));
        assert!(err(run(&embeds, &mask, &(&positions - 1))).contains("0..16"));
        assert!(err(run(&embeds, &mask, &positions.to_kind(Kind::Float))).contains("integers"));
        let long = Tensor::zeros([1, 17, 8], (Kind::Float, Device::Cpu));
        let long_mask = Tensor::ones([1, 17], (Kind::Int64, Device::Cpu));
        let zeros = Tensor::zeros([1, 17], (Kind::Int64, Device::Cpu));
        assert!(err(run(&long, &long_mask, &zeros)).contains("exceed"));
        let mut wrong = KvCache::new(3);
        let r = model.forward_embeds(&embeds, &mask, &positions, Some(&mut wrong), false);
        assert!(err(r).contains("3 layers"));
        // A batch of 2 against a cache filled for 1.
        let mut cache = KvCache::new(2);
        let _ = model
            .forward_embeds(&embeds, &mask, &positions, Some(&mut cache), false)
            .unwrap();
        let two = Tensor::cat(&[&embeds, &embeds], 0).narrow(1, 0, 1);
        let r = model.forward_embeds(
            &two,
            &Tensor::ones([2, 4], (Kind::Int64, Device::Cpu)),
            &Tensor::full([2, 1], 3, (Kind::Int64, Device::Cpu)),
            Some(&mut cache),
            false,
        );
        assert!(err(r).contains("expected [2, 2, 3, 4]"));
    }

    /// `cargo test -p dept-models gpt2_small_shape -- --ignored --nocapture`: the released small shape builds
    /// and runs (about 0.5 GB of fp32 weights).
    #[test]
    #[ignore]
    fn gpt2_small_shape_builds_and_runs() {
        let started = std::time::Instant::now();
        let model = Gpt2::new_random(&gpt2_shape("gpt2").unwrap(), Device::Cpu).unwrap();
        let params: i64 = model
            .var_store()
            .variables()
            .iter()
            .filter(|(name, _)| !is_causal_mask(name))
            .map(|(_, v)| v.numel() as i64)
            .sum();
        assert_eq!(params, 124_439_808, "GPT-2 small's parameter count");
        let ids = Tensor::randint(50257, [2, 16], (Kind::Int64, Device::Cpu));
        let mask = Tensor::ones([2, 16], (Kind::Int64, Device::Cpu));
        let positions = Tensor::arange(16, (Kind::Int64, Device::Cpu)).repeat([2, 1]);
        let logits = tch::no_grad(|| {
            model.forward_embeds(&model.embed(&ids), &mask, &positions, None, false)
        })
        .unwrap();
        assert_eq!(logits.size(), [2, 16, 50257]);
        println!("gpt2 small: built and ran in {:?}", started.elapsed());
    }

    #[test]
    fn gpt2_bf16_embeds_of_another_kind_are_cast() {
        let mut model = Gpt2::new_random(&tiny(), Device::Cpu).unwrap();
        let ids = Tensor::from_slice(&[1i64, 2, 3]).view([1, 3]);
        let embeds = model.embed(&ids); // fp32, made before the cast
        model.set_float_kind(Kind::BFloat16).unwrap();
        assert_eq!(model.embed(&ids).kind(), Kind::BFloat16);
        let mask = Tensor::ones([1, 3], (Kind::Int64, Device::Cpu));
        let positions = Tensor::arange(3, (Kind::Int64, Device::Cpu)).view([1, 3]);
        let logits = model
            .forward_embeds(&embeds, &mask, &positions, None, false)
            .unwrap();
        assert_eq!(logits.kind(), Kind::Float);
        assert_eq!(logits.size(), [1, 3, 40]);
        assert!(model.set_float_kind(Kind::Int64).is_err());
    }
}
