//! [`PromptedModel`]: a frozen backbone with a DePT adapter in front, the one place where token ids become
//! embeddings, the adapter changes them and the backbone runs (HF PEFT's `PeftModel`). Training, evaluation,
//! benchmarks, `dept selftest` and the tests all go through it, so every one of them runs the same computation.

use dept_core::DecomposedPrompt;
use tch::{Kind, Tensor};

use crate::beam::GenerationConfig;
use crate::rows::{DecodingRows, Side};
use crate::{Architecture, Backbone, BackboneOutput, ModelError};

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
        self.generate_with(
            input_ids,
            attention_mask,
            &GenerationConfig::greedy(max_new_tokens),
        )
    }

    /// Decoding as `config` says (greedy, or beam search, [`crate::beam`]), without gradients or dropout:
    /// `[batch, ≤ max_new_tokens]` ids, padded after end of sequence. The adapter changes the input embeddings
    /// once; generated tokens are embedded plainly, as in greedy decoding.
    pub fn generate_with(
        &self,
        input_ids: &Tensor,
        attention_mask: &Tensor,
        config: &GenerationConfig,
    ) -> Result<Tensor, ModelError> {
        tch::no_grad(|| {
            let (embeds, mask) = self.embed(input_ids, attention_mask)?;
            crate::beam::generate(self.backbone, &embeds, &mask, config)
        })
    }
}

/// One row of a mixed batch: a source's token ids (with the tokenizer's special tokens, at most the adapter's `s`)
/// and the adapter it is for.
#[derive(Clone, Copy)]
pub struct MixedRow<'a> {
    pub input_ids: &'a [i64],
    pub adapter: &'a DecomposedPrompt,
}

/// The backbone's input for rows that each have their own adapter (a server mixes requests for many adapters in
/// one forward pass): every row gets its adapter's soft prompt and `A·B` exactly as [`PromptedModel::embed`] gives
/// them to a batch of that adapter alone, then rows of different prompt lengths are padded to one width on the
/// side the architecture pads (an encoder's at the back, a decoder-only model's in front) and masked. Returns
/// `[rows, width, d]` embeddings and their mask, rows in the order given.
///
/// Rows of one adapter are embedded together, so the cost beyond the backbone's is one small update per distinct
/// adapter of the batch.
pub fn embed_mixed(
    backbone: &dyn Backbone,
    rows: &[MixedRow],
) -> Result<(Tensor, Tensor), ModelError> {
    if rows.is_empty() {
        return Err(ModelError::Input(
            "a mixed batch needs at least one row".into(),
        ));
    }
    let architecture = backbone.architecture();
    let device = backbone.device();
    // Groups of rows sharing an adapter, in order of first appearance.
    let mut groups: Vec<(&DecomposedPrompt, Vec<usize>)> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|(a, _)| std::ptr::eq(*a, row.adapter))
        {
            Some((_, members)) => members.push(i),
            None => groups.push((row.adapter, vec![i])),
        }
    }
    let mut embedded = Vec::with_capacity(groups.len());
    let mut order = Vec::with_capacity(rows.len());
    for (adapter, members) in &groups {
        let pairs: Vec<crate::layout::Pair> = members
            .iter()
            .map(|&i| (rows[i].input_ids, &[][..]))
            .collect();
        let padded = architecture.generation_rows(&pairs, None, backbone.pad_token_id());
        let shape = [padded.rows as i64, padded.width as i64];
        let ids = Tensor::from_slice(&padded.input_ids)
            .view(shape)
            .to_device(device);
        let mask = Tensor::from_slice(&padded.attention_mask)
            .view(shape)
            .to_device(device);
        embedded.push(PromptedModel::new(backbone, adapter).embed(&ids, &mask)?);
        order.extend(members.iter().map(|&i| i as i64));
    }
    let width = embedded.iter().map(|(e, _)| e.size()[1]).max().unwrap_or(0);
    let side = match architecture {
        Architecture::EncoderDecoder => Side::Back,
        Architecture::DecoderOnly => Side::Front,
    };
    let pad = |t: &Tensor| {
        let missing = width - t.size()[1];
        let pads = match (side, t.dim()) {
            (Side::Back, 3) => [0, 0, 0, missing],
            (Side::Front, 3) => [0, 0, missing, 0],
            (Side::Back, _) => [0, missing, 0, 0],
            (Side::Front, _) => [missing, 0, 0, 0],
        };
        let pads = if t.dim() == 3 { &pads[..] } else { &pads[..2] };
        t.constant_pad_nd(pads)
    };
    let embeds = Tensor::cat(&embedded.iter().map(|(e, _)| pad(e)).collect::<Vec<_>>(), 0);
    let mask = Tensor::cat(&embedded.iter().map(|(_, m)| pad(m)).collect::<Vec<_>>(), 0);
    // Back to the order the rows were given: position `i` of `order` holds row `order[i]`.
    let inverse = Tensor::from_slice(&order)
        .to_device(device)
        .argsort(0, false);
    Ok((
        embeds.index_select(0, &inverse),
        mask.to_kind(Kind::Int64).index_select(0, &inverse),
    ))
}

/// [`embed_mixed`], then [`Backbone::start_rows`]: the decoding state of the rows and the logits of each row's
/// first new token.
pub fn start_mixed_rows(
    backbone: &dyn Backbone,
    rows: &[MixedRow],
) -> Result<(DecodingRows, Tensor), ModelError> {
    tch::no_grad(|| {
        let (embeds, mask) = embed_mixed(backbone, rows)?;
        backbone.start_rows(&embeds, &mask)
    })
}
