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
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
