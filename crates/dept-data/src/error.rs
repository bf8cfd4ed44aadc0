//! One error type for the crate. Every variant that comes from a file names the file and the line (or parquet row),
//! so a user can open the file at the right place instead of guessing.

use std::path::PathBuf;

/// Everything that can go wrong while reading, formatting, splitting or scoring task data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line could not be parsed at all (bad JSON, wrong number of TSV columns, broken CSV quoting, ...).
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A field is missing or holds a value of the wrong kind.
    #[error("{path}:{line}: field `{field}`: expected {expected}, found {found}")]
    Field {
        path: PathBuf,
        line: usize,
        field: String,
        expected: String,
        found: String,
    },
    /// A gzip stream ended early or is corrupt.
    #[error("{path}: gzip stream is truncated or corrupt (after line {line}): {source}")]
    Gzip {
        path: PathBuf,
        line: usize,
        #[source]
        source: std::io::Error,
    },
    /// A parquet file could not be decoded.
    #[error("{path}: parquet: {message}")]
    Parquet { path: PathBuf, message: String },
    /// The task name is not in the registry (there is no default task to fall back on).
    #[error("unknown task `{name}`; known tasks: {}", known.join(", "))]
    UnknownTask {
        name: String,
        known: Vec<&'static str>,
    },
    /// None of the files a split can come from exists.
    #[error("{task}: no file for the original `{split}` split; looked for: {tried}")]
    MissingData {
        task: String,
        split: String,
        tried: String,
    },
    /// Inputs to a function do not fit together (e.g. 10 predictions for 12 examples).
    #[error("{0}")]
    Invalid(String),
    /// The tokenizer file for length statistics could not be loaded or used.
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
}

/// Result alias used across the crate.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
