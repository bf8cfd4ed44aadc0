//! The adapter's configuration, stored as `adapter_config.json` in the official DePT / PEFT format.

use serde::{Deserialize, Serialize};

use crate::CoreError;

pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";

/// How the soft prompt `P_s` starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptInit {
    /// The word embeddings of a text's tokens, repeated or cut to `m` rows (the official default).
    Text(String),
    /// Word embeddings of `m` token ids drawn uniformly from the first 5000 of the vocabulary.
    SampledVocab,
    /// N(0, 1), as `torch.nn.Embedding` initialises (PEFT's `RANDOM`).
    Random,
}

/// The official default prompt text (`train.py`'s `prompt_tuning_init_text`).
pub const DEFAULT_INIT_TEXT: &str = "Classify this text is postive or not:";

/// DePT's shape. PT is `r = 0` (then `max_length` does not matter and is not saved).
///
/// Serialised with the field names of the official code's `PromptTuningLoRAConfig` (PEFT `PromptTuningConfig`
/// when `r = 0`), so adapters move between this project and the Python ecosystem.
///
/// ```
/// use dept_core::DeptConfig;
///
/// // T5-base's main DePT setting: m = 60, r = 30, s = 256, d = 768.
/// let config = DeptConfig::new(60, 30, 256, 768)?;
/// assert_eq!(config.num_params(), 100 * 768); // the cost of PT with 100 tokens
/// assert_eq!(config.peft_type(), "PROMPT_TUNING_LORA");
/// // adapter_config.json uses the official field names.
/// let json = serde_json::to_value(&config).unwrap();
/// assert_eq!((json["num_virtual_tokens"].as_i64(), json["max_length"].as_i64()), (Some(60), Some(256)));
/// // A shape with nothing to train is refused.
/// assert!(DeptConfig::new(0, 0, 256, 768).is_err());
/// # Ok::<(), dept_core::CoreError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeptConfig {
    /// `m`: soft-prompt tokens.
    #[serde(rename = "num_virtual_tokens")]
    pub m: i64,
    /// `r`: rank of the embedding update `A·B`; 0 for plain prompt tuning.
    #[serde(default)]
    pub r: i64,
    /// `s`: maximum input length, the number of rows of `A`.
    #[serde(
        rename = "max_length",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub s: Option<i64>,
    /// `d`: the backbone's embedding width.
    #[serde(rename = "token_dim")]
    pub d: i64,
    /// `scale = lora_alpha / √r`, as the official code.
    #[serde(default = "default_alpha")]
    pub lora_alpha: f64,
    #[serde(flatten)]
    pub init: InitFields,
    /// Where the backbone came from, for the record (not used to load it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model_name_or_path: Option<String>,
    #[serde(default = "default_submodules")]
    pub num_transformer_submodules: i64,
    /// PEFT's `task_type`: `SEQ_2_SEQ_LM` (T5) or `CAUSAL_LM` (GPT-2, Llama); PEFT picks its model wrapper by it.
    #[serde(default = "default_task_type")]
    pub task_type: String,
}

/// `prompt_tuning_init` / `prompt_tuning_init_text` as PEFT writes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InitFields {
    #[serde(default = "default_init_kind")]
    pub prompt_tuning_init: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tuning_init_text: Option<String>,
}

fn default_alpha() -> f64 {
    8.0
}
fn default_submodules() -> i64 {
    1
}
fn default_task_type() -> String {
    "SEQ_2_SEQ_LM".into()
}
fn default_init_kind() -> String {
    "RANDOM".into()
}

impl DeptConfig {
    /// A DePT (r > 0) or PT (r = 0) configuration with the official defaults (alpha 8, text initialisation).
    pub fn new(m: i64, r: i64, s: i64, d: i64) -> Result<Self, CoreError> {
        let config = DeptConfig {
            m,
            r,
            s: (r > 0).then_some(s),
            d,
            lora_alpha: default_alpha(),
            init: InitFields::from(&PromptInit::Text(DEFAULT_INIT_TEXT.into())),
            base_model_name_or_path: None,
            num_transformer_submodules: 1,
            task_type: default_task_type(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads and validates `<dir>/adapter_config.json`.
    pub fn load(dir: &std::path::Path) -> Result<Self, CoreError> {
        let path = dir.join(ADAPTER_CONFIG_FILE);
        let bad = |message: String| CoreError::File {
            path: path.clone(),
            message,
        };
        let text = std::fs::read_to_string(&path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let config: DeptConfig = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not a DePT/PT adapter config: {e}")))?;
        config.validate().map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }

    pub fn with_init(mut self, init: &PromptInit) -> Self {
        self.init = InitFields::from(init);
        self
    }

    pub fn with_alpha(mut self, lora_alpha: f64) -> Self {
        self.lora_alpha = lora_alpha;
        self
    }

    pub fn validate(&self) -> Result<(), CoreError> {
        let bad = |m: String| Err(CoreError::Config(m));
        if self.m < 0 || self.r < 0 || self.d <= 0 {
            return bad(format!(
                "num_virtual_tokens (m = {}) and r (= {}) must be ≥ 0 and token_dim (d = {}) > 0",
                self.m, self.r, self.d
            ));
        }
        if self.m == 0 && self.r == 0 {
            return bad("m = 0 and r = 0 leaves nothing to train".into());
        }
        if self.r > 0 && self.s.is_none_or(|s| s <= 0) {
            return bad(format!(
                "r = {} needs max_length (s) > 0: A has one row per input position",
                self.r
            ));
        }
        if !self.lora_alpha.is_finite() {
            return bad(format!(
                "lora_alpha must be finite, got {}",
                self.lora_alpha
            ));
        }
        if self.num_transformer_submodules != 1 {
            return bad(format!(
                "num_transformer_submodules = {}: only 1 (prompt on the encoder input) is supported",
                self.num_transformer_submodules
            ));
        }
        self.prompt_init()?;
        Ok(())
    }

    /// `lora_alpha / √r`; 0 for PT.
    pub fn scale(&self) -> f64 {
        if self.r == 0 {
            0.0
        } else {
            self.lora_alpha / (self.r as f64).sqrt()
        }
    }

    pub fn prompt_init(&self) -> Result<PromptInit, CoreError> {
        match (
            self.init.prompt_tuning_init.as_str(),
            &self.init.prompt_tuning_init_text,
        ) {
            ("TEXT", Some(text)) if !text.is_empty() => Ok(PromptInit::Text(text.clone())),
            ("TEXT", _) => Err(CoreError::Config(
                "prompt_tuning_init = TEXT needs a non-empty prompt_tuning_init_text".into(),
            )),
            ("SAMPLED_VOCAB", _) => Ok(PromptInit::SampledVocab),
            ("RANDOM", _) => Ok(PromptInit::Random),
            (other, _) => Err(CoreError::Config(format!(
                "prompt_tuning_init = {other:?}; expected TEXT, SAMPLED_VOCAB or RANDOM"
            ))),
        }
    }

    /// Trainable parameters: `m·d + (s+d)·r`.
    pub fn num_params(&self) -> i64 {
        self.m * self.d + (self.s.unwrap_or(0) + self.d) * self.r
    }

    /// PEFT's method name for this shape.
    pub fn peft_type(&self) -> &'static str {
        if self.r > 0 {
            "PROMPT_TUNING_LORA"
        } else {
            "PROMPT_TUNING"
        }
    }

    /// The `m` token ids that initialise the prompt from a text: its ids repeated, then cut to `m` (as PEFT).
    pub fn text_init_ids(&self, text_ids: &[i64]) -> Result<Vec<i64>, CoreError> {
        if text_ids.is_empty() {
            return Err(CoreError::Config(
                "the prompt initialisation text has no tokens".into(),
            ));
        }
        Ok(text_ids
            .iter()
            .copied()
            .cycle()
            .take(self.m as usize)
            .collect())
    }
}

impl From<&PromptInit> for InitFields {
    fn from(init: &PromptInit) -> Self {
        match init {
            PromptInit::Text(text) => InitFields {
                prompt_tuning_init: "TEXT".into(),
                prompt_tuning_init_text: Some(text.clone()),
            },
            PromptInit::SampledVocab => InitFields {
                prompt_tuning_init: "SAMPLED_VOCAB".into(),
                prompt_tuning_init_text: None,
            },
            PromptInit::Random => InitFields {
                prompt_tuning_init: "RANDOM".into(),
                prompt_tuning_init_text: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_official_adapter_config() {
        // checkpoints/cola/adapter_config.json of the official DePT repository.
        let json = r#"{"base_model_name_or_path": "t5-base", "bias": "none", "hidden_size": 768,
            "inference_mode": true, "init_lora_weights": true, "load_lora_embedding_B": true,
            "load_lora_embeddings": true, "lora_alpha": 8, "max_length": 256, "num_attention_heads": 12,
            "num_layers": 12, "num_transformer_submodules": 1, "num_virtual_tokens": 80,
            "peft_type": "PROMPT_TUNING_LORA", "prompt_tuning_init": "TEXT",
            "prompt_tuning_init_text": "Classify this text is postive or not:", "r": 15, "revision": null,
            "save_lora_embeddings": true, "task_type": "SEQ_2_SEQ_LM", "token_dim": 768,
            "tokenizer_name_or_path": "t5-base"}"#;
        let c: DeptConfig = serde_json::from_str(json).unwrap();
        c.validate().unwrap();
        assert_eq!((c.m, c.r, c.s, c.d), (80, 15, Some(256), 768));
        assert_eq!(c.num_params(), 76_800);
        assert!((c.scale() - 8.0 / 15f64.sqrt()).abs() < 1e-12);
        assert_eq!(
            c.prompt_init().unwrap(),
            PromptInit::Text(DEFAULT_INIT_TEXT.into())
        );
    }

    #[test]
    fn text_ids_are_repeated_then_cut() {
        let c = DeptConfig::new(7, 0, 0, 4).unwrap();
        assert_eq!(
            c.text_init_ids(&[5, 6, 1]).unwrap(),
            vec![5, 6, 1, 5, 6, 1, 5]
        );
        let c = DeptConfig::new(2, 0, 0, 4).unwrap();
        assert_eq!(c.text_init_ids(&[5, 6, 1]).unwrap(), vec![5, 6]);
        assert!(c.text_init_ids(&[]).is_err());
    }

    #[test]
    fn rejects_impossible_shapes() {
        assert!(DeptConfig::new(0, 0, 256, 768).is_err());
        assert!(DeptConfig::new(60, 30, 0, 768).is_err());
        assert!(DeptConfig::new(-1, 30, 256, 768).is_err());
        let mut c = DeptConfig::new(60, 30, 256, 768).unwrap();
        c.init.prompt_tuning_init = "VOCAB".into();
        assert!(c.validate().unwrap_err().to_string().contains("VOCAB"));
    }
}
