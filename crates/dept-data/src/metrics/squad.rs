//! SQuAD exact match and token F1 with the official answer normalisation (lower case, drop ASCII punctuation,
//! drop the articles a/an/the, collapse whitespace), maximised over the gold answers of each question.

use std::collections::HashMap;
use std::sync::OnceLock;

use regex::Regex;

use super::check_pairs;
use crate::error::{DataError, Result};

/// The official SQuAD v1.1 `normalize_answer` (also T5's `normalize_squad`).
pub fn normalize_answer(text: &str) -> String {
    static ARTICLES: OnceLock<Regex> = OnceLock::new();
    let lower = text.to_lowercase();
    let no_punct: String = lower
        .chars()
        .filter(|c| !c.is_ascii_punctuation())
        .collect();
    let articles = ARTICLES.get_or_init(|| Regex::new(r"\b(a|an|the)\b").expect("valid pattern"));
    let no_articles = articles.replace_all(&no_punct, " ");
    no_articles.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn token_f1(prediction: &str, gold: &str) -> f64 {
    let p: Vec<&str> = prediction.split_whitespace().collect();
    let g: Vec<&str> = gold.split_whitespace().collect();
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &g {
        *counts.entry(t).or_default() += 1;
    }
    let mut same = 0i64;
    for t in &p {
        if let Some(c) = counts.get_mut(t) {
            if *c > 0 {
                *c -= 1;
                same += 1;
            }
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / p.len() as f64;
    let recall = same as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Mean over questions of (max EM over golds, max F1 over golds), as fractions, as the SQuAD v1.1 script and
/// the official `qa_metrics` compute them. No questions, or a question without any gold answer (Python's `max` of
/// nothing raises there), is an error.
pub fn squad_em_f1(predictions: &[&str], golds: &[Vec<String>]) -> Result<(f64, f64)> {
    check_pairs("squad", predictions.len(), golds.len())?;
    if let Some(i) = golds.iter().position(Vec::is_empty) {
        return Err(DataError::Invalid(format!(
            "squad: question {i} has no gold answer"
        )));
    }
    let (mut em, mut f1) = (0.0, 0.0);
    for (p, gs) in predictions.iter().zip(golds) {
        let p = normalize_answer(p);
        let gs: Vec<String> = gs.iter().map(|g| normalize_answer(g)).collect();
        em += gs
            .iter()
            .map(|g| f64::from(u8::from(*g == p)))
            .fold(0.0, f64::max);
        f1 += gs.iter().map(|g| token_f1(&p, g)).fold(0.0, f64::max);
    }
    Ok((em / golds.len() as f64, f1 / golds.len() as f64))
}
