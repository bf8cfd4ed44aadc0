//! T5 (v1 and v1.1 / Flan layouts) as a DePT backbone.

mod config;
mod model;

pub use config::{FeedForward, T5Config};
pub use model::T5;

use std::path::Path;

use tch::Device;

use crate::registry::{BackboneKind, ModelShape, TinyModel, TinyRecipe, VisualInput};
use crate::{Architecture, Backbone, ModelError};

/// T5's `model_type` (also what a `config.json` without one is read as).
pub const MODEL_TYPE: &str = "t5";

/// T5 in the backbone registry ([`crate::BACKBONES`]); with visual features, CLIP-T5.
pub const KIND: BackboneKind = BackboneKind {
    name: "t5",
    label: "T5",
    supported: "T5 (v1, v1.1, Flan)",
    model_types: &[MODEL_TYPE],
    architecture: Architecture::EncoderDecoder,
    load: |dir, device| Ok(Box::new(T5::load(dir, device)?)),
    vision_language: Some(load_clip_t5),
    tiny: TinyRecipe {
        needs_tokenizer: false,
        variants: &["gated-gelu", "relu"],
        write: write_tiny,
    },
    shapes: &["t5-small", "t5-base", "t5-large"],
    shape: |name| Ok(Box::new(T5Config::released(name)?)),
};

/// CLIP-T5: the T5 folder with a visual embedding sized for the features and initialised under their seed.
fn load_clip_t5(
    dir: &Path,
    device: Device,
    visual: VisualInput,
) -> Result<Box<dyn Backbone>, ModelError> {
    let t5 = T5::load(dir, device)?;
    tch::manual_seed(visual.seed);
    Ok(Box::new(crate::clip_t5::ClipT5::new(
        t5,
        visual.width,
        visual.tokens,
    )?))
}

fn write_tiny(model: &TinyModel) -> Result<(), ModelError> {
    let feed_forward_proj = model.variant.unwrap_or(KIND.tiny.variants[0]);
    let (dir, d_model, seed) = (model.dir, model.d_model, model.seed);
    match model.tokenizer {
        Some(tokenizer) => crate::tiny::write_tiny_t5_with_tokenizer(
            dir,
            tokenizer,
            d_model,
            feed_forward_proj,
            seed,
        ),
        None => crate::tiny::write_tiny_t5(dir, model.words, d_model, feed_forward_proj, seed),
    }
}

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
