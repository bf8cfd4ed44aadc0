//! The declarative half of a registry entry: where a task's original files are ([`Files`]) and how one hub-schema
//! row becomes its text-to-text example ([`Format`]). Each [`crate::Task`] holds its own values, so no code looks a
//! task up by name to find its files or its template.

use serde_json::Value;

use crate::error::Result;
use crate::example::TextExample;
use crate::record::Record;
use crate::task::{SourceSplit, Task};
use crate::text::stsb_target;

/// The file-name part each source split uses (`{}` in [`Files::templates`] stands for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitParts {
    pub train: &'static str,
    pub validation: &'static str,
    pub test: &'static str,
    pub validation_matched: &'static str,
    pub validation_mismatched: &'static str,
}

impl SplitParts {
    /// `train`, `validation` and the same `rest` for every other split (the sets that ship one file per split;
    /// the matched/mismatched splits only exist for MNLI).
    pub const fn three(train: &'static str, validation: &'static str, rest: &'static str) -> Self {
        SplitParts {
            train,
            validation,
            test: rest,
            validation_matched: rest,
            validation_mismatched: rest,
        }
    }

    /// The part for one source split.
    pub fn of(&self, split: SourceSplit) -> &'static str {
        match split {
            SourceSplit::Train => self.train,
            SourceSplit::Validation => self.validation,
            SourceSplit::Test => self.test,
            SourceSplit::ValidationMatched => self.validation_matched,
            SourceSplit::ValidationMismatched => self.validation_mismatched,
        }
    }
}

/// A task's original release files, relative to its folder: name templates tried in order, `{}` replaced by the
/// split's part (`{}.tsv` with part `dev` → `dev.tsv`); a template without `{}` (COCO's one `dataset_coco.json`)
/// names the same file for every split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Files {
    pub templates: &'static [&'static str],
    pub parts: SplitParts,
}

impl Files {
    /// Candidate file names for a source split, most specific first.
    pub fn candidates(&self, split: SourceSplit) -> Vec<String> {
        let part = self.parts.of(split);
        self.templates
            .iter()
            .map(|template| template.replace("{}", part))
            .collect()
    }
}

/// Formats one hub-schema row into its example(s); `usize` is the row's position in its source split.
pub type Formatter = fn(&Record, usize) -> Result<Vec<TextExample>>;

/// How a row becomes its example(s).
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// The official `seq2seq_format` over named fields: each `(prefix, field)` of `input` gives `prefix value`,
    /// joined by spaces (`[("sentence1:", "sentence1"), ("sentence2:", "sentence2")]` →
    /// `sentence1: {sentence1} sentence2: {sentence2}`).
    Fields {
        input: &'static [(&'static str, &'static str)],
        target: Target,
        id: RowId,
    },
    /// A format that needs code of its own (WSC's span marks, MultiRC, ReCoRD, MRQA, WinoGrande, VQA, captions).
    Code(Formatter),
}

/// Where a [`Format::Fields`] target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `label`, an integer id below the number of the task's labels, written as is (`"1"`).
    LabelId,
    /// `label`, a similarity score rounded to the STS-B label grid (`"3.8"`).
    Score,
    /// This field holds one of the task's [`Task::class_names`]; the target is its position (SciTail's
    /// `gold_label`). It is checked before the input fields, in the official formatter's order.
    ClassName(&'static str),
}

/// Where a [`Format::Fields`] example id comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowId {
    /// The hub's `idx` (a number or a string), else the row position.
    Idx,
    /// The row position (the sets without ids of their own).
    Row,
    /// This field, a string as is and any other value as JSON writes it, else the row position (PAWS `id`).
    Field(&'static str),
}

impl RowId {
    fn of(self, r: &Record, row: usize) -> String {
        match self {
            RowId::Idx => r.idx_or(row),
            RowId::Row => row.to_string(),
            RowId::Field(field) => match r.fields.get(field) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => row.to_string(),
            },
        }
    }
}

/// `a, b or c`: the expected values of an error message.
pub(crate) fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

impl Format {
    /// Formats `r` for `task` (whose labels and class names the target is checked against).
    pub(crate) fn apply(&self, task: &Task, r: &Record, row: usize) -> Result<Vec<TextExample>> {
        let (input, target, id) = match *self {
            Format::Code(format) => return format(r, row),
            Format::Fields { input, target, id } => (input, target, id),
        };
        let target_text = || -> Result<String> {
            match target {
                Target::LabelId => {
                    let classes = task.labels.map_or(0, <[_]>::len) as i64;
                    Ok(r.label("label", classes)?.to_string())
                }
                Target::Score => Ok(stsb_target(r.f64("label")?)),
                Target::ClassName(field) => {
                    let names = task.class_names.unwrap_or_default();
                    let found = r.str(field)?;
                    let index = names.iter().position(|n| *n == found);
                    index
                        .map(|i| i.to_string())
                        .ok_or_else(|| r.field_error(field, &one_of(names), found))
                }
            }
        };
        let early = match target {
            Target::ClassName(_) => Some(target_text()?),
            _ => None,
        };
        let id = id.of(r, row);
        let mut parts = Vec::with_capacity(2 * input.len());
        for (prefix, field) in input {
            parts.push(*prefix);
            parts.push(r.str(field)?);
        }
        let target = match early {
            Some(text) => text,
            None => target_text()?,
        };
        Ok(vec![TextExample {
            id,
            input: parts.join(" "),
            target,
            extra: Default::default(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_values_read_as_a_list() {
        assert_eq!(one_of(&["a"]), "a");
        assert_eq!(one_of(&["entailment", "neutral"]), "entailment or neutral");
        assert_eq!(
            one_of(&["entailment", "contradiction", "neutral"]),
            "entailment, contradiction or neutral"
        );
    }

    #[test]
    fn templates_take_the_split_part() {
        let files = Files {
            templates: &["{}.jsonl.gz", "{}/SQuAD.jsonl.gz", "fixed.json"],
            parts: SplitParts::three("train", "dev", "dev"),
        };
        assert_eq!(
            files.candidates(SourceSplit::Validation),
            ["dev.jsonl.gz", "dev/SQuAD.jsonl.gz", "fixed.json"]
        );
        assert_eq!(files.candidates(SourceSplit::Train)[0], "train.jsonl.gz");
    }
}
