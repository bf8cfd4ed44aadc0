use std::path::PathBuf;

/// Errors of the method crate, each naming the value or file at fault and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("invalid DePT configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Shape(String),
    #[error("budget: {0}")]
    Budget(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    /// The cause is part of the message (and deliberately not a `source`, so it is printed once).
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
