//! Pearson and Spearman correlation (scipy `pearsonr` / `spearmanr`), used by STS-B.
//!
//! Where scipy returns `NaN` (constant input, a `NaN` value, Pearson over an infinity) these return `None`, so the
//! caller has to decide; [`crate::score()`] reports 0 there, as the official `pearson_corrcoef` /
//! `spearman_corrcoef` do. Where scipy raises (Pearson over fewer than two values) these return an error.

use super::check_pairs;
use crate::error::{DataError, Result};

/// Python's `float(string)` with the official default of -1 for anything unparsable.
///
/// Accepts what Python does for ASCII text: surrounding whitespace, a sign, `inf`/`infinity`/`nan` in any case,
/// exponents, and single `_` between digits (`"1_5"` is 15). Python also reads non-ASCII digits (`"５"`); those
/// give -1 here.
pub fn string_to_float(s: &str) -> f64 {
    let s = s.trim();
    if s.contains('_') {
        let bytes = s.as_bytes();
        let between_digits = bytes.iter().enumerate().all(|(i, &b)| {
            b != b'_'
                || (i > 0
                    && bytes[i - 1].is_ascii_digit()
                    && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        });
        if !between_digits {
            return -1.0;
        }
        return s.replace('_', "").parse::<f64>().unwrap_or(-1.0);
    }
    s.parse::<f64>().unwrap_or(-1.0)
}

/// Pearson's r (scipy `pearsonr`). Fewer than two values is an error (scipy raises `ValueError`); constant or
/// non-finite input gives `None` (scipy returns `NaN`).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<Option<f64>> {
    check_pairs("pearson", x.len(), y.len())?;
    if x.len() < 2 {
        return Err(DataError::Invalid(
            "pearson: needs at least 2 values (scipy.stats.pearsonr raises on fewer)".to_string(),
        ));
    }
    Ok(pearson_r(x, y))
}

/// Pearson's r of two equally long lists, `None` where it is undefined.
fn pearson_r(x: &[f64], y: &[f64]) -> Option<f64> {
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return None;
    }
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx == 0.0 || syy == 0.0 {
        return None;
    }
    Some((sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0))
}

/// Ranks with ties averaged (scipy `rankdata(method="average")`), 1-based. Infinities rank like any value.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut out = vec![0.0; v.len()];
    let mut start = 0;
    while start < order.len() {
        let value = v[order[start]];
        let end = order[start..]
            .iter()
            .position(|&k| v[k] != value)
            .map_or(order.len(), |offset| start + offset);
        let rank = (start + end - 1) as f64 / 2.0 + 1.0;
        for &k in &order[start..end] {
            out[k] = rank;
        }
        start = end;
    }
    out
}

/// Spearman's rho (scipy `spearmanr`): Pearson's r of the average ranks. `None` where scipy returns `NaN`: fewer
/// than two values, a `NaN` value (`nan_policy="propagate"`), or constant input.
pub fn spearman(x: &[f64], y: &[f64]) -> Result<Option<f64>> {
    check_pairs("spearmanr", x.len(), y.len())?;
    if x.len() < 2 || x.iter().chain(y).any(|v| v.is_nan()) {
        return Ok(None);
    }
    Ok(pearson_r(&ranks(x), &ranks(y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_python_float() {
        assert_eq!(string_to_float(" 2.5 "), 2.5);
        assert_eq!(string_to_float("1_5"), 15.0);
        assert_eq!(string_to_float("1__5"), -1.0);
        assert_eq!(string_to_float("_1"), -1.0);
        assert_eq!(string_to_float("n/a"), -1.0);
        assert_eq!(string_to_float("Infinity"), f64::INFINITY);
        assert!(string_to_float("nan").is_nan());
    }

    #[test]
    fn undefined_and_invalid_inputs() {
        assert!(pearson(&[1.0], &[2.0]).is_err());
        assert!(pearson(&[], &[]).is_err());
        assert!(pearson(&[1.0, 2.0], &[1.0]).is_err());
        assert_eq!(pearson(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0]).unwrap(), None);
        assert_eq!(
            pearson(&[1.0, 2.0, f64::INFINITY], &[2.0, 3.0, 4.0]).unwrap(),
            None
        );
        assert_eq!(spearman(&[1.0], &[2.0]).unwrap(), None);
        assert_eq!(
            spearman(&[1.0, 2.0, f64::NAN], &[2.0, 3.0, 4.0]).unwrap(),
            None
        );
        // scipy ranks infinities: spearmanr([1, 2, inf], [2, 3, 4]) == 1.0.
        let rho = spearman(&[1.0, 2.0, f64::INFINITY], &[2.0, 3.0, 4.0]).unwrap();
        assert!((rho.unwrap() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn ranks_average_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }
}
