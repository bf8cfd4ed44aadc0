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
    /// The training loss stopped being finite; the step was not applied and `kept` holds the last checkpoint.
    #[error(
        "the loss became {loss} at step {step}; stopping. The last good checkpoint ({}) is kept. Lower lr_prompt / \
         lr_pair, or check the data",
        kept.display()
    )]
    NonFiniteLoss { loss: f64, step: u64, kept: PathBuf },
    /// A split the run needs has no examples.
    #[error(
        "task {task} has no {split} examples in {} (check `dept data stats {task}`)",
        data_dir.display()
    )]
    EmptySplit {
        task: String,
        split: dept_data::Split,
        data_dir: PathBuf,
    },
    #[error("{path}: {message}")]
    Checkpoint { path: PathBuf, message: String },
    /// The cause is part of the message (and deliberately not a `source`, so it is printed once).
    #[error("cannot write {path}: {error}")]
    Write {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Data(#[from] dept_data::DataError),
    #[error(transparent)]
    Model(#[from] dept_models::ModelError),
    #[error(transparent)]
    Core(#[from] dept_core::CoreError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}
