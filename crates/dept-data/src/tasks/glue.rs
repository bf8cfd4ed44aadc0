//! GLUE: the original TSV files mapped onto the `glue/<task>` hub schema. The official formats below, and each
//! task's columns and class names, are fields of its registry entry (`tasks/mod.rs`); this module only reads files.
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
use crate::readers::tsv::read_tsv;
use crate::record::Record;
use crate::task::{GlueColumns, LabelColumn, Task};

/// CoLA's TSV has no header: columns source, label, original mark, sentence.
pub(crate) fn read_cola(task: &Task, path: &Path) -> Result<Vec<Record>> {
    let shared: Arc<PathBuf> = Arc::new(path.to_path_buf());
    let tsv = read_tsv(path, false, 4)?;
    let mut records = Vec::with_capacity(tsv.rows.len());
    for (idx, (line, cols)) in tsv.rows.into_iter().enumerate() {
        let mut record = Record::new(&shared, line);
        let label = parse_label(task, &record, "label (column 2)", &cols[1], LabelColumn::Id)?;
        record.set("sentence", cols[3].clone());
        record.set("label", label);
        record.set("idx", idx as u64);
        records.push(record);
    }
    Ok(records)
}

/// Reads a GLUE TSV into `glue/<task>` records.
pub(crate) fn read(task: &Task, columns: &GlueColumns, path: &Path) -> Result<Vec<Record>> {
    let shared: Arc<PathBuf> = Arc::new(path.to_path_buf());
    let GlueColumns {
        fields,
        label_column,
        label: label_map,
    } = *columns;
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
            Some(pos) => parse_label(task, &record, label_column, &cols[pos], label_map)?,
            None => serde_json::Value::from(-1),
        };
        record.fields.insert("label".into(), label);
        record.set("idx", idx as u64);
        records.push(record);
    }
    Ok(records)
}

fn parse_label(
    task: &Task,
    record: &Record,
    column: &str,
    raw: &str,
    map: LabelColumn,
) -> Result<serde_json::Value> {
    let bad = |expected: String| DataError::Field {
        path: record.path.to_path_buf(),
        line: record.line,
        field: column.to_string(),
        expected,
        found: format!("{raw:?}"),
    };
    match map {
        LabelColumn::ClassName => {
            let names = task.class_names.unwrap_or_default();
            names
                .iter()
                .position(|n| *n == raw)
                .map(|i| serde_json::Value::from(i as i64))
                .ok_or_else(|| bad(format!("one of {names:?}")))
        }
        LabelColumn::Id => {
            let n = task.labels.map_or(0, <[_]>::len);
            match raw.trim().parse::<i64>() {
                Ok(id) if usize::try_from(id).is_ok_and(|id| id < n) => Ok(id.into()),
                _ => Err(bad(format!("a label id in 0..{n}"))),
            }
        }
        LabelColumn::Score => match raw.trim().parse::<f64>() {
            Ok(score) if score.is_finite() => Ok(score.into()),
            _ => Err(bad("a similarity score".to_string())),
        },
    }
}
