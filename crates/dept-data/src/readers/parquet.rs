//! Hugging Face `datasets` parquet exports (what the hub serves under `refs/convert/parquet` or in `data/`).
//! Their columns already are the hub schema, so rows become [`Record`]s directly; nested columns (MultiRC `idx`,
//! MRQA `answers`, ReCoRD `entities`) come through as JSON objects and lists.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::Value;

use crate::error::{DataError, Result};
use crate::record::Record;

/// Reads every row of one parquet file.
pub fn read_parquet(path: &Path) -> Result<Vec<Record>> {
    let err = |message: String| DataError::Parquet {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let reader = SerializedFileReader::new(file).map_err(|e| err(e.to_string()))?;
    let rows = reader.get_row_iter(None).map_err(|e| err(e.to_string()))?;
    let shared: Arc<PathBuf> = Arc::new(path.to_path_buf());
    let mut records = Vec::new();
    for (i, row) in rows.enumerate() {
        let row = row.map_err(|e| err(format!("row {}: {e}", i + 1)))?;
        let mut record = Record::new(&shared, i + 1);
        match row.to_json_value() {
            Value::Object(map) => record.fields = map,
            other => {
                return Err(err(format!(
                    "row {}: expected a struct row, found {other}",
                    i + 1
                )))
            }
        }
        records.push(record);
    }
    Ok(records)
}
