//! Decoding over a split (greedy, or beam search as the config says) and scoring with the task's metrics.

use dept_core::DecomposedPrompt;
use dept_data::{Task, TextExample};
use dept_models::features::FeatureStore;
use dept_models::{Backbone, GenerationConfig, PromptedModel, TextTokenizer};

use crate::batch::{length_grouped, Batch, Encoded};
use crate::config::{ExperimentConfig, Padding, ScoreAgainst};
use crate::guard::guarded;
use crate::TrainError;

/// Everything decoding needs besides the data.
pub struct Decoder<'a> {
    pub backbone: &'a dyn Backbone,
    pub adapter: &'a DecomposedPrompt,
    pub tokenizer: &'a TextTokenizer,
    /// Vision-language models: where each example's image features are read from.
    pub features: Option<&'a FeatureStore>,
    pub padding: Padding,
    pub max_len: usize,
    pub batch_size: usize,
    /// How to decode (the config's `decode_*` keys: greedy by default, or beam search).
    pub generation: GenerationConfig,
    /// transformers' clean-up of decoded text (see `ExperimentConfig::decode_cleanup`).
    pub cleanup: bool,
}

impl Decoder<'_> {
    /// Decoded predictions, in the order of `encoded` (batches are grouped by length internally).
    ///
    /// A stop signal ([`crate::stop`]) ends it with [`TrainError::StopRequested`] before the next batch, or
    /// between two tokens of a batch being decoded.
    pub fn predict(&self, encoded: &[Encoded]) -> Result<Vec<String>, TrainError> {
        let mut predictions = vec![String::new(); encoded.len()];
        for group in length_grouped(encoded, self.batch_size) {
            crate::stop::check()?;
            let items: Vec<&Encoded> = group.iter().map(|&i| &encoded[i]).collect();
            let batch = Batch::for_generation(
                &items,
                self.backbone.architecture(),
                self.padding,
                self.max_len,
                self.backbone.pad_token_id(),
                self.backbone.device(),
            )
            .with_visual(&items, self.features, self.backbone.device())?;
            let model =
                PromptedModel::new(self.backbone, self.adapter).with_visual(batch.visual.as_ref());
            let generated = guarded(|| {
                Ok(model.generate_with(
                    &batch.input_ids,
                    &batch.attention_mask,
                    &self.generation,
                )?)
            })
            .map_err(crate::stop::cancelled_by_signal)?;
            let rows = Vec::<Vec<i64>>::try_from(&generated.to_device(tch::Device::Cpu))?;
            for (&i, ids) in group.iter().zip(rows) {
                predictions[i] = self
                    .tokenizer
                    .decode_for_scoring(&ids, self.cleanup)?
                    .trim()
                    .to_string();
            }
        }
        Ok(predictions)
    }
}

/// The task's metrics for `predictions` (percent, the task's metric order), against the gold the config names:
/// by default the decoded label ids, as the official code scores them.
pub fn score(
    config: &ExperimentConfig,
    task: &Task,
    tokenizer: &TextTokenizer,
    predictions: &[String],
    examples: &[TextExample],
    encoded: &[Encoded],
) -> Result<Vec<(String, f64)>, TrainError> {
    let scores = match config.score_against {
        ScoreAgainst::TargetText => dept_data::score(task, predictions, examples)?,
        ScoreAgainst::DecodedLabels => {
            let gold = examples
                .iter()
                .zip(encoded)
                .map(|(example, encoded)| {
                    Ok(TextExample {
                        target: tokenizer
                            .decode_for_scoring(&encoded.target_ids, config.decode_cleanup)?
                            .trim()
                            .to_string(),
                        ..example.clone()
                    })
                })
                .collect::<Result<Vec<_>, TrainError>>()?;
            dept_data::score(task, predictions, &gold)?
        }
    };
    Ok(scores
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::encode_examples;

    /// MRQA answers are scored as the official code scores them: against the decoded label ids, so words outside
    /// the vocabulary (`<unk>`) are gone and answers longer than `max_target_len` are cut.
    #[test]
    fn answers_are_scored_against_the_decoded_labels() {
        let dir = tempfile::tempdir().unwrap();
        let words = ["the", "red", "fox", "jumps", "over", "a", "lazy", "dog"];
        dept_models::tiny::write_tiny_t5(dir.path(), &words, 8, "relu", 1).unwrap();
        let tokenizer = TextTokenizer::from_model_dir(dir.path()).unwrap();
        let task = dept_data::task("newsqa").unwrap();
        let example = |id: &str, target: &str| TextExample {
            id: id.into(),
            input: "question: what context: the red fox".into(),
            target: target.into(),
            extra: Default::default(),
        };
        // "zebra" is not in the vocabulary; the second answer is longer than 4 tokens (</s> included).
        let examples = [
            example("a", "the zebra fox"),
            example("b", "the red fox jumps over"),
        ];
        let mut config = ExperimentConfig {
            max_target_len: 4,
            ..Default::default()
        };
        let encoded = encode_examples(&tokenizer, &examples, 32, config.max_target_len).unwrap();
        let predictions = vec!["the fox".to_string(), "the red fox".to_string()];
        let em = |config: &ExperimentConfig| {
            score(config, task, &tokenizer, &predictions, &examples, &encoded).unwrap()[0].1
        };
        assert_eq!(em(&config), 100.0);
        config.score_against = ScoreAgainst::TargetText;
        assert_eq!(em(&config), 0.0);
    }
}
