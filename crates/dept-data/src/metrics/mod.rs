//! The official metrics, on decoded strings, each returning a fraction in `[0, 1]` (or `[-1, 1]` for
//! correlations); [`crate::score`] scales them to percent as the official code does.
//!
//! Each is checked against scikit-learn / scipy / the SQuAD normalisation in `tests/metrics.rs`, with values that
//! `tests/reference/metrics_reference.py` generated.

pub mod classification;
pub mod correlation;
pub mod group;
pub mod squad;

pub use classification::{accuracy, binary_f1_with_invalid, macro_f1, matthews};
pub use correlation::{pearson, spearman};
pub use group::group_exact_match;
pub use squad::{normalize_answer, squad_em_f1};
