//! Greedy decoding over a split and scoring with the task's metrics.

use dept_core::DecomposedPrompt;
use dept_data::{Task, TextExample};
use dept_models::{Backbone, TextTokenizer};

use crate::batch::{length_grouped, Batch, Encoded};
use crate::config::Padding;
use crate::guard::guarded;
use crate::TrainError;

/// Everything decoding needs besides the data.
pub struct Decoder<'a> {
    pub backbone: &'a dyn Backbone,
    pub adapter: &'a DecomposedPrompt,
    pub tokenizer: &'a TextTokenizer,
    pub padding: Padding,
    pub max_len: usize,
    pub batch_size: usize,
    pub max_new_tokens: i64,
}

impl Decoder<'_> {
    /// Decoded predictions, in the order of `encoded` (batches are grouped by length internally).
    pub fn predict(&self, encoded: &[Encoded]) -> Result<Vec<String>, TrainError> {
        let mut predictions = vec![String::new(); encoded.len()];
        for group in length_grouped(encoded, self.batch_size) {
            let items: Vec<&Encoded> = group.iter().map(|&i| &encoded[i]).collect();
            let batch = Batch::new(
                &items,
                self.padding,
                self.max_len,
                self.backbone.pad_token_id(),
                self.backbone.device(),
            );
            let generated = guarded(|| {
                tch::no_grad(|| -> Result<_, TrainError> {
                    let embeds = self.backbone.embed(&batch.input_ids);
                    let (embeds, mask) = self.adapter.apply(&embeds, &batch.attention_mask)?;
                    Ok(self
                        .backbone
                        .generate_greedy(&embeds, &mask, self.max_new_tokens)?)
                })
            })?;
            let rows = Vec::<Vec<i64>>::try_from(&generated.to_device(tch::Device::Cpu))?;
            for (&i, ids) in group.iter().zip(rows) {
                predictions[i] = self.tokenizer.decode(&ids)?.trim().to_string();
            }
        }
        Ok(predictions)
    }
}

/// The task's metrics for `predictions` (percent, the task's metric order).
pub fn score(
    task: &Task,
    predictions: &[String],
    examples: &[TextExample],
) -> Result<Vec<(String, f64)>, TrainError> {
    Ok(dept_data::score(task, predictions, examples)?
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect())
}
