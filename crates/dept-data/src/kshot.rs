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
use crate::task::{ClassOf, KShotClasses, Task};

impl KShotClasses {
    /// The class of one example of `task`.
    fn class<'a>(&self, task: &Task, example: &'a TextExample) -> Result<&'a str> {
        let ClassOf::ScoreAtMost(threshold) = self.class_of else {
            return Ok(example.target.as_str());
        };
        let score: f64 = example.target.parse().map_err(|_| {
            DataError::Invalid(format!(
                "{} example {}: target {:?} is not a score",
                task.name, example.id, example.target
            ))
        })?;
        let [low, high] = self.classes else {
            return Err(DataError::Invalid(format!(
                "{}: a score threshold needs exactly two k-shot classes, not {:?}",
                task.name, self.classes
            )));
        };
        Ok(if score <= threshold { low } else { high })
    }
}

/// Picks the k-shot subset of an (already split) training set.
pub fn k_shot(task: &Task, train: &[TextExample], k: usize, seed: u64) -> Result<Vec<TextExample>> {
    let kshot = task.k_shot.ok_or_else(|| {
        DataError::Invalid(format!(
            "{}: the official code defines no k-shot classes for this task",
            task.name
        ))
    })?;
    if k == 0 {
        return Err(DataError::Invalid("k-shot needs k >= 1".to_string()));
    }
    let classes = kshot.classes;
    let per_class = k / classes.len();
    let mut counts: BTreeMap<&str, usize> = classes.iter().map(|c| (*c, 0)).collect();
    let mut taken = Vec::with_capacity(k);
    for i in numpy_permutation(train.len(), seed) {
        let total: usize = counts.values().sum();
        if total == k {
            break;
        }
        let example = &train[i];
        let class = kshot.class(task, example)?;
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
