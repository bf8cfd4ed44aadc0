//! One value per line (WinoGrande `*-labels.lst`).

use std::path::Path;

use crate::error::Result;

/// The non-empty lines of a file, trimmed, with their 1-based line numbers.
pub fn read_values(path: &Path) -> Result<Vec<(usize, String)>> {
    Ok(super::read_lines(path)?
        .into_iter()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect())
}
