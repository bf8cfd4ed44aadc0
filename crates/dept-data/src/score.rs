//! Scoring decoded predictions the way the official `compute_metrics` does: predictions and targets are stripped,
//! each metric of the task is computed in order, and everything is reported in percent.

use crate::error::{DataError, Result};
use crate::example::TextExample;
use crate::metrics::{self, correlation::string_to_float};
use crate::task::{Metric, Task};

/// Scores `predictions[i]` against `examples[i]` with the task's metrics, in the task's order, as
/// `(official metric name, value in percent)`. QA tasks are scored against each example's `target`, as the official
/// code does (for MRQA that is the first gold answer; for ReCoRD each duplicated example's own answer).
pub fn score<P: AsRef<str>>(
    task: &Task,
    predictions: &[P],
    examples: &[TextExample],
) -> Result<Vec<(&'static str, f64)>> {
    score_with(task, predictions, examples, false)
}

/// Like [`score`], but extractive QA is scored against all gold answers of `extra.answers` (max over gold), as the
/// SQuAD evaluation script and the SuperGLUE ReCoRD scorer do. Other tasks score as in [`score`].
pub fn score_all_answers<P: AsRef<str>>(
    task: &Task,
    predictions: &[P],
    examples: &[TextExample],
) -> Result<Vec<(&'static str, f64)>> {
    score_with(task, predictions, examples, true)
}

fn score_with<P: AsRef<str>>(
    task: &Task,
    predictions: &[P],
    examples: &[TextExample],
    all_answers: bool,
) -> Result<Vec<(&'static str, f64)>> {
    let in_task = |e: DataError| DataError::Invalid(format!("{}: {e}", task.name));
    metrics::check_pairs("score", predictions.len(), examples.len()).map_err(in_task)?;
    let preds: Vec<&str> = predictions.iter().map(|p| p.as_ref().trim()).collect();
    let targets: Vec<&str> = examples.iter().map(|e| e.target.trim()).collect();
    // Pearson and Spearman share the parsed scores, EM and F1 share one SQuAD pass.
    let mut scores: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut squad: Option<(f64, f64)> = None;
    let mut out = Vec::with_capacity(task.metrics.len());
    for metric in task.metrics {
        let value = match metric {
            Metric::Accuracy => metrics::accuracy(&preds, &targets),
            Metric::F1 => metrics::binary_f1_with_invalid(&preds, &targets),
            Metric::MacroF1 => metrics::macro_f1(&preds, &targets, task.labels.unwrap_or(&[])),
            Metric::Matthews => metrics::matthews(&preds, &targets),
            Metric::Pearson | Metric::Spearman => {
                let (t, p) = scores.get_or_insert_with(|| {
                    (
                        targets.iter().map(|s| string_to_float(s)).collect(),
                        preds.iter().map(|s| string_to_float(s)).collect(),
                    )
                });
                let r = if *metric == Metric::Pearson {
                    metrics::pearson(t, p)
                } else {
                    metrics::spearman(t, p)
                };
                // Undefined (scipy's NaN) is reported as 0, as the official code does.
                r.map(|r| r.unwrap_or(0.0))
            }
            Metric::GroupExactMatch => {
                let groups: Vec<&str> = examples
                    .iter()
                    .map(|e| e.extra.group.as_deref().unwrap_or(e.id.as_str()))
                    .collect();
                metrics::group_exact_match(&preds, &targets, &groups)
            }
            Metric::SquadEm | Metric::SquadF1 => {
                let (em, f1) = match squad {
                    Some(done) => done,
                    None => {
                        let golds: Vec<Vec<String>> = examples
                            .iter()
                            .map(|e| {
                                if all_answers && !e.extra.answers.is_empty() {
                                    e.extra.answers.clone()
                                } else {
                                    vec![e.target.trim().to_string()]
                                }
                            })
                            .collect();
                        let done = metrics::squad_em_f1(&preds, &golds).map_err(in_task)?;
                        *squad.insert(done)
                    }
                };
                Ok(if *metric == Metric::SquadEm { em } else { f1 })
            }
        }
        .map_err(in_task)?;
        out.push((metric.name(), 100.0 * value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{task, Extra};

    fn examples(targets: &[&str]) -> Vec<TextExample> {
        targets
            .iter()
            .enumerate()
            .map(|(i, t)| TextExample {
                id: i.to_string(),
                input: String::new(),
                target: t.to_string(),
                extra: Extra::default(),
            })
            .collect()
    }

    #[test]
    fn empty_and_mismatched_lists_are_errors_naming_the_task() {
        let rte = task("rte").unwrap();
        let none: [&str; 0] = [];
        let err = score(rte, &none, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with("rte: ") && err.contains("nothing to score"),
            "{err}"
        );
        let err = score(rte, &["0"], &examples(&["0", "1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 predictions for 2"), "{err}");
    }

    #[test]
    fn stsb_needs_two_examples_and_reports_constant_predictions_as_zero() {
        let stsb = task("stsb").unwrap();
        let err = score(stsb, &["3.0"], &examples(&["2.0"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2"), "{err}");
        let scores = score(
            stsb,
            &["2.0", "2.0", "2.0"],
            &examples(&["1.0", "2.5", "4.0"]),
        )
        .unwrap();
        assert_eq!(scores, vec![("pearson", 0.0), ("spearmanr", 0.0)]);
    }
}
