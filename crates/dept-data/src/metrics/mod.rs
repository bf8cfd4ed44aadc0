//! The official metrics, on decoded strings, each returning a fraction in `[0, 1]` (or `[-1, 1]` for
//! correlations); [`crate::score()`] scales them to percent as the official code does.
//!
//! Each is checked against scikit-learn / scipy / the SQuAD normalisation in `tests/metrics.rs`, with values that
//! `tests/reference/metrics_reference.py` generated. Inputs the official code cannot score (no examples, lists of
//! different lengths, fewer than two values for Pearson) are errors here, never `NaN` or a made-up number; a value
//! the official code defines by convention (F1 without positives, Matthews with constant predictions, a correlation
//! of constant input) follows that convention and says so on the function.

pub mod caption;
pub mod classification;
pub mod correlation;
pub mod group;
pub mod squad;
pub mod vqa;

pub use classification::{accuracy, binary_f1_with_invalid, macro_f1, matthews};
pub use correlation::{pearson, spearman};
pub use group::group_exact_match;
pub use squad::{normalize_answer, squad_em_f1};

use crate::error::{DataError, Result};

/// Checks that a metric gets two non-empty lists of the same length (predictions and targets), as every
/// scikit-learn metric requires (`check_consistent_length`, "Found empty input array").
pub(crate) fn check_pairs(metric: &str, predictions: usize, targets: usize) -> Result<()> {
    if predictions != targets {
        return Err(DataError::Invalid(format!(
            "{metric}: {predictions} predictions for {targets} targets"
        )));
    }
    if targets == 0 {
        return Err(DataError::Invalid(format!(
            "{metric}: nothing to score (no predictions)"
        )));
    }
    Ok(())
}
