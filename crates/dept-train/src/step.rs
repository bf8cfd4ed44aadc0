//! One optimiser step, the same for `dept train` and every benchmark: forward and backward of each batch of a
//! gradient-accumulation group, then clipping and the two-rate AdamW update.

use dept_core::PAIR_GROUP;
use dept_models::backbone::weighted_example_loss;
use dept_models::PromptedModel;
use tch::Tensor;

use crate::batch::Batch;
use crate::guard::guarded;
use crate::optim::{clip_grad_norm, AdamW};
use crate::TrainError;

/// Forward and backward of `batches` (each loss divided by their number, so the gradients are those of the mean
/// loss); returns the summed loss. Gradients accumulate on top of whatever the parameters hold.
///
/// Before each batch (each micro-step) it looks for a stop signal ([`crate::stop`]) and returns
/// [`TrainError::StopRequested`]: the gradients accumulated so far are then incomplete and must not be applied.
pub fn forward_backward(
    model: PromptedModel<'_>,
    batches: &[Batch],
    dropout: bool,
) -> Result<f64, TrainError> {
    let mut loss_sum = 0.0;
    for batch in batches {
        crate::stop::check()?;
        let loss = guarded(|| {
            let out = model.with_visual(batch.visual.as_ref()).forward_t(
                &batch.input_ids,
                &batch.attention_mask,
                &batch.labels,
                dropout,
            )?;
            let loss = match &batch.weights {
                Some(weights) => weighted_example_loss(&out.logits, &batch.labels, weights),
                None => out.loss,
            };
            let loss = loss / batches.len() as f64;
            loss.backward();
            Ok(loss)
        })?;
        loss_sum += loss.double_value(&[]);
    }
    Ok(loss_sum)
}

/// Clips the gradients of `params` to `max_grad_norm` and steps the optimiser with the prompt's and the pair's
/// learning rates; returns the gradient norm before clipping.
pub fn update(
    optimizer: &mut AdamW,
    params: &[Tensor],
    max_grad_norm: f64,
    lr_prompt: f64,
    lr_pair: f64,
) -> f64 {
    update_groups(optimizer, params, max_grad_norm, |group| {
        if group == PAIR_GROUP {
            lr_pair
        } else {
            lr_prompt
        }
    })
}

/// [`update`] with any number of groups: `lr(group)` is each group's rate (CLIP-T5 adds the visual embedding's).
pub fn update_groups(
    optimizer: &mut AdamW,
    params: &[Tensor],
    max_grad_norm: f64,
    lr: impl Fn(usize) -> f64,
) -> f64 {
    let grad_norm = clip_grad_norm(params, max_grad_norm);
    optimizer.step(lr);
    grad_norm
}
