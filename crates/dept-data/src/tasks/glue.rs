//! GLUE: the original TSV files mapped onto the `glue/<task>` hub schema, and the official formats.
//!
//! | task | input | target |
//! |------|-------|--------|
//! | cola, sst2 | `sentence: {sentence}` | label id |
//! | mrpc, rte | `sentence1: {sentence1} sentence2: {sentence2}` | label id |
//! | stsb | `sentence1: {sentence1} sentence2: {sentence2}` | score rounded to one decimal, e.g. `3.8` |
//! | qqp | `question1: {question1} question2: {question2}` | label id |
//! | qnli | `question: {question} sentence: {sentence}` | label id (0 entailment, 1 not_entailment) |
//! | mnli | `premise: {premise} hypothesis: {hypothesis}` | label id (0 entailment, 1 neutral, 2 contradiction) |
//!
//! Files (`<data_dir>/<TASK>/`): `train.tsv`, `dev.tsv` (MNLI: `dev_matched.tsv`, `dev_mismatched.tsv`), as in
//! `download_glue_data.py`. Rows are read without quote handling and in file order, which is the hub's order and
//! `idx`. CoLA has no header (columns: source, label, original mark, sentence). MRPC's `train.tsv`/`dev.tsv` are
//! GLUE's split of `msr_paraphrase_train.txt` by `dev_ids.tsv`, which is also how the hub builds `glue/mrpc`, so
//! rows and order agree; a `train.tsv` missing a row (some mirrors lack pair 2750203/2750153) shows up as a split
//! size of 3667 instead of 3668.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{DataError, Result};
use crate::example::TextExample;
use crate::readers::tsv::read_tsv;
use crate::record::Record;
use crate::task::{SourceSplit, Task};
use crate::text::stsb_target;

use super::join;

pub(crate) fn candidates(task: &Task, split: SourceSplit) -> Vec<String> {
    let name = match (task.name, split) {
        (_, SourceSplit::Train) => "train.tsv",
        ("mnli", SourceSplit::ValidationMatched) => "dev_matched.tsv",
        ("mnli", SourceSplit::ValidationMismatched) => "dev_mismatched.tsv",
        (_, SourceSplit::Validation) => "dev.tsv",
        _ => "test.tsv",
    };
    vec![name.to_string()]
}

/// How a label column maps onto the hub's class ids.
enum LabelMap {
    /// Class names in id order.
    Names(&'static [&'static str]),
    /// Already an integer id below this bound.
    Ids(i64),
    /// A float score (STS-B).
    Score,
}

/// (hub field, TSV column) pairs, the label column and its mapping.
fn schema(task: &str) -> (Vec<(&'static str, &'static str)>, &'static str, LabelMap) {
    const NLI: &[&str] = &["entailment", "not_entailment"];
    match task {
        "sst2" => (vec![("sentence", "sentence")], "label", LabelMap::Ids(2)),
        "mrpc" => (
            vec![("sentence1", "#1 String"), ("sentence2", "#2 String")],
            "Quality",
            LabelMap::Ids(2),
        ),
        "qqp" => (
            vec![("question1", "question1"), ("question2", "question2")],
            "is_duplicate",
            LabelMap::Ids(2),
        ),
        "stsb" => (
            vec![("sentence1", "sentence1"), ("sentence2", "sentence2")],
            "score",
            LabelMap::Score,
        ),
        "mnli" => (
            vec![("premise", "sentence1"), ("hypothesis", "sentence2")],
            "gold_label",
            LabelMap::Names(&["entailment", "neutral", "contradiction"]),
        ),
        "qnli" => (
            vec![("question", "question"), ("sentence", "sentence")],
            "label",
            LabelMap::Names(NLI),
        ),
        // rte
        _ => (
            vec![("sentence1", "sentence1"), ("sentence2", "sentence2")],
            "label",
            LabelMap::Names(NLI),
        ),
    }
}

/// Reads a GLUE TSV into `glue/<task>` records.
pub(crate) fn read(task: &Task, path: &Path) -> Result<Vec<Record>> {
    let shared: Arc<PathBuf> = Arc::new(path.to_path_buf());
    if task.name == "cola" {
        let tsv = read_tsv(path, false, 4)?;
        let mut records = Vec::with_capacity(tsv.rows.len());
        for (idx, (line, cols)) in tsv.rows.into_iter().enumerate() {
            let mut record = Record::new(&shared, line);
            let label = parse_label(&record, "label (column 2)", &cols[1], &LabelMap::Ids(2))?;
            record.set("sentence", cols[3].clone());
            record.set("label", label);
            record.set("idx", idx as u64);
            records.push(record);
        }
        return Ok(records);
    }
    let (fields, label_column, label_map) = schema(task.name);
    let tsv = read_tsv(path, true, 0)?;
    let positions: Vec<(&str, usize)> = fields
        .iter()
        .map(|(field, column)| Ok((*field, tsv.column(path, column)?)))
        .collect::<Result<_>>()?;
    let label_pos = tsv.column(path, label_column).ok();
    let mut records = Vec::with_capacity(tsv.rows.len());
    for (idx, (line, cols)) in tsv.rows.iter().enumerate() {
        let mut record = Record::new(&shared, *line);
        for (field, pos) in &positions {
            record.set(field, cols[*pos].clone());
        }
        // Test files have no label column; the hub writes -1 there.
        let label = match label_pos {
            Some(pos) => parse_label(&record, label_column, &cols[pos], &label_map)?,
            None => serde_json::Value::from(-1),
        };
        record.fields.insert("label".into(), label);
        record.set("idx", idx as u64);
        records.push(record);
    }
    Ok(records)
}

fn parse_label(
    record: &Record,
    column: &str,
    raw: &str,
    map: &LabelMap,
) -> Result<serde_json::Value> {
    let bad = |expected: String| DataError::Field {
        path: record.path.to_path_buf(),
        line: record.line,
        field: column.to_string(),
        expected,
        found: format!("{raw:?}"),
    };
    match map {
        LabelMap::Names(names) => names
            .iter()
            .position(|n| *n == raw)
            .map(|i| serde_json::Value::from(i as i64))
            .ok_or_else(|| bad(format!("one of {names:?}"))),
        LabelMap::Ids(n) => match raw.trim().parse::<i64>() {
            Ok(id) if (0..*n).contains(&id) => Ok(id.into()),
            _ => Err(bad(format!("a label id in 0..{n}"))),
        },
        LabelMap::Score => match raw.trim().parse::<f64>() {
            Ok(score) if score.is_finite() => Ok(score.into()),
            _ => Err(bad("a similarity score".to_string())),
        },
    }
}

fn one(id: String, input: String, target: String) -> Result<Vec<TextExample>> {
    Ok(vec![TextExample {
        id,
        input,
        target,
        extra: Default::default(),
    }])
}

/// cola, sst2: `sentence: {sentence}`.
pub(crate) fn format_sentence(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    one(
        r.idx_or(row),
        join(&["sentence:", r.str("sentence")?]),
        r.label("label", 2)?.to_string(),
    )
}

/// mrpc, rte: `sentence1: {sentence1} sentence2: {sentence2}`.
pub(crate) fn format_sentence_pair(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    one(
        r.idx_or(row),
        join(&[
            "sentence1:",
            r.str("sentence1")?,
            "sentence2:",
            r.str("sentence2")?,
        ]),
        r.label("label", 2)?.to_string(),
    )
}

/// stsb: as sentence pairs, target `round_stsb_target(label)`.
pub(crate) fn format_stsb(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    one(
        r.idx_or(row),
        join(&[
            "sentence1:",
            r.str("sentence1")?,
            "sentence2:",
            r.str("sentence2")?,
        ]),
        stsb_target(r.f64("label")?),
    )
}

/// qqp: `question1: {question1} question2: {question2}`.
pub(crate) fn format_qqp(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    one(
        r.idx_or(row),
        join(&[
            "question1:",
            r.str("question1")?,
            "question2:",
            r.str("question2")?,
        ]),
        r.label("label", 2)?.to_string(),
    )
}

/// qnli: `question: {question} sentence: {sentence}`.
pub(crate) fn format_qnli(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    one(
        r.idx_or(row),
        join(&[
            "question:",
            r.str("question")?,
            "sentence:",
            r.str("sentence")?,
        ]),
        r.label("label", 2)?.to_string(),
    )
}

/// mnli: `premise: {premise} hypothesis: {hypothesis}`.
pub(crate) fn format_mnli(r: &Record, row: usize) -> Result<Vec<TextExample>> {
    one(
        r.idx_or(row),
        join(&[
            "premise:",
            r.str("premise")?,
            "hypothesis:",
            r.str("hypothesis")?,
        ]),
        r.label("label", 3)?.to_string(),
    )
}
