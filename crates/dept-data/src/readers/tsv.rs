//! Tab-separated files the way the hub loaders read them: no quote handling at all (`csv.QUOTE_NONE`), because GLUE
//! sentences contain unbalanced `"` characters. A UTF-8 byte-order mark (MRPC) is dropped from the header.

use std::path::Path;

use crate::error::{DataError, Result};

/// A parsed TSV file: the header (if the file has one) and the data rows with their 1-based line numbers.
#[derive(Debug)]
pub struct Tsv {
    pub header: Vec<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

impl Tsv {
    /// Position of a header column, or an error naming the file and what was expected.
    pub fn column(&self, path: &Path, name: &str) -> Result<usize> {
        self.header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| DataError::Field {
                path: path.to_path_buf(),
                line: 1,
                field: name.to_string(),
                expected: "this column in the header".to_string(),
                found: format!("columns {:?}", self.header),
            })
    }
}

/// Reads a TSV file; with `has_header` the first line names the columns. Empty trailing lines are skipped. Every
/// data row must have at least `min_columns` fields.
pub fn read_tsv(path: &Path, has_header: bool, min_columns: usize) -> Result<Tsv> {
    let lines = super::read_lines(path)?;
    let mut header = Vec::new();
    let mut rows = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let number = i + 1;
        if i == 0 && has_header {
            let line = line.strip_prefix('\u{feff}').unwrap_or(line);
            header = line.split('\t').map(str::to_string).collect();
            continue;
        }
        if line.is_empty() {
            continue;
        }
        let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
        let needed = min_columns.max(header.len());
        if fields.len() < needed {
            return Err(DataError::Parse {
                path: path.to_path_buf(),
                line: number,
                message: format!(
                    "expected at least {needed} tab-separated columns, found {}",
                    fields.len()
                ),
            });
        }
        rows.push((number, fields));
    }
    if has_header && header.is_empty() {
        return Err(DataError::Parse {
            path: path.to_path_buf(),
            line: 1,
            message: "expected a header line, the file is empty".to_string(),
        });
    }
    Ok(Tsv { header, rows })
}
