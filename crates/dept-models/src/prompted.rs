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
    /// The batch's visual features `[batch, tokens, width]` for a vision-language backbone (CLIP-T5).
    pub visual: Option<&'a Tensor>,
}

impl<'a> PromptedModel<'a> {
    pub fn new(backbone: &'a dyn Backbone, adapter: &'a DecomposedPrompt) -> Self {
        PromptedModel {
            backbone,
            adapter,
            visual: None,
        }
    }

    /// The same model reading `visual` features with the next batch (required by CLIP-T5, refused by text-only
    /// backbones).
    pub fn with_visual(self, visual: Option<&'a Tensor>) -> Self {
        PromptedModel { visual, ..self }
    }

    /// `input_ids` `[batch, len]` and their mask → the backbone's input: `[batch, m + len, d]` embeddings (the
    /// prompt, then the word embeddings plus `scale·A[p]·B` for the token at position `p`) and the mask with the
    /// prompt's positions set.
    ///
    /// Where each token sits for the adapter's `A` follows the backbone's architecture
    /// ([`crate::Architecture::apply_adapter`]): padding on either side changes nothing.
    ///
    /// With visual features (CLIP-T5) their tokens follow: `[prompt | text | visual]`, all of them in the mask.
    pub fn embed(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let (embeds, mask) = self.embed_text(input_ids, attention_mask)?;
        match (self.visual, self.backbone.visual_width()) {
            (None, None) => Ok((embeds, mask)),
            (Some(features), _) => {
                self.backbone
                    .join_visual(&embeds, &mask, features)
            }
            (None, Some(width)) => Err(ModelError::Input(format!(
                "this model reads images: every example needs its visual features ({width} wide), and none \
                 were given"
            ))),
        }
    }

    fn embed_text(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(Tensor, Tensor), ModelError> {
        let embeds = self.backbone.embed(input_ids);
        let architecture = self.backbone.architecture();
        Ok(architecture.apply_adapter(self.adapter, &embeds, attention_mask)?)
    }

    /// Teacher-forced pass with loss; `train` turns the backbone's dropout on. `labels`: for an encoder-decoder
    /// the target ids `[batch, target_len]`; for a decoder-only model aligned with `input_ids` (the target's
    /// tokens where they sit in the sequence). `-100` marks what is not predicted; the prompt's positions get it
    /// here, as the official code's `prefix_labels`.
    pub fn forward_t(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError> {
        let (embeds, mask) = self.embed(input_ids, attention_mask)?;
        let prompt_len = self.adapter.config().m;
        let labels = self
            .backbone
            .architecture()
            .labels_after_prompt(labels, prompt_len);
        self.backbone.forward(&embeds, &mask, &labels, train)
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
