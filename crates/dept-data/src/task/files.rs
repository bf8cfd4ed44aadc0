//! Where a task's original release files are: file-name templates per source split.

use super::SourceSplit;

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

#[cfg(test)]
mod tests {
    use super::*;

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
