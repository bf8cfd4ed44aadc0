//! One error type for the crate. Every variant that comes from a file names the file and the line (or parquet row),
//! so a user can open the file at the right place instead of guessing.

use std::path::PathBuf;

/// Everything that can go wrong while reading, formatting, splitting or scoring task data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read. The message quotes the I/O error, so it is not also a `source` (a cause
    /// is printed once).
    #[error("{path}: cannot read: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
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
    /// Like [`DataError::Io`], the message quotes the I/O error and exposes no `source`.
    #[error("{path}: gzip stream is truncated or corrupt (after line {line}): {error}")]
    Gzip {
        path: PathBuf,
        line: usize,
        error: std::io::Error,
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

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// A message that quotes its I/O error exposes no source, so `{:#}` chains print the cause once.
    #[test]
    fn io_causes_are_printed_once() {
        let cause =
            || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "deflate ended early");
        let errors = [
            DataError::Io {
                path: "a.tsv".into(),
                error: cause(),
            },
            DataError::Gzip {
                path: "a.jsonl.gz".into(),
                line: 3,
                error: cause(),
            },
        ];
        for err in errors {
            assert!(err.source().is_none(), "{err}");
            assert_eq!(err.to_string().matches("deflate ended early").count(), 1);
        }
    }
}
