use std::path::PathBuf;

/// Errors of hub resolution, each naming the repository, file or folder at fault and what to do.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// A file or setting that is not what it should be (an index without a weight map, no cache folder).
    #[error("{0}")]
    Invalid(String),
    /// Offline (HF_HUB_OFFLINE=1, or the hub unreachable) and the cache lacks what is needed.
    #[error("{0}")]
    NotCached(String),
    /// The hub answered, but not with the file: unknown repository, revision or file, a gated model, a server error.
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
    /// The connection failed (no network, refused, cut and not resumable after retries).
    #[error("{url}: {message}")]
    Network { url: String, message: String },
    /// A downloaded file does not hash to what the hub says it is.
    #[error("{url}: the download does not match its checksum ({message}); it was discarded, run again to retry")]
    Checksum { url: String, message: String },
    /// A model that is not a folder here, read as a hub id (the cause is printed, not chained: it is printed once).
    #[error("{model}: no such folder; as a Hugging Face hub model: {cause}")]
    Model { model: String, cause: Box<HubError> },
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl HubError {
    pub(crate) fn io(path: &std::path::Path, error: std::io::Error) -> Self {
        HubError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}
