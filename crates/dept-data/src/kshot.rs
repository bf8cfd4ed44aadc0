//! k-shot training sets as the official `train.py` draws them (`--k_shot_example k`, per training seed).
//!
//! The formatted training split is shuffled with `Dataset.shuffle(seed)` ([`numpy_permutation`]); then rows are
//! taken in that order while their class still has room (`k / classes` each), except that the last free slot takes
//! any class, until `k` rows are taken. STS-B counts scores `<= 2.5` as class "0" and the rest as "1". The result is
//! in shuffled order, as `shuffled.select(index_lst)` returns it.

use std::collections::BTreeMap;

use crate::error::{DataError, Result};
use crate::example::TextExample;
use crate::numpy_rng::numpy_permutation;
use crate::task::Task;

/// Classes per task of the official `num_labels_mapping` (tasks outside it have no k-shot setting there).
fn classes(task: &Task) -> Option<&'static [&'static str]> {
    match task.name {
        "mnli" | "cb" => Some(&["0", "1", "2"]),
        "qqp" | "qnli" | "sst2" | "mrpc" | "stsb" | "rte" | "cola" | "boolq" | "wic" | "wsc"
        | "multirc" | "scitail" => Some(&["0", "1"]),
        _ => None,
    }
}

/// Picks the k-shot subset of an (already split) training set.
pub fn k_shot(task: &Task, train: &[TextExample], k: usize, seed: u64) -> Result<Vec<TextExample>> {
    let classes = classes(task).ok_or_else(|| {
        DataError::Invalid(format!(
            "{}: the official code defines no k-shot classes for this task",
            task.name
        ))
    })?;
    if k == 0 {
        return Err(DataError::Invalid("k-shot needs k >= 1".to_string()));
    }
    let per_class = k / classes.len();
    let mut counts: BTreeMap<&str, usize> = classes.iter().map(|c| (*c, 0)).collect();
    let mut taken = Vec::with_capacity(k);
    for i in numpy_permutation(train.len(), seed) {
        let total: usize = counts.values().sum();
        if total == k {
            break;
        }
        let example = &train[i];
        let class = if task.name == "stsb" {
            let score: f64 = example.target.parse().map_err(|_| {
                DataError::Invalid(format!(
                    "stsb example {}: target {:?} is not a score",
                    example.id, example.target
                ))
            })?;
            if score <= 2.5 {
                "0"
            } else {
                "1"
            }
        } else {
            example.target.as_str()
        };
        let count = counts.get_mut(class).ok_or_else(|| {
            DataError::Invalid(format!(
                "{} example {}: target {class:?} is not one of {classes:?}",
                task.name, example.id
            ))
        })?;
        if *count < per_class || total == k - 1 {
            *count += 1;
            taken.push(example.clone());
        }
    }
    Ok(taken)
}
