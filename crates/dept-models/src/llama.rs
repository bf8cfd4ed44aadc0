//! Llama (transformers' `LlamaForCausalLM`, as of 4.57.1) on tch, frozen, as a decoder-only DePT backbone.
//!
//! Variables carry the Hugging Face checkpoint names (`model.layers.0.self_attn.q_proj.weight`, …), so
//! `model.safetensors` (or its shards) loads as it is, bf16 checkpoints included. The computation follows
//! transformers' eager path step by step, so that fp32 logits agree to float rounding
//! (tests/llama_parity.rs): RMS norms in fp32 and cast back to the input's kind, rotary angles from
//! `inv_freq = 1 / θ^(2i/dim)` in fp32 with the `rotate_half` layout, grouped-query attention (key/value heads
//! repeated), an additive mask of the kind's minimum (causal and padding), softmax in fp32, SwiGLU MLP. The layers
//! themselves are the shared Llama-family block of [`crate::layers::decoder`]; this file holds the config, the
//! embeddings, the final norm and the output layer.
//!
//! Only the default rotary embedding is implemented: a `rope_scaling` (linear, dynamic, yarn, llama3, …) is refused
//! at load rather than run with the wrong angles.

use std::path::Path;

use serde::Deserialize;
use tch::nn::{Init, VarStore};
use tch::{Device, Kind, Tensor};

use crate::causal::{CausalLm, KvCache};
use crate::checkpoint::{self, LoadPlan};
use crate::decoder_only::DecoderOnly;
use crate::layers::{
    causal_padding_bias, linear, DecoderLayer, DecoderLayerShape, DecoderStep, RmsNorm,
    RotaryEmbedding,
};
use crate::registry::{BackboneKind, ModelShape, TinyRecipe, TINY_INITIALIZER_RANGE};
use crate::tokenizer::end_of_text_id;
use crate::{Architecture, Backbone, ConfigIssue, ModelError};

/// The fields of a Hugging Face Llama `config.json` the model depends on, with transformers' defaults resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: i64,
    pub hidden_size: i64,
    pub intermediate_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    /// Grouped-query attention: each key/value head serves `num_attention_heads / num_key_value_heads` query heads.
    pub num_key_value_heads: i64,
    pub head_dim: i64,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: i64,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    pub mlp_bias: bool,
    /// Dropout on attention weights in training (0 in every released Llama).
    pub attention_dropout: f64,
    /// Standard deviation of [`Llama::new_random`]'s normal init.
    pub initializer_range: f64,
    pub bos_token_id: Option<i64>,
    /// The first one where `config.json` lists several (Llama 3 instruct models list two).
    pub eos_token_id: i64,
    pub pad_token_id: Option<i64>,
}

/// `config.json` as written, before defaults and checks.
#[derive(Deserialize)]
struct RawConfig {
    vocab_size: i64,
    hidden_size: i64,
    intermediate_size: i64,
    num_hidden_layers: i64,
    num_attention_heads: i64,
    #[serde(default)]
    num_key_value_heads: Option<i64>,
    #[serde(default)]
    head_dim: Option<i64>,
    #[serde(default = "default_rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    rope_theta: Option<f64>,
    #[serde(default = "default_max_positions")]
    max_position_embeddings: i64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: bool,
    #[serde(default)]
    mlp_bias: bool,
    #[serde(default)]
    attention_dropout: f64,
    #[serde(default = "default_hidden_act")]
    hidden_act: String,
    #[serde(default = "default_initializer_range")]
    initializer_range: f64,
    #[serde(default = "default_bos")]
    bos_token_id: Option<i64>,
    /// An integer or a list of them; absent means transformers' default (2), `null` is refused.
    #[serde(default = "default_eos")]
    eos_token_id: serde_json::Value,
    #[serde(default)]
    pad_token_id: Option<i64>,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
}

// transformers' `LlamaConfig` defaults, for keys a config.json leaves out.
fn default_rms_norm_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> i64 {
    2048
}
fn default_hidden_act() -> String {
    "silu".into()
}
fn default_initializer_range() -> f64 {
    0.02
}
fn default_bos() -> Option<i64> {
    Some(1)
}
fn default_eos() -> serde_json::Value {
    2.into()
}
const DEFAULT_ROPE_THETA: f64 = 10000.0;

/// Llama in the backbone registry ([`crate::BACKBONES`]).
pub const KIND: BackboneKind = BackboneKind {
    name: "llama",
    label: "Llama",
    supported: "Llama",
    model_types: &["llama"],
    reads_untyped_configs: false,
    hidden_size_key: "hidden_size",
    architecture: Architecture::DecoderOnly,
    load: |dir, device| Ok(DecoderOnly::boxed(Llama::load(dir, device)?)),
    tiny: TinyRecipe {
        needs_tokenizer: true,
        variants: &[],
        write: |m| write_tiny_llama(m.dir, m.required_tokenizer()?, m.d_model, m.seed),
    },
    shapes: &["llama-2-7b", "llama-2-13b"],
    shape: |name| Ok(Box::new(LlamaConfig::llama_2(name)?)),
};

/// A tiny random Llama (`LlamaForCausalLM` layout, untied output layer) that uses an existing `tokenizer.json`.
/// Width `d_model` (a multiple of 8), 2 layers, 4 query heads sharing 2 key/value heads (grouped-query attention),
/// head_dim `d_model / 4`, SwiGLU width `2·d_model`, 2 048 positions, the vocabulary exactly the tokenizer's. The
/// end-of-sequence id is the tokenizer's [`end_of_text_id`]: `<|endoftext|>` with GPT-2's tokenizer, which has
/// no `</s>`; it is also the beginning-of-sequence id (as in GPT-2) and, there being no pad token, padding.
/// transformers' initialisation at [`TINY_INITIALIZER_RANGE`].
pub fn write_tiny_llama(
    dir: &Path,
    tokenizer_json: &Path,
    d_model: i64,
    seed: i64,
) -> Result<(), ModelError> {
    let model = tiny_llama(tokenizer_json, d_model, seed)?;
    model.save(dir)?;
    checkpoint::copy_tokenizer(tokenizer_json, dir)
}

/// The random Llama [`write_tiny_llama`] saves (in memory, for tests that compare it with the folder).
pub(crate) fn tiny_llama(
    tokenizer_json: &Path,
    d_model: i64,
    seed: i64,
) -> Result<Llama, ModelError> {
    let vocab_size = crate::TextTokenizer::from_file(tokenizer_json)?.vocab_size() as i64;
    // GPT-2's tokenizer (the one the tests use) has no `</s>`: `<|endoftext|>` ends sequences instead.
    let eos = end_of_text_id(tokenizer_json)?;
    if d_model <= 0 || d_model % 8 != 0 {
        return Err(ModelError::Input(format!(
            "a tiny Llama has 4 heads of an even head_dim: d_model must be a positive multiple of 8, got {d_model}"
        )));
    }
    let config = LlamaConfig {
        vocab_size,
        hidden_size: d_model,
        intermediate_size: 2 * d_model,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: d_model / 4,
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        max_position_embeddings: 2048,
        tie_word_embeddings: false,
        attention_bias: false,
        mlp_bias: false,
        attention_dropout: 0.0,
        initializer_range: TINY_INITIALIZER_RANGE,
        bos_token_id: Some(eos),
        eos_token_id: eos,
        pad_token_id: None,
    };
    tch::manual_seed(seed);
    Llama::new_random(&config, Device::Cpu)
}

impl ModelShape for LlamaConfig {
    fn hidden_size(&self) -> i64 {
        self.hidden_size
    }

    fn vocab_size(&self) -> i64 {
        self.vocab_size
    }

    fn build_random(&self, device: Device) -> Result<Box<dyn Backbone>, ModelError> {
        Ok(DecoderOnly::boxed(Llama::new_random(self, device)?))
    }
}

impl LlamaConfig {
    /// LLaMA-2's published config at one size, "llama-2-7b" or "llama-2-13b" (meta-llama/Llama-2-{7,13}b-hf
    /// `config.json`), for models built with random weights (benchmarks).
    pub fn llama_2(name: &str) -> Result<Self, ModelError> {
        let (hidden, intermediate, layers, heads) = match name {
            "llama-2-7b" => (4096, 11008, 32, 32),
            "llama-2-13b" => (5120, 13824, 40, 40),
            other => {
                return Err(ModelError::Input(format!(
                    "unknown shape {other:?}: expected llama-2-7b or llama-2-13b"
                )))
            }
        };
        let json = serde_json::json!({
            "model_type": "llama", "vocab_size": 32000, "hidden_size": hidden, "intermediate_size": intermediate,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096, "hidden_act": "silu",
            "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02
        });
        LlamaConfig::from_json(Path::new("<llama-2 shape>"), json)
    }

    /// Parses and validates a `config.json` value; `path` is only used in messages.
    pub fn from_json(path: &Path, value: serde_json::Value) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        let invalid = |issue: ConfigIssue| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            issue,
        };
        match value.get("model_type").and_then(|v| v.as_str()) {
            Some("llama") => {}
            Some(other) => {
                return Err(bad(format!(
                    "`model_type` is {other:?}, expected \"llama\" for a Llama checkpoint"
                )))
            }
            None => {
                return Err(bad(
                    "`model_type` is missing, expected \"llama\" for a Llama checkpoint".into(),
                ))
            }
        }
        let raw: RawConfig =
            serde_json::from_value(value).map_err(|e| bad(format!("not a Llama config: {e}")))?;

        // "swish" is the same function in transformers' ACT2FN.
        if !matches!(raw.hidden_act.as_str(), "silu" | "swish") {
            return Err(bad(format!(
                "`hidden_act` {:?} is not supported: Llama's MLP is implemented with \"silu\" only",
                raw.hidden_act
            )));
        }
        if let Some(scaling) = &raw.rope_scaling {
            check_rope_scaling(scaling).map_err(invalid)?;
        }
        let eos_token_id = first_eos(&raw.eos_token_id).map_err(invalid)?;
        let num_key_value_heads = raw.num_key_value_heads.unwrap_or(raw.num_attention_heads);
        // transformers divides without checking; a zero head count is refused by `check`.
        let head_dim = raw.head_dim.unwrap_or_else(|| {
            raw.hidden_size
                .checked_div(raw.num_attention_heads)
                .unwrap_or(0)
        });
        let config = LlamaConfig {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_key_value_heads,
            head_dim,
            rms_norm_eps: raw.rms_norm_eps,
            rope_theta: raw.rope_theta.unwrap_or(DEFAULT_ROPE_THETA),
            max_position_embeddings: raw.max_position_embeddings,
            tie_word_embeddings: raw.tie_word_embeddings,
            attention_bias: raw.attention_bias,
            mlp_bias: raw.mlp_bias,
            attention_dropout: raw.attention_dropout,
            initializer_range: raw.initializer_range,
            bos_token_id: raw.bos_token_id,
            eos_token_id,
            // Some fine-tunes write -1 for "none".
            pad_token_id: raw.pad_token_id.filter(|&id| id >= 0),
        };
        config.check().map_err(invalid)?;
        Ok(config)
    }

    /// The sizes and values a model can be built from (also for configs written in code).
    pub fn check(&self) -> Result<(), ConfigIssue> {
        checkpoint::check_positive(&[
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ])?;
        checkpoint::check_multiple(
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
        )?;
        let even = "even for rotary embeddings";
        ConfigIssue::check_range("head_dim", self.head_dim as f64, even, |d| d % 2.0 == 0.0)?;
        ConfigIssue::check_range("rope_theta", self.rope_theta, "positive", |v| v > 0.0)?;
        ConfigIssue::check_non_negative(&[("rms_norm_eps", self.rms_norm_eps)])?;
        ConfigIssue::check_probability(&[("attention_dropout", self.attention_dropout)])?;
        ConfigIssue::check_non_negative(&[("initializer_range", self.initializer_range)])
    }

    /// What each decoder layer is built from ([`crate::layers::decoder`]).
    pub fn decoder_layer_shape(&self) -> DecoderLayerShape {
        DecoderLayerShape {
            hidden_size: self.hidden_size,
            intermediate_size: self.intermediate_size,
            num_attention_heads: self.num_attention_heads,
            num_key_value_heads: self.num_key_value_heads,
            head_dim: self.head_dim,
            rms_norm_eps: self.rms_norm_eps,
            attention_bias: self.attention_bias,
            mlp_bias: self.mlp_bias,
        }
    }

    /// `config.json` as transformers' `save_pretrained` writes it (the fields above, model type, architecture).
    pub fn to_hf_json(&self) -> serde_json::Value {
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": null,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": self.attention_bias,
            "mlp_bias": self.mlp_bias,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
        })
    }
}

/// `rope_scaling`: only the default rotary embedding is implemented, so anything else is refused by name.
fn check_rope_scaling(scaling: &serde_json::Value) -> Result<(), ConfigIssue> {
    // transformers reads `rope_type`, and `type` for older configs.
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(|v| v.as_str());
    match kind {
        Some("default") => Ok(()),
        Some(kind) => Err(ConfigIssue::Unsupported(format!(
            "`rope_scaling` of type {kind:?} ({scaling}) is not implemented: only the default rotary embedding is \
             (`rope_scaling` null or absent); linear, dynamic, yarn, longrope and llama3 scaling are not"
        ))),
        None => Err(ConfigIssue::Malformed(format!(
            "`rope_scaling` {scaling} is not understood (expected null, or an object with `rope_type`); only the \
             default rotary embedding is implemented"
        ))),
    }
}

fn first_eos(value: &serde_json::Value) -> Result<i64, ConfigIssue> {
    let first = match value {
        serde_json::Value::Array(ids) => ids.first(),
        other => Some(other),
    };
    first.and_then(|v| v.as_i64()).ok_or_else(|| {
        ConfigIssue::Malformed(format!(
            "`eos_token_id` must be an integer or a non-empty list of integers, found {value} (decoding needs an \
             end-of-sequence id)"
        ))
    })
}

/// A frozen Llama. Its variables live in their own [`VarStore`] with gradients switched off, so an optimiser over
/// the adapter's store never sees (or keeps state for) the backbone.
pub struct Llama {
    config: LlamaConfig,
    vs: VarStore,
    /// `model.embed_tokens.weight` (and, tied, the output layer).
    embed_tokens: Tensor,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// `lm_head.weight`, absent when tied to the embeddings.
    lm_head: Option<Tensor>,
    rotary: RotaryEmbedding,
}

impl Llama {
    /// Loads `config.json` and `model.safetensors` (or its shards) from a Hugging Face folder, converting the
    /// weights to fp32 ([`CausalLm::set_float_kind`] casts them afterwards).
    pub fn load(dir: &Path, device: Device) -> Result<Self, ModelError> {
        let (path, value) = checkpoint::read_config(dir)?;
        let config = LlamaConfig::from_json(&path, value)?;
        // Zeros rather than a random draw: every variable is overwritten, and drawing billions of normals for a
        // real checkpoint would cost seconds for nothing.
        let mut model = Self::build(&config, device, Init::Const(0.0));
        // A tied checkpoint may hold the shared matrix under the output layer's name only.
        let aliases: &[(&str, &str)] = if config.tie_word_embeddings {
            &[("model.embed_tokens.weight", "lm_head.weight")]
        } else {
            &[]
        };
        let plan = LoadPlan {
            aliases,
            ..LoadPlan::default()
        };
        checkpoint::load_weights(&mut model.vs, dir, &plan)?;
        Ok(model)
    }

    /// A model with transformers' random initialisation (`PreTrainedModel._init_weights`): linear and embedding
    /// weights normal(0, `initializer_range`), biases zero, the padding token's embedding zero, norms one.
    pub fn new_random(config: &LlamaConfig, device: Device) -> Result<Self, ModelError> {
        config.check().map_err(|issue| ModelError::InvalidShape {
            model: "Llama",
            issue,
        })?;
        let init = Init::Randn {
            mean: 0.0,
            stdev: config.initializer_range,
        };
        let model = Self::build(config, device, init);
        if let Some(pad) = config.pad_token_id.filter(|&id| id < config.vocab_size) {
            tch::no_grad(|| {
                let mut row = model.embed_tokens.get(pad);
                let _ = row.zero_();
            });
        }
        Ok(model)
    }

    /// The modules with their HF names, weight matrices drawn from `init` (norms one, biases zero).
    fn build(config: &LlamaConfig, device: Device, init: Init) -> Self {
        let mut vs = VarStore::new(device);
        let root = vs.root();
        let model = &root / "model";
        let embed_tokens =
            (&model / "embed_tokens").var("weight", &[config.vocab_size, config.hidden_size], init);
        let shape = config.decoder_layer_shape();
        let layers = (0..config.num_hidden_layers)
            .map(|i| DecoderLayer::new(&(&model / "layers" / i), &shape, init))
            .collect();
        let norm = shape.rms_norm(&(&model / "norm"));
        let lm_head = (!config.tie_word_embeddings).then(|| {
            (&root / "lm_head").var("weight", &[config.vocab_size, config.hidden_size], init)
        });
        vs.freeze();
        Llama {
            rotary: RotaryEmbedding::new(config.head_dim, config.rope_theta, device),
            config: config.clone(),
            vs,
            embed_tokens,
            layers,
            norm,
            lm_head,
        }
    }

    /// Writes `config.json` and `model.safetensors` in the Hugging Face layout (tiny test models).
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        checkpoint::save_folder(dir, &self.config.to_hf_json(), &self.vs)
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// The backbone's variables, named as in Hugging Face checkpoints.
    pub fn var_store(&self) -> &VarStore {
        &self.vs
    }

    fn check_inputs(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<i64, ModelError> {
        let e = embeds.size();
        if e.len() != 3 || e[2] != self.config.hidden_size {
            return Err(ModelError::Input(format!(
                "input embeddings must be [batch, len, {}], got {e:?}",
                self.config.hidden_size
            )));
        }
        let past = match cache {
            Some(cache) => {
                if cache.layers.len() != self.layers.len() {
                    return Err(ModelError::Input(format!(
                        "the key/value cache has {} layers, the model {}",
                        cache.layers.len(),
                        self.layers.len()
                    )));
                }
                if let Some((k, _)) = cache.layers.first().and_then(|l| l.as_ref()) {
                    if k.size()[0] != e[0] {
                        return Err(ModelError::Input(format!(
                            "the key/value cache holds a batch of {}, the input embeddings {}",
                            k.size()[0],
                            e[0]
                        )));
                    }
                }
                cache.len()
            }
            None => 0,
        };
        let m = attention_mask.size();
        if m != [e[0], past + e[1]] {
            return Err(ModelError::Input(format!(
                "attention mask must be [batch, past + len] = [{}, {}] ({past} cached positions), got {m:?}",
                e[0],
                past + e[1]
            )));
        }
        let p = position_ids.size();
        if p != e[..2] {
            return Err(ModelError::Input(format!(
                "position ids {p:?} do not match input embeddings {e:?}"
            )));
        }
        Ok(past)
    }

    /// `[b, t, d]` final states → `[b, t, vocab]` logits (tied: the embedding matrix is the output layer).
    fn logits(&self, hidden: &Tensor) -> Tensor {
        linear(
            hidden,
            self.lm_head.as_ref().unwrap_or(&self.embed_tokens),
            None,
        )
    }
}

impl CausalLm for Llama {
    fn hidden_size(&self) -> i64 {
        self.config.hidden_size
    }

    fn vocab_size(&self) -> i64 {
        self.config.vocab_size
    }

    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn device(&self) -> Device {
        self.vs.device()
    }

    fn embed(&self, ids: &Tensor) -> Tensor {
        Tensor::embedding(&self.embed_tokens, ids, -1, false, false)
    }

    fn forward_embeds(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        position_ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        train: bool,
    ) -> Result<Tensor, ModelError> {
        let past = self.check_inputs(embeds, attention_mask, position_ids, cache.as_deref())?;
        // Embeddings changed by an fp32 adapter meet a bf16 model in the model's kind.
        let kind = self.embed_tokens.kind();
        let mut hidden = embeds.to_kind(kind);
        let bias = causal_padding_bias(attention_mask, past, embeds.size()[1], kind);
        let (cos, sin) = self.rotary.forward(position_ids, kind);
        let dropout = if train {
            self.config.attention_dropout
        } else {
            0.0
        };
        let step = DecoderStep {
            bias: &bias,
            cos: &cos,
            sin: &sin,
            dropout,
        };
        for (i, layer) in self.layers.iter().enumerate() {
            let layer_cache = cache.as_deref_mut().map(|c| (c, i));
            hidden = layer.forward(&hidden, &step, layer_cache);
        }
        let logits = self.logits(&self.norm.forward(&hidden));
        Ok(logits.to_kind(Kind::Float))
    }

    /// Casts the frozen weights (e.g. `Kind::BFloat16` on CUDA, `Kind::Double` for exactness checks); the rotary
    /// frequencies stay fp32, as transformers keeps them when loading in bf16.
    fn set_float_kind(&mut self, kind: Kind) -> Result<(), ModelError> {
        checkpoint::set_float_kind(&mut self.vs, kind)?;
        Ok(())
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
    use crate::causal::generate_greedy;

    fn tiny_json() -> serde_json::Value {
        serde_json::json!({
            "model_type": "llama",
            "vocab_size": 32,
            "hidden_size": 16,
            "intermediate_size": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "initializer_range": 0.3,
            "pad_token_id": 0,
            "eos_token_id": 2,
        })
    }

    fn parse(value: serde_json::Value) -> Result<LlamaConfig, ModelError> {
        LlamaConfig::from_json(Path::new("config.json"), value)
    }

    fn with(key: &str, v: serde_json::Value) -> serde_json::Value {
        let mut value = tiny_json();
        value[key] = v;
        value
    }

    fn refused(value: serde_json::Value) -> String {
        parse(value).expect_err("should be refused").to_string()
    }

    #[test]
    fn llama_config_defaults_follow_transformers() {
        let mut value = tiny_json();
        let obj = value.as_object_mut().unwrap();
        for key in ["num_key_value_heads", "eos_token_id", "pad_token_id"] {
            obj.remove(key);
        }
        let c = parse(value).unwrap();
        assert_eq!(c.num_key_value_heads, 4);
        assert_eq!(c.head_dim, 4);
        assert_eq!(c.rope_theta, 10000.0);
        assert_eq!(c.rms_norm_eps, 1e-6);
        assert!(!c.tie_word_embeddings && !c.attention_bias && !c.mlp_bias);
        assert_eq!(
            (c.bos_token_id, c.eos_token_id, c.pad_token_id),
            (Some(1), 2, None)
        );
        let c = parse(with("eos_token_id", serde_json::json!([128001, 128009]))).unwrap();
        assert_eq!(c.eos_token_id, 128001);
        let c = parse(with("head_dim", 8.into())).unwrap();
        assert_eq!(c.head_dim, 8);
        let c = parse(with("rope_scaling", serde_json::Value::Null)).unwrap();
        assert_eq!(c, parse(tiny_json()).unwrap());
        let default_rope = serde_json::json!({"rope_type": "default"});
        assert_eq!(parse(with("rope_scaling", default_rope)).unwrap(), c);
        assert_eq!(
            parse(with("pad_token_id", (-1).into()))
                .unwrap()
                .pad_token_id,
            None
        );
    }

    #[test]
    fn llama_config_refuses_what_is_not_implemented() {
        let e = refused(with(
            "rope_scaling",
            serde_json::json!({"type": "linear", "factor": 2.0}),
        ));
        assert!(
            e.contains("rope_scaling") && e.contains("\"linear\""),
            "{e}"
        );
        let e = refused(with(
            "rope_scaling",
            serde_json::json!({"rope_type": "llama3", "factor": 8.0}),
        ));
        assert!(e.contains("\"llama3\"") && e.contains("default"), "{e}");
        let e = refused(with("hidden_act", "gelu".into()));
        assert!(e.contains("hidden_act") && e.contains("gelu"), "{e}");
        let e = refused(with("model_type", "gpt2".into()));
        assert!(e.contains("model_type") && e.contains("gpt2"), "{e}");
        let e = refused(with("num_key_value_heads", 3.into()));
        assert!(e.contains("num_key_value_heads"), "{e}");
        let e = refused(with("eos_token_id", serde_json::Value::Null));
        assert!(e.contains("eos_token_id"), "{e}");
        let e = refused(with("num_attention_heads", 0.into()));
        assert!(e.contains("num_attention_heads"), "{e}");
        let mut value = tiny_json();
        value.as_object_mut().unwrap().remove("hidden_size");
        let e = refused(value);
        assert!(
            e.contains("hidden_size") && e.contains("config.json"),
            "{e}"
        );
    }

    #[test]
    fn llama_variables_have_hf_names_and_shapes() {
        let config = parse(tiny_json()).unwrap();
        let model = Llama::new_random(&config, Device::Cpu).unwrap();
        let vars = model.var_store().variables();
        let shape = |name: &str| vars.get(name).unwrap_or_else(|| panic!("{name}")).size();
        assert_eq!(shape("model.embed_tokens.weight"), [32, 16]);
        assert_eq!(shape("model.layers.1.self_attn.q_proj.weight"), [16, 16]);
        assert_eq!(shape("model.layers.1.self_attn.k_proj.weight"), [8, 16]);
        assert_eq!(shape("model.layers.0.mlp.down_proj.weight"), [16, 24]);
        assert_eq!(shape("lm_head.weight"), [32, 16]);
        assert_eq!(vars.len(), 2 + 2 * 9 + 1);
        assert!(vars.values().all(|v| !v.requires_grad()));
        // transformers zeroes the padding token's embedding.
        let pad_row = model.embed_tokens.get(0).abs().sum(Kind::Float);
        assert_eq!(pad_row.double_value(&[]), 0.0);
        let tied = Llama::new_random(
            &parse(with("tie_word_embeddings", true.into())).unwrap(),
            Device::Cpu,
        )
        .unwrap();
        assert!(!tied.var_store().variables().contains_key("lm_head.weight"));
    }

    /// Prefill plus one-token steps with the cache give the logits of one pass over the whole sequence.
    #[test]
    fn llama_cache_matches_a_full_pass() {
        tch::manual_seed(0);
        let config = parse(with("attention_bias", true.into())).unwrap();
        let model = Llama::new_random(&config, Device::Cpu).unwrap();
        let ids = Tensor::from_slice(&[0i64, 0, 5, 6, 7, 8, 1, 9, 10, 11, 12, 13]).view([2, 6]);
        let mask = ids.ne(0).to_kind(Kind::Int64);
        let positions = (mask.cumsum(-1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 1);
        let full = model
            .forward_embeds(&model.embed(&ids), &mask, &positions, None, false)
            .unwrap();
        assert_eq!(full.size(), [2, 6, 32]);
        assert_eq!(full.kind(), Kind::Float);
        let mut cache = KvCache::new(model.num_layers());
        let split = 3;
        let mut pieces = vec![model
            .forward_embeds(
                &model.embed(&ids.narrow(1, 0, split)),
                &mask.narrow(1, 0, split),
                &positions.narrow(1, 0, split),
                Some(&mut cache),
                false,
            )
            .unwrap()];
        for i in split..6 {
            pieces.push(
                model
                    .forward_embeds(
                        &model.embed(&ids.narrow(1, i, 1)),
                        &mask.narrow(1, 0, i + 1),
                        &positions.narrow(1, i, 1),
                        Some(&mut cache),
                        false,
                    )
                    .unwrap(),
            );
        }
        assert_eq!(cache.len(), 6);
        let stepped = Tensor::cat(&pieces, 1);
        // Real positions only: left-padding queries see nothing and their outputs are not meaningful.
        let keep = mask.to_kind(Kind::Bool);
        let diff = (full.index(&[Some(&keep)]) - stepped.index(&[Some(&keep)]))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "cache vs full pass: {diff}");
    }

    #[test]
    fn llama_refuses_bad_inputs_and_runs_in_bf16() {
        let config = parse(tiny_json()).unwrap();
        let mut model = Llama::new_random(&config, Device::Cpu).unwrap();
        let embeds = model.embed(&Tensor::from_slice(&[1i64, 2, 3]).view([1, 3]));
        let mask = Tensor::ones([1, 3], (Kind::Int64, Device::Cpu));
        let positions = Tensor::arange(3, (Kind::Int64, Device::Cpu)).view([1, 3]);
        let wide = Tensor::zeros([1, 3, 8], (Kind::Float, Device::Cpu));
        assert!(model
            .forward_embeds(&wide, &mask, &positions, None, false)
            .is_err());
        let short = mask.narrow(1, 0, 2);
        assert!(model
            .forward_embeds(&embeds, &short, &positions, None, false)
            .is_err());
        let mut wrong_cache = KvCache::new(5);
        assert!(model
            .forward_embeds(&embeds, &mask, &positions, Some(&mut wrong_cache), false)
            .is_err());
        assert!(model.set_float_kind(Kind::Int64).is_err());
        assert!(generate_greedy(&model, &embeds, &short, 2).is_err());
        assert_eq!(
            generate_greedy(&model, &embeds, &mask, 0).unwrap().size(),
            [1, 0]
        );

        let reference = model
            .forward_embeds(&embeds, &mask, &positions, None, false)
            .unwrap();
        model.set_float_kind(Kind::BFloat16).unwrap();
        // fp32 embeddings (as an adapter makes them) are accepted by a bf16 model.
        let logits = model
            .forward_embeds(&embeds, &mask, &positions, None, false)
            .unwrap();
        assert_eq!(logits.kind(), Kind::Float);
        let err = (&logits - &reference).abs().max().double_value(&[])
            / reference.abs().max().double_value(&[]);
        assert!(err < 5e-2, "bf16 vs fp32: {err}");
        assert_eq!(
            model.embed(&Tensor::from_slice(&[1i64])).kind(),
            Kind::BFloat16
        );
        let tokens = generate_greedy(
            &model,
            &model.embed(&Tensor::from_slice(&[1i64, 2, 3]).view([1, 3])),
            &mask,
            3,
        )
        .unwrap();
        assert_eq!(tokens.size()[0], 1);
    }

    #[test]
    fn llama_save_and_load_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let config = parse(with("tie_word_embeddings", true.into())).unwrap();
        let model = Llama::new_random(&config, Device::Cpu).unwrap();
        model.save(dir.path()).unwrap();
        let loaded = Llama::load(dir.path(), Device::Cpu).unwrap();
        assert_eq!(loaded.config(), model.config());
        let ids = Tensor::from_slice(&[1i64, 4, 9, 3]).view([1, 4]);
        let mask = ids.ones_like();
        let positions = Tensor::arange(4, (Kind::Int64, Device::Cpu)).view([1, 4]);
        let run = |m: &Llama| {
            m.forward_embeds(&m.embed(&ids), &mask, &positions, None, false)
                .unwrap()
        };
        assert_eq!(run(&model), run(&loaded));
    }
}
