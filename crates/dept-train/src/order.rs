//! The order training examples are drawn in: per-epoch shuffles (torch's `randperm` with seed + epoch), consumed
//! batch by batch, optionally grouped by length. A pure function of (seed, epoch, position), so a resumed run draws
//! exactly the batches the uninterrupted one did without saving any random state.

use crate::checkpoint::TrainState;
use crate::config::Batching;

/// HF's `get_length_grouped_indices` caps mega-batches at 50 batches.
const MAX_MEGABATCH_BATCHES: usize = 50;

pub struct DataOrder {
    seed: u64,
    batching: Batching,
    /// Input lengths in tokens, for length grouping.
    lengths: Vec<usize>,
    batch_size: usize,
    epoch: Option<u64>,
    permutation: Vec<usize>,
}

impl DataOrder {
    pub fn new(lengths: Vec<usize>, batch_size: usize, seed: u64, batching: Batching) -> Self {
        DataOrder {
            seed,
            batching,
            lengths,
            batch_size,
            epoch: None,
            permutation: Vec::new(),
        }
    }

    /// The next batch (the last of an epoch may be shorter, as PyTorch's DataLoader), advancing `state`.
    pub fn next_batch(&mut self, state: &mut TrainState) -> Vec<usize> {
        let len = self.lengths.len();
        if state.cursor >= len {
            state.epoch += 1;
            state.cursor = 0;
        }
        if self.epoch != Some(state.epoch) {
            let shuffled =
                dept_data::randperm::torch_randperm(len, self.seed.wrapping_add(state.epoch));
            self.permutation = match self.batching {
                Batching::Random => shuffled,
                Batching::LengthGrouped => {
                    length_grouped(&shuffled, &self.lengths, self.batch_size)
                }
            };
            self.epoch = Some(state.epoch);
        }
        let end = (state.cursor + self.batch_size).min(len);
        let batch = self.permutation[state.cursor..end].to_vec();
        state.cursor = end;
        batch
    }
}

/// transformers' `get_length_grouped_indices` (`group_by_length=True`) on a given shuffle: mega-batches of
/// `min(n / (4·batch), 50)` batches (at least one) are each sorted longest first (a stable sort), and the
/// longest example of all is swapped to the very front so that running out of memory happens at once. Every
/// example is still seen once per epoch; only which examples share a batch changes.
pub fn length_grouped(shuffled: &[usize], lengths: &[usize], batch_size: usize) -> Vec<usize> {
    let batch_size = batch_size.max(1);
    let mult = (lengths.len() / (batch_size * 4)).clamp(1, MAX_MEGABATCH_BATCHES);
    let mut megabatches: Vec<Vec<usize>> = shuffled
        .chunks(mult * batch_size)
        .map(|chunk| {
            let mut chunk = chunk.to_vec();
            chunk.sort_by(|&a, &b| lengths[b].cmp(&lengths[a]));
            chunk
        })
        .collect();
    // The first mega-batch whose head is the longest (torch.argmax returns the first maximum).
    let longest = megabatches
        .iter()
        .enumerate()
        .fold((0, 0), |(best_i, best_len), (i, m)| {
            let len = lengths[m[0]];
            if len > best_len {
                (i, len)
            } else {
                (best_i, best_len)
            }
        })
        .0;
    if longest != 0 && !megabatches.is_empty() {
        let head = megabatches[longest][0];
        megabatches[longest][0] = megabatches[0][0];
        megabatches[0][0] = head;
    }
    megabatches.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn megabatches_are_sorted_longest_first_and_the_longest_leads() {
        // 10 examples, batch 2: mult = min(10 / 8, 50) = 1, so mega-batches of 2.
        let lengths = [5, 1, 9, 3, 7, 2, 8, 4, 6, 10];
        let shuffled = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let order = length_grouped(&shuffled, &lengths, 2);
        // [0,1] [2,3] [4,5] [6,7] [8,9] sorted: [0,1] [2,3] [4,5] [6,7] [9,8]; example 9 (10 tokens) swaps with 0.
        assert_eq!(order, [9, 1, 2, 3, 4, 5, 6, 7, 0, 8]);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, shuffled, "every example once");
    }

    #[test]
    fn grouping_shrinks_padding_and_is_reproducible() {
        let lengths: Vec<usize> = (0..4000).map(|i| 10 + (i * 7919) % 190).collect();
        let padded_tokens = |batching| {
            let mut order = DataOrder::new(lengths.clone(), 16, 42, batching);
            let mut state = TrainState::default();
            let mut total = 0;
            while state.epoch == 0 {
                let batch = order.next_batch(&mut state);
                if state.epoch == 0 && !batch.is_empty() {
                    total += batch.len() * batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
                }
                if state.cursor >= lengths.len() {
                    break;
                }
            }
            total
        };
        let (random, grouped) = (
            padded_tokens(Batching::Random),
            padded_tokens(Batching::LengthGrouped),
        );
        assert!(
            grouped * 3 < random * 2,
            "random {random}, grouped {grouped}"
        );
        // Deterministic from (seed, epoch, cursor): a fresh order at the same state gives the same batch.
        let mut a = DataOrder::new(lengths.clone(), 16, 7, Batching::LengthGrouped);
        let mut b = DataOrder::new(lengths, 16, 7, Batching::LengthGrouped);
        let mut state = TrainState {
            cursor: 320,
            ..TrainState::default()
        };
        let mut state_b = state.clone();
        assert_eq!(a.next_batch(&mut state), b.next_batch(&mut state_b));
    }
}
