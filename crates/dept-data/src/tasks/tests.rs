//! The registry's entries agree with themselves and with the paper; an unknown name is an error, not a default.

use std::collections::HashSet;

use super::{all_tasks, paper_tasks, task, transfer_source_tasks, ALL};
use crate::error::DataError;
use crate::task::{ClassOf, Format, LabelColumn, Reader, Role, SuperGlueRows, Target, Task};

/// The 23 tasks the paper evaluates on (its GLUE, SuperGLUE, MRQA + others tables, VQA and MSCOCO captions),
/// written out here independently of the registry.
const PAPER_TASKS: [&str; 23] = [
    "mnli",
    "qqp",
    "qnli",
    "sst2",
    "stsb",
    "mrpc",
    "rte",
    "cola",
    "multirc",
    "boolq",
    "wic",
    "wsc",
    "cb",
    "natural_questions",
    "hotpotqa",
    "searchqa",
    "newsqa",
    "winogrande",
    "yelp_polarity",
    "scitail",
    "paws",
    "vqa",
    "coco_caption",
];

fn is_label_ids(labels: &[&str]) -> bool {
    labels.iter().enumerate().all(|(i, l)| *l == i.to_string())
}

/// Labels, class names, k-shot classes and the target the format writes fit together.
fn check_labels(t: &Task) {
    if let Some(names) = t.class_names {
        assert_eq!(
            Some(names.len()),
            t.labels.map(<[_]>::len),
            "{}: one class name per label",
            t.name
        );
        assert_eq!(
            names.iter().collect::<HashSet<_>>().len(),
            names.len(),
            "{}",
            t.name
        );
    }
    if let Some(k_shot) = t.k_shot {
        let labels = t
            .labels
            .unwrap_or_else(|| panic!("{}: k-shot classes but no labels", t.name));
        match k_shot.class_of {
            ClassOf::Target => {
                for class in k_shot.classes {
                    assert!(
                        labels.contains(class),
                        "{}: k-shot class {class} is not a label",
                        t.name
                    );
                }
            }
            ClassOf::ScoreAtMost(threshold) => {
                assert_eq!(
                    k_shot.classes.len(),
                    2,
                    "{}: a threshold makes two classes",
                    t.name
                );
                let scores: Vec<f64> = labels.iter().map(|l| l.parse().unwrap()).collect();
                assert!(
                    scores.iter().any(|s| *s <= threshold) && scores.iter().any(|s| *s > threshold)
                );
            }
        }
    }
    if let Format::Fields { input, target, .. } = t.format {
        assert!(!input.is_empty(), "{}", t.name);
        match target {
            Target::LabelId => assert!(t.labels.is_some_and(is_label_ids), "{}: ids 0..n", t.name),
            Target::Score => assert!(t
                .labels
                .is_some_and(|l| l.iter().all(|s| s.parse::<f64>().is_ok()))),
            Target::ClassName(_) => {
                assert!(t.class_names.is_some() && t.labels.is_some_and(is_label_ids))
            }
        }
    }
}

/// What the reader needs from the entry is there, and a GLUE reader yields every field the format reads.
fn check_reader(t: &Task) {
    match t.reader {
        Reader::GlueTsv(columns) => {
            if columns.label == LabelColumn::ClassName {
                assert!(
                    t.class_names.is_some(),
                    "{}: class-name labels need class names",
                    t.name
                );
            }
            if let Format::Fields { input, .. } = t.format {
                for (_, field) in input {
                    assert!(
                        columns.fields.iter().any(|(hub, _)| hub == field),
                        "{}: {field}",
                        t.name
                    );
                }
            }
        }
        Reader::SuperGlue(SuperGlueRows::ClassNameLabel) => {
            assert!(t.class_names.is_some(), "{}", t.name)
        }
        _ => {}
    }
}

#[test]
fn every_entry_is_consistent() {
    let mut names = HashSet::new();
    for t in ALL {
        assert!(names.insert(t.name), "{} twice", t.name);
        if t.official_name != t.name {
            assert!(names.insert(t.official_name), "{} twice", t.official_name);
        }
        assert_eq!(
            t.name,
            t.name.to_ascii_lowercase(),
            "names are looked up lower-cased"
        );
        // A transfer source is never one of the paper's evaluation tasks (a task added beyond the paper is
        // evaluated on without being in the list).
        if PAPER_TASKS.contains(&t.name) {
            assert_eq!(
                t.role,
                Role::Evaluation,
                "{}: the paper evaluates on it",
                t.name
            );
        }
        assert_eq!(t.is_transfer_source(), t.role == Role::TransferSource);
        assert!(
            t.metrics.contains(&t.best_metric),
            "{}: best metric is reported",
            t.name
        );
        assert!(
            !t.dirs.is_empty() && !t.files.templates.is_empty(),
            "{}",
            t.name
        );
        check_labels(t);
        check_reader(t);
    }
    for name in PAPER_TASKS {
        assert!(names.contains(name), "{name} is missing from the registry");
    }
}

#[test]
fn an_unknown_task_is_an_error_naming_it_and_the_known_ones() {
    for name in ["no-such-task", "rte2", "glue-rte", ""] {
        let err = crate::task(name).expect_err("no default task");
        let DataError::UnknownTask { name: asked, known } = &err else {
            panic!("{name}: {err}");
        };
        assert_eq!(asked, name);
        assert_eq!(known, &ALL.iter().map(|t| t.name).collect::<Vec<_>>());
        let text = err.to_string();
        assert!(
            text.contains(&format!("`{name}`")) && text.contains("mnli, qqp, qnli"),
            "{text}"
        );
    }
    // Names and official names are both found, in any case.
    assert_eq!(crate::task("SuperGLUE-BoolQ").unwrap().name, "boolq");
    assert_eq!(crate::task("RTE").unwrap().name, "rte");
}

#[test]
fn label_ids_have_the_hub_class_names() {
    let name = |t: &str, target: &str| task(t).unwrap().label_name(target);
    assert_eq!(name("rte", "0"), Some("entailment"));
    assert_eq!(name("rte", "1"), Some("not_entailment"));
    assert_eq!(name("mnli", "2"), Some("contradiction"));
    assert_eq!(name("cb", "1"), Some("contradiction"));
    assert_eq!(name("cola", "1"), Some("acceptable"));
    assert_eq!(name("boolq", "1"), Some("True"));
    assert_eq!(name("winogrande", "0"), Some("option1"));
    // Not a label, a score, or free text: no name.
    assert_eq!(name("rte", "2"), None);
    assert_eq!(name("rte", "yes"), None);
    assert_eq!(name("stsb", "3.8"), None);
    assert_eq!(name("squad", "Denver Broncos"), None);
    // Every classification task with labels names each of them.
    for t in all_tasks() {
        if let (Some(labels), false) = (t.labels, t.name == "stsb") {
            for l in labels {
                assert!(t.label_name(l).is_some(), "{} {l}", t.name);
            }
        }
    }
}

#[test]
fn the_paper_has_23_tasks_and_two_transfer_sources() {
    assert_eq!(all_tasks().len(), 25);
    assert_eq!(paper_tasks().count(), 23);
    let sources: Vec<&str> = transfer_source_tasks().map(|t| t.name).collect();
    assert_eq!(sources, vec!["record", "squad"]);
    let vl: Vec<&str> = paper_tasks()
        .filter(|t| t.is_vision_language())
        .map(|t| t.name)
        .collect();
    assert_eq!(vl, vec!["vqa", "coco_caption"]);
    let vqa = task("vqa").unwrap();
    assert_eq!(vqa.labels, None);
    assert_eq!(vqa.label_name("yes"), None);
    let names: Vec<&str> = task("coco_caption")
        .unwrap()
        .metrics
        .iter()
        .map(|m| m.name())
        .collect();
    assert_eq!(names, vec!["CIDEr", "Bleu_4", "ROUGE_L"]);
    // Names and official names are unique across the registry.
    let mut seen = std::collections::HashSet::new();
    for t in all_tasks() {
        assert!(seen.insert(t.name), "{}", t.name);
        if t.official_name != t.name {
            assert!(seen.insert(t.official_name), "{}", t.official_name);
        }
    }
}
