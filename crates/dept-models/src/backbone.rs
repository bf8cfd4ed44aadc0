//! The interface between a frozen language model and everything that trains or evaluates an adapter on it.

use tch::{Device, Tensor};

use crate::rows::DecodingRows;
use crate::{Architecture, ModelError};

/// What one forward pass returns.
pub struct BackboneOutput {
    /// Mean cross-entropy over target tokens that are not `-100`.
    pub loss: Tensor,
    /// `[batch, target_len, vocab]`.
    pub logits: Tensor,
}

/// Mean cross-entropy of `[.., vocab]` logits against `labels` of the same leading shape, over the labels that are
/// not `-100` (transformers' loss for both T5 and causal LMs).
pub fn token_loss(logits: &Tensor, labels: &Tensor) -> Tensor {
    let vocab = logits.size().last().copied().unwrap_or(0);
    logits.reshape([-1, vocab]).cross_entropy_loss::<Tensor>(
        &labels.reshape([-1]),
        None,
        tch::Reduction::Mean,
        -100,
        0.0,
    )
}

/// VL-Adapter's VQA loss (`VL-T5/src/vqa_model.py`): per example the mean cross-entropy over its target tokens
/// (labels not `-100`), times the example's weight (its answer's score), then the mean over the batch. `logits`
/// `[b, t, vocab]`, `labels` `[b, t]`, `weights` `[b]`.
pub fn weighted_example_loss(logits: &Tensor, labels: &Tensor, weights: &Tensor) -> Tensor {
    let size = labels.size();
    let vocab = logits.size().last().copied().unwrap_or(0);
    let per_token = logits
        .reshape([-1, vocab])
        .cross_entropy_loss::<Tensor>(&labels.reshape([-1]), None, tch::Reduction::None, -100, 0.0)
        .view(size.as_slice());
    let mask = labels.ne(-100).to_kind(per_token.kind());
    let per_example = (per_token * &mask).sum_dim_intlist(1, false, mask.kind())
        / mask.sum_dim_intlist(1, false, mask.kind()).clamp_min(1.0);
    (per_example * weights.to_kind(mask.kind())).mean(mask.kind())
}

/// A frozen model driven on input embeddings, so that an adapter can change them before the model sees them.
pub trait Backbone {
    /// Width `d` of the token embeddings (the adapter's rows are this wide).
    fn hidden_size(&self) -> i64;
    fn vocab_size(&self) -> i64;
    fn device(&self) -> Device;
    /// How source and target meet this model; batching, the adapter's positions and the adapter file follow it.
    fn architecture(&self) -> Architecture;
    /// Token ids `[batch, len]` to the frozen word embeddings `[batch, len, d]`.
    fn embed(&self, input_ids: &Tensor) -> Tensor;
    /// Teacher-forced pass. `embeds` `[batch, len, d]`, `attention_mask` `[batch, len]` (1 = real token),
    /// `labels` `[batch, target_len]` with `-100` at padding. `train` turns the backbone's dropout on.
    fn forward(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        labels: &Tensor,
        train: bool,
    ) -> Result<BackboneOutput, ModelError>;
    /// Greedy decoding without dropout; returns `[batch, ≤ max_new_tokens]` ids, padded after end of sequence.
    fn generate_greedy(
        &self,
        embeds: &Tensor,
        attention_mask: &Tensor,
        max_new_tokens: i64,
    ) -> Result<Tensor, ModelError>;
    /// Starts iteration-level decoding ([`crate::rows`]): runs the inputs once (`embeds` `[batch, len, d]` and
    /// their mask, laid out as for [`Backbone::generate_greedy`]: an encoder's right-padded, a decoder-only model's
    /// left-padded) and returns their decoding state with the fp32 logits of each row's first new token
    /// `[batch, vocab]`. Rows of two states [`DecodingRows::join`]; each row decodes what it would alone.
    fn start_rows(
        &self,
        _embeds: &Tensor,
        _attention_mask: &Tensor,
    ) -> Result<(DecodingRows, Tensor), ModelError> {
        Err(ModelError::Input(
            "this backbone does not decode row by row (T5, CLIP-T5, GPT-2 and Llama do)".into(),
        ))
    }
    /// Feeds each row of `rows` its next token (`tokens` `[batch]`) and returns the fp32 logits of the token after
    /// it, `[batch, vocab]`.
    fn step_rows(&self, _rows: &mut DecodingRows, _tokens: &Tensor) -> Result<Tensor, ModelError> {
        Err(ModelError::Input(
            "this backbone does not decode row by row (T5, CLIP-T5, GPT-2 and Llama do)".into(),
        ))
    }
    /// Casts the frozen weights (fp32 by default; bf16 for CUDA runs).
    fn set_float_kind(&mut self, kind: tch::Kind) -> Result<(), ModelError>;
    /// Id used to pad generated sequences (and targets before they are masked to `-100`).
    fn pad_token_id(&self) -> i64;
    fn eos_token_id(&self) -> i64;
    /// The token an encoder-decoder model's decoder starts from (where beam search's n-gram rule begins its
    /// history, [`crate::beam`]); `None` for a decoder-only model.
    fn decoder_start_token_id(&self) -> Option<i64> {
        None
    }
    /// The most positions one sequence may hold (prompt, input and generated tokens together) where the model has
    /// a hard limit (GPT-2's learned position table); `None` where it has none (T5's relative positions, Llama's
    /// rotary ones).
    fn max_positions(&self) -> Option<i64> {
        None
    }
    /// Width of the visual features a vision-language backbone (CLIP-T5) reads; `None` for text-only models.
    fn visual_width(&self) -> Option<i64> {
        None
    }
    /// The encoder's input from the adapted text (`embeds` `[batch, prompt + len, d]`, the soft prompt in front,
    /// and its mask) and visual features `[batch, tokens, visual_width]`: the visual tokens after the text, the
    /// mask covering them (see [`crate::clip_t5`]).
    fn join_visual(
        &self,
        _embeds: &Tensor,
        _mask: &Tensor,
        _features: &Tensor,
    ) -> Result<(Tensor, Tensor), ModelError> {
        Err(ModelError::Input(
            "this model reads text only: it takes no visual features (CLIP-T5 does)".into(),
        ))
    }
    /// The backbone's own adapter-side variables (CLIP-T5's visual embedding) with their checkpoint names, sorted
    /// by name; empty for a fully frozen backbone. They are saved next to the adapter; those that require
    /// gradients train, in their own optimiser group.
    fn trainable_parameters(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn weighted_example_loss_averages_per_example_then_weighs() {
        tch::manual_seed(1);
        let logits = Tensor::randn([3, 4, 7], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[2i64, 5, 1, -100, 3, -100, -100, -100, 6, 1, -100, -100])
            .view([3, 4]);
        let weights = Tensor::from_slice(&[1.0f32, 0.3, 0.0]);
        let got = weighted_example_loss(&logits, &labels, &weights).double_value(&[]);
        // By hand: -log softmax at each labelled position, averaged within each row.
        let logp = logits.log_softmax(-1, Kind::Double);
        let nll = |row: i64, col: i64, class: i64| -logp.double_value(&[row, col, class]);
        let rows = [
            (nll(0, 0, 2) + nll(0, 1, 5) + nll(0, 2, 1)) / 3.0,
            nll(1, 0, 3),
            (nll(2, 0, 6) + nll(2, 1, 1)) / 2.0,
        ];
        let expected = (rows[0] * 1.0 + rows[1] * 0.3 + rows[2] * 0.0) / 3.0;
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        // With every weight 1 and rows of one length, it is the token mean.
        let same = Tensor::from_slice(&[2i64, 5, 3, 6, 1, 4]).view([3, 2]);
        let l = logits.narrow(1, 0, 2);
        let a = weighted_example_loss(&l, &same, &Tensor::ones([3], (Kind::Float, Device::Cpu)));
        assert!((a.double_value(&[]) - token_loss(&l, &same).double_value(&[])).abs() < 1e-6);
    }
}
