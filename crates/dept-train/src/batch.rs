//! Tokenised examples and the padded batches built from them.

use dept_data::TextExample;
use dept_models::features::FeatureStore;
use dept_models::layout::Pair;
use dept_models::{Architecture, PaddedRows, TextTokenizer};
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

/// Examples as ids, source and target encoded as the backbone's architecture needs (`eos_id` ends a decoder-only
/// model's targets).
pub fn encode_for(
    architecture: Architecture,
    tokenizer: &TextTokenizer,
    examples: &[TextExample],
    max_len: usize,
    max_target_len: usize,
    eos_id: i64,
) -> Result<Vec<Encoded>, TrainError> {
    examples
        .iter()
        .map(|e| {
            Ok(Encoded {
                input_ids: architecture.encode_source(
                    tokenizer,
                    &e.input,
                    max_len,
                    max_target_len,
                )?,
                target_ids: architecture.encode_target(
                    tokenizer,
                    &e.target,
                    max_target_len,
                    eos_id,
                )?,
                image: e.extra.image.clone(),
                weight: e.extra.loss_weight,
            })
        })
        .collect()
}

/// [`encode_for`] an encoder-decoder: input cut to `max_len` and target cut to `max_target_len` (special tokens
/// kept).
pub fn encode_examples(
    tokenizer: &TextTokenizer,
    examples: &[TextExample],
    max_len: usize,
    max_target_len: usize,
) -> Result<Vec<Encoded>, TrainError> {
    // An encoder-decoder's targets end as its tokenizer ends them: no end-of-sequence id is added.
    let no_eos = -1;
    let architecture = Architecture::EncoderDecoder;
    encode_for(
        architecture,
        tokenizer,
        examples,
        max_len,
        max_target_len,
        no_eos,
    )
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
    /// (`Padding::MaxLength`, the official code), and targets to the longest target: an encoder-decoder's batch.
    pub fn new(
        items: &[&Encoded],
        padding: Padding,
        max_len: usize,
        pad_id: i64,
        device: Device,
    ) -> Batch {
        Batch::for_training(
            items,
            Architecture::EncoderDecoder,
            padding,
            max_len,
            pad_id,
            device,
        )
    }

    /// A training batch laid out for the backbone's architecture ([`Architecture::training_rows`]): padded to
    /// the longest row, or to `max_len` with `Padding::MaxLength` (the official code's padding).
    pub fn for_training(
        items: &[&Encoded],
        architecture: Architecture,
        padding: Padding,
        max_len: usize,
        pad_id: i64,
        device: Device,
    ) -> Batch {
        let rows = architecture.training_rows(&pairs(items), pad_to(padding, max_len), pad_id);
        Batch::from_rows(rows, device)
    }

    /// A batch of sources to decode from, laid out for the backbone's architecture
    /// ([`Architecture::generation_rows`]); `labels` are the targets, right-padded with `-100`.
    pub fn for_generation(
        items: &[&Encoded],
        architecture: Architecture,
        padding: Padding,
        max_len: usize,
        pad_id: i64,
        device: Device,
    ) -> Batch {
        let rows = architecture.generation_rows(&pairs(items), pad_to(padding, max_len), pad_id);
        Batch::from_rows(rows, device)
    }

    fn from_rows(rows: PaddedRows, device: Device) -> Batch {
        let tensor = |values: &[i64], width: usize| {
            Tensor::from_slice(values)
                .view([rows.rows as i64, width as i64])
                .to_device(device)
        };
        Batch {
            input_ids: tensor(&rows.input_ids, rows.width),
            attention_mask: tensor(&rows.attention_mask, rows.width),
            labels: tensor(&rows.labels, rows.label_width),
            visual: None,
            weights: None,
        }
    }
}

fn pairs<'a>(items: &[&'a Encoded]) -> Vec<Pair<'a>> {
    items
        .iter()
        .map(|e| (e.input_ids.as_slice(), e.target_ids.as_slice()))
        .collect()
}

/// The width a batch is padded to: the longest row's, or at least `max_len` with `Padding::MaxLength`.
fn pad_to(padding: Padding, max_len: usize) -> Option<usize> {
    match padding {
        Padding::Longest => None,
        Padding::MaxLength => Some(max_len),
    }
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
