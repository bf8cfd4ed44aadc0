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

/// [`split_indices`] cut to `n_obs` rows as the official `--max_train_samples` / `--max_eval_samples` /
/// `--max_predict_samples` cut them (`AbstractTask.subsample` in the official `src/tasks.py`): where the split was
/// re-cut from a permutation, the first `n_obs` rows of that same permutation; where a source split is taken
/// whole, the first `n_obs` rows of a fresh `torch.randperm(len, seed)`. Never the first rows of the file.
/// The official code cuts before k-shot selection and formatting; so must callers.
pub fn subsampled_indices(
    task: &Task,
    split: Split,
    source_len: usize,
    seed: u64,
    n_obs: Option<usize>,
) -> Vec<usize> {
    let mut indices = split_indices(task, split, source_len, seed);
    let Some(n_obs) = n_obs else {
        return indices;
    };
    let taken_whole = matches!(
        (task.split_policy, split),
        (SplitPolicy::HalveValidation, Split::Train)
            | (SplitPolicy::Direct { .. }, _)
            | (SplitPolicy::HoldoutTrain { .. }, Split::Test)
    );
    if taken_whole {
        torch_randperm(indices.len(), seed)
            .into_iter()
            .take(n_obs)
            .map(|i| indices[i])
            .collect()
    } else {
        indices.truncate(n_obs);
        indices
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task;

    #[test]
    fn a_cap_is_a_seeded_sample_not_the_first_rows() {
        // RTE's train is its source train taken whole: the cap is randperm(2490, 42)[:10].
        let rte = task("rte").unwrap();
        let capped = subsampled_indices(rte, Split::Train, 2490, 42, Some(10));
        assert_eq!(capped, torch_randperm(2490, 42)[..10].to_vec());
        assert_ne!(capped, (0..10).collect::<Vec<_>>());
        // Its validation half is already a permutation of the source validation: the cap is its prefix.
        let validation = split_indices(rte, Split::Validation, 277, 42);
        assert_eq!(
            subsampled_indices(rte, Split::Validation, 277, 42, Some(7)),
            validation[..7].to_vec()
        );
        // SST-2's train is the held-out permutation's tail: a prefix of it, disjoint from validation.
        let sst2 = task("sst2").unwrap();
        let train = subsampled_indices(sst2, Split::Train, 5000, 42, Some(50));
        assert_eq!(train, torch_randperm(5000, 42)[1000..1050].to_vec());
        // A cap above the split's size keeps the whole split (in the sampled order).
        assert_eq!(
            subsampled_indices(rte, Split::Train, 20, 42, Some(100)).len(),
            20
        );
        assert_eq!(
            subsampled_indices(rte, Split::Train, 20, 42, None),
            (0..20).collect::<Vec<_>>()
        );
    }
}
