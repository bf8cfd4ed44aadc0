//! A bench's result files: written into its `--out` folder, each whole or not at all.

use std::path::Path;

use serde::Serialize;

use crate::error::{BenchError, Result};

/// One JSON object per row, one row per line.
pub(crate) fn json_lines<T: Serialize>(rows: &[T]) -> Result<String> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&serde_json::to_string(row).map_err(|e| BenchError::Invalid(e.to_string()))?);
        text.push('\n');
    }
    Ok(text)
}

/// Creates `dir` and writes each `(file name, text)` into it atomically.
pub(crate) fn write_files(dir: &Path, files: &[(&str, String)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io("creating", dir, e))?;
    for (name, text) in files {
        let path = dir.join(name);
        dept_core::atomic::write_atomically(&path, |tmp| std::fs::write(tmp, text.as_bytes()))
            .map_err(|e| BenchError::io("writing", &path, e))?;
    }
    Ok(())
}
