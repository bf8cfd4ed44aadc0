//! Accuracy, binary F1, macro F1 and Matthews correlation over label strings.

use std::collections::BTreeMap;

/// Share of predictions equal to their target.
pub fn accuracy(predictions: &[&str], targets: &[&str]) -> f64 {
    if targets.is_empty() {
        return 0.0;
    }
    let hits = predictions
        .iter()
        .zip(targets)
        .filter(|(p, t)| p == t)
        .count();
    hits as f64 / targets.len() as f64
}

fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    let denominator = 2 * tp + fp + fn_;
    if denominator == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denominator as f64
    }
}

/// The official `f1_score_with_invalid`: a prediction other than `"0"`/`"1"` is replaced by the opposite of its
/// target, then scikit-learn's binary F1 of class 1.
pub fn binary_f1_with_invalid(predictions: &[&str], targets: &[&str]) -> f64 {
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (p, t) in predictions.iter().zip(targets) {
        let p = if *p == "0" || *p == "1" {
            *p
        } else if *t == "1" {
            "0"
        } else {
            "1"
        };
        match (p, *t) {
            ("1", "1") => tp += 1,
            ("1", _) => fp += 1,
            (_, "1") => fn_ += 1,
            _ => {}
        }
    }
    f1(tp, fp, fn_)
}

/// The official `mean_multiclass_f1`: scikit-learn `fbeta_score(beta=1, labels=classes, average="macro")`. A
/// prediction outside `classes` is a false negative for its target's class and no class's false positive.
pub fn macro_f1(predictions: &[&str], targets: &[&str], classes: &[&str]) -> f64 {
    if classes.is_empty() {
        return 0.0;
    }
    let total: f64 = classes
        .iter()
        .map(|c| {
            let (mut tp, mut fp, mut fn_) = (0, 0, 0);
            for (p, t) in predictions.iter().zip(targets) {
                match (p == c, t == c) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => fn_ += 1,
                    _ => {}
                }
            }
            f1(tp, fp, fn_)
        })
        .sum();
    total / classes.len() as f64
}

/// scikit-learn's `matthews_corrcoef` over arbitrary labels (an invalid prediction is a class of its own); 0 when
/// either side is constant.
pub fn matthews(predictions: &[&str], targets: &[&str]) -> f64 {
    let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
    for l in predictions.iter().chain(targets) {
        let next = labels.len();
        labels.entry(l).or_insert(next);
    }
    let k = labels.len();
    let mut t_sum = vec![0f64; k];
    let mut p_sum = vec![0f64; k];
    let mut correct = 0f64;
    for (p, t) in predictions.iter().zip(targets) {
        t_sum[labels[t]] += 1.0;
        p_sum[labels[p]] += 1.0;
        if p == t {
            correct += 1.0;
        }
    }
    let n = targets.len().min(predictions.len()) as f64;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let cov_ytyp = correct * n - dot(&t_sum, &p_sum);
    let cov_ypyp = n * n - dot(&p_sum, &p_sum);
    let cov_ytyt = n * n - dot(&t_sum, &t_sum);
    if cov_ypyp * cov_ytyt == 0.0 {
        return 0.0;
    }
    cov_ytyp / (cov_ytyt * cov_ypyp).sqrt()
}
