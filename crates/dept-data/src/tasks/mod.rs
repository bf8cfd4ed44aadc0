//! The registry of the paper's tasks and, per family, how original files map onto the hub schema and how a row is
//! formatted. The formats are those of the official DePT code (`src/tasks.py`, from ATTEMPT/compacter) with
//! `add_prefix=False`, its default: the task name is not prepended. The two vision-language tasks (VQA, COCO
//! captions, [`vl`]) follow VL-T5 with its task prompts instead.

pub mod glue;
pub mod mrqa;
pub mod other;
pub mod superglue;
pub mod vl;

use std::path::Path;

use crate::error::Result;
use crate::record::Record;
use crate::task::{Family, Metric, SourceSplit, SplitPolicy, Task};

use Metric::*;

const BINARY: &[&str] = &["0", "1"];
const TERNARY: &[&str] = &["0", "1", "2"];
/// `[str(np.round(x, 1)) for x in np.arange(0, 5.2, 0.2)]`.
const STSB_LABELS: &[&str] = &[
    "0.0", "0.2", "0.4", "0.6", "0.8", "1.0", "1.2", "1.4", "1.6", "1.8", "2.0", "2.2", "2.4",
    "2.6", "2.8", "3.0", "3.2", "3.4", "3.6", "3.8", "4.0", "4.2", "4.4", "4.6", "4.8", "5.0",
];

const HALVE: SplitPolicy = SplitPolicy::HalveValidation;
const HOLDOUT: SplitPolicy = SplitPolicy::HoldoutTrain {
    test: SourceSplit::Validation,
    max_train: None,
};
const QA: &[Metric] = &[SquadEm, SquadF1];

macro_rules! task {
    ($name:expr, $official:expr, $hub:expr, $family:ident, $dirs:expr, $metrics:expr, $best:expr, $labels:expr,
     $policy:expr, $format:path) => {
        Task {
            name: $name,
            official_name: $official,
            hub_dataset: $hub,
            family: Family::$family,
            dirs: $dirs,
            metrics: $metrics,
            best_metric: $best,
            labels: $labels,
            split_policy: $policy,
            format: $format,
        }
    };
}

/// All tasks, GLUE first, in the paper's order; the vision-language tasks last. ReCoRD and SQuAD are the paper's
/// transfer source tasks ([`Task::is_transfer_source`]), the other 23 the tasks it evaluates on.
pub(crate) static ALL: [Task; 25] = [
    task!(
        "mnli",
        "mnli",
        "glue/mnli",
        Glue,
        &["MNLI", "mnli"],
        &[Accuracy],
        Accuracy,
        Some(TERNARY),
        SplitPolicy::Direct {
            validation: SourceSplit::ValidationMismatched,
            test: SourceSplit::ValidationMatched
        },
        glue::format_mnli
    ),
    task!(
        "qqp",
        "qqp",
        "glue/qqp",
        Glue,
        &["QQP", "qqp"],
        &[F1, Accuracy],
        Accuracy,
        Some(BINARY),
        HOLDOUT,
        glue::format_qqp
    ),
    task!(
        "qnli",
        "qnli",
        "glue/qnli",
        Glue,
        &["QNLI", "qnli"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HOLDOUT,
        glue::format_qnli
    ),
    task!(
        "sst2",
        "sst2",
        "glue/sst2",
        Glue,
        &["SST-2", "SST2", "sst2"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HOLDOUT,
        glue::format_sentence
    ),
    task!(
        "stsb",
        "stsb",
        "glue/stsb",
        Glue,
        &["STS-B", "STSB", "stsb"],
        &[Pearson, Spearman],
        Pearson,
        Some(STSB_LABELS),
        HALVE,
        glue::format_stsb
    ),
    task!(
        "mrpc",
        "mrpc",
        "glue/mrpc",
        Glue,
        &["MRPC", "mrpc"],
        &[F1, Accuracy],
        Accuracy,
        Some(BINARY),
        HALVE,
        glue::format_sentence_pair
    ),
    task!(
        "rte",
        "rte",
        "glue/rte",
        Glue,
        &["RTE", "rte"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HALVE,
        glue::format_sentence_pair
    ),
    task!(
        "cola",
        "cola",
        "glue/cola",
        Glue,
        &["CoLA", "COLA", "cola"],
        &[Matthews],
        Matthews,
        Some(BINARY),
        HALVE,
        glue::format_sentence
    ),
    task!(
        "multirc",
        "superglue-multirc",
        "super_glue/multirc",
        SuperGlue,
        &["MultiRC", "SuperGLUE-MultiRC", "multirc"],
        &[F1, GroupExactMatch],
        F1,
        Some(BINARY),
        HALVE,
        superglue::format_multirc
    ),
    task!(
        "boolq",
        "superglue-boolq",
        "super_glue/boolq",
        SuperGlue,
        &["BoolQ", "SuperGLUE-BoolQ", "boolq"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HALVE,
        superglue::format_boolq
    ),
    task!(
        "wic",
        "superglue-wic",
        "super_glue/wic",
        SuperGlue,
        &["WiC", "SuperGLUE-WiC", "wic"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HALVE,
        superglue::format_wic
    ),
    task!(
        "wsc",
        "superglue-wsc.fixed",
        "super_glue/wsc.fixed",
        SuperGlue,
        &["WSC", "SuperGLUE-WSC", "wsc"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HALVE,
        superglue::format_wsc
    ),
    task!(
        "cb",
        "superglue-cb",
        "super_glue/cb",
        SuperGlue,
        &["CB", "SuperGLUE-CB", "cb"],
        &[MacroF1, Accuracy],
        MacroF1,
        Some(TERNARY),
        HALVE,
        superglue::format_cb
    ),
    task!(
        "record",
        "superglue-record",
        "super_glue/record",
        SuperGlue,
        &["ReCoRD", "SuperGLUE-ReCoRD", "record"],
        &[SquadF1, SquadEm],
        SquadF1,
        None,
        HOLDOUT,
        superglue::format_record
    ),
    task!(
        "natural_questions",
        "nq",
        "lucadiliello/naturalquestionsshortqa",
        Mrqa,
        &["NaturalQuestions", "natural_questions", "nq", "MRQA"],
        QA,
        SquadEm,
        None,
        HOLDOUT,
        mrqa::format
    ),
    task!(
        "hotpotqa",
        "hotpotqa",
        "lucadiliello/hotpotqa",
        Mrqa,
        &["HotpotQA", "hotpotqa", "MRQA"],
        QA,
        SquadEm,
        None,
        HOLDOUT,
        mrqa::format
    ),
    task!(
        "searchqa",
        "searchqa",
        "lucadiliello/searchqa",
        Mrqa,
        &["SearchQA", "searchqa", "MRQA"],
        QA,
        SquadEm,
        None,
        HOLDOUT,
        mrqa::format
    ),
    task!(
        "newsqa",
        "newsqa",
        "lucadiliello/newsqa",
        Mrqa,
        &["NewsQA", "newsqa", "MRQA"],
        QA,
        SquadEm,
        None,
        HOLDOUT,
        mrqa::format
    ),
    task!(
        "squad",
        "squad",
        "squad",
        Mrqa,
        &["SQuAD", "squad", "MRQA"],
        QA,
        SquadEm,
        None,
        HOLDOUT,
        mrqa::format
    ),
    task!(
        "winogrande",
        "winogrande",
        "winogrande/winogrande_xl",
        WinoGrande,
        &["WinoGrande", "winogrande"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HOLDOUT,
        other::format_winogrande
    ),
    task!(
        "yelp_polarity",
        "yelp_polarity",
        "yelp_polarity",
        Yelp,
        &["yelp_review_polarity_csv", "yelp_polarity", "Yelp", "yelp"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        SplitPolicy::HoldoutTrain {
            test: SourceSplit::Test,
            max_train: Some(100_000)
        },
        other::format_yelp
    ),
    task!(
        "scitail",
        "scitail",
        "scitail/snli_format",
        SciTail,
        &["SciTail", "SciTailV1.1", "scitail"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        HALVE,
        other::format_scitail
    ),
    task!(
        "paws",
        "paws",
        "paws/labeled_final",
        Paws,
        &["PAWS", "paws", "labeled_final"],
        &[Accuracy],
        Accuracy,
        Some(BINARY),
        SplitPolicy::Direct {
            validation: SourceSplit::Validation,
            test: SourceSplit::Test
        },
        other::format_paws
    ),
    task!(
        "vqa",
        "vqa",
        "VL-T5 vqa (Karpathy split of VQA v2)",
        Vqa,
        &["vqa", "VQA", "VQAv2"],
        &[VqaAccuracy],
        VqaAccuracy,
        None,
        SplitPolicy::Direct {
            validation: SourceSplit::Validation,
            test: SourceSplit::Test
        },
        vl::format_vqa
    ),
    task!(
        "coco_caption",
        "coco_caption",
        "Karpathy dataset_coco.json",
        CocoCaption,
        &["COCO", "coco", "mscoco", "COCO-Karpathy"],
        &[Cider, Bleu4, RougeL],
        Cider,
        None,
        SplitPolicy::Direct {
            validation: SourceSplit::Validation,
            test: SourceSplit::Test
        },
        vl::format_coco_caption
    ),
];

/// Candidate original files (relative to the task folder) for a source split, most specific first.
pub(crate) fn original_candidates(task: &Task, split: SourceSplit) -> Vec<String> {
    match task.family {
        Family::Glue => glue::candidates(task, split),
        Family::SuperGlue => superglue::candidates(split),
        Family::Mrqa => mrqa::candidates(task, split),
        Family::WinoGrande | Family::Yelp | Family::SciTail | Family::Paws => {
            other::candidates(task, split)
        }
        Family::Vqa | Family::CocoCaption => vl::candidates(task, split),
    }
}

/// Reads an original (non-parquet) file of a source split into hub-schema records.
pub(crate) fn read_original(task: &Task, split: SourceSplit, path: &Path) -> Result<Vec<Record>> {
    match task.family {
        Family::Glue => glue::read(task, path),
        Family::SuperGlue => superglue::read(task, path),
        Family::Mrqa => mrqa::read(path),
        Family::WinoGrande => other::read_winogrande(path, split),
        Family::Yelp => other::read_yelp(path),
        Family::SciTail => other::read_scitail(path),
        Family::Paws => other::read_paws(path),
        Family::Vqa => vl::read_vqa(path),
        Family::CocoCaption => vl::read_coco(path, split),
    }
}

/// `' '.join(parts)`, the official `seq2seq_format`.
pub(crate) fn join(parts: &[&str]) -> String {
    parts.join(" ")
}
