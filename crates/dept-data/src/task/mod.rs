//! What a task is: [`Task`], one registry entry, and the fact types it is made of: splits and split policy,
//! metrics, role, its files ([`Files`]), input format ([`Format`]), k-shot classes ([`KShotClasses`]) and reader.
//! Nothing here reads, formats or samples; the entries and the lookups by name are in [`crate::tasks`], and
//! formatting ([`crate::schema`]), k-shot sampling ([`crate::kshot`]) and loading ([`crate::load`]) use `Task`.

mod files;
mod format;
mod hub;
mod kshot_classes;
mod reader;

use std::fmt;
use std::path::Path;

use crate::error::{DataError, Result};

pub use files::{Files, SplitParts};
pub use format::{Format, Formatter, RowId, Target};
pub use hub::HubSource;
pub use kshot_classes::{ClassOf, KShotClasses};
pub(crate) use reader::{GlueColumns, LabelColumn, Reader, SuperGlueRows};

/// The split a user asks for (the paper's train/validation/test, after the official re-splitting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Validation,
    Test,
}

impl Split {
    /// All three, in order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Validation, Split::Test];

    /// `train`, `validation`, `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Validation => "validation",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "train" => Ok(Split::Train),
            "validation" | "val" | "dev" => Ok(Split::Validation),
            "test" => Ok(Split::Test),
            other => Err(DataError::Invalid(format!(
                "unknown split `{other}`; expected train, validation or test"
            ))),
        }
    }
}

/// A split as the source dataset ships it (the hub's split names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceSplit {
    Train,
    Validation,
    Test,
    ValidationMatched,
    ValidationMismatched,
}

impl SourceSplit {
    /// The hub's split name (also the prefix of its parquet files).
    pub fn hub_name(self) -> &'static str {
        match self {
            SourceSplit::Train => "train",
            SourceSplit::Validation => "validation",
            SourceSplit::Test => "test",
            SourceSplit::ValidationMatched => "validation_matched",
            SourceSplit::ValidationMismatched => "validation_mismatched",
        }
    }
}

/// How the official code (`AbstractTask.get` with `split_validation_test=True`) derives train/validation/test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitPolicy {
    /// Small sets: train is the source train; the source validation is shuffled (`torch.randperm`, seed 42) and its
    /// first `len / 2` rows become validation, the rest test.
    HalveValidation,
    /// Large sets: the source train is shuffled; its first 1000 rows become validation, the rest train (cut to
    /// `max_train` rows after that, for Yelp); test is `test`.
    HoldoutTrain {
        test: SourceSplit,
        max_train: Option<usize>,
    },
    /// Sets used as shipped (MNLI, PAWS).
    Direct {
        validation: SourceSplit,
        test: SourceSplit,
    },
}

/// The number of source-train rows the large sets hold out as validation.
pub const HOLDOUT_VALIDATION_SIZE: usize = 1000;

/// The re-splitting in words, as `dept data stats` prints it.
impl fmt::Display for SplitPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SplitPolicy::HalveValidation => f.write_str(
                "train = source train; validation/test = halves of the shuffled source validation",
            ),
            SplitPolicy::HoldoutTrain { test, max_train } => {
                write!(
                    f,
                    "validation = {HOLDOUT_VALIDATION_SIZE} shuffled source-train rows, train = the rest"
                )?;
                if let Some(max_train) = max_train {
                    write!(f, " (first {max_train})")?;
                }
                write!(f, "; test = source {}", test.hub_name())
            }
            SplitPolicy::Direct { validation, test } => write!(
                f,
                "as shipped: validation = source {}, test = source {}",
                validation.hub_name(),
                test.hub_name()
            ),
        }
    }
}

/// A metric as the official code names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// `accuracy`: exact string match of prediction and target, in percent.
    Accuracy,
    /// `f1`: binary F1 of label `1`; a prediction that is neither `0` nor `1` counts as the wrong label.
    F1,
    /// `f1_multiclass`: unweighted mean of per-class F1 over the task's classes (CB).
    MacroF1,
    /// `matthews_correlation` (CoLA).
    Matthews,
    /// `pearson` (STS-B); unparsable predictions count as -1.
    Pearson,
    /// `spearmanr` (STS-B); unparsable predictions count as -1.
    Spearman,
    /// `em` for MultiRC: the share of questions whose every answer is predicted right.
    GroupExactMatch,
    /// `em` for extractive QA: SQuAD exact match after answer normalisation, max over gold answers.
    SquadEm,
    /// `f1` for extractive QA: SQuAD token F1 after answer normalisation, max over gold answers.
    SquadF1,
    /// `vqa_accuracy`: the VQA v2 accuracy (`min(1, #matching annotators / 3)`, leave-one-out over the 10
    /// annotators) against `extra.answers`, averaged over questions ([`crate::metrics::vqa`]).
    VqaAccuracy,
    /// `CIDEr`: CIDEr-D against all reference captions (`extra.answers`), PTB-tokenised
    /// ([`crate::metrics::caption`]); reported ×100 like the other metrics (1.165 → 116.5).
    Cider,
    /// `Bleu_4`: corpus BLEU-4 against all reference captions, PTB-tokenised.
    Bleu4,
    /// `ROUGE_L`: ROUGE-L against all reference captions, PTB-tokenised.
    RougeL,
}

impl Metric {
    /// The name the official code reports (and picks the best checkpoint by).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Accuracy => "accuracy",
            Metric::F1 | Metric::SquadF1 => "f1",
            Metric::MacroF1 => "f1_multiclass",
            Metric::Matthews => "matthews_correlation",
            Metric::Pearson => "pearson",
            Metric::Spearman => "spearmanr",
            Metric::GroupExactMatch | Metric::SquadEm => "em",
            Metric::VqaAccuracy => "vqa_accuracy",
            Metric::Cider => "CIDEr",
            Metric::Bleu4 => "Bleu_4",
            Metric::RougeL => "ROUGE_L",
        }
    }
}

/// Which family of files (and therefore which reader and schema mapping) a task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Glue,
    SuperGlue,
    Mrqa,
    WinoGrande,
    Yelp,
    SciTail,
    Paws,
    /// VQA v2, Karpathy split, in VL-T5's JSON files.
    Vqa,
    /// MSCOCO captions, Karpathy split, in Karpathy's `dataset_coco.json`.
    CocoCaption,
}

/// What the paper does with a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// One of the 23 tasks the paper evaluates on (21 NLP tasks, VQA and MSCOCO captions).
    Evaluation,
    /// Used only as a source task for transfer (ReCoRD, SQuAD), not evaluated on.
    TransferSource,
}

/// One task of the registry ([`crate::all_tasks`]): everything the crate knows about it, so that nothing looks a task up by
/// its name. The paper's 23 evaluation tasks and the two transfer source tasks ([`Task::role`]).
#[derive(Debug)]
pub struct Task {
    /// Our name, used on the command line and in configs (`rte`, `boolq`, `natural_questions`).
    pub name: &'static str,
    /// The official code's name (`superglue-boolq`, `nq`, `superglue-wsc.fixed`); also accepted everywhere.
    pub official_name: &'static str,
    /// The hub dataset the official code loads (`glue/rte`, `lucadiliello/newsqa`).
    pub hub_dataset: &'static str,
    /// The benchmark family (GLUE, SuperGLUE, MRQA, ...), for grouping; [`Task::is_vision_language`] asks it.
    pub family: Family,
    /// Whether the paper evaluates on the task or only transfers from it.
    pub role: Role,
    /// Folder names tried under the data dir, in order.
    pub dirs: &'static [&'static str],
    /// The original release files under the task's folder.
    pub files: Files,
    /// Metrics reported, in the official order.
    pub metrics: &'static [Metric],
    /// The metric that picks the best checkpoint (`TASK_TO_METRICS[task][0]` in the official `train.py`).
    pub best_metric: Metric,
    /// The valid targets for classification tasks (`labels_list`: label ids as the model writes them, `"0"`,
    /// `"1"`, or STS-B's score grid), `None` for free-text answers.
    pub labels: Option<&'static [&'static str]>,
    /// The verbaliser: the hub `ClassLabel` name of each of [`Task::labels`], in the same order (RTE's `"1"` is
    /// `not_entailment`); `None` where targets have no class names (STS-B scores, free text). Readers of files
    /// that spell labels out (GLUE's MNLI/QNLI/RTE, CB, SciTail) map them onto ids with it.
    pub class_names: Option<&'static [&'static str]>,
    /// The official k-shot classes (`num_labels_mapping`), `None` for tasks without a k-shot setting there.
    pub k_shot: Option<KShotClasses>,
    /// How train/validation/test are derived.
    pub split_policy: SplitPolicy,
    /// How an original file maps onto hub-schema records.
    pub(crate) reader: Reader,
    /// How a hub-schema record becomes its example(s): the input template, target and id.
    pub format: Format,
}

impl Task {
    /// True for ReCoRD and SQuAD: the paper uses them only as source tasks for transfer, not among the 23 tasks it
    /// evaluates on (21 NLP tasks, VQA and MSCOCO captions).
    pub fn is_transfer_source(&self) -> bool {
        self.role == Role::TransferSource
    }

    /// True for the vision-language tasks (VQA, COCO captions): their examples name an image
    /// (`extra.image`) whose features the model needs besides the text.
    pub fn is_vision_language(&self) -> bool {
        matches!(self.family, Family::Vqa | Family::CocoCaption)
    }

    /// The class name behind a classification target (`"1"` → `"not_entailment"` for RTE), as the hub dataset's
    /// `ClassLabel` names it; `None` for free-text tasks, STS-B scores, and targets outside the label set.
    pub fn label_name(&self, target: &str) -> Option<&'static str> {
        let index = self.labels?.iter().position(|l| *l == target)?;
        self.class_names?.get(index).copied()
    }

    /// True if the prediction is one of the task's label strings (always true for free-text tasks).
    pub fn is_valid_target(&self, prediction: &str) -> bool {
        self.labels
            .is_none_or(|labels| labels.contains(&prediction))
    }

    /// The source splits a user split is drawn from.
    pub fn source_split(&self, split: Split) -> SourceSplit {
        match (self.split_policy, split) {
            (_, Split::Train) => SourceSplit::Train,
            (SplitPolicy::HalveValidation, _) => SourceSplit::Validation,
            (SplitPolicy::HoldoutTrain { .. }, Split::Validation) => SourceSplit::Train,
            (SplitPolicy::HoldoutTrain { test, .. }, Split::Test) => test,
            (SplitPolicy::Direct { validation, .. }, Split::Validation) => validation,
            (SplitPolicy::Direct { test, .. }, Split::Test) => test,
        }
    }

    /// Finds the task's folder under `data_dir` (the first of [`Task::dirs`] that exists).
    pub fn find_dir(&self, data_dir: &Path) -> Option<std::path::PathBuf> {
        self.dirs
            .iter()
            .map(|d| data_dir.join(d))
            .find(|p| p.is_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_policies_read_as_the_official_resplitting() {
        assert_eq!(
            SplitPolicy::HalveValidation.to_string(),
            "train = source train; validation/test = halves of the shuffled source validation"
        );
        let yelp = SplitPolicy::HoldoutTrain {
            test: SourceSplit::Test,
            max_train: Some(100_000),
        };
        assert_eq!(
            yelp.to_string(),
            "validation = 1000 shuffled source-train rows, train = the rest (first 100000); test = source test"
        );
        let mnli = SplitPolicy::Direct {
            validation: SourceSplit::ValidationMismatched,
            test: SourceSplit::ValidationMatched,
        };
        assert_eq!(
            mnli.to_string(),
            "as shipped: validation = source validation_mismatched, test = source validation_matched"
        );
    }
}
