//! [`PromptedModel`]: a frozen backbone with a DePT adapter in front, the one place where token ids become
//! embeddings, the adapter changes them and the backbone runs (HF PEFT's `PeftModel`). Training, evaluation,
//! benchmarks, `dept selftest` and the tests all go through it, so every one of them runs the same computation.

use dept_core::DecomposedPrompt;
use tch::Tensor;

use crate::{Backbone, BackboneOutput, ModelError};

/// Borrowed, because the trainer owns the adapter (the optimiser steps its tensors in place, a resume overwrites
/// them) and the backbone outlives many adapters (evaluation of `best/`, serving).
#[derive(Clone, Copy)]
pub struct PromptedModel<'a> {
    pub backbone: &'a dyn Backbone,
    pub adapter: &'a DecomposedPrompt,
}

impl<'a> PromptedModel<'a> {
    pub fn new(backbone: &'a dyn Backbone, adapter: &'a DecomposedPrompt) -> Self {
        PromptedModel { backbone, adapter }
    }

    /// `input_ids` `[batch, len]` and their mask → the backbone's input: `[batch, m + len, d]` embeddings (the
    /// prompt, then the word embeddings plus `scale·A[..len]·B`) and the mask with the prompt's positions set.
    pub fn embed(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(Tensor, Tensor), ModelError> {
        Ok(self
            .adapter
            .apply(&self.backbone.embed(input_ids), attention_mask)?)
    }

    /// Teacher-forced pass with loss (`labels` `-100` at padding); `train` turns the backbone's dropout on.
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError> {
        let (embeds, mask) = self.embed(input_ids, attention_mask)?;
        self.backbone.forward(&embeds, &mask, labels, train)
    }

    /// Greedy decoding without gradients or dropout: `[batch, ≤ max_new_tokens]` ids, padded after end of
    /// sequence.
    pub fn generate(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError> {
        tch::no_grad(|| {
            let (embeds, mask) = self.embed(input_ids, attention_mask)?;
            self.backbone
                .generate_greedy(&embeds, &mask, max_new_tokens)
        })
    }
}
