//! T5 (v1 and v1.1 / Flan layouts) as a DePT backbone.

mod config;
mod model;
mod tiny;

pub use config::{FeedForward, T5Config};
pub use model::T5;
pub use tiny::{write_tiny_t5, write_tiny_t5_with_tokenizer, SPECIAL_TOKENS};

use tch::Device;

use crate::registry::{BackboneKind, ModelShape, TinyRecipe};
use crate::{Architecture, Backbone, ModelError};

/// T5's `model_type` (also what a `config.json` without one is read as).
pub const MODEL_TYPE: &str = "t5";

/// T5 in the backbone registry ([`crate::BACKBONES`]); [`crate::clip_t5`] reads visual features on it.
pub const KIND: BackboneKind = BackboneKind {
    name: "t5",
    label: "T5",
    supported: "T5 (v1, v1.1, Flan)",
    model_types: &[MODEL_TYPE],
    reads_untyped_configs: true,
    hidden_size_key: "d_model",
    architecture: Architecture::EncoderDecoder,
    load: |dir, device| Ok(Box::new(T5::load(dir, device)?)),
    tiny: TinyRecipe {
        needs_tokenizer: false,
        variants: tiny::FEED_FORWARD_VARIANTS,
        write: tiny::write_recipe,
    },
    shapes: &["t5-small", "t5-base", "t5-large"],
    shape: |name| Ok(Box::new(T5Config::released(name)?)),
};

impl ModelShape for T5Config {
    fn hidden_size(&self) -> i64 {
        self.d_model
    }

    fn vocab_size(&self) -> i64 {
        self.vocab_size
    }

    fn build_random(&self, device: Device) -> Result<Box<dyn Backbone>, ModelError> {
        Ok(Box::new(T5::new_random(self, device)?))
    }
}
