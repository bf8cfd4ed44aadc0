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
    /// A write kept failing for lack of space or an I/O error (after the retries of [`crate::retry`]).
    #[error("{}", disk_full_message(path, error, *free, *needed))]
    DiskFull {
        path: PathBuf,
        error: std::io::Error,
        free: Option<u64>,
        needed: Option<u64>,
    },
    /// SIGTERM, SIGINT or SIGUSR1 stopped the run and a complete checkpoint of a consistent state was saved.
    #[error(
        "stopped by {signal} at step {step}; checkpoint {} saved; run the same command to resume",
        checkpoint.display()
    )]
    Preempted {
        signal: &'static str,
        step: u64,
        checkpoint: PathBuf,
    },
    /// A check point saw a stop signal ([`crate::stop`]). It never leaves [`crate::train`]: the trainer saves a
    /// checkpoint and returns [`TrainError::Preempted`] instead.
    #[error("stopped by {signal} before a checkpoint was saved")]
    StopRequested { signal: &'static str },
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    #[error(transparent)]
    Data(#[from] dept_data::DataError),
    #[error(transparent)]
    Model(#[from] dept_models::ModelError),
    #[error(transparent)]
    Core(#[from] dept_core::CoreError),
    #[error(transparent)]
    Hub(#[from] dept_hub::HubError),
    #[error(transparent)]
    Torch(#[from] tch::TchError),
}

fn disk_full_message(
    path: &std::path::Path,
    error: &std::io::Error,
    free: Option<u64>,
    needed: Option<u64>,
) -> String {
    use crate::retry::human_bytes;
    let what_to_do = match error.raw_os_error() {
        Some(libc::EROFS) => {
            "the file system is read-only: remount it read-write or choose another output_dir"
        }
        Some(libc::EIO) => {
            "the device reported an I/O error: check the disk (dmesg) or choose another output_dir"
        }
        _ => "free space (or choose another output_dir)",
    };
    let space = match (error.raw_os_error(), free, needed) {
        (Some(libc::ENOSPC | libc::EDQUOT), Some(free), Some(needed)) => format!(
            "; {} free there, about {} needed",
            human_bytes(free),
            human_bytes(needed)
        ),
        (Some(libc::ENOSPC | libc::EDQUOT), Some(free), None) => {
            format!("; {} free there", human_bytes(free))
        }
        _ => String::new(),
    };
    format!(
        "cannot write {}: {error}{space}. Checkpoints written before are intact: {what_to_do}, then run the same \
         command to resume",
        path.display()
    )
}
