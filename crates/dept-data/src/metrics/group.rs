//! MultiRC exact match: the mean over questions of "all answers of the question predicted right" (T5's
//! `mean_group_metric(exact_match)`).

use std::collections::BTreeMap;

use super::check_pairs;
use crate::error::{DataError, Result};

/// `groups[i]` is the question of example `i`. Empty input is an error (numpy's mean of no groups is `NaN`).
pub fn group_exact_match(predictions: &[&str], targets: &[&str], groups: &[&str]) -> Result<f64> {
    check_pairs("em", predictions.len(), targets.len())?;
    if groups.len() != targets.len() {
        return Err(DataError::Invalid(format!(
            "em: {} groups for {} targets",
            groups.len(),
            targets.len()
        )));
    }
    let mut all_right: BTreeMap<&str, bool> = BTreeMap::new();
    for ((p, t), g) in predictions.iter().zip(targets).zip(groups) {
        let entry = all_right.entry(g).or_insert(true);
        *entry &= p == t;
    }
    Ok(all_right.values().filter(|v| **v).count() as f64 / all_right.len() as f64)
}
