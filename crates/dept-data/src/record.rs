//! A source row in the Hugging Face `datasets` schema of its task, plus where it came from.
//!
//! Every reader turns its file format into [`Record`]s whose field names and label ids are those of the hub dataset
//! the official DePT code loads (`glue/rte`, `super_glue/multirc`, `lucadiliello/newsqa`, ...). The task formatters
//! then only know one schema per task, and a parquet export from the hub needs no mapping at all.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{DataError, Result};

/// One row of a source split.
#[derive(Debug, Clone)]
pub struct Record {
    /// Field name to value, as in the hub dataset.
    pub fields: Map<String, Value>,
    /// The file the row came from.
    pub path: Arc<PathBuf>,
    /// 1-based line in a text file (or 1-based row in a parquet file, or 1-based element of the array of a
    /// single-document JSON file: the question of a VQA file, the image of `dataset_coco.json`).
    pub line: usize,
}

impl Record {
    /// A record with no fields yet.
    pub fn new(path: &Arc<PathBuf>, line: usize) -> Self {
        Record {
            fields: Map::new(),
            path: Arc::clone(path),
            line,
        }
    }

    /// Sets a field.
    pub fn set(&mut self, field: &str, value: impl Into<Value>) {
        self.fields.insert(field.to_string(), value.into());
    }

    /// The file this record came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An error about `field` of this record.
    pub fn field_error(&self, field: &str, expected: &str, found: &str) -> DataError {
        DataError::Field {
            path: self.path.to_path_buf(),
            line: self.line,
            field: field.to_string(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    /// The raw value of a field that must be present.
    pub fn value(&self, field: &str) -> Result<&Value> {
        self.fields
            .get(field)
            .ok_or_else(|| self.field_error(field, "a value", "no such field"))
    }

    /// A string field.
    pub fn str(&self, field: &str) -> Result<&str> {
        match self.value(field)? {
            Value::String(s) => Ok(s),
            other => Err(self.field_error(field, "a string", &describe(other))),
        }
    }

    /// An integer field (JSON booleans count as 0/1, as `datasets` casts them for ClassLabel columns).
    pub fn int(&self, field: &str) -> Result<i64> {
        match self.value(field)? {
            Value::Number(n) if n.is_i64() => Ok(n.as_i64().unwrap_or_default()),
            Value::Bool(b) => Ok(i64::from(*b)),
            other => Err(self.field_error(field, "an integer", &describe(other))),
        }
    }

    /// A number field.
    pub fn f64(&self, field: &str) -> Result<f64> {
        match self.value(field)? {
            Value::Number(n) => n
                .as_f64()
                .ok_or_else(|| self.field_error(field, "a number", &n.to_string())),
            other => Err(self.field_error(field, "a number", &describe(other))),
        }
    }

    /// A list-of-strings field.
    pub fn str_list(&self, field: &str) -> Result<Vec<String>> {
        match self.value(field)? {
            Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.field_error(field, "a list of strings", &describe(other))),
                })
                .collect(),
            other => Err(self.field_error(field, "a list of strings", &describe(other))),
        }
    }

    /// A class-label field that must be one of `0..num_classes` (the hub uses -1 for unlabelled test rows).
    pub fn label(&self, field: &str, num_classes: i64) -> Result<i64> {
        let label = self.int(field)?;
        if (0..num_classes).contains(&label) {
            Ok(label)
        } else {
            Err(self.field_error(
                field,
                &format!("a label id in 0..{num_classes}"),
                &label.to_string(),
            ))
        }
    }

    /// A stable id for the row: the `idx` field when the hub dataset has one, else the given fallback.
    pub fn idx_or(&self, fallback: usize) -> String {
        match self.fields.get("idx") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => fallback.to_string(),
        }
    }
}

/// A short description of a JSON value for error messages.
pub fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}
