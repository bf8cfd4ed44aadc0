use std::path::PathBuf;

/// Errors of a training or evaluation run, each saying what to change.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{0}")]
    Run(String),
    /// libtorch could not allocate memory; the message says what to change.
    #[error("{0}")]
    OutOfMemory(String),
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Data(#[from] dept_data::DataError),
    #[error(transparent)]
    Model(#[from] dept_models::ModelError),
    #[error(transparent)]
    Core(#[from] dept_core::CoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
