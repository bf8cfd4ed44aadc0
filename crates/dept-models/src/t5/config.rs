//! T5's `config.json`, parsed with clear errors for a bad file.

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

/// The two feed-forward layouts of released T5 checkpoints.
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
        crate::checkpoint::check_positive(&[
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
        ])
        .map_err(|issue| ModelError::InvalidConfig {
            path: path.to_path_buf(),
            issue,
        })?;
        if config.num_decoder_layers.is_some_and(|n| n <= 0) {
            return Err(bad("`num_decoder_layers` must be positive".into()));
        }
        config.feed_forward().map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }

    pub fn feed_forward(&self) -> Result<FeedForward, ModelError> {
        match self.feed_forward_proj.as_str() {
            "relu" => Ok(FeedForward::Relu),
            "gated-gelu" => Ok(FeedForward::GatedGelu),
            other => Err(ModelError::Input(format!(
                "feed_forward_proj = {other:?} is not supported (\"relu\" for T5 v1, \"gated-gelu\" for v1.1 / \
                 Flan-T5)"
            ))),
        }
    }

    /// A released T5 v1 size ("t5-small", "t5-base", "t5-large"): its published config, for models built with
    /// random weights (benchmarks).
    pub fn released(name: &str) -> Result<T5Config, ModelError> {
        let (d_model, d_ff, num_layers, num_heads) = match name {
            "t5-small" => (512, 2048, 6, 8),
            "t5-base" => (768, 3072, 12, 12),
            "t5-large" => (1024, 4096, 24, 16),
            other => {
                return Err(ModelError::Input(format!(
                    "unknown shape {other:?}: expected t5-small, t5-base or t5-large"
                )))
            }
        };
        let json = serde_json::json!({
            "vocab_size": 32128, "d_model": d_model, "d_kv": 64, "d_ff": d_ff, "num_layers": num_layers,
            "num_heads": num_heads, "feed_forward_proj": "relu", "tie_word_embeddings": true
        });
        T5Config::from_json(Path::new(&format!("<{name} shape>")), json)
    }

    /// `config.json` as `save_pretrained` writes it (the fields above plus model type and architecture).
    pub fn to_hf_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "num_decoder_layers".into(),
                self.num_decoder_layers.unwrap_or(self.num_layers).into(),
            );
            obj.insert("model_type".into(), "t5".into());
            obj.insert(
                "architectures".into(),
                serde_json::json!(["T5ForConditionalGeneration"]),
            );
            obj.insert("is_encoder_decoder".into(), true.into());
        }
        value
    }
}
