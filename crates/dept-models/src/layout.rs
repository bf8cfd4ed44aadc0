//! How source and target meet a model: the one place that knows what an encoder-decoder and a decoder-only model
//! each expect, so that batching, the adapter's positions, the prompt's labels and the adapter file ask the backbone
//! ([`crate::Backbone::architecture`]) instead of deciding for it.

use dept_core::{CoreError, DecomposedPrompt};
use tch::{Kind, Tensor};

use crate::causal::positions_from_mask;
use crate::{ModelError, TextTokenizer};

/// How source and target meet the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// T5: the source goes to the encoder (right-padded), the target is the decoder's labels.
    EncoderDecoder,
    /// GPT-2, Llama: source then target as one right-padded sequence with labels aligned to it (`-100` on the
    /// source); generation continues left-padded sources.
    DecoderOnly,
}

/// How much wider than its narrowest row a bucket of [`length_buckets`] may be, for the encoders' inference passes
/// (the serving engine's prefill, T5's encoder before decoding): at most a fifth of a bucket is padding.
pub const BUCKET_PADDING: f64 = 1.25;

/// Sizes of consecutive buckets over `widths` (sorted ascending) such that each bucket's widest row is at most
/// `ratio` times its narrowest: rows encoded bucket by bucket are padded to their bucket's width, not the batch's.
pub fn length_buckets(widths: &[usize], ratio: f64) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut start = 0;
    for (i, &width) in widths.iter().enumerate() {
        if width as f64 > widths[start].max(1) as f64 * ratio {
            sizes.push(i - start);
            start = i;
        }
    }
    if start < widths.len() {
        sizes.push(widths.len() - start);
    }
    sizes
}

/// Rows of token ids padded to one width, row-major, with the attention mask and the labels (`-100` where nothing
/// is predicted) a backbone takes: what a batch is before it becomes tensors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaddedRows {
    pub rows: usize,
    /// Width of `input_ids` and `attention_mask`.
    pub width: usize,
    pub input_ids: Vec<i64>,
    pub attention_mask: Vec<i64>,
    /// Width of `labels`: the target's for an encoder-decoder, `width` for a decoder-only model.
    pub label_width: usize,
    pub labels: Vec<i64>,
}

/// One example's ids: the source and the target as the architecture encoded them.
pub type Pair<'a> = (&'a [i64], &'a [i64]);

impl Architecture {
    /// Tokens a source keeps when an example is cut to `max_len`: all of them for an encoder; for a decoder-only
    /// model `max_len − max_target_len` (at least one), which leaves room for the target in the same sequence.
    pub fn source_budget(self, max_len: usize, max_target_len: usize) -> usize {
        match self {
            Architecture::EncoderDecoder => max_len,
            Architecture::DecoderOnly => max_len.saturating_sub(max_target_len).max(1),
        }
    }

    /// A source's ids (with the tokenizer's special tokens), cut to [`Architecture::source_budget`]; the same cut
    /// for training and generation.
    pub fn encode_source(
        self,
        tokenizer: &TextTokenizer,
        text: &str,
        max_len: usize,
        max_target_len: usize,
    ) -> Result<Vec<i64>, ModelError> {
        tokenizer.encode(text, Some(self.source_budget(max_len, max_target_len)))
    }

    /// A target's ids: for an encoder-decoder with the tokenizer's special tokens, cut to `max_target_len`; for a
    /// decoder-only model `" " + target` without special tokens, cut to `max_target_len − 1`, then `eos_id`.
    pub fn encode_target(
        self,
        tokenizer: &TextTokenizer,
        text: &str,
        max_target_len: usize,
        eos_id: i64,
    ) -> Result<Vec<i64>, ModelError> {
        match self {
            Architecture::EncoderDecoder => tokenizer.encode(text, Some(max_target_len)),
            Architecture::DecoderOnly => {
                let mut target = tokenizer.encode_plain(&format!(" {text}"))?;
                target.truncate(max_target_len.saturating_sub(1));
                target.push(eos_id);
                Ok(target)
            }
        }
    }

    /// A training batch. Encoder-decoder: sources right-padded to the longest (or exactly to `pad_to`, the
    /// official code's padding), targets to the longest. Decoder-only: each row is source then target,
    /// right-padded to the longest row (or to at least `pad_to`), labels aligned to it: `-100` on the source and
    /// the padding, the target's ids where they sit.
    pub fn training_rows(self, pairs: &[Pair], pad_to: Option<usize>, pad_id: i64) -> PaddedRows {
        match self {
            Architecture::EncoderDecoder => encoder_rows(pairs, pad_to, pad_id),
            Architecture::DecoderOnly => joined_rows(pairs, pad_to, pad_id),
        }
    }

    /// A batch of sources to decode from, labels being the targets right-padded with `-100`. Encoder-decoder: as
    /// for training. Decoder-only: the sources left-padded to the longest (generation continues each row at its
    /// end), whatever `pad_to` says.
    pub fn generation_rows(self, pairs: &[Pair], pad_to: Option<usize>, pad_id: i64) -> PaddedRows {
        let rows = encoder_rows(pairs, pad_to, pad_id);
        match self {
            Architecture::EncoderDecoder => rows,
            Architecture::DecoderOnly => {
                let sources: Vec<&[i64]> = pairs.iter().map(|p| p.0).collect();
                let width = sources.iter().map(|s| s.len()).max().unwrap_or(0);
                PaddedRows {
                    width,
                    input_ids: padded(&sources, width, pad_id, true),
                    attention_mask: mask(&sources, width, true),
                    ..rows
                }
            }
        }
    }

    /// The adapter applied to the word embeddings `embeds` of ids under `attention_mask`. An encoder's inputs are
    /// right-padded, so position `p` is column `p` (`A[..len]`, the official code's computation). A decoder-only
    /// model's may be left-padded for decoding: there a token's position is its index among the real tokens of its
    /// row, so padding on either side changes nothing.
    pub fn apply_adapter(
        self,
        adapter: &DecomposedPrompt,
        embeds: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<(Tensor, Tensor), CoreError> {
        match self {
            Architecture::EncoderDecoder => adapter.apply(embeds, attention_mask),
            Architecture::DecoderOnly => {
                let positions =
                    positions_from_mask(attention_mask).masked_fill(&attention_mask.eq(0), 0);
                adapter.apply_at(embeds, attention_mask, &positions)
            }
        }
    }

    /// The labels a backbone takes once `prompt_len` soft-prompt positions stand in front of the input: unchanged
    /// for an encoder-decoder (its labels are the decoder's); for a decoder-only model `-100` for each prompt
    /// position in front of labels aligned with the input (the official code's `prefix_labels`).
    pub fn labels_after_prompt(self, labels: &Tensor, prompt_len: i64) -> Tensor {
        match self {
            Architecture::EncoderDecoder => labels.shallow_clone(),
            Architecture::DecoderOnly => {
                let shape = [labels.size()[0], prompt_len];
                let prefix = Tensor::full(shape, -100, (Kind::Int64, labels.device()));
                Tensor::cat(&[prefix, labels.to_kind(Kind::Int64)], 1)
            }
        }
    }

    /// PEFT's `task_type` for an adapter on this kind of model (PEFT picks its model wrapper by it).
    pub fn peft_task_type(self) -> &'static str {
        match self {
            Architecture::EncoderDecoder => "SEQ_2_SEQ_LM",
            Architecture::DecoderOnly => "CAUSAL_LM",
        }
    }
}

/// Sources right-padded (to `pad_to`, else to the longest), targets right-padded to the longest with `-100`.
fn encoder_rows(pairs: &[Pair], pad_to: Option<usize>, pad_id: i64) -> PaddedRows {
    let sources: Vec<&[i64]> = pairs.iter().map(|p| p.0).collect();
    let targets: Vec<&[i64]> = pairs.iter().map(|p| p.1).collect();
    let width = pad_to.unwrap_or_else(|| longest(&sources));
    let label_width = longest(&targets);
    PaddedRows {
        rows: pairs.len(),
        width,
        input_ids: padded(&sources, width, pad_id, false),
        attention_mask: mask(&sources, width, false),
        label_width,
        labels: padded(&targets, label_width, -100, false),
    }
}

/// Source then target in one right-padded row, labels `-100` but on the target.
fn joined_rows(pairs: &[Pair], pad_to: Option<usize>, pad_id: i64) -> PaddedRows {
    let sequences: Vec<Vec<i64>> = pairs.iter().map(|(s, t)| [*s, *t].concat()).collect();
    let labels: Vec<Vec<i64>> = pairs
        .iter()
        .map(|(s, t)| [&vec![-100; s.len()][..], t].concat())
        .collect();
    let sequences: Vec<&[i64]> = sequences.iter().map(Vec::as_slice).collect();
    let labels: Vec<&[i64]> = labels.iter().map(Vec::as_slice).collect();
    let width = pad_to.unwrap_or(0).max(longest(&sequences));
    PaddedRows {
        rows: pairs.len(),
        width,
        input_ids: padded(&sequences, width, pad_id, false),
        attention_mask: mask(&sequences, width, false),
        label_width: width,
        labels: padded(&labels, width, -100, false),
    }
}

fn longest(rows: &[&[i64]]) -> usize {
    rows.iter().map(|r| r.len()).max().unwrap_or(0)
}

/// Each row cut or padded with `pad` to `width`: the padding after the row, or before it with `left`.
fn padded(rows: &[&[i64]], width: usize, pad: i64, left: bool) -> Vec<i64> {
    rows.iter()
        .flat_map(|r| {
            let fill = std::iter::repeat_n(pad, width.saturating_sub(r.len()));
            let row = r.iter().copied().take(width);
            if left {
                fill.chain(row).collect::<Vec<_>>()
            } else {
                row.chain(fill).collect()
            }
        })
        .collect()
}

/// 1 for each row's real positions (at the end with `left`, else at the start), 0 elsewhere.
fn mask(rows: &[&[i64]], width: usize, left: bool) -> Vec<i64> {
    rows.iter()
        .flat_map(|r| {
            let n = r.len();
            (0..width).map(move |i| i64::from(if left { i >= width - n } else { i < n }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_padding_under_the_ratio() {
        assert_eq!(
            length_buckets(&[10, 11, 12, 13, 20, 24, 25, 60], 1.25),
            [3, 1, 3, 1]
        );
        assert_eq!(length_buckets(&[5], 1.25), [1]);
        assert!(length_buckets(&[], 1.25).is_empty());
        assert_eq!(length_buckets(&[8, 8, 8], 1.25), [3]);
    }

    #[test]
    fn each_architecture_lays_out_its_rows() {
        let pairs: [Pair; 2] = [(&[5, 6, 7], &[3, 1]), (&[8], &[4, 9, 1])];
        let t5 = Architecture::EncoderDecoder.training_rows(&pairs, None, 0);
        assert_eq!((t5.width, t5.label_width), (3, 3));
        assert_eq!(t5.input_ids, [5, 6, 7, 8, 0, 0]);
        assert_eq!(t5.attention_mask, [1, 1, 1, 1, 0, 0]);
        assert_eq!(t5.labels, [3, 1, -100, 4, 9, 1]);
        assert_eq!(
            Architecture::EncoderDecoder
                .training_rows(&pairs, Some(6), 0)
                .width,
            6
        );

        let causal = Architecture::DecoderOnly.training_rows(&pairs, None, 0);
        assert_eq!(causal.input_ids, [5, 6, 7, 3, 1, 8, 4, 9, 1, 0]);
        assert_eq!(causal.labels, [-100, -100, -100, 3, 1, -100, 4, 9, 1, -100]);
        assert_eq!(
            Architecture::DecoderOnly
                .training_rows(&pairs, Some(8), 0)
                .width,
            8
        );
        assert_eq!(
            Architecture::DecoderOnly
                .training_rows(&pairs, Some(2), 0)
                .width,
            5
        );

        let decode = Architecture::DecoderOnly.generation_rows(&pairs, Some(8), 0);
        assert_eq!(decode.input_ids, [5, 6, 7, 0, 0, 8]);
        assert_eq!(decode.attention_mask, [1, 1, 1, 0, 0, 1]);
        assert_eq!(decode.labels, t5.labels);
    }

    #[test]
    fn budgets_labels_and_task_types() {
        assert_eq!(Architecture::EncoderDecoder.source_budget(16, 4), 16);
        assert_eq!(Architecture::DecoderOnly.source_budget(16, 4), 12);
        assert_eq!(Architecture::DecoderOnly.source_budget(3, 4), 1);
        let labels = Tensor::from_slice(&[1i64, 2]).view([1, 2]);
        let causal = Architecture::DecoderOnly.labels_after_prompt(&labels, 2);
        assert_eq!(
            Vec::<i64>::try_from(causal.view([-1])).unwrap(),
            [-100, -100, 1, 2]
        );
        assert!(Architecture::EncoderDecoder
            .labels_after_prompt(&labels, 2)
            .equal(&labels));
        assert_eq!(Architecture::DecoderOnly.peft_task_type(), "CAUSAL_LM");
    }
}
