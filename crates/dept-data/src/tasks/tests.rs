//! The registry's entries agree with themselves and with the paper; an unknown name is an error, not a default.

use std::collections::HashSet;

use super::{glue, superglue, Reader, ALL};
use crate::error::DataError;
use crate::kshot::ClassOf;
use crate::schema::{Format, Target};
use crate::task::{Role, Task};

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
            if columns.label == glue::LabelColumn::ClassName {
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
        Reader::SuperGlue(superglue::Rows::ClassNameLabel) => {
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
