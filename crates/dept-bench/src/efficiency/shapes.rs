//! The model shapes the efficiency study builds with random weights (time and memory do not depend on the
//! weights): released T5 v1 sizes, GPT-2 sizes and LLaMA-2 7B/13B, from their configs alone.

use crate::error::{bail, Result};
use dept_models::decoder_only::DecoderOnly;
use dept_models::gpt2::{gpt2_shape, Gpt2, Gpt2Config};
use dept_models::llama::{Llama, LlamaConfig};
use dept_models::t5::{T5Config, T5};
use dept_models::Backbone;
use tch::Device;

use crate::synthetic::t5_shape;

/// Every name `--shape` takes.
pub const SHAPES: &[&str] = &[
    "t5-small",
    "t5-base",
    "t5-large",
    "gpt2",
    "gpt2-medium",
    "gpt2-large",
    "llama-2-7b",
    "llama-2-13b",
];

enum Config {
    T5(T5Config),
    Gpt2(Gpt2Config),
    Llama(LlamaConfig),
}

/// A named shape: enough to solve the budget and draw inputs before anything is built.
pub struct Shape {
    pub name: String,
    config: Config,
}

impl Shape {
    pub fn named(name: &str) -> Result<Self> {
        let config = match name {
            "t5-small" | "t5-base" | "t5-large" => Config::T5(t5_shape(name)?),
            "gpt2" | "gpt2-medium" | "gpt2-large" => Config::Gpt2(gpt2_shape(name)?),
            "llama-2-7b" => Config::Llama(llama_2(4096, 11008, 32, 32)?),
            "llama-2-13b" => Config::Llama(llama_2(5120, 13824, 40, 40)?),
            other => bail!(
                "unknown shape {other:?}: expected one of {}",
                SHAPES.join(", ")
            ),
        };
        Ok(Shape {
            name: name.to_string(),
            config,
        })
    }

    /// Width d of the token embeddings (what the budget is counted in).
    pub fn hidden_size(&self) -> i64 {
        match &self.config {
            Config::T5(c) => c.d_model,
            Config::Gpt2(c) => c.n_embd,
            Config::Llama(c) => c.hidden_size,
        }
    }

    pub fn vocab_size(&self) -> i64 {
        match &self.config {
            Config::T5(c) => c.vocab_size,
            Config::Gpt2(c) => c.vocab_size,
            Config::Llama(c) => c.vocab_size,
        }
    }

    /// The model with random weights (transformers' initialisation), frozen.
    pub fn build(&self, device: Device) -> Result<Box<dyn Backbone>> {
        Ok(match &self.config {
            Config::T5(c) => Box::new(T5::new_random(c, device)?),
            Config::Gpt2(c) => Box::new(DecoderOnly::new(Box::new(Gpt2::new_random(c, device)?))),
            Config::Llama(c) => Box::new(DecoderOnly::new(Box::new(Llama::new_random(c, device)?))),
        })
    }
}

/// LLaMA-2's published config at one size (meta-llama/Llama-2-{7,13}b-hf `config.json`).
fn llama_2(hidden: i64, intermediate: i64, layers: i64, heads: i64) -> Result<LlamaConfig> {
    let json = serde_json::json!({
        "model_type": "llama", "vocab_size": 32000, "hidden_size": hidden, "intermediate_size": intermediate,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": heads,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "max_position_embeddings": 4096, "hidden_act": "silu",
        "tie_word_embeddings": false, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.02
    });
    Ok(LlamaConfig::from_json(
        std::path::Path::new("<llama-2 shape>"),
        json,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_known_without_building_it() {
        for name in SHAPES {
            let shape = Shape::named(name).unwrap();
            assert!(shape.hidden_size() > 0 && shape.vocab_size() > 0, "{name}");
        }
        assert_eq!(Shape::named("gpt2-medium").unwrap().hidden_size(), 1024);
        assert_eq!(Shape::named("llama-2-7b").unwrap().hidden_size(), 4096);
        let err = Shape::named("t5-huge")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("unknown shape"), "{err}");
    }
}
