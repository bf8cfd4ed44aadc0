//! Tokenised examples and the padded batches built from them.

use dept_data::TextExample;
use dept_models::TextTokenizer;
use tch::{Device, Tensor};

use crate::config::Padding;
use crate::TrainError;

/// One example as ids: input cut to `max_len` and target cut to `max_target_len` (special tokens kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub input_ids: Vec<i64>,
    pub target_ids: Vec<i64>,
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
            })
        })
        .collect()
}

/// Input ids and mask `[b, len]`, labels `[b, target_len]` with `-100` at padding.
pub struct Batch {
    pub input_ids: Tensor,
    pub attention_mask: Tensor,
    pub labels: Tensor,
}

impl Batch {
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
        let mask_values: Vec<i64> = items
            .iter()
            .flat_map(|e| (0..input_len).map(move |i| i64::from(i < e.input_ids.len())))
            .collect();
        let attention_mask = Tensor::from_slice(&mask_values)
            .view([rows, input_len as i64])
            .to_device(device);
        let labels = Tensor::from_slice(&labels)
            .view([rows, target_len as i64])
            .to_device(device);
        Batch {
            input_ids,
            attention_mask,
            labels,
        }
    }
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
    fn length_groups_cover_every_example_once() {
        let items: Vec<Encoded> = [3, 9, 1, 7, 5]
            .iter()
            .map(|&n| enc(&vec![2; n], &[1]))
            .collect();
        let groups = length_grouped(&items, 2);
        assert_eq!(groups, vec![vec![1, 3], vec![4, 0], vec![2]]);
    }
}
