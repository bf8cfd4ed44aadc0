//! MultiRC exact match: the mean over questions of "all answers of the question predicted right" (T5's
//! `mean_group_metric(exact_match)`).

use std::collections::BTreeMap;

/// `groups[i]` is the question of example `i`.
pub fn group_exact_match(predictions: &[&str], targets: &[&str], groups: &[&str]) -> f64 {
    let mut all_right: BTreeMap<&str, bool> = BTreeMap::new();
    for ((p, t), g) in predictions.iter().zip(targets).zip(groups) {
        let entry = all_right.entry(g).or_insert(true);
        *entry &= p == t;
    }
    if all_right.is_empty() {
        return 0.0;
    }
    all_right.values().filter(|v| **v).count() as f64 / all_right.len() as f64
}
