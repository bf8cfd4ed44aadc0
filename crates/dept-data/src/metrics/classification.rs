//! Accuracy, binary F1, macro F1 and Matthews correlation over label strings.

use std::collections::BTreeMap;

use super::check_pairs;
use crate::error::{DataError, Result};

/// Share of predictions equal to their target (the official `accuracy`). Empty input is an error (numpy's mean
/// of nothing would be `NaN`).
pub fn accuracy(predictions: &[&str], targets: &[&str]) -> Result<f64> {
    check_pairs("accuracy", predictions.len(), targets.len())?;
    let hits = predictions
        .iter()
        .zip(targets)
        .filter(|(p, t)| p == t)
        .count();
    Ok(hits as f64 / targets.len() as f64)
}

/// F1 from counts. With no true positive, false positive or false negative at all, F1 is 0, as scikit-learn's
/// default `zero_division="warn"` returns (with a warning) for a class that is neither predicted nor present.
fn f1(tp: usize, fp: usize, fn_: usize) -> f64 {
    let denominator = 2 * tp + fp + fn_;
    if denominator == 0 {
        0.0
    } else {
        2.0 * tp as f64 / denominator as f64
    }
}

/// The official `f1_score_with_invalid`: a prediction other than `"0"`/`"1"` is replaced by the opposite of its
/// target, then scikit-learn's binary F1 of class 1. With no positive target and no positive prediction the result
/// is 0 (scikit-learn's `zero_division` default). A target other than `"0"`/`"1"` is an error, as the official
/// `astype(np.int32)` + binary `f1_score` raises on it.
pub fn binary_f1_with_invalid(predictions: &[&str], targets: &[&str]) -> Result<f64> {
    check_pairs("f1", predictions.len(), targets.len())?;
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (i, (p, t)) in predictions.iter().zip(targets).enumerate() {
        let target_is_one = match *t {
            "1" => true,
            "0" => false,
            other => {
                return Err(DataError::Invalid(format!(
                    "f1: target {i} is {other:?}; binary F1 needs targets \"0\" or \"1\""
                )))
            }
        };
        let predicted_one = match *p {
            "1" => true,
            "0" => false,
            _ => !target_is_one,
        };
        match (predicted_one, target_is_one) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    Ok(f1(tp, fp, fn_))
}

/// The official `mean_multiclass_f1`: scikit-learn `fbeta_score(beta=1, labels=classes, average="macro")`. A
/// prediction outside `classes` is a false negative for its target's class and no class's false positive; a class
/// never predicted and never a target scores 0 (scikit-learn's `zero_division` default) and still counts in the mean.
pub fn macro_f1(predictions: &[&str], targets: &[&str], classes: &[&str]) -> Result<f64> {
    check_pairs("f1_multiclass", predictions.len(), targets.len())?;
    if classes.is_empty() {
        return Err(DataError::Invalid(
            "f1_multiclass: the task has no classes to average over".to_string(),
        ));
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
                    (false, false) => {}
                }
            }
            f1(tp, fp, fn_)
        })
        .sum();
    Ok(total / classes.len() as f64)
}

/// scikit-learn's `matthews_corrcoef` over arbitrary labels (an invalid prediction is a class of its own). When
/// the predictions or the targets are constant the coefficient is undefined and, as scikit-learn does, 0.
pub fn matthews(predictions: &[&str], targets: &[&str]) -> Result<f64> {
    check_pairs("matthews_correlation", predictions.len(), targets.len())?;
    let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
    for l in predictions.iter().chain(targets) {
        let next = labels.len();
        labels.entry(l).or_insert(next);
    }
    let mut t_sum = vec![0f64; labels.len()];
    let mut p_sum = vec![0f64; labels.len()];
    let mut correct = 0f64;
    for (p, t) in predictions.iter().zip(targets) {
        // Every label was inserted above, so both lookups succeed.
        if let (Some(&ti), Some(&pi)) = (labels.get(t), labels.get(p)) {
            t_sum[ti] += 1.0;
            p_sum[pi] += 1.0;
        }
        if p == t {
            correct += 1.0;
        }
    }
    let n = targets.len() as f64;
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let cov_ytyp = correct * n - dot(&t_sum, &p_sum);
    let cov_ypyp = n * n - dot(&p_sum, &p_sum);
    let cov_ytyt = n * n - dot(&t_sum, &t_sum);
    if cov_ypyp * cov_ytyt == 0.0 {
        return Ok(0.0);
    }
    Ok(cov_ytyp / (cov_ytyt * cov_ypyp).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_or_mismatched_input_is_an_error() {
        assert!(accuracy(&[], &[]).is_err());
        assert!(accuracy(&["0"], &["0", "1"]).is_err());
        assert!(binary_f1_with_invalid(&[], &[]).is_err());
        assert!(macro_f1(&[], &[], &["0"]).is_err());
        assert!(macro_f1(&["0"], &["0"], &[]).is_err());
        assert!(matthews(&[], &[]).is_err());
    }

    #[test]
    fn binary_f1_rejects_non_binary_targets() {
        let err = binary_f1_with_invalid(&["1"], &["2"]).unwrap_err();
        assert!(err.to_string().contains("target 0"), "{err}");
    }

    #[test]
    fn undefined_values_follow_sklearn() {
        // No positives anywhere: sklearn's f1_score returns 0.0.
        assert_eq!(
            binary_f1_with_invalid(&["0", "0"], &["0", "0"]).unwrap(),
            0.0
        );
        // Constant predictions: sklearn's matthews_corrcoef returns 0.0.
        assert_eq!(matthews(&["1", "1", "1"], &["0", "1", "0"]).unwrap(), 0.0);
        assert_eq!(matthews(&["1"], &["1"]).unwrap(), 0.0);
    }
}
