use std::path::PathBuf;

/// Everything that can go wrong when loading or running a backbone, worded for the person who has to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("tokenizer {path}: {message}")]
    Tokenizer { path: PathBuf, message: String },
    #[error("{0}")]
    Input(String),
    /// The adapter refused its input (too long for its `A`, wrong width).
    #[error(transparent)]
    Adapter(#[from] dept_core::CoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
