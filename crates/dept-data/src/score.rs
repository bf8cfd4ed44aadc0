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
    if predictions.len() != examples.len() {
        return Err(DataError::Invalid(format!(
            "{}: {} predictions for {} examples",
            task.name,
            predictions.len(),
            examples.len()
        )));
    }
    if examples.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: nothing to score",
            task.name
        )));
    }
    let preds: Vec<&str> = predictions.iter().map(|p| p.as_ref().trim()).collect();
    let targets: Vec<&str> = examples.iter().map(|e| e.target.trim()).collect();
    let mut squad: Option<(f64, f64)> = None;
    let mut out = Vec::with_capacity(task.metrics.len());
    for metric in task.metrics {
        let value = match metric {
            Metric::Accuracy => metrics::accuracy(&preds, &targets),
            Metric::F1 => metrics::binary_f1_with_invalid(&preds, &targets),
            Metric::MacroF1 => metrics::macro_f1(&preds, &targets, task.labels.unwrap_or(&[])),
            Metric::Matthews => metrics::matthews(&preds, &targets),
            Metric::Pearson | Metric::Spearman => {
                let p: Vec<f64> = preds.iter().map(|s| string_to_float(s)).collect();
                let t: Vec<f64> = targets.iter().map(|s| string_to_float(s)).collect();
                let r = if *metric == Metric::Pearson {
                    metrics::pearson(&t, &p)
                } else {
                    metrics::spearman(&t, &p)
                };
                if r.is_nan() {
                    0.0
                } else {
                    r
                }
            }
            Metric::GroupExactMatch => {
                let groups: Vec<&str> = examples
                    .iter()
                    .map(|e| e.extra.group.as_deref().unwrap_or(e.id.as_str()))
                    .collect();
                metrics::group_exact_match(&preds, &targets, &groups)
            }
            Metric::SquadEm | Metric::SquadF1 => {
                let (em, f1) = *squad.get_or_insert_with(|| {
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
                    metrics::squad_em_f1(&preds, &golds)
                });
                if *metric == Metric::SquadEm {
                    em
                } else {
                    f1
                }
            }
        };
        out.push((metric.name(), 100.0 * value));
    }
    Ok(out)
}
