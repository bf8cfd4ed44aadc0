//! The registry of the paper's tasks (`ALL`: one [`Task`] entry each, holding every fact about it: files, reader,
//! labels and their class names, input format, k-shot classes, role), the lookups over it ([`task()`],
//! [`all_tasks`], [`paper_tasks`], [`transfer_source_tasks`]) and, per family module, the readers that map
//! original files onto the hub schema and the formatters that need code. The formats are those of the official
//! DePT code (`src/tasks.py`, from ATTEMPT/compacter) with `add_prefix=False`, its default: the task name is not
//! prepended. The two vision-language tasks (VQA, COCO captions, [`vl`]) follow VL-T5 with its task prompts
//! instead.

pub mod glue;
pub mod mrqa;
pub mod other;
pub mod superglue;
pub mod vl;

use std::path::Path;

use crate::error::{DataError, Result};
use crate::record::Record;
use crate::task::{
    ClassOf, Family, Files, Format, GlueColumns, KShotClasses, LabelColumn, Metric, Reader, Role,
    RowId, SourceSplit, SplitParts, SplitPolicy, SuperGlueRows, Target, Task,
};

use Metric::*;

const BINARY: &[&str] = &["0", "1"];
const TERNARY: &[&str] = &["0", "1", "2"];
/// `[str(np.round(x, 1)) for x in np.arange(0, 5.2, 0.2)]`.
const STSB_LABELS: &[&str] = &[
    "0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4", "1.6", "1.8", "2.0", "2.2", "2.4",
    "2.6", "2.8", "3.0", "3.2", "3.4", "3.6", "3.8", "4.0", "4.2", "4.4", "4.6", "4.8", "5.0",
];
const NLI: &[&str] = &["entailment", "not_entailment"];
const BOOLEAN: &[&str] = &["False", "True"];

const HALVE: SplitPolicy = SplitPolicy::HalveValidation;
const HOLDOUT: SplitPolicy = SplitPolicy::HoldoutTrain {
    test: SourceSplit::Validation,
    max_train: None,
};
const AS_SHIPPED: SplitPolicy = SplitPolicy::Direct {
    validation: SourceSplit::Validation,
    test: SourceSplit::Test,
};
const QA: &[Metric] = &[SquadEm, SquadF1];

/// GLUE and PAWS: `train.tsv`, `dev.tsv`, `test.tsv`.
const TSV_FILES: Files = Files {
    templates: &["{}.tsv"],
    parts: SplitParts::three("train", "dev", "test"),
};
/// SuperGLUE: `train.jsonl`, `val.jsonl`, `test.jsonl`.
const SUPERGLUE_FILES: Files = Files {
    templates: &["{}.jsonl"],
    parts: SplitParts::three("train", "val", "test"),
};

/// An MRQA set's files: `train`/`dev` in the task folder, or the release layout under its file stem (`$release`,
/// e.g. `HotpotQA`): `dev/HotpotQA.jsonl.gz`, `HotpotQA-dev.jsonl.gz`, `HotpotQA.dev.jsonl.gz`.
macro_rules! mrqa_files {
    ($release:literal) => {
        Files {
            templates: &[
                "{}.jsonl.gz",
                "{}.jsonl",
                concat!("{}/", $release, ".jsonl.gz"),
                concat!($release, "-{}.jsonl.gz"),
                concat!($release, ".{}.jsonl.gz"),
            ],
            parts: SplitParts::three("train", "dev", "dev"),
        }
    };
}

/// An MRQA task (SQuAD included): extractive QA with free-text answers, formatted by [`mrqa::format`]; only the
/// names, folders, release file stem and role differ.
macro_rules! mrqa_task {
    ($name:literal, $official:literal, $hub:literal, $dirs:expr, $release:literal, $role:ident) => {
        Task {
            name: $name,
            official_name: $official,
            hub_dataset: $hub,
            family: Family::Mrqa,
            role: Role::$role,
            dirs: $dirs,
            files: mrqa_files!($release),
            metrics: QA,
            best_metric: SquadEm,
            labels: None,
            class_names: None,
            k_shot: None,
            split_policy: HOLDOUT,
            reader: Reader::Code(|_, _, path| mrqa::read(path)),
            format: Format::Code(mrqa::format),
        }
    };
}

/// All tasks, GLUE first, in the paper's order; the vision-language tasks last. ReCoRD and SQuAD are the paper's
/// transfer source tasks ([`Role::TransferSource`]), the other 23 the tasks it evaluates on. Each entry is all the
/// crate knows about its task; see the crate docs for how to add one.
pub(crate) static ALL: &[Task] = &[
    Task {
        name: "mnli",
        official_name: "mnli",
        hub_dataset: "glue/mnli",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["MNLI", "mnli"],
        files: Files {
            templates: &["{}.tsv"],
            parts: SplitParts {
                train: "train",
                validation: "dev",
                test: "test",
                validation_matched: "dev_matched",
                validation_mismatched: "dev_mismatched",
            },
        },
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(TERNARY),
        class_names: Some(&["entailment", "neutral", "contradiction"]),
        k_shot: Some(KShotClasses::TERNARY),
        split_policy: SplitPolicy::Direct {
            validation: SourceSplit::ValidationMismatched,
            test: SourceSplit::ValidationMatched,
        },
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("premise", "sentence1"), ("hypothesis", "sentence2")],
            label_column: "gold_label",
            label: LabelColumn::ClassName,
        }),
        format: Format::Fields {
            input: &[("premise:", "premise"), ("hypothesis:", "hypothesis")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "qqp",
        official_name: "qqp",
        hub_dataset: "glue/qqp",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["QQP", "qqp"],
        files: TSV_FILES,
        metrics: &[F1, Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["not_duplicate", "duplicate"]),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HOLDOUT,
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("question1", "question1"), ("question2", "question2")],
            label_column: "is_duplicate",
            label: LabelColumn::Id,
        }),
        format: Format::Fields {
            input: &[("question1:", "question1"), ("question2:", "question2")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "qnli",
        official_name: "qnli",
        hub_dataset: "glue/qnli",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["QNLI", "qnli"],
        files: TSV_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(NLI),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HOLDOUT,
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("question", "question"), ("sentence", "sentence")],
            label_column: "label",
            label: LabelColumn::ClassName,
        }),
        format: Format::Fields {
            input: &[("question:", "question"), ("sentence:", "sentence")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "sst2",
        official_name: "sst2",
        hub_dataset: "glue/sst2",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["SST-2", "SST2", "sst2"],
        files: TSV_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["negative", "positive"]),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HOLDOUT,
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("sentence", "sentence")],
            label_column: "label",
            label: LabelColumn::Id,
        }),
        format: Format::Fields {
            input: &[("sentence:", "sentence")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "stsb",
        official_name: "stsb",
        hub_dataset: "glue/stsb",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["STS-B", "STSB", "stsb"],
        files: TSV_FILES,
        metrics: &[Pearson, Spearman],
        best_metric: Pearson,
        labels: Some(STSB_LABELS),
        class_names: None,
        // The official `num_labels_mapping` bins STS-B scores into two classes at 2.5.
        k_shot: Some(KShotClasses {
            classes: BINARY,
            class_of: ClassOf::ScoreAtMost(2.5),
        }),
        split_policy: HALVE,
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("sentence1", "sentence1"), ("sentence2", "sentence2")],
            label_column: "score",
            label: LabelColumn::Score,
        }),
        format: Format::Fields {
            input: &[("sentence1:", "sentence1"), ("sentence2:", "sentence2")],
            target: Target::Score,
            id: RowId::Idx,
        },
    },
    Task {
        name: "mrpc",
        official_name: "mrpc",
        hub_dataset: "glue/mrpc",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["MRPC", "mrpc"],
        files: TSV_FILES,
        metrics: &[F1, Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["not_equivalent", "equivalent"]),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("sentence1", "#1 String"), ("sentence2", "#2 String")],
            label_column: "Quality",
            label: LabelColumn::Id,
        }),
        format: Format::Fields {
            input: &[("sentence1:", "sentence1"), ("sentence2:", "sentence2")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "rte",
        official_name: "rte",
        hub_dataset: "glue/rte",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["RTE", "rte"],
        files: TSV_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(NLI),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::GlueTsv(GlueColumns {
            fields: &[("sentence1", "sentence1"), ("sentence2", "sentence2")],
            label_column: "label",
            label: LabelColumn::ClassName,
        }),
        format: Format::Fields {
            input: &[("sentence1:", "sentence1"), ("sentence2:", "sentence2")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "cola",
        official_name: "cola",
        hub_dataset: "glue/cola",
        family: Family::Glue,
        role: Role::Evaluation,
        dirs: &["CoLA", "COLA", "cola"],
        files: TSV_FILES,
        metrics: &[Matthews],
        best_metric: Matthews,
        labels: Some(BINARY),
        class_names: Some(&["unacceptable", "acceptable"]),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::Code(|task, _, path| glue::read_cola(task, path)),
        format: Format::Fields {
            input: &[("sentence:", "sentence")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "multirc",
        official_name: "superglue-multirc",
        hub_dataset: "super_glue/multirc",
        family: Family::SuperGlue,
        role: Role::Evaluation,
        dirs: &["MultiRC", "SuperGLUE-MultiRC", "multirc"],
        files: SUPERGLUE_FILES,
        metrics: &[F1, GroupExactMatch],
        best_metric: F1,
        labels: Some(BINARY),
        class_names: Some(BOOLEAN),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::SuperGlue(SuperGlueRows::MultiRc),
        format: Format::Code(superglue::format_multirc),
    },
    Task {
        name: "boolq",
        official_name: "superglue-boolq",
        hub_dataset: "super_glue/boolq",
        family: Family::SuperGlue,
        role: Role::Evaluation,
        dirs: &["BoolQ", "SuperGLUE-BoolQ", "boolq"],
        files: SUPERGLUE_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(BOOLEAN),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::SuperGlue(SuperGlueRows::BooleanLabel),
        format: Format::Fields {
            input: &[("question:", "question"), ("passage:", "passage")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "wic",
        official_name: "superglue-wic",
        hub_dataset: "super_glue/wic",
        family: Family::SuperGlue,
        role: Role::Evaluation,
        dirs: &["WiC", "SuperGLUE-WiC", "wic"],
        files: SUPERGLUE_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(BOOLEAN),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::SuperGlue(SuperGlueRows::BooleanLabel),
        format: Format::Fields {
            input: &[
                ("sentence1:", "sentence1"),
                ("sentence2:", "sentence2"),
                ("word:", "word"),
            ],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "wsc",
        official_name: "superglue-wsc.fixed",
        hub_dataset: "super_glue/wsc.fixed",
        family: Family::SuperGlue,
        role: Role::Evaluation,
        dirs: &["WSC", "SuperGLUE-WSC", "wsc"],
        files: SUPERGLUE_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(BOOLEAN),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::SuperGlue(SuperGlueRows::Wsc),
        format: Format::Code(superglue::format_wsc),
    },
    Task {
        name: "cb",
        official_name: "superglue-cb",
        hub_dataset: "super_glue/cb",
        family: Family::SuperGlue,
        role: Role::Evaluation,
        dirs: &["CB", "SuperGLUE-CB", "cb"],
        files: SUPERGLUE_FILES,
        metrics: &[MacroF1, Accuracy],
        best_metric: MacroF1,
        labels: Some(TERNARY),
        class_names: Some(&["entailment", "contradiction", "neutral"]),
        k_shot: Some(KShotClasses::TERNARY),
        split_policy: HALVE,
        reader: Reader::SuperGlue(SuperGlueRows::ClassNameLabel),
        format: Format::Fields {
            input: &[("premise:", "premise"), ("hypothesis:", "hypothesis")],
            target: Target::LabelId,
            id: RowId::Idx,
        },
    },
    Task {
        name: "record",
        official_name: "superglue-record",
        hub_dataset: "super_glue/record",
        family: Family::SuperGlue,
        role: Role::TransferSource,
        dirs: &["ReCoRD", "SuperGLUE-ReCoRD", "record"],
        files: SUPERGLUE_FILES,
        metrics: &[SquadF1, SquadEm],
        best_metric: SquadF1,
        labels: None,
        class_names: None,
        k_shot: None,
        split_policy: HOLDOUT,
        reader: Reader::SuperGlue(SuperGlueRows::Record),
        format: Format::Code(superglue::format_record),
    },
    mrqa_task!(
        "natural_questions",
        "nq",
        "lucadiliello/naturalquestionsshortqa",
        &["NaturalQuestions", "natural_questions", "nq", "MRQA"],
        "NaturalQuestionsShort",
        Evaluation
    ),
    mrqa_task!(
        "hotpotqa",
        "hotpotqa",
        "lucadiliello/hotpotqa",
        &["HotpotQA", "hotpotqa", "MRQA"],
        "HotpotQA",
        Evaluation
    ),
    mrqa_task!(
        "searchqa",
        "searchqa",
        "lucadiliello/searchqa",
        &["SearchQA", "searchqa", "MRQA"],
        "SearchQA",
        Evaluation
    ),
    mrqa_task!(
        "newsqa",
        "newsqa",
        "lucadiliello/newsqa",
        &["NewsQA", "newsqa", "MRQA"],
        "NewsQA",
        Evaluation
    ),
    mrqa_task!(
        "squad",
        "squad",
        "squad",
        &["SQuAD", "squad", "MRQA"],
        "SQuAD",
        TransferSource
    ),
    Task {
        name: "winogrande",
        official_name: "winogrande",
        hub_dataset: "winogrande/winogrande_xl",
        family: Family::WinoGrande,
        role: Role::Evaluation,
        dirs: &["WinoGrande", "winogrande"],
        files: Files {
            templates: &["{}.jsonl"],
            parts: SplitParts::three("train_xl", "dev", "test"),
        },
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["option1", "option2"]),
        k_shot: None,
        split_policy: HOLDOUT,
        reader: Reader::Code(|_, split, path| other::read_winogrande(path, split)),
        format: Format::Code(other::format_winogrande),
    },
    Task {
        name: "yelp_polarity",
        official_name: "yelp_polarity",
        hub_dataset: "yelp_polarity",
        family: Family::Yelp,
        role: Role::Evaluation,
        dirs: &["yelp_review_polarity_csv", "yelp_polarity", "Yelp", "yelp"],
        files: Files {
            templates: &["{}.csv"],
            parts: SplitParts::three("train", "test", "test"),
        },
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["negative", "positive"]),
        k_shot: None,
        split_policy: SplitPolicy::HoldoutTrain {
            test: SourceSplit::Test,
            max_train: Some(100_000),
        },
        reader: Reader::Code(|_, _, path| other::read_yelp(path)),
        format: Format::Fields {
            input: &[("sentence:", "text")],
            target: Target::LabelId,
            id: RowId::Row,
        },
    },
    Task {
        name: "scitail",
        official_name: "scitail",
        hub_dataset: "scitail/snli_format",
        family: Family::SciTail,
        role: Role::Evaluation,
        dirs: &["SciTail", "SciTailV1.1", "scitail"],
        files: Files {
            templates: &[
                "snli_format/scitail_1.0_{}.txt",
                "scitail_1.0_{}.txt",
                "tsv_format/scitail_1.0_{}.tsv",
                "scitail_1.0_{}.tsv",
            ],
            parts: SplitParts::three("train", "dev", "test"),
        },
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["entailment", "neutral"]),
        k_shot: Some(KShotClasses::BINARY),
        split_policy: HALVE,
        reader: Reader::Code(|_, _, path| other::read_scitail(path)),
        format: Format::Fields {
            input: &[("premise:", "sentence1"), ("hypothesis:", "sentence2")],
            target: Target::ClassName("gold_label"),
            id: RowId::Row,
        },
    },
    Task {
        name: "paws",
        official_name: "paws",
        hub_dataset: "paws/labeled_final",
        family: Family::Paws,
        role: Role::Evaluation,
        dirs: &["PAWS", "paws", "labeled_final"],
        files: TSV_FILES,
        metrics: &[Accuracy],
        best_metric: Accuracy,
        labels: Some(BINARY),
        class_names: Some(&["not_paraphrase", "paraphrase"]),
        k_shot: None,
        split_policy: AS_SHIPPED,
        reader: Reader::Code(|_, _, path| other::read_paws(path)),
        format: Format::Fields {
            input: &[("sentence1:", "sentence1"), ("sentence2:", "sentence2")],
            target: Target::LabelId,
            id: RowId::Field("id"),
        },
    },
    Task {
        name: "vqa",
        official_name: "vqa",
        hub_dataset: "VL-T5 vqa (Karpathy split of VQA v2)",
        family: Family::Vqa,
        role: Role::Evaluation,
        dirs: &["vqa", "VQA", "VQAv2"],
        files: Files {
            templates: &["karpathy_{}.json"],
            parts: SplitParts::three("train", "val", "test"),
        },
        metrics: &[VqaAccuracy],
        best_metric: VqaAccuracy,
        labels: None,
        class_names: None,
        k_shot: None,
        split_policy: AS_SHIPPED,
        reader: Reader::Code(|_, _, path| vl::read_vqa(path)),
        format: Format::Code(vl::format_vqa),
    },
    Task {
        name: "coco_caption",
        official_name: "coco_caption",
        hub_dataset: "Karpathy dataset_coco.json",
        family: Family::CocoCaption,
        role: Role::Evaluation,
        dirs: &["COCO", "coco", "mscoco", "COCO-Karpathy"],
        // One file holds every split (its images name their split).
        files: Files {
            templates: &["dataset_coco.json"],
            parts: SplitParts::three("train", "val", "test"),
        },
        metrics: &[Cider, Bleu4, RougeL],
        best_metric: Cider,
        labels: None,
        class_names: None,
        k_shot: None,
        split_policy: AS_SHIPPED,
        reader: Reader::Code(|_, split, path| vl::read_coco(path, split)),
        format: Format::Code(vl::format_coco_caption),
    },
];

/// Looks a task up by our name or the official one (case-insensitive).
pub fn task(name: &str) -> Result<&'static Task> {
    let wanted = name.to_ascii_lowercase();
    ALL.iter()
        .find(|t| t.name == wanted || t.official_name == wanted)
        .ok_or_else(|| DataError::UnknownTask {
            name: name.to_string(),
            known: ALL.iter().map(|t| t.name).collect(),
        })
}

/// Every task in the registry: the paper's 23 tasks and the transfer sources ReCoRD and SQuAD.
pub fn all_tasks() -> &'static [Task] {
    ALL
}

/// The 23 tasks the paper evaluates on (its 21 NLP tasks, VQA and MSCOCO captions), in registry order.
pub fn paper_tasks() -> impl Iterator<Item = &'static Task> {
    ALL.iter().filter(|t| !t.is_transfer_source())
}

/// The tasks the paper uses only as sources for transfer (ReCoRD, SQuAD).
pub fn transfer_source_tasks() -> impl Iterator<Item = &'static Task> {
    ALL.iter().filter(|t| t.is_transfer_source())
}

/// Candidate original files (relative to the task folder) for a source split, most specific first.
pub(crate) fn original_candidates(task: &Task, split: SourceSplit) -> Vec<String> {
    task.files.candidates(split)
}

/// Reads an original (non-parquet) file of a source split into hub-schema records.
pub(crate) fn read_original(task: &Task, split: SourceSplit, path: &Path) -> Result<Vec<Record>> {
    match task.reader {
        Reader::GlueTsv(columns) => glue::read(task, &columns, path),
        Reader::SuperGlue(rows) => superglue::read(task, rows, path),
        Reader::Code(read) => read(task, split, path),
    }
}

/// `' '.join(parts)`, the official `seq2seq_format`.
pub(crate) fn join(parts: &[&str]) -> String {
    parts.join(" ")
}

#[cfg(test)]
mod tests;
