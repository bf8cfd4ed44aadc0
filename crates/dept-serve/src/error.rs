//! Every way a request or the server can fail, each with the HTTP status a client gets for it.

use std::path::PathBuf;

/// A failure of the server or of one request. Request errors are answered with their status and a JSON body in
/// OpenAI's error shape (`{"error": {"message", "type", "param", "code"}}`); the server keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The request's JSON could not be read (with serde's line and column).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// A route that exists, asked with a method it does not take.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A body over the server's limit.
    #[error("{0}")]
    TooLarge(String),
    /// An admin route without the right token.
    #[error("{0}")]
    Unauthorized(String),
    /// An admin route while the server runs without `--admin-token`.
    #[error("{0}")]
    Forbidden(String),
    /// The queue is full: the client should retry after the given seconds.
    #[error("the server is busy: {queued} requests are queued (capacity {capacity}); retry after {retry_after_s} s")]
    Busy {
        queued: usize,
        capacity: usize,
        retry_after_s: u64,
    },
    #[error("the request took longer than the server's limit of {0} s")]
    Timeout(u64),
    /// The server is shutting down and takes no new work.
    #[error("the server is shutting down")]
    Draining,
    /// An adapter folder that cannot be served (named in the message).
    #[error("{path}: {message}")]
    Adapter { path: PathBuf, message: String },
    /// The model failed on a batch (the rows of that batch get this; the server goes on).
    #[error("the model failed: {0}")]
    Model(String),
    #[error("{0}")]
    Startup(String),
}

impl ServeError {
    /// The HTTP status this failure is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ServeError::BadRequest(_) => 400,
            ServeError::Unauthorized(_) => 401,
            ServeError::Forbidden(_) => 403,
            ServeError::NotFound(_) => 404,
            ServeError::MethodNotAllowed(_) => 405,
            ServeError::TooLarge(_) => 413,
            ServeError::Adapter { .. } => 422,
            ServeError::Busy { .. } => 429,
            ServeError::Draining => 503,
            ServeError::Timeout(_) => 504,
            ServeError::Model(_) | ServeError::Startup(_) => 500,
        }
    }

    /// OpenAI's error `type` for this failure.
    pub fn kind(&self) -> &'static str {
        match self.status() {
            400 | 405 | 413 | 422 => "invalid_request_error",
            401 | 403 => "authentication_error",
            404 => "not_found_error",
            429 => "rate_limit_error",
            503 | 504 => "server_unavailable",
            _ => "server_error",
        }
    }
}

impl From<dept_models::ModelError> for ServeError {
    fn from(error: dept_models::ModelError) -> Self {
        ServeError::Model(error.to_string())
    }
}
