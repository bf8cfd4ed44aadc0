//! T5's `config.json`, parsed here rather than by rust-bert so that a bad file gives an error, not a panic.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::ModelError;

/// The fields of a Hugging Face T5 `config.json` that the model depends on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct T5Config {
    pub vocab_size: i64,
    pub d_model: i64,
    pub d_kv: i64,
    pub d_ff: i64,
    pub num_layers: i64,
    #[serde(default)]
    pub num_decoder_layers: Option<i64>,
    pub num_heads: i64,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: i64,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: i64,
    #[serde(default = "default_dropout")]
    pub dropout_rate: f64,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_ff_proj")]
    pub feed_forward_proj: String,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default)]
    pub pad_token_id: i64,
    #[serde(default = "default_eos")]
    pub eos_token_id: i64,
    #[serde(default)]
    pub decoder_start_token_id: i64,
}

fn default_buckets() -> i64 {
    32
}
fn default_max_distance() -> i64 {
    128
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff_proj() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}
fn default_eos() -> i64 {
    1
}

/// The two feed-forward layouts rust-bert implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedForward {
    /// T5 v1: `wi`, ReLU, `wo`.
    Relu,
    /// T5 v1.1 / Flan-T5: `wi_0`, `wi_1`, GELU (tanh approximation) gate, `wo`.
    GatedGelu,
}

impl T5Config {
    /// Parses and validates a `config.json` value; `path` is only used in messages.
    pub fn from_json(path: &Path, value: serde_json::Value) -> Result<Self, ModelError> {
        let bad = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        let config: T5Config =
            serde_json::from_value(value).map_err(|e| bad(format!("not a T5 config: {e}")))?;
        for (field, v) in [
            ("vocab_size", config.vocab_size),
            ("d_model", config.d_model),
            ("d_kv", config.d_kv),
            ("d_ff", config.d_ff),
            ("num_layers", config.num_layers),
            ("num_heads", config.num_heads),
            (
                "relative_attention_num_buckets",
                config.relative_attention_num_buckets,
            ),
        ] {
            if v <= 0 {
                return Err(bad(format!("`{field}` must be positive, found {v}")));
            }
        }
        if let Some(dec) = config.num_decoder_layers {
            if dec != config.num_layers {
                return Err(bad(format!(
                    "num_decoder_layers = {dec} differs from num_layers = {}; rust-bert's T5 builds the decoder \
                     with num_layers blocks, so this checkpoint cannot be run faithfully",
                    config.num_layers
                )));
            }
        }
        config.feed_forward().map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }

    pub fn feed_forward(&self) -> Result<FeedForward, ModelError> {
        match self.feed_forward_proj.as_str() {
            "relu" => Ok(FeedForward::Relu),
            "gated-gelu" => Ok(FeedForward::GatedGelu),
            other => Err(ModelError::Input(format!(
                "feed_forward_proj = {other:?} is not supported (rust-bert's T5 implements \"relu\" and \
                 \"gated-gelu\")"
            ))),
        }
    }

    /// rust-bert's config, built through JSON because its feed-forward enum is private to rust-bert.
    /// `config.json` as `save_pretrained` writes it (the fields above plus model type and architecture).
    pub fn to_hf_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("num_decoder_layers".into(), self.num_layers.into());
            obj.insert("model_type".into(), "t5".into());
            obj.insert(
                "architectures".into(),
                serde_json::json!(["T5ForConditionalGeneration"]),
            );
            obj.insert("is_encoder_decoder".into(), true.into());
        }
        value
    }

    pub(crate) fn to_rust_bert(&self) -> Result<rust_bert::t5::T5Config, ModelError> {
        let value = serde_json::json!({
            "dropout_rate": self.dropout_rate,
            "d_model": self.d_model,
            "d_ff": self.d_ff,
            "d_kv": self.d_kv,
            "decoder_start_token_id": self.decoder_start_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "initializer_factor": 1.0,
            "is_encoder_decoder": true,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "num_heads": self.num_heads,
            "num_layers": self.num_layers,
            "output_past": true,
            "relative_attention_num_buckets": self.relative_attention_num_buckets,
            "relative_attention_max_distance": self.relative_attention_max_distance,
            "vocab_size": self.vocab_size,
            "feed_forward_proj": self.feed_forward_proj,
            "tie_word_embeddings": self.tie_word_embeddings,
        });
        serde_json::from_value(value)
            .map_err(|e| ModelError::Input(format!("rust-bert rejected the T5 config: {e}")))
    }
}
