//! Scoring decoded predictions the way the official `compute_metrics` does: predictions and targets are stripped,
//! each metric of the task is computed in order, and everything is reported in percent.
//!
//! The vision-language tasks score as VL-T5 does: VQA accuracy against the annotators' answers of each question
//! (`extra.answers`, [`metrics::vqa`]); CIDEr-D, BLEU-4 and ROUGE-L against every reference caption of an image
//! (`extra.answers`), predictions and references first tokenised by
//! [`ptb_tokenize`] ([`metrics::caption`]). All are ×100 like the rest (CIDEr-D
//! 1.165 is reported as 116.5, as VL-T5 logs it).

use crate::error::{DataError, Result};
use crate::example::TextExample;
use crate::metrics::caption::{caption_scores, ptb_tokenize, CaptionScores};
use crate::metrics::{self, correlation::string_to_float};
use crate::task::{Metric, Task};

/// Scores `predictions[i]` against `examples[i]` with the task's metrics, in the task's order, as
/// `(official metric name, value in percent)`. QA tasks are scored against each example's `target`, as the official
/// code does (for MRQA that is the first gold answer; for ReCoRD each duplicated example's own answer). VQA and
/// captions are scored against `extra.answers` (see the module docs); a caption example without references (the
/// train split's one-caption examples) is scored against its target alone, and VQA examples without annotator
/// answers are an error.
///
/// ```
/// use dept_data::{score, task, Extra, TextExample};
///
/// let rte = task("rte")?;
/// let example = |target: &str| TextExample {
///     id: String::new(),
///     input: String::new(),
///     target: target.into(),
///     extra: Extra::default(),
/// };
/// let examples = [example("0"), example("1"), example("1"), example("0")];
/// // "maybe" is not one of RTE's labels ("0" = entailment, "1" = not_entailment): it counts as wrong.
/// let scores = score(rte, &["0", "1", "0", "maybe"], &examples)?;
/// assert_eq!(scores, [("accuracy", 50.0)]);
/// assert_eq!(rte.label_name("1"), Some("not_entailment"));
/// assert!(task("no-such-task").is_err());
/// # Ok::<(), dept_data::DataError>(())
/// ```
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
    let mut captions: Option<CaptionScores> = None;
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
                        let golds = squad_golds(examples, all_answers);
                        *squad.insert(metrics::squad_em_f1(&preds, &golds).map_err(in_task)?)
                    }
                };
                Ok(if *metric == Metric::SquadEm { em } else { f1 })
            }
            Metric::VqaAccuracy => vqa_accuracy(&preds, examples),
            Metric::Cider | Metric::Bleu4 | Metric::RougeL => {
                let scores = match captions {
                    Some(done) => done,
                    None => *captions.insert(caption_metrics(&preds, examples).map_err(in_task)?),
                };
                Ok(match metric {
                    Metric::Cider => scores.cider,
                    Metric::Bleu4 => scores.bleu4,
                    _ => scores.rouge_l,
                })
            }
        }
        .map_err(in_task)?;
        out.push((metric.name(), 100.0 * value));
    }
    Ok(out)
}

/// The gold answers of each extractive-QA example: its target, or all of `extra.answers` with `all_answers`
/// (where it has any).
fn squad_golds(examples: &[TextExample], all_answers: bool) -> Vec<Vec<String>> {
    examples
        .iter()
        .map(|e| {
            if all_answers && !e.extra.answers.is_empty() {
                e.extra.answers.clone()
            } else {
                vec![e.target.trim().to_string()]
            }
        })
        .collect()
}

/// Mean VQA accuracy of the (stripped) predictions against each example's annotator answers.
fn vqa_accuracy(preds: &[&str], examples: &[TextExample]) -> Result<f64> {
    if let Some((i, e)) = examples
        .iter()
        .enumerate()
        .find(|(_, e)| e.extra.answers.is_empty())
    {
        return Err(DataError::Invalid(format!(
            "vqa_accuracy needs the annotators' answers of every question, but example {i} (question {}) has none: \
             its file has no `answers` (VL-T5's karpathy_train.json may lack them); score a split whose file has them",
            e.id
        )));
    }
    let preds: Vec<String> = preds.iter().map(|p| p.to_string()).collect();
    let golds: Vec<Vec<String>> = examples.iter().map(|e| e.extra.answers.clone()).collect();
    metrics::vqa::vqa_corpus_accuracy(&preds, &golds)
}

/// CIDEr-D, BLEU-4 and ROUGE-L of PTB-tokenised predictions against PTB-tokenised references (`extra.answers`, or
/// the target when an example has none).
fn caption_metrics(preds: &[&str], examples: &[TextExample]) -> Result<CaptionScores> {
    let preds: Vec<String> = preds.iter().map(|p| ptb_tokenize(p)).collect();
    let references: Vec<Vec<String>> = examples
        .iter()
        .map(|e| {
            if e.extra.answers.is_empty() {
                vec![ptb_tokenize(&e.target)]
            } else {
                e.extra.answers.iter().map(|r| ptb_tokenize(r)).collect()
            }
        })
        .collect();
    caption_scores(&preds, &references)
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

    fn vl_example<A: AsRef<str>>(id: &str, target: &str, answers: &[A]) -> TextExample {
        TextExample {
            id: id.to_string(),
            input: String::new(),
            target: target.to_string(),
            extra: Extra {
                group: None,
                answers: answers.iter().map(|a| a.as_ref().to_string()).collect(),
                image: Some(format!("COCO_val2014_{id:0>12}")),
                loss_weight: None,
            },
        }
    }

    #[test]
    fn vqa_accuracy_is_the_mean_over_questions_in_percent() {
        let vqa = task("vqa").unwrap();
        let ten = |a: &str, n: usize, b: &str| -> Vec<String> {
            let mut v = vec![a.to_string(); n];
            v.resize(10, b.to_string());
            v
        };
        let q1 = ten("yes", 10, "no"); // unanimous: "yes" scores 1
        let q2 = ten("2", 2, "3"); // two annotators said "2": each of the 8 others sees 2 matches (2/3), each of
                                   // the 2 sees 1 (1/3): (8 * 2/3 + 2 * 1/3) / 10 = 0.6
        let q3 = ten("red", 5, "blue");
        let examples = vec![
            vl_example("1", "yes", &q1),
            vl_example("2", "3", &q2),
            vl_example("3", "red", &q3),
        ];
        let predictions = [" Yes ", "two", "green"];
        let by_hand = [
            metrics::vqa::vqa_accuracy("Yes", &q1),
            metrics::vqa::vqa_accuracy("two", &q2),
            metrics::vqa::vqa_accuracy("green", &q3),
        ];
        assert_eq!(by_hand[0], 1.0);
        assert!((by_hand[1] - 0.6).abs() < 1e-12, "{}", by_hand[1]);
        assert_eq!(by_hand[2], 0.0);
        let scores = score(vqa, &predictions, &examples).unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[0].0, "vqa_accuracy");
        let want = 100.0 * by_hand.iter().sum::<f64>() / 3.0;
        assert!((scores[0].1 - want).abs() < 1e-9, "{scores:?} vs {want}");
        assert_eq!(vqa.best_metric.name(), "vqa_accuracy");
    }

    #[test]
    fn vqa_accuracy_without_annotator_answers_is_an_error() {
        let vqa = task("vqa").unwrap();
        let examples = vec![
            vl_example("393225000", "yes", &["yes"; 10]),
            vl_example::<&str>("458752000", "net", &[]),
        ];
        let err = score(vqa, &["yes", "net"], &examples)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("vqa: ")
                && err.contains("458752000")
                && err.contains("no `answers`")
                && err.contains("annotators' answers"),
            "{err}"
        );
    }

    #[test]
    fn caption_scores_are_pycocoevalcap_on_ptb_tokenised_text() {
        let coco = task("coco_caption").unwrap();
        let examples = vec![
            vl_example(
                "1",
                "A man riding a horse.",
                &[
                    "A man riding a horse.",
                    "A person on a brown horse!",
                    "Man rides horse",
                ],
            ),
            vl_example(
                "2",
                "A cat on a mat.",
                &[
                    "A cat on a mat.",
                    "A cat, sitting on a mat.",
                    "The cat's on the rug",
                ],
            ),
            vl_example(
                "3",
                "Two dogs play.",
                &["Two dogs play.", "Dogs playing in the snow."],
            ),
        ];
        let predictions = [
            "A man riding a horse.",
            "A cat sitting on a rug.",
            "Two dogs in the snow!",
        ];
        let scores = score(coco, &predictions, &examples).unwrap();
        let tokenised: Vec<String> = predictions.iter().map(|p| ptb_tokenize(p)).collect();
        let references: Vec<Vec<String>> = examples
            .iter()
            .map(|e| e.extra.answers.iter().map(|r| ptb_tokenize(r)).collect())
            .collect();
        assert_eq!(tokenised[1], "a cat sitting on a rug");
        let want = caption_scores(&tokenised, &references).unwrap();
        assert_eq!(
            scores,
            vec![
                ("CIDEr", 100.0 * want.cider),
                ("Bleu_4", 100.0 * want.bleu4),
                ("ROUGE_L", 100.0 * want.rouge_l),
            ]
        );
        assert!(want.cider > 0.0 && want.bleu4 > 0.0 && want.rouge_l > 0.0);
        // Untokenised text would score differently: the tokenisation is part of the metric.
        let raw: Vec<String> = predictions.iter().map(|p| p.to_string()).collect();
        let raw_refs: Vec<Vec<String>> = examples.iter().map(|e| e.extra.answers.clone()).collect();
        assert_ne!(caption_scores(&raw, &raw_refs).unwrap().cider, want.cider);
        assert_eq!(coco.best_metric.name(), "CIDEr");
    }

    #[test]
    fn caption_examples_without_references_score_against_their_target() {
        let coco = task("coco_caption").unwrap();
        let with_target = |id: &str, target: &str| vl_example::<&str>(id, target, &[]);
        let examples = vec![
            with_target("1_10", "A man riding a horse."),
            with_target("2_20", "A cat on a mat."),
        ];
        let predictions = ["a man riding a horse", "a cat on a mat"];
        let scores = score(coco, &predictions, &examples).unwrap();
        let want = caption_scores(
            &predictions.map(String::from),
            &[
                vec![predictions[0].to_string()],
                vec![predictions[1].to_string()],
            ],
        )
        .unwrap();
        assert_eq!(scores[1], ("Bleu_4", 100.0 * want.bleu4));
    }
}
