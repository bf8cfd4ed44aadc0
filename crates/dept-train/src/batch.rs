//! Tokenised examples and the padded batches built from them.

use dept_data::TextExample;
use dept_models::features::FeatureStore;
use dept_models::{Architecture, TextTokenizer};
use tch::{Device, Tensor};

use crate::config::Padding;
use crate::TrainError;

/// One example as ids: input cut to `max_len` and target cut to `max_target_len` (special tokens kept).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Encoded {
    pub input_ids: Vec<i64>,
    pub target_ids: Vec<i64>,
    /// The example's image id in the feature file (vision-language tasks).
    pub image: Option<String>,
    /// The example's loss weight (VQA: its answer's score), when its task has one.
    pub weight: Option<f64>,
}

/// [`encode_examples`] for a decoder-only model, where source and target share one sequence of at most
/// `max_len` tokens: the source (with the tokenizer's special tokens, e.g. Llama's BOS) cut to
/// `max_len − max_target_len`, and the target as `" " + target` without special tokens, cut to
/// `max_target_len − 1`, then `eos_id`. The source is cut the same way for training and generation.
pub fn encode_causal_examples(
    tokenizer: &TextTokenizer,
    examples: &[TextExample],
    max_len: usize,
    max_target_len: usize,
    eos_id: i64,
) -> Result<Vec<Encoded>, TrainError> {
    examples
        .iter()
        .map(|e| {
            let mut target = tokenizer.encode_plain(&format!(" {}", e.target))?;
            target.truncate(max_target_len.saturating_sub(1));
            target.push(eos_id);
            Ok(Encoded {
                input_ids: encode_source(
                    Architecture::DecoderOnly,
                    tokenizer,
                    &e.input,
                    max_len,
                    max_target_len,
                )?,
                target_ids: target,
                image: e.extra.image.clone(),
                weight: e.extra.loss_weight,
            })
        })
        .collect()
}

/// A source's ids: cut to `max_len` for an encoder; for a decoder-only model to `max_len − max_target_len`, which
/// leaves room for the target in the same sequence.
pub fn encode_source(
    architecture: Architecture,
    tokenizer: &TextTokenizer,
    text: &str,
    max_len: usize,
    max_target_len: usize,
) -> Result<Vec<i64>, TrainError> {
    let len = match architecture {
        Architecture::EncoderDecoder => max_len,
        Architecture::DecoderOnly => max_len.saturating_sub(max_target_len).max(1),
    };
    Ok(tokenizer.encode(text, Some(len))?)
}

/// [`encode_examples`] or [`encode_causal_examples`], as the backbone's architecture needs.
pub fn encode_for(
    architecture: Architecture,
    tokenizer: &TextTokenizer,
    examples: &[TextExample],
    max_len: usize,
    max_target_len: usize,
    eos_id: i64,
) -> Result<Vec<Encoded>, TrainError> {
    match architecture {
        Architecture::EncoderDecoder => {
            encode_examples(tokenizer, examples, max_len, max_target_len)
        }
        Architecture::DecoderOnly => {
            encode_causal_examples(tokenizer, examples, max_len, max_target_len, eos_id)
        }
    }
}

pub fn encode_examples(
    tokenizer: &TextTokenizer,
    examples: &[TextExample],
    max_len: usize,
    max_target_len: usize,
) -> Result<Vec<Encoded>, TrainError> {
    examples
        .iter()
        .map(|e| {
            Ok(Encoded {
                input_ids: tokenizer.encode(&e.input, Some(max_len))?,
                target_ids: tokenizer.encode(&e.target, Some(max_target_len))?,
                image: e.extra.image.clone(),
                weight: e.extra.loss_weight,
            })
        })
        .collect()
}

/// Input ids and mask `[b, len]`, labels `[b, target_len]` with `-100` at padding, and for a vision-language
/// model the images' features `[b, tokens, width]`.
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub labels: Tensor,
    pub visual: Option<Tensor>,
    /// Per-example loss weights `[b]`: the loss is then VL-Adapter's weighted mean of per-example means
    /// ([`dept_models::backbone::weighted_example_loss`]) instead of the mean over target tokens.
    pub weights: Option<Tensor>,
}

impl Batch {
    /// Per-example loss weights from the items (when `use_weights` and every item has one), onto `device`.
    pub fn with_weights(mut self, items: &[&Encoded], use_weights: bool, device: Device) -> Batch {
        let weights: Option<Vec<f32>> = items.iter().map(|e| e.weight.map(|w| w as f32)).collect();
        if let (true, Some(weights)) = (use_weights, weights) {
            self.weights = Some(Tensor::from_slice(&weights).to_device(device));
        }
        self
    }

    /// Reads the items' image features from `features` (when there is a feature file) onto `device`.
    pub fn with_visual(
        mut self,
        items: &[&Encoded],
        features: Option<&FeatureStore>,
        device: Device,
    ) -> Result<Batch, TrainError> {
        if let Some(store) = features {
            let ids = items
                .iter()
                .map(|e| {
                    e.image.as_deref().ok_or_else(|| {
                        TrainError::Run(format!(
                            "an example has no image id, but the run reads image features from {}: is the task \
                             a vision-language one (vqa, coco_caption)?",
                            store.path().display()
                        ))
                    })
                })
                .collect::<Result<Vec<&str>, TrainError>>()?;
            self.visual = Some(store.batch(&ids)?.to_device(device));
        }
        Ok(self)
    }

    /// Pads inputs with `pad_id` to the longest input (`Padding::Longest`) or to `max_len`
    /// (`Padding::MaxLength`, the official code), and targets to the longest target.
    pub fn new(
        items: &[&Encoded],
        padding: Padding,
        max_len: usize,
        pad_id: i64,
        device: Device,
    ) -> Batch {
        let input_len = match padding {
            Padding::Longest => items.iter().map(|e| e.input_ids.len()).max().unwrap_or(0),
            Padding::MaxLength => max_len,
        };
        let target_len = items.iter().map(|e| e.target_ids.len()).max().unwrap_or(0);
        let input_ids = padded(items.iter().map(|e| &e.input_ids), input_len, pad_id);
        let labels = padded(items.iter().map(|e| &e.target_ids), target_len, -100);
        let rows = items.len() as i64;
        let input_ids = Tensor::from_slice(&input_ids)
            .view([rows, input_len as i64])
            .to_device(device);
        let lengths: Vec<usize> = items.iter().map(|e| e.input_ids.len()).collect();
        let attention_mask = Tensor::from_slice(&mask(&lengths, input_len, false))
            .view([rows, input_len as i64])
            .to_device(device);
        let labels = Tensor::from_slice(&labels)
            .view([rows, target_len as i64])
            .to_device(device);
        Batch {
            input_ids,
            attention_mask,
            labels,
            visual: None,
            weights: None,
        }
    }

    /// A training batch for the backbone's architecture: [`Batch::new`] for an encoder-decoder; for a
    /// decoder-only model each row is source then target, right-padded (to the longest row, or to `max_len` with
    /// `Padding::MaxLength`, the official code's padding), with labels aligned to it: `-100` on the source and
    /// the padding, the target's ids where they sit.
    pub fn for_training(
        items: &[&Encoded],
        architecture: Architecture,
        padding: Padding,
        max_len: usize,
        pad_id: i64,
        device: Device,
    ) -> Batch {
        if architecture == Architecture::EncoderDecoder {
            return Batch::new(items, padding, max_len, pad_id, device);
        }
        let sequences: Vec<Vec<i64>> = items
            .iter()
            .map(|e| e.input_ids.iter().chain(&e.target_ids).copied().collect())
            .collect();
        let labels: Vec<Vec<i64>> = items
            .iter()
            .map(|e| {
                std::iter::repeat_n(-100, e.input_ids.len())
                    .chain(e.target_ids.iter().copied())
                    .collect()
            })
            .collect();
        let longest = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let len = match padding {
            Padding::Longest => longest,
            Padding::MaxLength => max_len.max(longest),
        };
        let lengths: Vec<usize> = sequences.iter().map(Vec::len).collect();
        let rows = items.len() as i64;
        let to_tensor = |values: Vec<i64>| {
            Tensor::from_slice(&values)
                .view([rows, len as i64])
                .to_device(device)
        };
        Batch {
            input_ids: to_tensor(padded(sequences.iter(), len, pad_id)),
            attention_mask: to_tensor(mask(&lengths, len, false)),
            labels: to_tensor(padded(labels.iter(), len, -100)),
            visual: None,
            weights: None,
        }
    }

    /// A batch of sources to decode from: [`Batch::new`] for an encoder-decoder; for a decoder-only model the
    /// sources left-padded to the longest (generation continues each row at its end). `labels` are the targets,
    /// right-padded with `-100`, as in [`Batch::new`].
    pub fn for_generation(
        items: &[&Encoded],
        architecture: Architecture,
        padding: Padding,
        max_len: usize,
        pad_id: i64,
        device: Device,
    ) -> Batch {
        let mut batch = Batch::new(items, padding, max_len, pad_id, device);
        if architecture == Architecture::DecoderOnly {
            let lengths: Vec<usize> = items.iter().map(|e| e.input_ids.len()).collect();
            let len = lengths.iter().copied().max().unwrap_or(0);
            let ids: Vec<i64> = items
                .iter()
                .flat_map(|e| {
                    std::iter::repeat_n(pad_id, len - e.input_ids.len())
                        .chain(e.input_ids.iter().copied())
                })
                .collect();
            let shape = [items.len() as i64, len as i64];
            batch.input_ids = Tensor::from_slice(&ids).view(shape).to_device(device);
            batch.attention_mask = Tensor::from_slice(&mask(&lengths, len, true))
                .view(shape)
                .to_device(device);
        }
        batch
    }
}

/// 1 for each row's `lengths[i]` real positions (at the end with `left`, else at the start), 0 elsewhere.
fn mask(lengths: &[usize], len: usize, left: bool) -> Vec<i64> {
    lengths
        .iter()
        .flat_map(|&n| (0..len).map(move |i| i64::from(if left { i >= len - n } else { i < n })))
        .collect()
}

fn padded<'a>(rows: impl Iterator<Item = &'a Vec<i64>>, len: usize, pad: i64) -> Vec<i64> {
    rows.flat_map(|r| r.iter().copied().chain(std::iter::repeat(pad)).take(len))
        .collect()
}

/// Evaluation batches of similar-length inputs (longest first), as index lists into `encoded`; callers put
/// predictions back in the original order with these indices.
pub fn length_grouped(encoded: &[Encoded], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..encoded.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].input_ids.len()));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(input: &[i64], target: &[i64]) -> Encoded {
        Encoded {
            input_ids: input.to_vec(),
            target_ids: target.to_vec(),
            image: None,
            weight: None,
        }
    }

    #[test]
    fn pads_inputs_and_masks_targets() {
        let a = enc(&[5, 6, 7, 1], &[3, 1]);
        let b = enc(&[8, 1], &[4, 9, 1]);
        let batch = Batch::new(&[&a, &b], Padding::Longest, 16, 0, Device::Cpu);
        assert_eq!(
            Vec::<Vec<i64>>::try_from(&batch.input_ids).unwrap(),
            vec![vec![5, 6, 7, 1], vec![8, 1, 0, 0]]
        );
        assert_eq!(
            Vec::<Vec<i64>>::try_from(&batch.attention_mask).unwrap(),
            vec![vec![1, 1, 1, 1], vec![1, 1, 0, 0]]
        );
        assert_eq!(
            Vec::<Vec<i64>>::try_from(&batch.labels).unwrap(),
            vec![vec![3, 1, -100], vec![4, 9, 1]]
        );
        let official = Batch::new(&[&a, &b], Padding::MaxLength, 6, 0, Device::Cpu);
        assert_eq!(official.input_ids.size(), [2, 6]);
    }

    #[test]
    fn decoder_only_batches_join_source_and_target_and_left_pad_for_decoding() {
        let a = enc(&[5, 6, 7], &[3, 1]);
        let b = enc(&[8], &[4, 9, 1]);
        let arch = Architecture::DecoderOnly;
        let train = Batch::for_training(&[&a, &b], arch, Padding::Longest, 16, 0, Device::Cpu);
        let rows = |t: &Tensor| Vec::<Vec<i64>>::try_from(t).unwrap();
        assert_eq!(
            rows(&train.input_ids),
            vec![vec![5, 6, 7, 3, 1], vec![8, 4, 9, 1, 0]]
        );
        assert_eq!(
            rows(&train.attention_mask),
            vec![vec![1, 1, 1, 1, 1], vec![1, 1, 1, 1, 0]]
        );
        assert_eq!(
            rows(&train.labels),
            vec![vec![-100, -100, -100, 3, 1], vec![-100, 4, 9, 1, -100]]
        );
        let official = Batch::for_training(&[&a, &b], arch, Padding::MaxLength, 8, 0, Device::Cpu);
        assert_eq!(official.input_ids.size(), [2, 8]);
        let decode = Batch::for_generation(&[&a, &b], arch, Padding::Longest, 16, 0, Device::Cpu);
        assert_eq!(rows(&decode.input_ids), vec![vec![5, 6, 7], vec![0, 0, 8]]);
        assert_eq!(
            rows(&decode.attention_mask),
            vec![vec![1, 1, 1], vec![0, 0, 1]]
        );
        // An encoder-decoder's batches are `Batch::new`'s.
        let t5 = Batch::for_training(
            &[&a, &b],
            Architecture::EncoderDecoder,
            Padding::Longest,
            16,
            0,
            Device::Cpu,
        );
        assert_eq!(rows(&t5.labels), vec![vec![3, 1, -100], vec![4, 9, 1]]);
    }

    #[test]
    fn length_groups_cover_every_example_once() {
        let items: Vec<Encoded> = [3, 9, 1, 7, 5]
            .iter()
            .map(|&n| enc(&vec![2; n], &[1]))
            .collect();
        let groups = length_grouped(&items, 2);
        assert_eq!(groups, vec![vec![1, 3], vec![4, 0], vec![2]]);
    }
}
