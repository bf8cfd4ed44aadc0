//! The one place the sweep engine writes its files (point configs, manifests, state, scripts, reports): each file
//! is replaced atomically, so a killed runner never leaves a half-written one.

use std::path::Path;

use crate::error::SweepError;

/// Writes a small file atomically (markers, the points list, the array script).
pub fn write_file(path: &Path, text: &str) -> Result<(), SweepError> {
    dept_core::atomic::write_atomically(path, |tmp| std::fs::write(tmp, text))
        .map_err(|e| SweepError::io("writing", path, e))
}
