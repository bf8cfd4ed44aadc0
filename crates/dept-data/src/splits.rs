//! Which source rows make up each split, as the official `AbstractTask.get(split_validation_test=True)` picks them.

use crate::randperm::torch_randperm;
use crate::task::{Split, SplitPolicy, Task, HOLDOUT_VALIDATION_SIZE};

/// The seed the official code always shuffles splits with (`AutoTask.get(..., seed=42)` in `train.py`), whatever
/// the training seed. Use it to get the paper's rows.
pub const OFFICIAL_SPLIT_SEED: u64 = 42;

/// Row indices into the source split ([`Task::source_split`]) for `split`, in the order the official code yields
/// them (shuffled order for the re-split parts).
pub fn split_indices(task: &Task, split: Split, source_len: usize, seed: u64) -> Vec<usize> {
    match (task.split_policy, split) {
        (SplitPolicy::HalveValidation, Split::Train) | (SplitPolicy::Direct { .. }, _) => {
            (0..source_len).collect()
        }
        (SplitPolicy::HalveValidation, held) => {
            let perm = torch_randperm(source_len, seed);
            let half = source_len / 2;
            if held == Split::Validation {
                perm[..half].to_vec()
            } else {
                perm[half..].to_vec()
            }
        }
        (SplitPolicy::HoldoutTrain { .. }, Split::Test) => (0..source_len).collect(),
        (SplitPolicy::HoldoutTrain { max_train, .. }, part) => {
            let perm = torch_randperm(source_len, seed);
            let cut = HOLDOUT_VALIDATION_SIZE.min(source_len);
            if part == Split::Validation {
                perm[..cut].to_vec()
            } else {
                let rest = &perm[cut..];
                let keep = max_train.map_or(rest.len(), |m| m.min(rest.len()));
                rest[..keep].to_vec()
            }
        }
    }
}
