//! JSON lines (optionally gzip-compressed): one JSON object per line; blank lines are skipped.

use std::path::Path;

use serde_json::Value;

use crate::error::{DataError, Result};

/// Reads every line as a JSON object, returning it with its 1-based line number.
pub fn read_jsonl(path: &Path) -> Result<Vec<(usize, Value)>> {
    let lines = super::read_lines(path)?;
    let mut rows = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| DataError::Parse {
            path: path.to_path_buf(),
            line: i + 1,
            message: format!("expected a JSON object: {e}"),
        })?;
        if !value.is_object() {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                message: "expected a JSON object, found another JSON value".to_string(),
            });
        }
        rows.push((i + 1, value));
    }
    Ok(rows)
}
