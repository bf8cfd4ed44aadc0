//! The model shapes the efficiency study builds with random weights (time and memory do not depend on the
//! weights): the backbone registry's benchmark shapes (released T5 v1 sizes, GPT-2 sizes and LLaMA-2 7B/13B),
//! from their configs alone.

use crate::error::Result;
use dept_models::registry::{self, ModelShape};
use dept_models::Backbone;
use tch::Device;

/// A named shape: enough to solve the budget and draw inputs before anything is built.
pub struct Shape {
    pub name: String,
    config: Box<dyn ModelShape>,
}

impl Shape {
    /// One of [`registry::shape_names`].
    pub fn named(name: &str) -> Result<Self> {
        Ok(Shape {
            name: name.to_string(),
            config: registry::shape(name)?,
        })
    }

    /// Width d of the token embeddings (what the budget is counted in).
    pub fn hidden_size(&self) -> i64 {
        self.config.hidden_size()
    }

    pub fn vocab_size(&self) -> i64 {
        self.config.vocab_size()
    }

    /// The model with random weights (transformers' initialisation), frozen.
    pub fn build(&self, device: Device) -> Result<Box<dyn Backbone>> {
        Ok(self.config.build_random(device)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shape_is_known_without_building_it() {
        for name in registry::shape_names() {
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
