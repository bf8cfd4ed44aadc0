//! Quoted CSV without a header (the Yelp polarity release: `"label","text"`).

use std::path::Path;

use crate::error::{DataError, Result};

/// Reads all records with the line each starts on. Every record must have exactly `columns` fields.
pub fn read_csv(path: &Path, columns: usize) -> Result<Vec<(usize, Vec<String>)>> {
    let reader = super::open_text(path)?;
    let mut csv = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut rows = Vec::new();
    for record in csv.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
            match e.into_kind() {
                ::csv::ErrorKind::Io(error) => DataError::Gzip {
                    path: path.to_path_buf(),
                    line,
                    error,
                },
                other => DataError::Parse {
                    path: path.to_path_buf(),
                    line,
                    message: format!("bad CSV: {other:?}"),
                },
            }
        })?;
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        if record.len() != columns {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line,
                message: format!(
                    "expected {columns} comma-separated fields, found {}",
                    record.len()
                ),
            });
        }
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(rows)
}
